import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { describeWith, probes } from '../test/support/components.js';
import { fdsOpenedSince, openFds, startSandbox, type Sandbox } from '../test/support/sandbox.js';
import type { CrootNative, NativeError } from './croot-native.js';
import { loadNative } from './load-native.js';

const native: CrootNative = loadNative();

/** The UTS namespace of a task, as the kernel names it (`uts:[4026531838]`). */
function utsOf(path: string): string {
  return fs.readlinkSync(`${path}/ns/uts`);
}

/** What `nsenter` (util-linux) reads as the hostname inside the UTS namespace of `pid`. */
function hostnameByNsenter(pid: number): string {
  return execFileSync('nsenter', ['--target', String(pid), '--uts', 'hostname'], { encoding: 'utf8' }).trim();
}

async function rejection(p: Promise<unknown>): Promise<NativeError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as NativeError,
  );
}

async function waitFor(what: string, probe: () => boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Asserts the namespace thread exists, is not the main thread, is croot's own, and is home. */
function expectThreadHome(tid: number): void {
  expect(tid).toBeGreaterThan(0);
  expect(tid).not.toBe(process.pid);
  expect(fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()).toBe('croot-uts');
  expect(utsOf(`/proc/self/task/${tid}`)).toBe(utsOf('/proc/self'));
}

// setns needs CAP_SYS_ADMIN, even into one's own namespace.
describeWith('root', probes.root, 'the namespace thread', () => {
  const sandboxes: Sandbox[] = [];
  const pidfds: number[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) sandboxes.push(await startSandbox());
    for (const s of sandboxes) pidfds.push(native.pidfdOpen(s.pid));
  });

  afterAll(async () => {
    for (const fd of pidfds) native.close(fd);
    for (const s of sandboxes) await s.stop();
  });

  it('reads every hostname on one thread of its own, back in crootd’s UTS namespace after each call', async () => {
    await native.readHostname(process.pid);
    const first = native.namespaceThreadInfo();
    expectThreadHome(first.tid);
    for (let round = 0; round < 3; round++) {
      for (const [i, s] of sandboxes.entries()) {
        // The sandbox's namespace really is another one, and nsenter reads the same name there.
        expect(utsOf(`/proc/${s.pid}`)).not.toBe(utsOf('/proc/self'));
        const expected = hostnameByNsenter(s.pid);
        expect(expected).toBe(s.hostname);
        await expect(native.readHostname(s.pid, round % 2 === 0 ? pidfds[i] : undefined)).resolves.toBe(expected);
        const now = native.namespaceThreadInfo();
        expect(now.tid).toBe(first.tid);
        expect(now.generation).toBe(first.generation);
        expectThreadHome(now.tid);
      }
    }
    expect(os.hostname()).toBe(fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim());
  });

  it('answers many concurrent calls, each with its own process’s hostname', async () => {
    const before = native.namespaceThreadInfo();
    const targets = Array.from({ length: 240 }, (_, i) => i % (sandboxes.length + 1));
    const read = await Promise.all(
      targets.map((t) =>
        t === sandboxes.length ? native.readHostname(process.pid) : native.readHostname(sandboxes[t]!.pid, t % 2 === 0 ? pidfds[t] : undefined),
      ),
    );
    const truth = [...sandboxes.map((s) => hostnameByNsenter(s.pid)), os.hostname()];
    const expected = targets.map((t) => truth[t]);
    expect(read).toEqual(expected);
    const after = native.namespaceThreadInfo();
    expect(after.tid).toBe(before.tid);
    expect(after.generation).toBe(before.generation);
    expect(after.queued).toBe(0);
    expectThreadHome(after.tid);
  });

  it('is discarded and replaced when it cannot get home, failing that job and serving the ones queued behind it', async () => {
    await native.readHostname(process.pid);
    const before = native.namespaceThreadInfo();
    expectThreadHome(before.tid);

    native._testSkipNextReturn();
    const faulted = native.readHostname(sandboxes[0]!.pid, pidfds[0]);
    const queued = sandboxes.map((s) => native.readHostname(s.pid));
    const err = await rejection(faulted);
    expect(err.code).toBe('ENOTRECOVERABLE');
    expect(err.syscall).toBe('setns');
    expect(err.message).toMatch(/could not return to crootd's own UTS namespace/);
    await expect(Promise.all(queued)).resolves.toEqual(sandboxes.map((s) => hostnameByNsenter(s.pid)));

    const after = native.namespaceThreadInfo();
    expect(after.generation).toBe(before.generation + 1);
    expect(after.replaced).toBe(before.replaced + 1);
    expect(after.tid).not.toBe(before.tid);
    expectThreadHome(after.tid);
    // The old thread, left in the sandbox's namespace, ends.
    await waitFor(`thread ${before.tid} to end`, () => !fs.existsSync(`/proc/self/task/${before.tid}`));

    await expect(native.readHostname(sandboxes[1]!.pid, pidfds[1])).resolves.toBe(sandboxes[1]!.hostname);
    expect(native.namespaceThreadInfo().tid).toBe(after.tid);
    expectThreadHome(after.tid);
  });

  it('rejects with ESRCH from setns through the pidfd of a process that has exited, never reading another', async () => {
    const s = await startSandbox();
    const pidfd = native.pidfdOpen(s.pid);
    try {
      await expect(native.readHostname(s.pid, pidfd)).resolves.toBe(s.hostname);
      await s.stop();
      // The kernel: the process is gone (reaped by unshare).
      expect(fs.existsSync(`/proc/${s.pid}`)).toBe(false);
      const err = await rejection(native.readHostname(s.pid, pidfd));
      expect(err.code).toBe('ESRCH');
      expect(err.syscall).toBe('setns');
      expectThreadHome(native.namespaceThreadInfo().tid);
    } finally {
      native.close(pidfd);
      await s.stop();
    }
  });

  it('closes its copies of the pidfds and the namespace fds it opens', async () => {
    const before = openFds();
    await Promise.all(Array.from({ length: 300 }, (_, i) => native.readHostname(sandboxes[i % 3]!.pid, i % 2 === 0 ? pidfds[i % 3] : undefined)));
    expect(fdsOpenedSince(before)).toEqual([]);
  });
});
