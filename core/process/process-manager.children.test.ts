/**
 * ProcessManager on the addon's NativeProcessSpawner, with real children:
 * the fds, argv, environment and executable each child really has (read
 * from /proc), who gets killed and reaped, and the raw wait statuses the
 * kernel gives. process-manager.test.ts has the refusals that come
 * before any process exists; test/process-service.int.test.ts the same
 * through the server and socket.
 */
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CrootConfig } from '../config/croot-config.js';
import { CrootError } from '../errors/croot-error.js';
import type { PeerCredentials, ProcessSpawner } from '../host/host-services.js';
import { ProcessManager, SAFE_PATH, type ProcessManagerOptions } from './process-manager.js';
import { describeWith, probes } from '../../test/support/components.js';
import { nativeSpawner } from '../../test/support/native-spawner.js';
import { processState, zombieChildren } from '../../test/support/processes.js';

/** The targets of this process's fds that are pipes, e.g. `pipe:[1234]`. */
function ownPipes(): string[] {
  return readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((t) => t.startsWith('pipe:'));
}

/** A child's open fds once its start-up is over (the loader briefly holds one more). */
async function settledFds(pid: number): Promise<string[]> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const fds = readdirSync(`/proc/${pid}/fd`).sort();
    if (fds.length <= 3 || Date.now() > deadline) return fds;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * A /proc list of a child: its argv or environment once its execve has set
 * them up (the spawn returns as soon as the child's old memory is let go,
 * a moment before the new program's arguments are in place).
 */
async function procList(pid: number, file: 'cmdline' | 'environ'): Promise<string[]> {
  return until(`${file} of ${pid}`, () => {
    const list = readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\0').slice(0, -1);
    return list.length > 0 && list;
  });
}
const cmdline = (pid: number): Promise<string[]> => procList(pid, 'cmdline');
const environ = (pid: number): Promise<string[]> => procList(pid, 'environ');

describeWith('croot native', probes.native, 'ProcessManager with real children', () => {
  let spawner: ProcessSpawner;
  let dir: string;
  let logPath: string;
  let logFd: number;
  let manager: ProcessManager;
  const held: number[] = [];

  function make(options: ProcessManagerOptions = {}, env: Record<string, string> = {}): ProcessManager {
    const config = { env } as unknown as CrootConfig;
    return new ProcessManager(spawner, undefined, config, { childStderrFd: logFd, reapIntervalMs: 20, ...options });
  }

  /** Every PID the manager spawned in this file: the zombie check is about them (the test process has other children). */
  const spawned = new Set<number>();

  beforeAll(() => {
    const real = nativeSpawner();
    spawner = Object.assign(Object.create(real) as ProcessSpawner, {
      spawn: (...args: Parameters<ProcessSpawner['spawn']>): number => {
        const pid = real.spawn(...args);
        spawned.add(pid);
        return pid;
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'croot-t-spawner-'));
    logPath = join(dir, 'agents.log');
    logFd = openSync(logPath, 'a');
  });
  afterAll(() => {
    closeSync(logFd);
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    manager = make();
  });
  afterEach(async () => {
    await manager.shutdown();
    for (const fd of held.splice(0)) closeSync(fd);
    expect(zombieChildren().filter((pid) => spawned.has(pid))).toEqual([]);
  });

  describe('.start', () => {
    it("wires pipe IPC: the child's 0 and 1 are the two pipes handed back, 2 the log; this process keeps only its own ends", async () => {
      const before = ownPipes();
      const { pid, fds } = await manager.start({ ipctype: 2, label: 'cat', args: '/bin/cat -u' }, undefined);
      held.push(...fds);
      const [toChild, fromChild] = fds as [number, number];
      expect(readlinkSync(`/proc/${pid}/fd/0`)).toBe(`pipe:[${fstatSync(toChild).ino}]`);
      expect(readlinkSync(`/proc/${pid}/fd/1`)).toBe(`pipe:[${fstatSync(fromChild).ino}]`);
      expect(readlinkSync(`/proc/${pid}/fd/2`)).toBe(logPath);
      expect(await settledFds(pid)).toEqual(['0', '1', '2']);
      // The child's ends are closed here: only the two ends handed back are new.
      expect(ownPipes().filter((p) => !before.includes(p)).sort()).toEqual([`pipe:[${fstatSync(toChild).ino}]`, `pipe:[${fstatSync(fromChild).ino}]`].sort());
      writeSync(toChild, 'ping\n');
      // cat -u echoes at once: the read blocks only until then.
      const buf = Buffer.alloc(64);
      expect(buf.subarray(0, readSync(fromChild, buf)).toString()).toBe('ping\n');
    });

    it('wires socket IPC like pmdaroot: stdin /dev/null, stdout and stderr the log, no fds handed back', async () => {
      const { pid, fds } = await manager.start({ ipctype: 1, label: 'sleeper', args: '/bin/sleep 30' }, undefined);
      expect(fds).toEqual([]);
      expect([0, 1, 2].map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))).toEqual(['/dev/null', logPath, logPath]);
    });

    it('asks a stderr fd function at each start, so a reopened log reaches later children', async () => {
      const second = join(dir, 'second.log');
      let fd = logFd;
      manager = make({ childStderrFd: () => fd });
      const a = await manager.start({ ipctype: 1, label: 'before', args: '/bin/sleep 30' }, undefined);
      fd = openSync(second, 'a');
      held.push(fd);
      const b = await manager.start({ ipctype: 1, label: 'after', args: '/bin/sleep 30' }, undefined);
      expect([a.pid, b.pid].map((pid) => readlinkSync(`/proc/${pid}/fd/2`))).toEqual([logPath, second]);
    });

    it("gives the child the argv pmcd's quoting stands for, and looks a bare name up in the safe PATH", async () => {
      const { pid } = await manager.start({ ipctype: 1, label: 'sh', args: 'sh -c "exec sleep 30" "a b" \\"q tab\\there' }, undefined);
      await until('sh to exec sleep', () => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep');
      expect(await cmdline(pid)).toEqual(['sleep', '30']);
      const other = await manager.start({ ipctype: 2, label: 'sh', args: 'sh -c "read line" "a b" \\"q tab\\there' }, undefined);
      held.push(...other.fds);
      expect(await cmdline(other.pid)).toEqual(['sh', '-c', 'read line', 'a b', '"q', 'tab\\there']);
      const candidates = SAFE_PATH.split(':').map((d) => {
        try {
          return realpathSync(`${d}/sh`);
        } catch {
          return '';
        }
      });
      expect(candidates).toContain(readlinkSync(`/proc/${other.pid}/exe`));
    });

    it('gives a clean environment: the fixed PATH, PCP_* and the locale variables, nothing else', async () => {
      manager = make({}, { PATH: '/evil', PCP_DEBUG: 'appl0', PCP_CONF: '/etc/pcp.conf', LANG: 'C.UTF-8', SECRET_TOKEN: 'x', LD_PRELOAD: '/x.so' });
      const { pid } = await manager.start({ ipctype: 1, label: 'env', args: '/bin/sleep 30' }, undefined);
      expect((await environ(pid)).sort()).toEqual([`PATH=${SAFE_PATH}`, 'PCP_DEBUG=appl0', 'PCP_CONF=/etc/pcp.conf', 'LANG=C.UTF-8'].sort());
      const env: Record<string, string | undefined> = { HOME: '/root', LC_ALL: 'C', TZ: 'UTC', PCP_UNSET: undefined, 'PCP_A=B': 'c', MY_PCP_X: 'y' };
      await manager.shutdown();
      manager = make({}, env as Record<string, string>);
      const other = await manager.start({ ipctype: 1, label: 'env', args: '/bin/sleep 30' }, undefined);
      expect((await environ(other.pid)).sort()).toEqual([`PATH=${SAFE_PATH}`, 'HOME=/root', 'LC_ALL=C', 'TZ=UTC'].sort());
    });

    it("looks a bare name up past folders where it is not an executable file, in PCP_BINADM_DIR and the extra folders", async () => {
      const [notExec, isDir, binadm, extra] = ['not-exec', 'is-dir', 'binadm', 'extra'].map((d) => join(dir, d)) as [string, string, string, string];
      for (const d of [notExec, isDir, binadm, extra]) mkdirSync(d, { recursive: true });
      // Scripts that wait on their stdin (a pipe): sh keeps running them, with the script's path in its argv.
      const script = '#!/bin/sh\nread line\n';
      writeFileSync(join(notExec, 'croot-t-agent'), script, { mode: 0o644 });
      mkdirSync(join(isDir, 'croot-t-agent'), { recursive: true });
      writeFileSync(join(binadm, 'croot-t-agent'), script, { mode: 0o755 });
      writeFileSync(join(extra, 'croot-t-other'), script, { mode: 0o755 });
      manager = make({ extraSearchDirs: [notExec, isDir, extra] }, { PCP_BINADM_DIR: binadm });
      const a = await manager.start({ ipctype: 2, label: 'a', args: 'croot-t-agent' }, undefined);
      const b = await manager.start({ ipctype: 2, label: 'b', args: 'croot-t-other -x' }, undefined);
      held.push(...a.fds, ...b.fds);
      // The kernel runs a script's interpreter with the script's path as its argument.
      expect(await cmdline(a.pid)).toEqual(['/bin/sh', join(binadm, 'croot-t-agent')]);
      expect(await cmdline(b.pid)).toEqual(['/bin/sh', join(extra, 'croot-t-other'), '-x']);
      await manager.shutdown();
      manager = make({ extraSearchDirs: [notExec, isDir] });
      await expect(manager.start({ ipctype: 1, label: 'a', args: 'croot-t-agent' }, undefined)).rejects.toMatchObject({ code: 'ERR_SYSTEM', status: -2 });
    });

    it('answers a program that cannot be executed with -errno and leaves no fd and no child', async () => {
      const script = join(dir, 'not-executable');
      writeFileSync(script, '#!/bin/sh\n', { mode: 0o644 });
      const before = readdirSync('/proc/self/fd').length;
      const err = await caught(manager.start({ ipctype: 2, label: 'x', args: script }, undefined));
      expect(err).toBeInstanceOf(CrootError);
      expect(err).toMatchObject({ code: 'ERR_SYSTEM', status: -13 });
      expect(readdirSync('/proc/self/fd').length).toBe(before);
      expect(manager.runningPids).toEqual([]);
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
    });
  });

  describe('.start for a client other than root', () => {
    const pcpUser: PeerCredentials = { uid: 995, gid: 995, pid: 1 };

    it('lets root (uid 0) start what pmcd.conf does not name', async () => {
      manager = make({}, { PCP_PMCDCONF_PATH: join(dir, 'no-such-pmcd.conf') });
      const { pid } = await manager.start({ ipctype: 1, label: 'anything', args: '/bin/sleep 30' }, { uid: 0, gid: 0, pid: 1 });
      expect(await cmdline(pid)).toEqual(['/bin/sleep', '30']);
    });

    it('starts, as root, an agent pmcd.conf names, with exactly its command line', async () => {
      const conf = join(dir, 'pmcd.conf');
      writeFileSync(conf, 'sleeper 200 pipe binary /bin/sleep "30"\n[access]\nallow "local:*" : all;\n');
      manager = make({}, { PCP_PMCDCONF_PATH: conf });
      const { pid, fds } = await manager.start({ ipctype: 2, label: 'sleeper', args: '/bin/sleep 30' }, pcpUser);
      held.push(...fds);
      expect(await cmdline(pid)).toEqual(['/bin/sleep', '30']);
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+0\s+0\s+0\s+0$/m);
    });
  });

  describe('with what an injector gives when nothing is bound', () => {
    it('runs with no logger, config or options: children get this process\'s stderr, and are killed and reaped', async () => {
      const bare = new ProcessManager(spawner, undefined, undefined, undefined);
      try {
        const { pid } = await bare.start({ ipctype: 1, label: 'bare', args: '/bin/sleep 30' }, undefined);
        expect(readlinkSync(`/proc/${pid}/fd/2`)).toBe(readlinkSync('/proc/self/fd/2'));
        expect(await bare.terminate(pid, undefined)).toEqual({ pid, code: 0 });
        expect(processState(pid)).toBeUndefined();
      } finally {
        await bare.shutdown();
      }
    });
  });

  describe('.terminate', () => {
    it('SIGKILLs its own child and reaps it; the wait after gives the kernel\'s status for SIGKILL', async () => {
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/sleep 30' }, undefined);
      expect(await manager.terminate(pid, undefined)).toEqual({ pid, code: 0 });
      expect(processState(pid)).toBeUndefined();
      expect(await manager.wait(-1, undefined)).toEqual({ pid, code: 9 });
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
    });

    it('leaves a process it did not start alone', async () => {
      const foreign = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
      const closed = new Promise<NodeJS.Signals | null>((r) => foreign.once('close', (_code, signal) => r(signal)));
      await expect(manager.terminate(foreign.pid as number, undefined)).rejects.toMatchObject({ code: 'ERR_NOT_CHILD', status: -10 });
      // Had the refusal come after a SIGKILL, the kernel would report that signal, not ours.
      foreign.kill('SIGTERM');
      expect(await closed).toBe('SIGTERM');
    });

    it('reaps a child that exited but was not reaped yet instead of signalling it, keeping its exit status', async () => {
      // No reaping by the timer in this test: the child stays a zombie until terminate.
      manager = make({ reapIntervalMs: 60000 });
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/sh -c "exit 4"' }, undefined);
      await until('the child to be a zombie', () => processState(pid) === 'Z');
      expect(await manager.terminate(pid, undefined)).toEqual({ pid, code: 0 });
      expect(processState(pid)).toBeUndefined();
      expect(await manager.wait(pid, undefined)).toEqual({ pid, code: 4 << 8 });
      await expect(manager.wait(pid, undefined)).rejects.toMatchObject({ code: 'ERR_NOT_CHILD', status: -10 });
    });

    it('does not signal a child that already exited, and keeps its status for one wait', async () => {
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/sh -c "exit 1"' }, undefined);
      await until('the child to be reaped', () => !manager.runningPids.includes(pid));
      expect(await manager.terminate(pid, undefined)).toEqual({ pid, code: 0 });
      expect(await manager.wait(pid, undefined)).toEqual({ pid, code: 1 << 8 });
      await expect(manager.terminate(pid, undefined)).rejects.toMatchObject({ code: 'ERR_NOT_CHILD' });
    });
  });

  describe('.wait', () => {
    it('answers -1 with no children, 0 while one runs, then its pid and raw status', async () => {
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
      const { pid, fds } = await manager.start({ ipctype: 2, label: 'x', args: '/bin/sh -c "read x; exit 3"' }, undefined);
      expect(await manager.wait(0, undefined)).toEqual({ pid: 0, code: 0 });
      expect(await manager.wait(pid, undefined)).toEqual({ pid: 0, code: 0 });
      // Closing its stdin ends the read; sh exits 3.
      for (const fd of fds) closeSync(fd);
      await until('the child to be reaped', () => !manager.runningPids.includes(pid));
      expect(await manager.wait(-1, undefined)).toEqual({ pid, code: 3 << 8 });
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
    });

    it('reaps exited children by itself, leaving no zombie, and keeps their status', async () => {
      const { pid } = await manager.start({ ipctype: 1, label: 'x', args: '/bin/true' }, undefined);
      await until('the child to be reaped', () => processState(pid) === undefined);
      expect(manager.runningPids).toEqual([]);
      expect(await manager.wait(-1, undefined)).toEqual({ pid, code: 0 });
    });

    it('keeps a bounded number of statuses, dropping the oldest', async () => {
      manager = make({ maxExitStatuses: 2 });
      const pids: number[] = [];
      for (const code of [1, 2, 3]) pids.push((await manager.start({ ipctype: 1, label: `x${code}`, args: `/bin/sh -c "exit ${code}"` }, undefined)).pid);
      await until('every child reaped', () => manager.runningPids.length === 0);
      // Reaped in any order; the two kept are the last two reaped.
      const kept = [await manager.wait(-1, undefined), await manager.wait(-1, undefined)];
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
      expect(kept.every((k) => pids.includes(k.pid) && k.code === (pids.indexOf(k.pid) + 1) << 8)).toBe(true);
      expect(new Set(kept.map((k) => k.pid)).size).toBe(2);
    });
  });

  describe('.shutdown', () => {
    it('kills and reaps every running child', async () => {
      const a = await manager.start({ ipctype: 1, label: 'a', args: '/bin/sleep 30' }, undefined);
      const b = await manager.start({ ipctype: 2, label: 'b', args: '/bin/cat' }, undefined);
      held.push(...b.fds);
      await manager.shutdown();
      expect([processState(a.pid), processState(b.pid)]).toEqual([undefined, undefined]);
      expect(manager.runningPids).toEqual([]);
    });
  });
});
