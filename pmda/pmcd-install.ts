/**
 * Installs a PMDA written with definePmda into the local pmcd, and removes
 * it again, the way PCP's own `Install`/`Remove` scripts do it (pmdaproc.sh):
 * its line in pmcd.conf, its files in `$PCP_PMDAS_DIR/<dir>/` (`root_<dir>`
 * PMNS, `help` with its newhelp database, `domain.h`), a link to its PMNS in
 * `$PCP_VAR_DIR/pmns/` named `root_<label>` (PCP's `Rebuild`, which pmcd's
 * rc script runs at a start that finds `.NeedRebuild`, as after every PCP
 * install or upgrade, merges `root_<name>` only for an agent `<name>` of
 * pmcd.conf; a file of that name that was there is kept in the PMDA's
 * folder until the removal puts it back), its names merged into
 * `$PCP_VAR_DIR/pmns/root` with `pmnsadd`, and pmcd restarted.
 *
 * Removal puts pmcd.conf and the PMNS back byte for byte when nothing else
 * changed them since the install (the install records what it wrote), and
 * otherwise takes out only what the install put in (its pmcd.conf line,
 * its names with `pmnsdel`). Needs root.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CrootError } from '../core/errors/croot-error.js';
import { entryExists } from '../core/host/entry-exists.js';
import type { Pmda } from './define-pmda.js';
import { pmdaFiles } from './pmda-files.js';

export interface PcpPaths {
  readonly pmcdConf: string;
  /** pmcd's command-line options file (PCP_PMCDOPTIONS_PATH). */
  readonly pmcdOptions: string;
  readonly varDir: string;
  readonly pmdasDir: string;
  readonly binadmDir: string;
  readonly rcDir: string;
}

/** PCP's paths: the environment first, then `$PCP_CONF` or /etc/pcp.conf, then Debian's defaults. */
export function pcpPaths(env: NodeJS.ProcessEnv = process.env): PcpPaths {
  const conf: Record<string, string> = {};
  try {
    for (const line of readFileSync(env.PCP_CONF ?? '/etc/pcp.conf', 'utf8').split('\n')) {
      const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) conf[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
    }
  } catch {
    // no pcp.conf: the defaults below
  }
  const get = (key: string, fallback: string): string => env[key] ?? conf[key] ?? fallback;
  return {
    pmcdConf: get('PCP_PMCDCONF_PATH', '/etc/pcp/pmcd/pmcd.conf'),
    pmcdOptions: get('PCP_PMCDOPTIONS_PATH', '/etc/pcp/pmcd/pmcd.options'),
    varDir: get('PCP_VAR_DIR', '/var/lib/pcp'),
    pmdasDir: get('PCP_PMDAS_DIR', '/var/lib/pcp/pmdas'),
    binadmDir: get('PCP_BINADM_DIR', '/usr/lib/pcp/bin'),
    rcDir: get('PCP_RC_DIR', '/etc/init.d'),
  };
}

/** A pmcd.conf agent line: `label domain pipe binary command`. */
export function agentLine(label: string, domain: number, command: string): string {
  return `${label}\t${domain}\tpipe\tbinary\t\t${command}`;
}

function labelOf(line: string): string | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#') || t.startsWith('[')) return undefined;
  return t.split(/\s+/)[0];
}

/** The agent lines of a pmcd.conf (before its `[access]` section): label -> domain. */
export function agentDomains(conf: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of conf.split('\n')) {
    if (/^\s*\[access\]/.test(line)) break;
    const label = labelOf(line);
    const domain = Number(line.trim().split(/\s+/)[1]);
    if (label !== undefined && Number.isInteger(domain)) out.set(label, domain);
  }
  return out;
}

/**
 * pmcd.conf with the agent line of `label` replaced by `line`; without one,
 * `line` goes first (`first`, for the root agent: pmcd starts the others
 * through it) or after the last agent line.
 */
