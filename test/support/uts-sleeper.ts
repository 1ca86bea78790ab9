/**
 * Real processes in UTS namespaces of their own, for scenarios that need a
 * known hostname behind a known PID (the PID-reuse scenarios run them as
 * PID 1 of a private PID namespace).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every 5 ms until it holds; fails after 10 s naming `what`. */
export async function until(what: string, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 10000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** /proc/PID/comm, or undefined when the process is gone. */
export function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A `sleep` in a UTS namespace of its own named `hostname`; unshare and sh exec into it, so its PID is the spawned one. */
export async function startUtsSleeper(hostname: string): Promise<{ child: ChildProcess; pid: number }> {
  const child = spawn('unshare', ['--uts', 'sh', '-c', `hostname ${hostname} && exec sleep 600`], { stdio: 'ignore' });
  const pid = child.pid as number;
  await until(`${hostname}'s sleep`, () => comm(pid) === 'sleep');
  return { child, pid };
}
