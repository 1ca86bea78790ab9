/**
 * `crootd install-pmcd` / `crootd uninstall-pmcd`: makes crootd pmcd's root
 * agent, and puts everything back.
 *
 * install-pmcd:
 * 1. copies pmcd.conf to `pmcd.conf.croot-pmda-backup` and writes its
 *    `root` line as `root 1 pipe binary <crootd> --pmda` (added first when
 *    there is none: pmcd starts the other agents through it);
 * 2. writes `$PCP_PMDAS_DIR/croot/` (`root_croot` PMNS, `help` and its
 *    newhelp database, `domain.h`), links `$PCP_VAR_DIR/pmns/root_croot` to
 *    it (PMNS rebuilds keep the names), copies `$PCP_VAR_DIR/pmns/root` to
 *    `root.croot-pmda-backup` and merges the names in with `pmnsadd`;
 * 3. restarts pmcd if it runs (`--no-restart`: leaves it alone).
 *
 * uninstall-pmcd stops pmcd if it runs, restores pmcd.conf byte for byte,
 * restores the PMNS byte for byte when nobody changed it since (else
 * deletes only the names install added, with `pmnsdel`), removes the files
 * and the link, and starts pmcd again if it ran.
 *
 * Paths come from PCP's environment or /etc/pcp.conf (PCP_PMCDCONF_PATH,
 * PCP_VAR_DIR, PCP_PMDAS_DIR, PCP_BINADM_DIR, PCP_RC_DIR).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { CrootError } from '../core/errors.js';
import { pmdaFiles } from '../pmda/pmda-files.js';
import { rootPmda } from '../pmda/root-pmda.js';

export const BACKUP_SUFFIX = '.croot-pmda-backup';
/** What install wrote, so uninstall can tell whether the PMNS changed since. */
const STATE_FILE = 'installed.json';

export interface PcpPaths {
  readonly pmcdConf: string;
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
    // no pcp.conf: defaults below
  }
  const get = (key: string, fallback: string): string => env[key] ?? conf[key] ?? fallback;
  return {
    pmcdConf: get('PCP_PMCDCONF_PATH', '/etc/pcp/pmcd/pmcd.conf'),
    varDir: get('PCP_VAR_DIR', '/var/lib/pcp'),
    pmdasDir: get('PCP_PMDAS_DIR', '/var/lib/pcp/pmdas'),
    binadmDir: get('PCP_BINADM_DIR', '/usr/lib/pcp/bin'),
    rcDir: get('PCP_RC_DIR', '/etc/init.d'),
  };
}

const ROOT_LINE = /^\s*root\s/;