export function withAgentLine(conf: string, label: string, line: string, first = false): string {
  const lines = conf.split('\n');
  const access = lines.findIndex((l) => /^\s*\[access\]/.test(l));
  const end = access < 0 ? lines.length : access;
  const at = lines.findIndex((l, i) => i < end && labelOf(l) === label);
  if (at >= 0) {
    lines[at] = line;
    return lines.join('\n');
  }
  const agents = lines.map((l, i) => (i < end && labelOf(l) !== undefined ? i : -1)).filter((i) => i >= 0);
  let pos: number;
  if (first) pos = agents[0] ?? end;
  else pos = agents.length > 0 ? (agents[agents.length - 1] as number) + 1 : end;
  lines.splice(pos, 0, line);
  return lines.join('\n');
}

/** pmcd.conf without the agent line of `label`. */
export function withoutAgentLine(conf: string, label: string): string {
  const lines = conf.split('\n');
  const access = lines.findIndex((l) => /^\s*\[access\]/.test(l));
  return lines.filter((l, i) => (access >= 0 && i >= access) || labelOf(l) !== label).join('\n');
}

/** The agent negotiation timeout (`-q SECONDS`) a pmcd.options file sets, if any (the last one wins, as in getopt). */
export function negotiationTimeout(options: string): number | undefined {
  let found: number | undefined;
  for (const line of options.split('\n')) {
    const m = /^\s*-q\s*(\d+)\s*$/.exec(line);
    if (m !== null) found = Number(m[1]);
  }
  return found;
}

const Q_COMMENT = '# croot: more than the default 3 s for agents to greet pmcd (crootd --pmda loads its engines first)';

/** pmcd.options with `-q seconds` appended (and a comment saying why), unless it sets as much already. */
export function withNegotiationTimeout(options: string, seconds: number): string {
  const now = negotiationTimeout(options);
  if (now !== undefined && now >= seconds) return options;
  return `${options}${options === '' || options.endsWith('\n') ? '' : '\n'}${Q_COMMENT}\n-q ${seconds}\n`;
}

/** pmcd.options without what withNegotiationTimeout added. */
export function withoutNegotiationTimeout(options: string, seconds: number): string {
  return options.replace(`${Q_COMMENT}\n-q ${seconds}\n`, '');
}

/** The shortest subtrees holding every name in `names` and none of `before` (what pmnsdel should delete). */
export function addedSubtrees(names: readonly string[], before: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const visit = (prefix: string): void => {
    const under = names.filter((n) => n === prefix || n.startsWith(`${prefix}.`));
    if (under.length === 0) return;
    if (![...before].some((n) => n === prefix || n.startsWith(`${prefix}.`))) {
      out.push(prefix);
      return;
    }
    const children = new Set(
      under
        .filter((n) => n !== prefix)
        .map((n) => {
          const dot = n.indexOf('.', prefix.length + 1);
          return dot < 0 ? n : n.slice(0, dot);
        }),
    );
    for (const child of children) visit(child);
  };
  for (const top of new Set(names.map((n) => n.split('.')[0] as string))) visit(top);
  return out;
}

export interface InstallPmdaOptions {
  readonly pmda: Pmda;
  /** The command pmcd runs (absolute paths: pmcd runs it from its own directory). */
  readonly command: string;
  /** pmcd.conf label; default the PMDA's name. */
  readonly label?: string;
  /** Folder under $PCP_PMDAS_DIR and the PMNS file's suffix; default the label. */
  readonly dir?: string;
  /** Put the line first when adding it (the root agent). */
  readonly first?: boolean;
  /**
   * Seconds pmcd waits for the agent's first PDU (pmcd -q, default 3): when
   * given, pmcd.options gets `-q` at least this (kept and restored like pmcd.conf).
   */
  readonly negotiationTimeout?: number;
  /** Restart pmcd if it runs (default true). */
  readonly restart?: boolean;
  readonly paths?: PcpPaths;
  readonly say?: (line: string) => void;
}

/** What an install wrote, kept in `$PCP_PMDAS_DIR/<dir>/installed.json` for the removal. */
interface Installed {
  readonly label: string;
  /** The line of `label` the install replaced, if there was one. */
  readonly previousLine?: string;
  /** The `-q` the install added to pmcd.options, and the file's digest after. */
  readonly negotiationTimeout?: number;
  readonly optionsSha256?: string;
  readonly confSha256: string;
  readonly pmnsSha256: string;
  readonly names: readonly string[];
  readonly namesBefore: readonly string[];
}

