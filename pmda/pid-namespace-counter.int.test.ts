/**
 * countPidNamespaces against the kernel: a PID namespace made with
 * util-linux's `unshare --pid --fork` holding a known set of processes
 * (a shell, two sleeps, and a sleep in a namespace nested inside it), and
 * the test process's own namespace counted independently here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describeWith, probes } from '../test/support/components.js';
import { countPidNamespaces, pidNamespaceOf } from './pid-namespace-counter.js';

function inNamespace(ns: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/ns/pid`) === ns;
      } catch {
        return false;
      }
    });
}

describeWith('root', probes.root, 'countPidNamespaces against the kernel', () => {
  let outer: ChildProcess;
  let initPid = 0;

  beforeAll(async () => {
    // Inside the new namespace: sh (its pid 1), two sleeps, and a nested namespace with one more sleep.
    outer = spawn('unshare', ['--pid', '--fork', '--kill-child', 'sh', '-c', 'sleep 1000 & sleep 1000 & unshare --pid --fork --kill-child sleep 1000 & wait'], { stdio: 'ignore' });
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      // The forked child of unshare is the namespace's init (sh).
      const kids = readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .map(Number)
        .filter((p) => {
          try {
            const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
            return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === outer.pid;
          } catch {
            return false;
          }
        });
      initPid = kids[0] ?? 0;
      if (initPid > 0 && inNamespace(readlinkSync(`/proc/${initPid}/ns/pid`)).length >= 4) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 30000);

  afterAll(() => {
    outer.kill('SIGKILL');
  });

  it('counts the processes and threads whose own PID namespace is the one asked for (nested ones not)', async () => {
    const nsLink = readlinkSync(`/proc/${initPid}/ns/pid`);
    const ns = await pidNamespaceOf(initPid);
    expect(`pid:[${ns ?? ''}]`).toBe(nsLink);
    // sh, two sleeps, and the nested unshare (which lives in this namespace); its sleep lives in the nested one.
    const truth = inNamespace(nsLink);
    expect(truth).toHaveLength(4);
    const counts = await countPidNamespaces(new Set([ns as number]));
    expect(counts.get(ns as number)).toEqual({ processes: 4, threads: 4 });
  });

  it('counts this test process’s own namespace as /proc/*/ns/pid says, with Threads: from /proc/PID/status', async () => {
    const ns = (await pidNamespaceOf(process.pid)) as number;
    const counts = await countPidNamespaces(new Set([ns]));
    const pids = inNamespace(`pid:[${ns}]`);
    const threads = pids.reduce((sum, pid) => {
      try {
        return sum + Number(/^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      } catch {
        return sum;
      }
    }, 0);
    // Processes come and go on a busy host: the two passes may differ by a few.
    expect(Math.abs((counts.get(ns)?.processes ?? 0) - pids.length)).toBeLessThanOrEqual(5);
    expect(Math.abs((counts.get(ns)?.threads ?? 0) - threads)).toBeLessThanOrEqual(40);
  });

  it('gives nothing for a namespace with no process and none for an empty request', async () => {
    expect((await countPidNamespaces(new Set([1]))).size).toBe(0);
    expect((await countPidNamespaces(new Set())).size).toBe(0);
  });
});
