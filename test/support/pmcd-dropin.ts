/**
 * Puts croot's server in pmdaroot's place under PCP's real pmcd, and puts
 * the machine back afterwards:
 * - `takeOverFromPcp()` records whether pmcd ran, stops it (and PCP's
 *   pmdaroot with it), and removes the `root` line from pmcd.conf after
 *   copying the file to `pmcd.conf.croot-backup` (which scripts/pmcd-dropin-restore.sh
 *   also knows, should a run die half-way);
 * - `PcpTakeover.giveBack()` stops pmcd, restores pmcd.conf byte for byte,
 *   and starts pmcd again if it was running before.
 * Plus small pminfo helpers.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';

export const PMCD_CONF = '/etc/pcp/pmcd/pmcd.conf';
export const PMCD_CONF_BACKUP = `${PMCD_CONF}.croot-backup`;
export const ROOT_SOCKET = '/var/lib/pcp/pmcd/root.socket';
export const PMCD_RC = '/etc/init.d/pmcd';

/** pmcd.conf without its `root` agent line (continued lines kept as they are). */
export function withoutRootLine(conf: string): string {
  return conf
    .split('\n')
    .filter((line) => !/^\s*root\s/.test(line))
    .join('\n');
}

export function pidsOf(name: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * PCP's pmdaroot serving the system socket (started by pmcd, no `-s`);
 * a pmdaroot that other tests run on a private socket does not count.
 */
export function systemPmdaroots(): number[] {
  return pidsOf('pmdaroot').filter((pid) => {
    try {
      return !readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('-s');
    } catch {
      return false;
    }
  });
}

/**
 * Runs a command without blocking the event loop (a croot server in this
 * same process must keep answering pmcd meanwhile); resolves with stdout.
 */
export function runAsync(cmd: string, args: readonly string[], timeoutMs = 60000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

function rc(action: 'start' | 'stop'): Promise<string> {
  return runAsync(PMCD_RC, [action], 120000);
}

async function until(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops pmcd through its rc script and waits until neither pmcd nor PCP's pmdaroot runs. */
export async function stopPmcd(): Promise<void> {
  if (pidsOf('pmcd').length > 0) await rc('stop');
  await until('pmcd and pmdaroot to stop', () => pidsOf('pmcd').length === 0 && systemPmdaroots().length === 0, 30000);
}

/** Starts pmcd through its rc script (which waits until pmcd answers). */
export async function startPmcd(): Promise<string> {
  const out = await rc('start');
  await until('pmcd to start', () => pidsOf('pmcd').length > 0, 30000);
  return out;
}

export interface PcpTakeover {
  /** pmcd was running before (and is started again by giveBack). */
  readonly pmcdWasRunning: boolean;
  /**
   * Stops pmcd, runs `whileStopped` (e.g. stop croot's server, so PCP's
   * pmdaroot can have its socket back), restores pmcd.conf, and restarts
   * pmcd if it ran before. Safe to call twice.
   */
  giveBack(whileStopped?: () => Promise<void>): Promise<void>;
}

export async function takeOverFromPcp(): Promise<PcpTakeover> {
  if (existsSync(PMCD_CONF_BACKUP)) {
    throw new Error(`${PMCD_CONF_BACKUP} exists: an earlier run did not finish; run scripts/pmcd-dropin-restore.sh first`);
  }
  const pmcdWasRunning = pidsOf('pmcd').length > 0;
  await stopPmcd();
  const original = readFileSync(PMCD_CONF);
  const mode = statSync(PMCD_CONF).mode & 0o7777;
  copyFileSync(PMCD_CONF, PMCD_CONF_BACKUP);
  let given = false;
  const giveBack = async (whileStopped?: () => Promise<void>): Promise<void> => {
    if (given) return;
    given = true;
    const problems: string[] = [];
    try {
      await stopPmcd();
    } catch (err) {
      problems.push((err as Error).message);
    }
    try {
      await whileStopped?.();
    } catch (err) {
      problems.push((err as Error).message);
    }
    writeFileSync(PMCD_CONF, original, { mode });
    rmSync(PMCD_CONF_BACKUP, { force: true });
    if (pmcdWasRunning) {
      try {
        await startPmcd();
      } catch (err) {
        problems.push(`pmcd did not start again: ${(err as Error).message}`);
      }
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
  };
  try {
    writeFileSync(PMCD_CONF, withoutRootLine(original.toString('utf8')), { mode });
  } catch (err) {
    await giveBack();
    throw err;
  }
  return { pmcdWasRunning, giveBack };
}

/** Runs pminfo with `args` (asynchronously); stdout. */
export function pminfo(args: readonly string[]): Promise<string> {
  return runAsync('pminfo', args, 30000);
}

/** The values of a `pminfo -f` listing of one metric: instance name (or '' for singular) -> value text. */
export function pminfoValues(output: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of output.split('\n')) {
    const inst = /^\s+inst \[\d+ or "(.*)"\] value (.*)$/.exec(line);
    if (inst) {
      values.set(inst[1] as string, unquote(inst[2] as string));
      continue;
    }
    const single = /^\s+value (.*)$/.exec(line);
    if (single) values.set('', unquote(single[1] as string));
  }
  return values;
}

function unquote(value: string): string {
  return /^".*"$/.test(value) ? value.slice(1, -1) : value;
}