const STATE_FILE = 'installed.json';
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function run(cmd: string, args: readonly string[], cwd?: string): string {
  try {
    return execFileSync(cmd, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000, ...(cwd !== undefined ? { cwd } : {}) });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new CrootError('ERR_SYSTEM', `${cmd} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || (e.stdout ?? '').trim() || e.message}`, { cause: err });
  }
}

/**
 * The PMNS to merge names into. pmcd's rc script builds it from the
 * `root_*` files at pmcd's first start, so a PCP installed but never started
 * has none: build it as that script does (`Rebuild -u` in its folder).
 */
function ensurePmns(pmnsRoot: string, say: (line: string) => void): void {
  if (existsSync(pmnsRoot)) return;
  const dir = dirname(pmnsRoot);
  const rebuild = join(dir, 'Rebuild');
  if (!existsSync(rebuild)) {
    throw new CrootError('ERR_CONFIG', `${pmnsRoot} does not exist and there is no ${rebuild} to build it: start pmcd once, then install again`);
  }
  run(rebuild, ['-u'], dir);
  if (!existsSync(pmnsRoot)) throw new CrootError('ERR_SYSTEM', `${rebuild} -u did not make ${pmnsRoot}`);
  // As the rc script does after its Rebuild: the next start need not build it again.
  rmSync(join(dir, '.NeedRebuild'), { force: true });
  say(`${pmnsRoot}: built with ${rebuild} -u, as pmcd does at its first start (pmcd has not started here yet)`);
}

/**
 * The PMNS link of an agent labelled `label` (`$PCP_VAR_DIR/pmns/root_<label>`: the name PCP's Rebuild
 * merges for that agent of pmcd.conf), and where a file that held that name before the install is kept.
 */
function pmnsLinkOf(paths: PcpPaths, label: string, dir: string): { link: string; kept: string } {
  return { link: join(paths.varDir, 'pmns', `root_${label}`), kept: join(dir, `root_${label}.before-install`) };
}

/** Whether `path` is a symbolic link to `target`. */
function isLinkTo(path: string, target: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink() && readlinkSync(path) === target;
  } catch {
    return false;
  }
}

