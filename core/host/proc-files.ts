/**
 * Facts about host processes from the proc filesystem: a PID's start time
 * (to detect reuse) and its cgroup (the truth, whatever the engine thinks).
 */
import { readFileSync } from 'node:fs';
import { CrootError } from '../errors/croot-error.js';

/**
 * Reads a small proc file. Synchronous on purpose: a proc file is made from
 * kernel memory when read and never waits on a disk, so a trip through the
 * thread pool would cost more than the read itself.
 */
function readProcFile(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot; undefined when the PID is gone. */
export async function readStartTime(procRoot: string, pid: number): Promise<number | undefined> {
  return readProcessStat(procRoot, pid)?.startTime;
}

/** What /proc/PID/stat says of a process that croot cares about. */
export interface ProcessStat {
  /** Field 3: R, S, D, Z (zombie), X (dead), T, t, I... */
  readonly state: string;
  /** Field 22: start time in clock ticks since boot. */
  readonly startTime: number;
}

/** /proc/PID/stat's state and start time; undefined when the PID is gone or the file cannot be parsed. */
export function readProcessStat(procRoot: string, pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readProcFile(`${procRoot}/${pid}/stat`);
  } catch {
    return undefined;
  }
  return parseProcessStat(text);
}

/**
 * As {@link readProcessStat}, except that a read that failed for another
 * reason than the PID being gone (EMFILE, EACCES...) throws the read's
 * error: "no such process" would be a wrong answer then.
 */
export function readProcessStatOrThrow(procRoot: string, pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readProcFile(`${procRoot}/${pid}/stat`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
  return parseProcessStat(text);
}

export function parseProcessStat(stat: string): ProcessStat | undefined {
  // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19].
  const state = rest[0] ?? '';
  const startTime = Number(rest[19]);
  return state.length > 0 && Number.isFinite(startTime) ? { state, startTime } : undefined;
}

/** True for a process that has exited, whether or not it has been reaped yet. */
export function hasExited(stat: ProcessStat | undefined): boolean {
  return stat === undefined || stat.state === 'Z' || stat.state === 'X';
}

export function parseStartTime(stat: string): number | undefined {
  return parseProcessStat(stat)?.startTime;
}

export interface CGroupLine {
  readonly hierarchy: number;
  readonly controllers: readonly string[];
  readonly path: string;
}

export function parseCGroupFile(text: string): CGroupLine[] {
  const out: CGroupLine[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    out.push({
      hierarchy: Number(line.slice(0, first)),
      controllers: line.slice(first + 1, second).split(',').filter((c) => c.length > 0),
      path: line.slice(second + 1),
    });
  }
  return out;
}

/**
 * The cgroup that names a process's container: the unified (`0::`) line when
 * it is not `/`, else the `memory` hierarchy, else `name=systemd`. Returned
 * without its leading `/`, full length. Undefined when none fits.
 */
export function chooseCGroupPath(lines: readonly CGroupLine[]): string | undefined {
  const unified = lines.find((l) => l.hierarchy === 0 && l.controllers.length === 0);
  const memory = lines.find((l) => l.controllers.includes('memory'));
  const systemd = lines.find((l) => l.controllers.includes('name=systemd'));
  const pick = [unified, memory, systemd].find((l) => l !== undefined && l.path !== '/' && l.path.length > 0) ?? undefined;
  if (pick === undefined) return unified?.path === '/' || memory?.path === '/' ? '' : undefined;
  return pick.path.replace(/^\/+/, '');
}

/** The container cgroup of `pid` from the host's `/proc/PID/cgroup`. */
export async function readCGroupName(procRoot: string, pid: number): Promise<string> {
  return readCGroupNameSync(procRoot, pid);
}

/** As {@link readCGroupName}, for callers on the event loop that cannot wait (the read is of kernel memory). */
export function readCGroupNameSync(procRoot: string, pid: number): string {
  let text: string;
  try {
    text = readProcFile(`${procRoot}/${pid}/cgroup`);
  } catch (err) {
    throw new CrootError('ERR_NOT_RUNNING', `process ${pid} is gone`, { cause: err });
  }
  const path = chooseCGroupPath(parseCGroupFile(text));
  if (path === undefined) {
    throw new CrootError('ERR_SYSTEM', `no usable cgroup line in ${procRoot}/${pid}/cgroup`);
  }
  return path;
}
