/**
 * Truths that tests compare croot's answers with, each taken from outside
 * croot's code: the kernel (proc and cgroup filesystems, namespaces entered
 * with util-linux's nsenter), or PCP's own tools. Nothing here imports
 * croot; each helper says where its truth comes from.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One line of /proc/PID/cgroup: `hierarchy-id:controllers:path`. */
interface KernelCgroupLine {
  readonly id: string;
  readonly controllers: string[];
  readonly path: string;
}

function kernelCgroupLines(pid: number | 'self'): KernelCgroupLine[] {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [id = '', controllers = '', ...path] = l.split(':');
      return { id, controllers: controllers === '' ? [] : controllers.split(','), path: path.join(':') };
    });
}

/**
 * Where this process sees the hierarchy of `line` mounted, from
 * /proc/self/mountinfo (cgroup2 for the unified line, else the cgroup v1
 * mount whose super options hold its controllers): the mount point and the
 * cgroup path at the mount's root. Undefined when it is not mounted.
 */
function mountOf(line: KernelCgroupLine): { point: string; root: string } | undefined {
  for (const entry of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = entry.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fstype, , superOptions = ''] = right.split(' ');
    const root = fields[3] ?? '';
    const point = (fields[4] ?? '').replace(/\\040/g, ' ');
    const options = superOptions.split(',');
    if (line.id === '0' && line.controllers.length === 0 ? fstype === 'cgroup2' : fstype === 'cgroup' && line.controllers.every((c) => options.includes(c))) {
      return { point, root };
    }
  }
  return undefined;
}

/**
 * The cgroup that names `pid`'s container, as the kernel shows it: from
 * /proc/PID/cgroup (read here, not through core/host/proc-files.ts) the unified `0::`
 * line unless it is `/`, else the `memory` line, else `name=systemd`; without
 * the leading `/`. The rule is PCP's (docs/architecture.md); this is a second,
 * separate writing of it. Where the chosen hierarchy is mounted here, the
 * answer is cross-checked with the cgroup filesystem itself: `pid` must be
 * listed in that cgroup's `cgroup.procs`, or this throws.
 */
export function cgroupTruth(pid: number): string {
  const lines = kernelCgroupLines(pid);
  const usable = (l: KernelCgroupLine | undefined): l is KernelCgroupLine => l !== undefined && l.path !== '/' && l.path !== '';
  const chosen = [
    lines.find((l) => l.id === '0' && l.controllers.length === 0),
    lines.find((l) => l.controllers.includes('memory')),
    lines.find((l) => l.controllers.includes('name=systemd')),
  ].find(usable);
  if (chosen === undefined) return '';
  const mount = mountOf(chosen);
  if (mount !== undefined && (mount.root === '/' || chosen.path.startsWith(`${mount.root}/`))) {
    const below = mount.root === '/' ? chosen.path : chosen.path.slice(mount.root.length);
    const procs = readFileSync(join(mount.point, below, 'cgroup.procs'), 'utf8').split('\n');
    if (!procs.includes(String(pid))) {
      throw new Error(`/proc/${pid}/cgroup says ${chosen.path}, but ${join(mount.point, below, 'cgroup.procs')} does not list ${pid}`);
    }
  }
  return chosen.path.replace(/^\/+/, '');
}

/** The hostname in `pid`'s UTS namespace, asked of the kernel there (`nsenter -u -t PID hostname`). */
export function hostnameTruth(pid: number): string {
  return execFileSync('nsenter', ['-u', '-t', String(pid), 'hostname'], { encoding: 'utf8', timeout: 20000 }).trim();
}

/**
 * Field 22 (start time, clock ticks after boot) of a /proc/PID/stat text:
 * the kernel's own record, read by this test code (proc(5): the fields after
 * the last `)` of comm start at field 3, `state`).
 */
export function startTimeInStat(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
  const start = fields[22 - 3];
  if (start === undefined || !/^\d+$/.test(start)) throw new Error(`not a /proc/PID/stat text: ${stat.slice(0, 80)}`);
  return Number(start);
}

/** Field 22 of the stat file at `path` (a live /proc or a copy of one). */
export function startTimeFromStatFile(path: string): number {
  return startTimeInStat(readFileSync(path, 'utf8'));
}

/**
 * The number of errno `name` (`ENOTUNIQ`, ...) from the kernel's own headers
 * (/usr/include/asm-generic/errno-base.h and errno.h, linux-libc-dev, which
 * the C toolchain brings), for the codes Node's os.constants lacks.
 */
export function errnoTruth(name: string): number {
  for (const file of ['errno-base.h', 'errno.h']) {
    const m = new RegExp(`^#define\\s+${name}\\s+(\\d+)\\b`, 'm').exec(readFileSync(`/usr/include/asm-generic/${file}`, 'utf8'));
    if (m?.[1] !== undefined) return Number(m[1]);
  }
  throw new Error(`${name} is not defined in /usr/include/asm-generic/errno*.h`);
}

/** The boot time, seconds since the epoch: the `btime` line of the kernel's /proc/stat. */
export function bootTimeTruth(): number {
  const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  if (m?.[1] === undefined) throw new Error('no btime line in /proc/stat');
  return Number(m[1]);
}

/** Clock ticks per second, the unit of /proc start times, as the C library reports it (`getconf CLK_TCK`). */
export function clockTicksTruth(): number {
  return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 20000 }).trim());
}

/**
 * What PCP's own `pmerr` prints for each status (pmErrStr's text), from one
 * run of `pmerr S1 S2 ...`; a status pmerr did not answer is missing.
 */
export function pmerrTexts(statuses: readonly number[]): Map<number, string> {
  const out = execFileSync('pmerr', statuses.map(String), { encoding: 'utf8', timeout: 30000 });
  const texts = new Map<number, string>();
  for (const line of out.split('\n')) {
    const m = /^Code: (-?\d+) 0x[0-9a-f]+ Text: (.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) texts.set(Number(m[1]), m[2]);
  }
  return texts;
}
