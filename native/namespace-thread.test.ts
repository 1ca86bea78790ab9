import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { types } from 'node:util';
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

/** The outcome of a call that answers at once or through a promise: the value, or the error it threw or rejected with. */
async function outcomeOf(call: () => string | Promise<string>): Promise<{ value?: string; error?: NativeError; atOnce: boolean }> {
  let answer: string | Promise<string>;
  try {
    answer = call();
  } catch (error) {
    return { error: error as NativeError, atOnce: true };
  }
  if (typeof answer === 'string') return { value: answer, atOnce: true };
  // The addon's promises are the main realm's: not `instanceof` Jest's Promise.
  expect(types.isPromise(answer)).toBe(true);
  return answer.then(
    (value) => ({ value, atOnce: false }),
    (error: unknown) => ({ error: error as NativeError, atOnce: false }),
  );
}

/** CPU time (utime + stime, in clock ticks) of one thread of this process, and its state letter. */
function taskCpu(tid: number): { ticks: number; state: string } {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ticks: Number(fields[11]) + Number(fields[12]), state: fields[0] as string };
}

describeWith('root', probes.root, 'readHostnameNow', () => {
  const sandboxes: Sandbox[] = [];
  const pidfds: number[] = [];
  let truth: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) sandboxes.push(await startSandbox());
    for (const s of sandboxes) pidfds.push(native.pidfdOpen(s.pid));
    truth = sandboxes.map((s) => hostnameByNsenter(s.pid));
  });

  afterAll(async () => {
    for (const fd of pidfds) native.close(fd);
    for (const s of sandboxes) await s.stop();
  });

  it('answers each call with its own process’s hostname, at once or through a promise, and counts every answer once', async () => {
    await native.readHostname(process.pid);
    const before = native.namespaceThreadInfo();
    const calls = 60;
    for (let i = 0; i < calls; i++) {
      const t = i % sandboxes.length;
      const got = await outcomeOf(() => native.readHostnameNow(sandboxes[t]!.pid, i % 2 === 0 ? pidfds[t] : undefined));
      expect(got.error).toBeUndefined();
      expect(got.value).toBe(truth[t]);
    }
    const after = native.namespaceThreadInfo();
    expect(after.answeredAtOnce - before.answeredAtOnce + (after.handedOver - before.handedOver)).toBe(calls);
    expect(after.tid).toBe(before.tid);
    expect(after.generation).toBe(before.generation);
    expectThreadHome(after.tid);
  });

  it('hands the call over to a promise when told not to wait, and throws or rejects with the error of a process that is gone', async () => {
    const handedOver = native.readHostnameNow(sandboxes[0]!.pid, pidfds[0], 0);
    expect(types.isPromise(handedOver)).toBe(true);
    await expect(handedOver).resolves.toBe(truth[0]);
    const gone = await outcomeOf(() => native.readHostnameNow(2 ** 22 + 7));
    expect(gone.value).toBeUndefined();
    expect(gone.error).toMatchObject({ code: 'ENOENT', syscall: 'open', path: `/proc/${2 ** 22 + 7}/ns/uts` });
    expect(() => native.readHostnameNow(sandboxes[0]!.pid, pidfds[0], 201)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('answers many calls made at once in order, each with its own process’s hostname, whichever way each was answered', async () => {
    const before = native.namespaceThreadInfo();
    const targets = Array.from({ length: 240 }, (_, i) => i % (sandboxes.length + 1));
    const pending = targets.map((t, i) =>
      outcomeOf(() =>
        t === sandboxes.length
          ? native.readHostnameNow(process.pid, undefined, i % 5 === 0 ? 0 : undefined)
          : native.readHostnameNow(sandboxes[t]!.pid, i % 2 === 0 ? pidfds[t] : undefined, i % 5 === 0 ? 0 : undefined),
      ),
    );
    const got = await Promise.all(pending);
    expect(got.map((g) => g.error)).toEqual(targets.map(() => undefined));
    expect(got.map((g) => g.value)).toEqual(targets.map((t) => (t === sandboxes.length ? os.hostname() : truth[t])));
    // Every fifth call was told not to wait: those at least came through a promise.
    expect(got.filter((g, i) => i % 5 === 0 && g.atOnce)).toEqual([]);
    const after = native.namespaceThreadInfo();
    expect(after.answeredAtOnce - before.answeredAtOnce + (after.handedOver - before.handedOver)).toBe(targets.length);
    expect(after.queued).toBe(0);
    expect(after.generation).toBe(before.generation);
    expectThreadHome(after.tid);
  });

  it.each([
    ['waited for', undefined],
    ['handed over', 0],
  ])('replaces a thread that cannot get home when the failing call was %s, and the next call is answered by the new one', async (_how, wait) => {
    await native.readHostname(process.pid);
    const before = native.namespaceThreadInfo();
    expectThreadHome(before.tid);
    native._testSkipNextReturn();
    const failed = await outcomeOf(() => native.readHostnameNow(sandboxes[0]!.pid, pidfds[0], wait));
    expect(failed.value).toBeUndefined();
    expect(failed.error).toMatchObject({ code: 'ENOTRECOVERABLE', syscall: 'setns' });
    expect(failed.error?.message).toMatch(/could not return to crootd's own UTS namespace/);
    // The old thread, left in the sandbox's namespace, ends.
    await waitFor(`thread ${before.tid} to end`, () => !fs.existsSync(`/proc/self/task/${before.tid}`));
    const next = await outcomeOf(() => native.readHostnameNow(sandboxes[1]!.pid, pidfds[1]));
    expect(next.value).toBe(truth[1]);
    const after = native.namespaceThreadInfo();
    expect(after.generation).toBe(before.generation + 1);
    expect(after.replaced).toBe(before.replaced + 1);
    expect(after.tid).not.toBe(before.tid);
    expectThreadHome(after.tid);
  });

  it('leaves no fd open behind its calls', async () => {
    const before = openFds();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => outcomeOf(() => native.readHostnameNow(sandboxes[i % 3]!.pid, i % 2 === 0 ? pidfds[i % 3] : undefined, i % 3 === 0 ? 0 : undefined))),
    );
    expect(fdsOpenedSince(before)).toEqual([]);
  });

  it('uses no CPU at all while no call is made: the thread sleeps, it does not spin', async () => {
    for (let i = 0; i < 200; i++) await outcomeOf(() => native.readHostnameNow(sandboxes[i % 3]!.pid, pidfds[i % 3]));
    const { tid } = native.namespaceThreadInfo();
    expectThreadHome(tid);
    await new Promise((r) => setTimeout(r, 100));
    const start = taskCpu(tid);
    await new Promise((r) => setTimeout(r, 2000));
    const end = taskCpu(tid);
    // The kernel charges a thread clock ticks only while it runs.
    expect(end.ticks - start.ticks).toBe(0);
    expect(end.state).toBe('S');
  });
});

describeWith('root', probes.root, 'utsGeneration', () => {
  it('grows when a hostname is set in any UTS namespace, by sethostname or by a write of the sysctl file', () => {
    const start = native.utsGeneration();
    expect(start).toBeGreaterThanOrEqual(0);
    execFileSync('unshare', ['--uts', 'hostname', 'croot-gen-a']);
    const afterSet = native.utsGeneration();
    expect(afterSet).toBeGreaterThan(start);
    execFileSync('unshare', ['--uts', 'sh', '-c', 'echo croot-gen-b > /proc/sys/kernel/hostname']);
    expect(native.utsGeneration()).toBeGreaterThan(afterSet);
    // A namespace made and left without setting a hostname changes nothing the kernel flags.
    const quiet = native.utsGeneration();
    execFileSync('unshare', ['--uts', 'true']);
    let last = quiet;
    for (let i = 0; i < 20; i++) last = native.utsGeneration();
    // Other tests' containers may set hostnames meanwhile; a count that rose by poll would be 20 up.
    expect(last - quiet).toBeLessThan(10);
  });
});
