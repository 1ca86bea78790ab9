/**
 * Facts about host processes from the proc filesystem: a PID's start time
 * (to detect reuse) and its cgroup (the truth, whatever the engine thinks).
 */
import { readFileSync } from 'node:fs';
import { CrootError } from './errors.js';

/**
 * Reads a small proc file. Synchronous on purpose: proc files are made from
 * kernel memory on read and never wait on a disk, and one open/read/close
 * costs ~16 µs where fs/promises' readFile costs ~250 µs in thread-pool trips
 * (bench/proc-reads-benchmark.ts).
 */
function readProcFile(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot; undefined when the PID is gone. */
export async function readStartTime(procRoot: string, pid: number): Promise<number | undefined> {
  let text: string;
  try {
    text = readProcFile(`${procRoot}/${pid}/stat`);
  } catch {
    return undefined;
  }
  return parseStartTime(text);
}

export function parseStartTime(stat: string): number | undefined {
  // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19].
  const value = Number(rest[19]);
  return Number.isFinite(value) ? value : undefined;
}

export interface CgroupLine {
  readonly hierarchy: number;
  readonly controllers: readonly string[];
  readonly path: string;
}

export function parseCgroupFile(text: string): CgroupLine[] {
  const out: CgroupLine[] = [];
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
export function chooseCgroupPath(lines: readonly CgroupLine[]): string | undefined {
  const unified = lines.find((l) => l.hierarchy === 0 && l.controllers.length === 0);
  const memory = lines.find((l) => l.controllers.includes('memory'));
  const systemd = lines.find((l) => l.controllers.includes('name=systemd'));
  const pick = [unified, memory, systemd].find((l) => l !== undefined && l.path !== '/' && l.path.length > 0) ?? undefined;
  if (pick === undefined) return unified?.path === '/' || memory?.path === '/' ? '' : undefined;
  return pick.path.replace(/^\/+/, '');
}

/** The container cgroup of `pid` from the host's `/proc/PID/cgroup`. */
export async function readCgroupName(procRoot: string, pid: number): Promise<string> {
  let text: string;
  try {
    text = readProcFile(`${procRoot}/${pid}/cgroup`);
  } catch (err) {
    throw new CrootError('ERR_NOT_RUNNING', `process ${pid} is gone`, { cause: err });
  }
  const path = chooseCgroupPath(parseCgroupFile(text));
  if (path === undefined) {
    throw new CrootError('ERR_SYSTEM', `no usable cgroup line in ${procRoot}/${pid}/cgroup`);
  }
  return path;
}
