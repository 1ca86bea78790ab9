/**
 * Processes and threads per PID namespace, read from the host's /proc: a
 * process belongs to the namespace its `/proc/PID/ns/pid` link names (its
 * own, innermost one; processes of a namespace nested inside are counted
 * in theirs, not in the parent's), and its threads are field 20 of
 * `/proc/PID/stat`. One pass reads one link per process, and the stat file
 * of the processes in the namespaces asked for only.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface NamespaceCounts {
  readonly processes: number;
  readonly threads: number;
}

/** The inode of `/proc/PID/ns/pid` (`pid:[4026531836]`), or undefined when the process is gone. */
export async function pidNamespaceOf(pid: number, procRoot = '/proc'): Promise<number | undefined> {
  try {
    const m = /^pid:\[(\d+)\]$/.exec(await readlink(`${procRoot}/${pid}/ns/pid`));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

function threadsOf(stat: string): number | undefined {
  // Fields after the command (which may hold spaces and parentheses): state is field 3, num_threads field 20.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const n = Number(fields[17]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Counts the processes and threads of each namespace in `namespaces`
 * (inodes from `pidNamespaceOf`). Processes that exit during the pass are
 * not counted; namespaces with no process left are absent.
 */
export async function countPidNamespaces(namespaces: ReadonlySet<number>, procRoot = '/proc'): Promise<Map<number, NamespaceCounts>> {
  const counts = new Map<number, { processes: number; threads: number }>();
  if (namespaces.size === 0) return counts;
  const pids = (await readdir(procRoot)).filter((name) => /^[1-9]\d*$/.test(name));
  await Promise.all(
    pids.map(async (name) => {
      const ns = await pidNamespaceOf(Number(name), procRoot);
      if (ns === undefined || !namespaces.has(ns)) return;
      let threads: number | undefined;
      try {
        threads = threadsOf(await readFile(`${procRoot}/${name}/stat`, 'utf8'));
      } catch {
        return; // exited meanwhile
      }
      if (threads === undefined) return;
      const c = counts.get(ns) ?? { processes: 0, threads: 0 };
      c.processes += 1;
      c.threads += threads;
      counts.set(ns, c);
    }),
  );
  return counts;
}
