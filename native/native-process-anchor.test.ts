import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CrootError, Errno } from '../core/errors/croot-error.js';
import { describeWith, probes } from '../test/support/components.js';
import { processState } from '../test/support/processes.js';
import { fdTarget, fdsOpenedSince, openFds } from '../test/support/sandbox.js';
import type { CrootNative } from './croot-native.js';
import { loadNative } from './load-native.js';
import { NativeProcessAnchor } from './native-process-anchor.js';

const native: CrootNative = loadNative();
const repo = path.resolve(__dirname, '..');

async function waitFor(what: string, probe: () => boolean, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pid that cannot exist: pid_max itself is never handed out. */
function impossiblePid(): number {
  return Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
}

/** The soft and hard "Max open files" of this process, from the kernel. */
function fdLimits(): { soft: number; hard: number } {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').replace('Max open files', '').trim().split(/\s+/).map(Number);
  return { soft: soft ?? NaN, hard: hard ?? NaN };
}

/** A `sleep 600` child that libuv does not reap (the addon's posix_spawn): it stays a zombie until waitpid. */
function spawnUnreaped(): number {
  return native.spawn('/bin/sleep', ['sleep', '600'], [], {});
}

describe(NativeProcessAnchor, () => {
  let anchor: NativeProcessAnchor;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    anchor = new NativeProcessAnchor(native);
  });

  afterEach(async () => {
    anchor.close();
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    }
  });

  function startSleep(): ChildProcess & { pid: number } {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(child);
    return child as ChildProcess & { pid: number };
  }

  it('holds a process by a close-on-exec pidfd and reports its exit through onExit, once, with no call made', async () => {
    const child = startSleep();
    let exits = 0;
    const handle = anchor.open(child.pid, () => exits++);
    expect(handle).toBeDefined();
    expect(handle!.pid).toBe(child.pid);
    expect(fdTarget(handle!.pidfd!)).toMatch(/pidfd/);
    expect(native.getFdFlags(handle!.pidfd!) & native.FD_CLOEXEC).toBe(native.FD_CLOEXEC);
    expect(anchor.mode()).toEqual({ kind: 'pidfd' });
    expect(handle!.isAlive()).toBe(true);

    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await waitFor('onExit', () => exits > 0);
    // The kernel agrees: the process is a zombie or already reaped.
    expect([undefined, 'Z']).toContain(processState(child.pid));
    expect(handle!.isAlive()).toBe(false);
    await exited;
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(exits).toBe(1);
    handle!.close();
  });

  it('says a zombie (exited, not yet reaped) is not alive, and a live process is', async () => {
    const pid = spawnUnreaped();
    let exits = 0;
    const handle = anchor.open(pid, () => exits++)!;
    try {
      expect(processState(pid)).toMatch(/^[RS]$/);
      expect(handle.isAlive()).toBe(true);
      native.kill(pid, 9);
      await waitFor('the zombie', () => processState(pid) === 'Z');
      expect(handle.isAlive()).toBe(false);
      await waitFor('onExit', () => exits > 0);
      // Still a zombie: the exit was seen without reaping it.
      expect(processState(pid)).toBe('Z');
    } finally {
      handle.close();
      native.waitpid(pid, 0);
    }
  });

  it('opens a zombie as not alive and reports its exit on the event loop, never during open()', async () => {
    const pid = native.spawn('/bin/true', ['true'], [], {});
    try {
      await waitFor('the zombie', () => processState(pid) === 'Z');
      let exits = 0;
      const handle = anchor.open(pid, () => exits++)!;
      expect(handle.isAlive()).toBe(false);
      expect(exits).toBe(0);
      await waitFor('onExit', () => exits > 0);
      handle.close();
    } finally {
      native.waitpid(pid, 0);
    }
  });

  it('returns undefined for a process that does not exist', () => {
    expect(fs.existsSync(`/proc/${impossiblePid()}`)).toBe(false);
    expect(anchor.open(impossiblePid(), () => undefined)).toBeUndefined();
    expect(anchor.open(0, () => undefined)).toBeUndefined();
    expect(anchor.open(-1, () => undefined)).toBeUndefined();
  });

  it('close() closes the pidfd, stops the watch and can be called twice', async () => {
    const child = startSleep();
    let exits = 0;
    const handle = anchor.open(child.pid, () => exits++)!;
    const pidfd = handle.pidfd!;
    expect(fdTarget(pidfd)).toMatch(/pidfd/);
    handle.close();
    handle.close();
    expect(handle.pidfd).toBeUndefined();
    expect(fdTarget(pidfd) ?? 'closed').not.toMatch(/pidfd/);
    expect(handle.isAlive()).toBe(false);
    expect(anchor.watchedCount()).toBe(0);
    child.kill('SIGKILL');
    await once(child, 'exit');
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(exits).toBe(0);
  });

  it('lets a handle be closed from inside another handle’s onExit', async () => {
    const a = startSleep();
    const b = startSleep();
    const calls: string[] = [];
    let hb: ReturnType<NativeProcessAnchor['open']>;
    const ha = anchor.open(a.pid, () => {
      calls.push('a');
      hb?.close();
    });
    hb = anchor.open(b.pid, () => calls.push('b'));
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    await Promise.all([once(a, 'exit'), once(b, 'exit')]);
    await waitFor('onExit of a', () => calls.includes('a'));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    // b was closed by a's listener, unless b's exit was reported first.
    expect(calls).toEqual(calls[0] === 'a' ? ['a'] : ['b', 'a']);
    ha?.close();
  });

  it('holds 10 000 processes after raiseFdLimit, reports every exit, and leaks no fd once closed', async () => {
    const limit = native.raiseFdLimit();
    expect(limit.soft).toBe(fdLimits().soft);
    expect(limit.soft).toBeGreaterThan(10000 + fs.readdirSync('/proc/self/fd').length);

    // 1000 real processes (forked by one perl, no exec: cheap), each held by ten handles.
    const forker = spawn('perl', ['-e', '$|=1; for (1..1000) { if (fork() == 0) { sleep 600; exit 0 } } print "started\n"; 1 while wait() > 0'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    children.push(forker);
    await once(forker.stdout!, 'data');
    const pids = fs
      .readFileSync(`/proc/${forker.pid}/task/${forker.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    expect(pids).toHaveLength(1000);

    const before = openFds();
    let exits = 0;
    const handles = pids.flatMap((pid) => Array.from({ length: 10 }, () => anchor.open(pid, () => exits++)));
    expect(handles.every((h) => h?.pidfd !== undefined)).toBe(true);
    expect(anchor.mode()).toEqual({ kind: 'pidfd' });
    expect(anchor.watchedCount()).toBe(10000);
    expect(fdsOpenedSince(before).length).toBe(10000 + 1); // the pidfds and the one epoll fd
    expect(handles.every((h) => h!.isAlive())).toBe(true);

    process.kill(-forker.pid!, 'SIGKILL');
    await waitFor('10 000 exits', () => exits === 10000, 60000);
    expect(anchor.watchedCount()).toBe(0);
    expect(pids.every((pid) => processState(pid) === undefined || processState(pid) === 'Z')).toBe(true);
    expect(handles.some((h) => h!.isAlive())).toBe(false);

    for (const h of handles) h!.close();
    anchor.close();
    expect(fdsOpenedSince(before)).toEqual([]);
  });

  /** Runs `body` with the soft fd limit lowered to `soft` (by prlimit, from outside), then raises it back. */
  function withSoftFdLimit<T>(soft: number, body: () => T): T {
    const { hard } = fdLimits();
    execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${soft}:${hard}`]);
    try {
      expect(fdLimits().soft).toBe(soft);
      return body();
    } finally {
      native.raiseFdLimit();
      expect(fdLimits().soft).toBe(hard);
    }
  }

  it('holds processes through /proc once pidfds would eat the fds kept for sockets and files, and says so in mode()', async () => {
    const child = startSleep();
    const fds = fs.readdirSync('/proc/self/fd').map(Number);
    // Low enough to reach quickly; high enough that the tenth kept free covers the fds open now.
    const soft = Math.max(Math.max(...fds) + 400, 10 * (fds.length + 32));
    const handles: NonNullable<ReturnType<NativeProcessAnchor['open']>>[] = [];
    const spare: number[] = [];
    withSoftFdLimit(soft, () => {
      for (let i = 0; i < soft; i++) {
        const handle = anchor.open(child.pid, () => undefined)!;
        handles.push(handle);
        if (handle.pidfd === undefined) break;
      }
      // Fds are still free for the rest of the process: the fallback came before EMFILE.
      for (let i = 0; i < 16; i++) spare.push(fs.openSync('/dev/null', 'r'));
    });
    for (const fd of spare) fs.closeSync(fd);
    const fallback = handles[handles.length - 1]!;
    expect(fallback.pidfd).toBeUndefined();
    expect(handles.length).toBeGreaterThan(100);
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThan(soft);
    const mode = anchor.mode();
    expect(mode.kind).toBe('proc');
    expect(mode.reason).toContain(`fd limit (${soft})`);
    expect(fallback.isAlive()).toBe(true);

    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(processState(child.pid)).toBeUndefined();
    expect(fallback.isAlive()).toBe(false);
    expect(handles.some((h) => h.isAlive())).toBe(false);
    fallback.close();
    // No process is held through /proc any more.
    expect(anchor.mode()).toEqual({ kind: 'pidfd' });
    for (const h of handles) h.close();
  });

  it('throws EMFILE rather than call a running process gone when no fd is left at all', () => {
    const child = startSleep();
    const highest = Math.max(...fs.readdirSync('/proc/self/fd').map(Number));
    const fillers: number[] = [];
    let thrown: unknown;
    withSoftFdLimit(highest + 8, () => {
      try {
        for (;;) fillers.push(fs.openSync('/dev/null', 'r'));
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('EMFILE');
      }
      try {
        anchor.open(child.pid, () => undefined);
      } catch (err) {
        thrown = err;
      } finally {
        for (const fd of fillers) fs.closeSync(fd);
      }
    });
    expect(thrown).toBeInstanceOf(CrootError);
    expect(thrown).toMatchObject({ code: 'ERR_SYSTEM', status: -Errno.EMFILE });
    expect(processState(child.pid)).toMatch(/^[RS]$/);
    const handle = anchor.open(child.pid, () => undefined);
    expect(handle?.isAlive()).toBe(true);
    handle?.close();
  });

  describeWith('root', probes.root, 'with a PID reused by another real process', () => {
    it('never says the old process is alive, never enters it, and holds the new one separately', async () => {
      // In a private PID namespace nothing else takes PIDs, so ns_last_pid gives the new process the old PID.
      const { stdout } = await promisify(execFile)(
        'unshare',
        ['--pid', '--fork', '--mount-proc', process.execPath, '-r', './test/support/ts-register.js', './test/support/pid-reuse-scenario.ts'],
        { cwd: repo, timeout: 60000 },
      );
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as {
        pid: number;
        before: { alive: boolean; procAlive: boolean; hostname: string };
        after: Record<string, unknown>;
        exits: number;
        kernel: { secondPid: number; state: string; comm: string; firstStart: string; secondStart: string };
      };
      // The kernel: another process holds the same PID now, started later.
      expect(result.kernel.secondPid).toBe(result.pid);
      expect(result.kernel.comm).toBe('sleep');
      expect(result.kernel.state).toMatch(/^[RS]$/);
      expect(Number(result.kernel.secondStart)).toBeGreaterThan(Number(result.kernel.firstStart));

      expect(result.before).toEqual({ alive: true, procAlive: true, hostname: 'first-host' });
      expect(result.exits).toBe(1);
      expect(result.after).toEqual({
        alive: false,
        procAlive: false,
        hostnameThroughHandle: 'ERR_NOT_RUNNING',
        hostnameThroughOldPidfd: 'ESRCH',
        hostnameByPid: 'second-host',
        newHandleAlive: true,
        hostnameThroughNewHandle: 'second-host',
      });
    });
  });
});
