/**
 * ProcessManager's policy with a recording ProcessSpawner: limits, argv,
 * program lookup, fd wiring and cleanup, the environment, who may be killed
 * or reaped, and what wait reports. The real addon is exercised in
 * test/process-service.int.test.ts.
 */
import { fstatSync, openSync, closeSync } from 'node:fs';
import { CrootError } from './errors.js';
import type { ProcessSpawner, ReapedProcess, SpawnStdio } from './host-services.js';
import { ProcessManager, SAFE_PATH, type ProcessManagerOptions } from './process-manager.js';
import type { CrootConfig } from './config.js';

interface SpawnCall {
  file: string;
  argv: readonly string[];
  env: readonly string[];
  stdio: SpawnStdio;
}

/** Pipes are real fds (of /dev/null) so closing them can be checked; processes are pretend. */
class RecordingSpawner implements ProcessSpawner {
  readonly spawns: SpawnCall[] = [];
  readonly kills: Array<[number, number]> = [];
  readonly pipes: Array<[number, number]> = [];
  readonly reaped = new Set<number>();
  /** pid -> raw status once the pretend process has exited. */
  readonly exits = new Map<number, number>();
  failWith: (Error & { errno?: number; code?: string }) | undefined;
  private nextPid = 5000;

  pipe(): [number, number] {
    const p: [number, number] = [openSync('/dev/null', 'r'), openSync('/dev/null', 'w')];
    this.pipes.push(p);
    return p;
  }
  spawn(file: string, argv: readonly string[], env: readonly string[], stdio: SpawnStdio): number {
    this.spawns.push({ file, argv, env, stdio });
    if (this.failWith) throw this.failWith;
    return this.nextPid++;
  }
  reap(pid: number): ReapedProcess {
    if (this.reaped.has(pid)) throw Object.assign(new Error('waitpid: ECHILD'), { errno: 10, code: 'ECHILD' });
    const status = this.exits.get(pid);
    if (status === undefined) return { pid: 0, status: 0 };
    this.reaped.add(pid);
    return { pid, status };
  }
  kill(pid: number, signal: number): void {
    this.kills.push([pid, signal]);
    if (!this.reaped.has(pid)) this.exits.set(pid, signal);
  }
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function expectCrootError(err: unknown, code: string, status: number): void {
  expect(err).toBeInstanceOf(CrootError);
  expect(err).toMatchObject({ code, status });
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('ProcessManager', () => {
  let spawner: RecordingSpawner;
  let manager: ProcessManager;
  const opened: number[] = [];

  function make(options: ProcessManagerOptions = {}, env: Record<string, string> = {}): ProcessManager {
    const config = { env } as unknown as CrootConfig;
    return new ProcessManager(spawner, undefined, config, { reapIntervalMs: 10, terminateReapMs: 50, ...options });
  }

  beforeEach(() => {
    spawner = new RecordingSpawner();
    manager = make();
  });
  afterEach(async () => {
    await manager.shutdown();
    for (const fd of opened.splice(0)) if (isOpen(fd)) closeSync(fd);
    for (const [r, w] of spawner.pipes) for (const fd of [r, w]) if (isOpen(fd)) closeSync(fd);
  });

  describe('.start', () => {
    it('wires pipe IPC: child stdin/stdout on the pipes, stderr on the log, the child ends closed here', async () => {
      const started = await manager.start({ ipctype: 2, label: 'cat', args: '/bin/cat -u' }, undefined);
      const [[childIn, parentIn], [parentOut, childOut]] = spawner.pipes as [[number, number], [number, number]];
      expect(spawner.spawns[0]).toMatchObject({ file: '/bin/cat', argv: ['/bin/cat', '-u'], stdio: { stdin: childIn, stdout: childOut, stderr: 2 } });
      expect(started).toEqual({ pid: 5000, fds: [parentIn, parentOut] });
      expect(isOpen(childIn)).toBe(false);
      expect(isOpen(childOut)).toBe(false);
      expect(isOpen(parentIn) && isOpen(parentOut)).toBe(true);
    });

    it('wires socket IPC like pmdaroot: no stdin, stdout to the log, no fds returned', async () => {
      const started = await manager.start({ ipctype: 1, label: 'sock', args: '/bin/true' }, undefined);
      expect(started.fds).toEqual([]);
      expect(spawner.pipes).toHaveLength(0);
      expect(spawner.spawns[0]?.stdio).toEqual({ stdin: -1, stdout: 2, stderr: 2 });
    });

    it('gives children the configured stderr fd', async () => {
      manager = make({ childStderrFd: 7 });
      await manager.start({ ipctype: 1, label: 'x', args: '/bin/true' }, undefined);
      expect(spawner.spawns[0]?.stdio).toEqual({ stdin: -1, stdout: 7, stderr: 7 });
    });

    it('asks a stderr fd function at each start, so a reopened log reaches later children', async () => {
      let logFd = 7;
      manager = make({ childStderrFd: () => logFd });
      await manager.start({ ipctype: 1, label: 'before', args: '/bin/true' }, undefined);
      logFd = 9;
      await manager.start({ ipctype: 2, label: 'after', args: '/bin/cat' }, undefined);
      expect(spawner.spawns.map((s) => s.stdio.stderr)).toEqual([7, 9]);
    });

    it("splits pmcd's quoting into argv", async () => {
      await manager.start({ ipctype: 1, label: 'sh', args: '/bin/sh -c "echo \\"a b\\"" x' }, undefined);
      expect(spawner.spawns[0]?.argv).toEqual(['/bin/sh', '-c', 'echo "a b"', 'x']);
    });

    it('looks a bare program name up in the safe PATH, keeping argv[0] as given', async () => {
      await manager.start({ ipctype: 1, label: 'sh', args: 'sh -c true' }, undefined);
      const call = spawner.spawns[0] as SpawnCall;
      expect(call.argv[0]).toBe('sh');
      expect(SAFE_PATH.split(':').map((d) => `${d}/sh`)).toContain(call.file);
    });

    it('refuses a relative path with -EINVAL and a program found nowhere with -ENOENT, spawning nothing', async () => {
      expectCrootError(await caught(manager.start({ ipctype: 1, label: 'x', args: 'bin/sh' }, undefined)), 'ERR_PROTOCOL', -22);
      expectCrootError(await caught(manager.start({ ipctype: 1, label: 'x', args: 'no-such-program-croot' }, undefined)), 'ERR_SYSTEM', -2);
      expect(spawner.spawns).toHaveLength(0);
    });

    it('passes a clean environment: the fixed PATH, PCP_* and a few locale variables, nothing else', async () => {
      manager = make({}, { PATH: '/evil', PCP_DEBUG: 'appl0', PCP_CONF: '/etc/pcp.conf', LANG: 'C.UTF-8', SECRET_TOKEN: 'x', LD_PRELOAD: '/x.so' });
      await manager.start({ ipctype: 1, label: 'x', args: '/bin/true' }, undefined);
      expect([...(spawner.spawns[0]?.env ?? [])].sort()).toEqual(
        [`PATH=${SAFE_PATH}`, 'PCP_DEBUG=appl0', 'PCP_CONF=/etc/pcp.conf', 'LANG=C.UTF-8'].sort(),
      );
    });

    it.each([
      ['an empty label', '', '/bin/true', 'ERR_PROTOCOL', -22],
      ['a 64-byte label', 'l'.repeat(64), '/bin/true', 'ERR_TOO_LONG', -7],
      ['an empty command line', 'x', '', 'ERR_PROTOCOL', -22],
      ['a blank command line', 'x', '   ', 'ERR_PROTOCOL', -22],
      ['a 4096-byte command line', 'x', `/bin/true ${'a'.repeat(4086)}`, 'ERR_TOO_LONG', -7],
      ['an unterminated quote', 'x', '/bin/echo "a', 'ERR_PROTOCOL', -22],
    ])('refuses %s', async (_what, label, args, code, status) => {
      expectCrootError(await caught(manager.start({ ipctype: 1, label, args }, undefined)), code, status);
      expect(spawner.spawns).toHaveLength(0);
    });

    it('accepts the largest label and command line (63 and 4095 bytes)', async () => {
      await manager.start({ ipctype: 1, label: 'l'.repeat(63), args: `/bin/true ${'a'.repeat(4085)}` }, undefined);
      expect(spawner.spawns).toHaveLength(1);
    });

    it('refuses an unknown ipctype with -EINVAL', async () => {
      expectCrootError(await caught(manager.start({ ipctype: 3, label: 'x', args: '/bin/true' }, undefined)), 'ERR_PROTOCOL', -22);
    });

    it('reports an exec failure as -errno and closes every pipe end it made', async () => {
      spawner.failWith = Object.assign(new Error('posix_spawn /nope: No such file or directory'), { errno: 2, code: 'ENOENT' });
      expectCrootError(await caught(manager.start({ ipctype: 2, label: 'x', args: '/nope' }, undefined)), 'ERR_SYSTEM', -2);
      const fds = spawner.pipes.flat();
      expect(fds).toHaveLength(4);
      expect(fds.filter(isOpen)).toEqual([]);
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
    });
  });

  describe('.terminate', () => {
    it('SIGKILLs its own child and leaves the kill status for wait', async () => {
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/true' }, undefined);
      expect(await manager.terminate(pid, undefined)).toEqual({ pid, code: 0 });
      expect(spawner.kills).toEqual([[pid, 9]]);
      expect(await manager.wait(-1, undefined)).toEqual({ pid, code: 9 });
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
    });

    it('refuses any other pid with ERR_NOT_CHILD (-ECHILD) and signals nothing', async () => {
      expectCrootError(await caught(manager.terminate(process.pid, undefined)), 'ERR_NOT_CHILD', -10);
      expectCrootError(await caught(manager.terminate(-1, undefined)), 'ERR_NOT_CHILD', -22);
      expect(spawner.kills).toEqual([]);
    });

    it('does not signal a child that already exited (its pid may be reused once reaped)', async () => {
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/true' }, undefined);
      spawner.exits.set(pid, 0x100);
      expect(await manager.terminate(pid, undefined)).toEqual({ pid, code: 0 });
      expect(spawner.kills).toEqual([]);
      expect(await manager.wait(pid, undefined)).toEqual({ pid, code: 0x100 });
      expectCrootError(await caught(manager.terminate(pid, undefined)), 'ERR_NOT_CHILD', -10);
    });
  });

  describe('.wait', () => {
    it('answers -1 with no children, 0 while they run, then pid and raw status', async () => {
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/true' }, undefined);
      expect(await manager.wait(0, undefined)).toEqual({ pid: 0, code: 0 });
      expect(await manager.wait(pid, undefined)).toEqual({ pid: 0, code: 0 });
      spawner.exits.set(pid, 3 << 8);
      expect(await manager.wait(-1, undefined)).toEqual({ pid, code: 3 << 8 });
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
    });

    it('refuses a specific pid it did not start', async () => {
      expectCrootError(await caught(manager.wait(1, undefined)), 'ERR_NOT_CHILD', -10);
    });

    it('reaps exited children by itself and keeps their status for a later wait', async () => {
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/true' }, undefined);
      spawner.exits.set(pid, 0);
      const deadline = Date.now() + 2000;
      while (!spawner.reaped.has(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(spawner.reaped.has(pid)).toBe(true);
      expect(manager.runningPids).toEqual([]);
      expect(await manager.wait(-1, undefined)).toEqual({ pid, code: 0 });
    });

    it('keeps a bounded number of statuses, dropping the oldest', async () => {
      manager = make({ maxExitStatuses: 2 });
      const pids: number[] = [];
      for (let i = 0; i < 3; i++) pids.push((await manager.start({ ipctype: 1, label: `x${i}`, args: '/bin/true' }, undefined)).pid);
      for (const pid of pids) spawner.exits.set(pid, pid & 0x7f);
      expect(await manager.wait(-1, undefined)).toEqual({ pid: pids[1], code: (pids[1] as number) & 0x7f });
      expect(await manager.wait(-1, undefined)).toEqual({ pid: pids[2], code: (pids[2] as number) & 0x7f });
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
    });
  });

  describe('.shutdown', () => {
    it('kills and reaps every running child', async () => {
      const a = await manager.start({ ipctype: 1, label: 'a', args: '/bin/true' }, undefined);
      const b = await manager.start({ ipctype: 2, label: 'b', args: '/bin/cat' }, undefined);
      opened.push(...b.fds);
      await manager.shutdown();
      expect(spawner.kills.map(([pid]) => pid).sort()).toEqual([a.pid, b.pid].sort());
      expect(spawner.reaped).toEqual(new Set([a.pid, b.pid]));
      expect(manager.runningPids).toEqual([]);
    });
  });
});