/** pmcd.conf with its `root` agent line replaced by (or, without one, led by) `line`. */
export function withRootLine(conf: string, line: string): string {
  const lines = conf.split('\n');
  const at = lines.findIndex((l) => ROOT_LINE.test(l));
  if (at >= 0) {
    lines[at] = line;
    return lines.join('\n');
  }
  // pmcd starts agents in file order: the root agent goes before the first one.
  const first = lines.findIndex((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  lines.splice(first < 0 ? lines.length : first, 0, line);
  return lines.join('\n');
}

/** pmcd.conf's `root` line running `command`. */
export function rootLine(command: string): string {
  return `root\t1\tpipe\tbinary\t\t${command}`;
}

/** The shortest subtrees that hold every name in `added` and none of `before` (for pmnsdel). */
export function addedSubtrees(all: readonly string[], before: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const visit = (prefix: string): void => {
    const under = all.filter((n) => n === prefix || n.startsWith(`${prefix}.`));
    if (under.length === 0) return;
    if (under.every((n) => !before.has(n)) && ![...before].some((n) => n.startsWith(`${prefix}.`) || n === prefix)) {
      out.push(prefix);
      return;
    }
    const next = new Set(under.filter((n) => n !== prefix).map((n) => n.slice(0, n.indexOf('.', prefix.length + 1) < 0 ? n.length : n.indexOf('.', prefix.length + 1))));
    for (const child of next) visit(child);
  };
  for (const top of new Set(all.map((n) => n.split('.')[0] as string))) visit(top);
  return out;
}

interface Installed {
  readonly pmnsSha256: string;
  readonly names: readonly string[];
  readonly namesBefore: readonly string[];
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function run(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new CrootError('ERR_SYSTEM', `${cmd} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || (e.stdout ?? '').trim() || e.message}`, { cause: err });
  }
}

function pmcdRunning(): boolean {
  try {
    execFileSync('pgrep', ['-x', 'pmcd'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pmcdService(paths: PcpPaths, action: 'start' | 'stop' | 'restart'): void {
  if (existsSync('/run/systemd/system')) run('systemctl', [action, 'pmcd']);
  else run(join(paths.rcDir, 'pmcd'), [action]);
}

/** Metric names a PMNS file has under `containers` (none when it has no such subtree). */
function namesIn(pmns: string, top: string): string[] {
  try {
    return execFileSync('pminfo', ['-n', pmns, top], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((l) => l.trim() !== '');
  } catch {
    return [];
  }
}

export interface InstallOptions {
  readonly paths?: PcpPaths;
  /** The command of the root line; default `<this package>/bin/crootd --pmda`. */
  readonly command?: string;
  /** Restart pmcd if it runs (default true). */
  readonly restart?: boolean;
  readonly say?: (line: string) => void;
}

export function installPmcd(options: InstallOptions = {}): void {
  const paths = options.paths ?? pcpPaths();
  const say = options.say ?? ((l: string) => process.stderr.write(`crootd install-pmcd: ${l}\n`));
  const confBackup = `${paths.pmcdConf}${BACKUP_SUFFIX}`;
  const pmnsRoot = join(paths.varDir, 'pmns', 'root');
  const pmnsBackup = `${pmnsRoot}${BACKUP_SUFFIX}`;
  const dir = join(paths.pmdasDir, 'croot');
  if (existsSync(confBackup)) throw new CrootError('ERR_CONFIG', `${confBackup} exists: crootd is installed already (crootd uninstall-pmcd undoes it)`);
  const command = options.command ?? `${resolve(__dirname, '..', '..', 'bin', 'crootd')} --pmda`;

  // 1. pmcd.conf
  const conf = readFileSync(paths.pmcdConf, 'utf8');
  copyFileSync(paths.pmcdConf, confBackup);
  writeFileSync(paths.pmcdConf, withRootLine(conf, rootLine(command)));
  say(`${paths.pmcdConf}: root line is now "${rootLine(command).replace(/\t+/g, ' ')}" (original in ${confBackup})`);

  // 2. PMNS and help
  const pmda = rootPmda({ source: { containers: () => [] } });
  const files = pmdaFiles(pmda);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, 'root_croot'), files.pmns);
  writeFileSync(join(dir, 'help'), files.help);
  writeFileSync(join(dir, 'domain.h'), files.domainH);
  const newhelp = join(paths.binadmDir, 'newhelp');
  if (existsSync(newhelp)) run(newhelp, ['-n', join(dir, 'root_croot'), '-v', '2', '-o', join(dir, 'help'), join(dir, 'help')]);
  const link = join(paths.varDir, 'pmns', 'root_croot');
  if (!existsSync(link)) symlinkSync(join(dir, 'root_croot'), link);
  const names = pmda.metricList.map((m) => m.name);
  const namesBefore = namesIn(pmnsRoot, 'containers');
  copyFileSync(pmnsRoot, pmnsBackup);
  run(join(paths.binadmDir, 'pmnsadd'), ['-n', pmnsRoot, join(dir, 'root_croot')]);
  const state: Installed = { pmnsSha256: sha256(pmnsRoot), names, namesBefore };
  writeFileSync(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  say(`${pmnsRoot}: merged ${dir}/root_croot (${names.length} names; original in ${pmnsBackup})`);

  // 3. pmcd
  if (options.restart !== false && pmcdRunning()) {
    pmcdService(paths, 'restart');
    say('pmcd restarted: crootd is its root agent');
  } else say('pmcd not restarted: crootd becomes its root agent when pmcd (re)starts');
}

export function uninstallPmcd(options: Omit<InstallOptions, 'command'> = {}): void {
  const paths = options.paths ?? pcpPaths();
  const say = options.say ?? ((l: string) => process.stderr.write(`crootd uninstall-pmcd: ${l}\n`));
  const confBackup = `${paths.pmcdConf}${BACKUP_SUFFIX}`;
  const pmnsRoot = join(paths.varDir, 'pmns', 'root');
  const pmnsBackup = `${pmnsRoot}${BACKUP_SUFFIX}`;
  const dir = join(paths.pmdasDir, 'croot');
  if (!existsSync(confBackup)) throw new CrootError('ERR_CONFIG', `${confBackup} is missing: crootd install-pmcd was not run (or was undone)`);

  const wasRunning = options.restart !== false && pmcdRunning();
  if (wasRunning) pmcdService(paths, 'stop');

  // pmcd.conf: the original bytes, in place (owner and mode kept).
  writeFileSync(paths.pmcdConf, readFileSync(confBackup));
  rmSync(confBackup);
  say(`${paths.pmcdConf} restored`);

  // PMNS: the original bytes if nothing changed it since install, else only croot's names go.
  let state: Installed | undefined;
  try {
    state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as Installed;
  } catch {
    state = undefined;
  }
  if (existsSync(pmnsBackup)) {
    if (state !== undefined && sha256(pmnsRoot) === state.pmnsSha256) {
      writeFileSync(pmnsRoot, readFileSync(pmnsBackup));
      say(`${pmnsRoot} restored`);
    } else {
      const before = new Set(state?.namesBefore ?? namesIn(pmnsBackup, 'containers'));
      const gone = addedSubtrees(state?.names ?? [], before);
      if (gone.length > 0) run(join(paths.binadmDir, 'pmnsdel'), ['-n', pmnsRoot, ...gone]);
      say(`${pmnsRoot} changed since install: deleted ${gone.join(' ') || 'nothing'}`);
    }
    rmSync(pmnsBackup);
  }
  const link = join(paths.varDir, 'pmns', 'root_croot');
  try {
    if (lstatSync(link).isSymbolicLink() && readlinkSync(link) === join(dir, 'root_croot')) unlinkSync(link);
  } catch {
    // no link
  }
  rmSync(dir, { recursive: true, force: true });

  if (wasRunning) {
    pmcdService(paths, 'start');
    say('pmcd started again (with the root line it had before)');
  }
}

/** `crootd install-pmcd|uninstall-pmcd [options]`; returns the exit code. */
export async function pmcdInstallCommand(argv: readonly string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const program = new Command(`crootd ${verb ?? ''}`)
    .description(verb === 'install-pmcd' ? "make crootd pmcd's root agent (pmcd.conf's root line, PMNS and help)" : 'undo crootd install-pmcd')
    .option('--no-restart', 'do not restart pmcd')
    .exitOverride();
  if (verb === 'install-pmcd') program.option('--command <command>', "the root line's command (default: this crootd with --pmda)");
  program.parse(rest, { from: 'user' });
  const opts = program.opts<{ restart: boolean; command?: string }>();
  if (process.getuid?.() !== 0) throw new CrootError('ERR_NOT_PERMITTED', `${verb ?? ''} must run as root`);
  if (verb === 'install-pmcd') installPmcd({ restart: opts.restart, ...(opts.command !== undefined ? { command: opts.command } : {}) });
  else uninstallPmcd({ restart: opts.restart });
  return 0;
}