/** Whether pmcd runs. */
export function pmcdRunning(): boolean {
  try {
    execFileSync('pgrep', ['-x', 'pmcd'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** start/stop/restart pmcd through systemd when it runs the host, else PCP's rc script. */
export function pmcdService(action: 'start' | 'stop' | 'restart', paths: PcpPaths = pcpPaths()): void {
  if (existsSync('/run/systemd/system')) run('systemctl', [action, 'pmcd']);
  else run(join(paths.rcDir, 'pmcd'), [action]);
}

/** Metric names a PMNS file has below each of `tops` (none for a top it lacks). */
function namesIn(pmns: string, tops: readonly string[]): string[] {
  return tops.flatMap((top) => {
    try {
      return execFileSync('pminfo', ['-n', pmns, top], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')
        .filter((l) => l.trim() !== '');
    } catch {
      return [];
    }
  });
}

/** The top-level names of `names` (`containers` for `containers.pid`). */
function topsOf(names: readonly string[]): string[] {
  return [...new Set(names.map((n) => n.split('.', 1)[0] as string))];
}

/** The backup an install keeps of `file`. */
export function backupOf(file: string, dir: string): string {
  return `${file}.${dir}-pmda-backup`;
}

export function installPmda(options: InstallPmdaOptions): void {
  const paths = options.paths ?? pcpPaths();
  const { pmda } = options;
  const label = options.label ?? pmda.definition.name;
  const dirName = options.dir ?? label;
  const say = options.say ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = join(paths.pmdasDir, dirName);
  const pmnsRoot = join(paths.varDir, 'pmns', 'root');
  const confBackup = backupOf(paths.pmcdConf, dirName);
  const pmnsBackup = backupOf(pmnsRoot, dirName);
  if (existsSync(confBackup) || existsSync(join(dir, STATE_FILE))) {
    throw new CrootError('ERR_CONFIG', `${label} is installed already (${existsSync(confBackup) ? confBackup : join(dir, STATE_FILE)} exists): remove it first`);
  }
  const conf = readFileSync(paths.pmcdConf, 'utf8');
  for (const [other, domain] of agentDomains(conf)) {
    if (domain === pmda.domain && other !== label) throw new CrootError('ERR_CONFIG', `domain ${pmda.domain} is taken by "${other}" in ${paths.pmcdConf}`);
  }

  ensurePmns(pmnsRoot, say);
  // Files first: a failure here leaves pmcd.conf and the PMNS untouched.
  const files = pmdaFiles(pmda);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const pmnsFile = join(dir, `root_${dirName}`);
  writeFileSync(pmnsFile, files.pmns);
  writeFileSync(join(dir, 'help'), files.help);
  writeFileSync(join(dir, 'domain.h'), files.domainH);
  const newhelp = join(paths.binadmDir, 'newhelp');
  if (existsSync(newhelp)) run(newhelp, ['-n', pmnsFile, '-v', '2', '-o', join(dir, 'help'), join(dir, 'help')]);

  copyFileSync(paths.pmcdConf, confBackup);
  writeFileSync(paths.pmcdConf, withAgentLine(conf, label, agentLine(label, pmda.domain, options.command), options.first));
  say(`${paths.pmcdConf}: ${label} runs "${options.command}" (original in ${confBackup})`);

  let qAdded: number | undefined;
  if (options.negotiationTimeout !== undefined && existsSync(paths.pmcdOptions)) {
    const before = readFileSync(paths.pmcdOptions, 'utf8');
    const after = withNegotiationTimeout(before, options.negotiationTimeout);
    if (after !== before) {
      copyFileSync(paths.pmcdOptions, backupOf(paths.pmcdOptions, dirName));
      writeFileSync(paths.pmcdOptions, after);
      qAdded = options.negotiationTimeout;
      say(`${paths.pmcdOptions}: -q ${qAdded} (pmcd waits that long for an agent's first PDU; original in ${backupOf(paths.pmcdOptions, dirName)})`);
    }
  }

  const names = pmda.metricList.map((m) => m.name);
  const namesBefore = namesIn(pmnsRoot, pmda.names.tops);
  copyFileSync(pmnsRoot, pmnsBackup);
  // The link before pmnsadd: pmcd's rc script rebuilds the whole PMNS at its next start when a
  // root_* file is newer than root, and pmnsadd's root is newer than the link.
  const { link, kept } = pmnsLinkOf(paths, label, dir);
  if (!isLinkTo(link, pmnsFile)) {
    if (entryExists(link)) renameSync(link, kept);
    symlinkSync(pmnsFile, link);
  }
  run(join(paths.binadmDir, 'pmnsadd'), ['-n', pmnsRoot, pmnsFile]);
  const previousLine = conf.split('\n').find((l) => labelOf(l) === label);
  const state: Installed = {
    label,
    ...(previousLine !== undefined ? { previousLine } : {}),
    ...(qAdded !== undefined ? { negotiationTimeout: qAdded, optionsSha256: sha256(paths.pmcdOptions) } : {}),
    confSha256: sha256(paths.pmcdConf),
    pmnsSha256: sha256(pmnsRoot),
    names,
    namesBefore,
  };
  writeFileSync(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  say(`${pmnsRoot}: ${names.length} names of ${pmnsFile} merged in (original in ${pmnsBackup})`);

  if (options.restart !== false && pmcdRunning()) {
    pmcdService('restart', paths);
    say('pmcd restarted');
  } else say('pmcd not restarted: the PMDA runs once pmcd (re)starts');
}

export interface RemovePmdaOptions {
  /** pmcd.conf label the install used. */
  readonly label: string;
  /** Folder the install used; default the label. */
  readonly dir?: string;
  /** Stop pmcd before and start it after, if it runs (default true). */
  readonly restart?: boolean;
  readonly paths?: PcpPaths;
  readonly say?: (line: string) => void;
}

export function removePmda(options: RemovePmdaOptions): void {
  const paths = options.paths ?? pcpPaths();
  const dirName = options.dir ?? options.label;
  const say = options.say ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = join(paths.pmdasDir, dirName);
  const pmnsRoot = join(paths.varDir, 'pmns', 'root');
  const confBackup = backupOf(paths.pmcdConf, dirName);
  const pmnsBackup = backupOf(pmnsRoot, dirName);
  let state: Installed | undefined;
  try {
    state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as Installed;
  } catch {
    state = undefined;
  }
  if (state === undefined && !existsSync(confBackup)) throw new CrootError('ERR_CONFIG', `${options.label} is not installed (no ${join(dir, STATE_FILE)}, no ${confBackup})`);

  const wasRunning = options.restart !== false && pmcdRunning();
  if (wasRunning) pmcdService('stop', paths);

  if (existsSync(confBackup) && state !== undefined && sha256(paths.pmcdConf) === state.confSha256) {
    writeFileSync(paths.pmcdConf, readFileSync(confBackup));
    say(`${paths.pmcdConf} restored`);
  } else if (existsSync(confBackup) && state === undefined) {
    writeFileSync(paths.pmcdConf, readFileSync(confBackup));
    say(`${paths.pmcdConf} restored (no record of the install: the backup wins)`);
  } else {
    const now = readFileSync(paths.pmcdConf, 'utf8');
    const previous = state?.previousLine;
    writeFileSync(paths.pmcdConf, previous !== undefined ? withAgentLine(now, options.label, previous) : withoutAgentLine(now, options.label));
    say(`${paths.pmcdConf} changed since the install: ${previous !== undefined ? 'put back' : 'removed'} the ${options.label} line only`);
  }
  rmSync(confBackup, { force: true });

  const optionsBackup = backupOf(paths.pmcdOptions, dirName);
  if (existsSync(optionsBackup)) {
    if (state?.optionsSha256 !== undefined && sha256(paths.pmcdOptions) === state.optionsSha256) {
      writeFileSync(paths.pmcdOptions, readFileSync(optionsBackup));
      say(`${paths.pmcdOptions} restored`);
    } else if (state?.negotiationTimeout !== undefined) {
      writeFileSync(paths.pmcdOptions, withoutNegotiationTimeout(readFileSync(paths.pmcdOptions, 'utf8'), state.negotiationTimeout));
      say(`${paths.pmcdOptions} changed since the install: removed its -q ${state.negotiationTimeout} only`);
    }
    rmSync(optionsBackup);
  }

  if (existsSync(pmnsBackup)) {
    if (state !== undefined && sha256(pmnsRoot) === state.pmnsSha256) {
      writeFileSync(pmnsRoot, readFileSync(pmnsBackup));
      say(`${pmnsRoot} restored`);
    } else if (state !== undefined) {
      // Only what is still there: a PMNS rebuilt since may hold none of them.
      const present = new Set(namesIn(pmnsRoot, topsOf(state.names)));
      const gone = addedSubtrees(state.names.filter((n) => present.has(n)), new Set(state.namesBefore));
      if (gone.length > 0) run(join(paths.binadmDir, 'pmnsdel'), ['-n', pmnsRoot, ...gone]);
      say(`${pmnsRoot} changed since the install: deleted ${gone.join(' ') || 'nothing'}`);
    }
    rmSync(pmnsBackup);
  }
  const pmnsFile = join(dir, `root_${dirName}`);
  const { link, kept } = pmnsLinkOf(paths, options.label, dir);
  if (isLinkTo(link, pmnsFile)) {
    unlinkSync(link);
    if (entryExists(kept)) {
      renameSync(kept, link);
      say(`${link} put back`);
    }
  }
  // Earlier installs linked root_<dir>, which PCP's Rebuild skips: taken out as well.
  const oldLink = join(paths.varDir, 'pmns', `root_${dirName}`);
  if (isLinkTo(oldLink, pmnsFile)) unlinkSync(oldLink);
  rmSync(dir, { recursive: true, force: true });

  if (wasRunning) {
    pmcdService('start', paths);
    say('pmcd started again');
  }
}
