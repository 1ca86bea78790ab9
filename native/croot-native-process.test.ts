import * as fs from 'node:fs';
import * as os from 'node:os';
import { types } from 'node:util';
import type { CrootNative, NativeError } from './croot-native.js';
import { loadNative } from './load-native.js';

const native: CrootNative = loadNative();
const spawned: number[] = [];

/** Reads `fd` to end of file (blocking: only used on pipes whose writers exit). */
function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  for (;;) {
    const n = fs.readSync(fd, buf);
    if (n === 0) return Buffer.concat(chunks).toString();
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

/** Runs `file argv` with stdout on a pipe; returns its output and wait result. */
function run(file: string, argv: string[], stdio: { stdin?: number } = {}): { output: string; exitCode: number | null } {
  const [r, w] = native.pipe();
  let pid: number;
  try {
    pid = native.spawn(file, argv, ['PATH=/usr/bin:/bin'], { ...stdio, stdout: w, stderr: 2 });
    spawned.push(pid);
  } finally {
    native.close(w);
  }
  try {
    const output = readAll(r);
    return { output, exitCode: native.waitpid(pid, 0).exitCode };
  } finally {
    native.close(r);
  }
}

function childrenOfThisProcess(): number[] {
  return fs
    .readdirSync('/proc/self/task')
    .flatMap((tid) => fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(/\s+/))
    .filter(Boolean)
    .map(Number);
}

function sigMask(status: string, field: 'SigBlk' | 'SigIgn'): bigint {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
  if (!m?.[1]) throw new Error(`${field} missing`);
  return BigInt(`0x${m[1]}`);
}

afterAll(() => {
  // Whatever a failed test left behind: kill and reap it, so no zombie outlives the suite.
  for (const pid of spawned) {
    try {
      native.kill(pid, 9);
      native.waitpid(pid, 0);
    } catch {
      /* already reaped */
    }
  }
});

describe('the native addon', () => {
  describe('.spawn', () => {
    it('runs /bin/cat with pipes as stdin and stdout and it echoes the bytes', () => {
      const [inR, inW] = native.pipe();
      const [outR, outW] = native.pipe();
      const pid = native.spawn('/bin/cat', ['cat'], [], { stdin: inR, stdout: outW, stderr: -1 });
      spawned.push(pid);
      native.close(inR);
      native.close(outW);
      fs.writeSync(inW, 'echo through cat\n');
      native.close(inW);
      expect(readAll(outR)).toBe('echo through cat\n');
      native.close(outR);
      const waited = native.waitpid(pid, 0);
      expect(waited).toEqual({ pid, status: 0, exited: true, exitCode: 0, signaled: false, signal: null });
    });

    it('gives the child only fds 0, 1 and 2, even ones this process left without FD_CLOEXEC', () => {
      const [r, w] = native.pipe();
      native.setFdFlags(r, 0);
      expect(native.getFdFlags(r) & native.FD_CLOEXEC).toBe(0);
      try {
        // ls runs as a child of sh and lists the shell's fds ("; true" keeps sh from exec'ing ls).
        const { output, exitCode } = run('/bin/sh', ['sh', '-c', 'ls /proc/$$/fd; true']);
        expect(exitCode).toBe(0);
        expect(output.trim().split('\n').sort()).toEqual(['0', '1', '2']);
      } finally {
        native.close(r);
        native.close(w);
      }
    });

    it('passes argv and envp exactly', () => {
      const { output } = run('/bin/sh', ['sh', '-c', 'printf "%s|%s|%s" "$0" "$1" "$CROOT_T"', 'zero', 'one'], {});
      expect(output).toBe('zero|one|');
      const [r, w] = native.pipe();
      const pid = native.spawn('/usr/bin/env', ['env'], ['CROOT_T=x y', 'A=1'], { stdout: w });
      spawned.push(pid);
      native.close(w);
      expect(readAll(r).trim().split('\n').sort()).toEqual(['A=1', 'CROOT_T=x y']);
      native.close(r);
      expect(native.waitpid(pid, 0).exitCode).toBe(0);
    });

    it('starts the child with no blocked and no ignored signal, glibc\'s internal 32 and 33 included', () => {
      const own = fs.readFileSync('/proc/self/status', 'utf8');
      const sigpipe = 1n << BigInt(os.constants.signals.SIGPIPE - 1);
      expect(sigMask(own, 'SigIgn') & sigpipe).toBe(sigpipe); // Node ignores SIGPIPE...
      const { output } = run('/bin/cat', ['cat', '/proc/self/status']);
      // ...the child ignores nothing and blocks nothing.
      expect({ SigIgn: sigMask(output, 'SigIgn'), SigBlk: sigMask(output, 'SigBlk') }).toEqual({ SigIgn: 0n, SigBlk: 0n });
    });

    it('gives the child default dispositions even when the spawning process ignores more signals', () => {
      // A node process that ignores SIGPIPE and SIGXFSZ (Node's own choice) and signal 40, inherited from
      // dash's trap (Node resets only the signals below 32 at start-up), spawns cat through the addon.
      const addon = require.resolve('./build/Release/croot_native.node');
      const script = [
        `const n = require(${JSON.stringify(addon)});`,
        "const fs = require('fs');",
        'const [r, w] = n.pipe();',
        "const pid = n.spawn('/bin/cat', ['cat', '/proc/self/status'], [], { stdout: w });",
        'n.close(w);',
        "let out = ''; const b = Buffer.alloc(65536); for (let k; (k = fs.readSync(r, b)) > 0;) out += b.subarray(0, k).toString();",
        'n.waitpid(pid, 0);',
        "process.stdout.write(fs.readFileSync('/proc/self/status', 'utf8') + '\\n=====\\n' + out);",
      ].join('\n');
      const [r, w] = native.pipe();
      const pid = native.spawn('/bin/sh', ['sh', '-c', 'trap "" 40 41; exec "$0" -e "$1"', process.execPath, script], ['PATH=/usr/bin:/bin'], { stdout: w, stderr: 2 });
      spawned.push(pid);
      native.close(w);
      const text = readAll(r);
      native.close(r);
      expect(native.waitpid(pid, 0).exitCode).toBe(0);
      const [parent, child] = text.split('\n=====\n') as [string, string];
      const bit = (sig: number): bigint => 1n << BigInt(sig - 1);
      const ignoredByParent = bit(os.constants.signals.SIGPIPE) | bit(os.constants.signals.SIGXFSZ) | bit(40) | bit(41);
      expect(sigMask(parent, 'SigIgn') & ignoredByParent).toBe(ignoredByParent);
      expect({ SigIgn: sigMask(child, 'SigIgn'), SigBlk: sigMask(child, 'SigBlk') }).toEqual({ SigIgn: 0n, SigBlk: 0n });
    });

    it('throws ENOENT with syscall execve for a missing binary', () => {
      let err: unknown;
      try {
        native.spawn('/nonexistent/croot-t-binary', ['x'], [], {});
      } catch (e) {
        err = e;
      }
      expect(types.isNativeError(err)).toBe(true);
      expect(err).toMatchObject({ code: 'ENOENT', errno: os.constants.errno.ENOENT, syscall: 'execve', path: '/nonexistent/croot-t-binary' });
    });

    it('leaks no fd on success or failure', () => {
      const before = fs.readdirSync('/proc/self/fd').sort();
      expect(() => native.spawn('/nonexistent/croot-t-binary', ['x'], [], { stdin: 0, stdout: 1, stderr: 2 })).toThrow();
      expect(run('/bin/true', ['true']).exitCode).toBe(0);
      expect(fs.readdirSync('/proc/self/fd').sort()).toEqual(before);
    });
  });

  describe('.waitpid', () => {
    it('reaps a child with its exit status, then throws ECHILD for it', () => {
      const pid = native.spawn('/bin/sh', ['sh', '-c', 'exit 7'], [], {});
      spawned.push(pid);
      const waited = native.waitpid(pid, 0);
      expect(waited).toMatchObject({ pid, exited: true, exitCode: 7, signaled: false, signal: null });
      let err: unknown;
      try {
        native.waitpid(pid, native.WNOHANG);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ECHILD', errno: os.constants.errno.ECHILD, syscall: 'waitpid' });
      expect(childrenOfThisProcess()).not.toContain(pid);
    });

    it('returns pid 0 with WNOHANG while the child runs, and SIGKILL after kill', () => {
      const pid = native.spawn('/bin/sleep', ['sleep', '60'], [], {});
      spawned.push(pid);
      expect(native.waitpid(pid, native.WNOHANG)).toEqual({ pid: 0, status: 0, exited: false, exitCode: null, signaled: false, signal: null });
      native.kill(pid, os.constants.signals.SIGKILL);
      const waited = native.waitpid(pid, 0);
      expect(waited).toMatchObject({ pid, exited: false, exitCode: null, signaled: true, signal: os.constants.signals.SIGKILL });
      expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    });

    it('refuses pids that address more than one process', () => {
      expect(() => native.waitpid(-1, native.WNOHANG)).toThrow(/pid/);
      expect(() => native.kill(0, 0)).toThrow(/pid/);
      expect(() => native.kill(-1, 0)).toThrow(/pid/);
    });
  });

  describe('.kill', () => {
    it('throws ESRCH for a process that does not exist', () => {
      const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
      let err: unknown;
      try {
        native.kill(pidMax, 0);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ESRCH', errno: os.constants.errno.ESRCH, syscall: 'kill' });
    });
  });

  it('leaves no zombie among the children it started', () => {
    const left = childrenOfThisProcess().filter((pid) => spawned.includes(pid));
    expect(left).toEqual([]);
  });
});
