import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { childrenOf, processState, startTimeOf } from '../../test/support/processes.js';
import { cgroupTruth } from '../../test/support/truth.js';
import {
  chooseCGroupPath,
  hasExited,
  parseCGroupFile,
  parseStartTime,
  readCGroupName,
  readCGroupNameSync,
  readProcessStat,
  readProcessStatOrThrow,
  readStartTime,
} from './proc-files.js';

describe('proc', () => {
  describe('parseStartTime', () => {
    it('reads field 22 even when the command name holds spaces and parentheses', () => {
      const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
      const stat = `1234 (a (weird) name) ${fields.join(' ')}`;
      expect(parseStartTime(stat)).toBe(22);
    });

    it('agrees with the real /proc/self/stat of this process, as test code reads it', async () => {
      expect(await readStartTime('/proc', process.pid)).toBe(startTimeOf(process.pid));
    });

    it('agrees with the kernel for a process started later: a later start time', async () => {
      const child = spawn('sleep', ['30'], { stdio: 'ignore' });
      try {
        const pid = child.pid as number;
        const t = await readStartTime('/proc', pid);
        expect(t).toBe(startTimeOf(pid));
        expect(t).toBeGreaterThanOrEqual(startTimeOf(process.pid) as number);
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    });

    it('gives undefined for a pid that does not exist', async () => {
      expect(await readStartTime('/proc', 2 ** 22 + 17)).toBeUndefined();
    });
  });

  describe('chooseCGroupPath', () => {
    it('prefers the unified line when it is not the root', () => {
      const lines = parseCGroupFile('12:memory:/docker/abc\n0::/system.slice/docker-abc.scope\n');
      expect(chooseCGroupPath(lines)).toBe('system.slice/docker-abc.scope');
    });

    it('falls back to memory when the unified line is the root (hybrid host)', () => {
      const lines = parseCGroupFile('1:name=systemd:/docker/abc\n4:memory:/docker/abc\n0::/\n');
      expect(chooseCGroupPath(lines)).toBe('docker/abc');
    });

    it('falls back to name=systemd when there is no memory hierarchy', () => {
      const lines = parseCGroupFile('1:name=systemd:/lxc/myvm\n3:cpu,cpuacct:/\n');
      expect(chooseCGroupPath(lines)).toBe('lxc/myvm');
    });

    it("says '' for a process in the root cgroup and undefined when no line names a hierarchy it reads", () => {
      expect(chooseCGroupPath(parseCGroupFile('0::/\n'))).toBe('');
      expect(chooseCGroupPath(parseCGroupFile('4:memory:/\n1:name=systemd:/\n'))).toBe('');
      expect(chooseCGroupPath(parseCGroupFile('3:cpu,cpuacct:/x\n'))).toBeUndefined();
      expect(chooseCGroupPath(parseCGroupFile('1:name=systemd:/\n'))).toBeUndefined();
      // A v1 line with no controllers is not the unified one.
      expect(chooseCGroupPath(parseCGroupFile('5::/not-unified\n4:memory:/docker/abc\n'))).toBe('docker/abc');
    });

    it('keeps long paths whole', () => {
      const long = `/kubepods.slice/${'x'.repeat(300)}/cri-containerd-${'a'.repeat(64)}.scope`;
      expect(chooseCGroupPath(parseCGroupFile(`0::${long}\n`))).toBe(long.slice(1));
    });
  });

  describe('readProcessStat and hasExited', () => {
    it("give the kernel's state letter and start time of a live process, and a zombie as exited", async () => {
      // sh starts `true` in the background and becomes a sleep that never reaps it.
      const parent = spawn('sh', ['-c', 'true & exec sleep 30'], { stdio: 'ignore' });
      try {
        const pid = parent.pid as number;
        let zombie: number | undefined;
        for (const deadline = Date.now() + 5000; zombie === undefined && Date.now() < deadline; ) {
          zombie = childrenOf(pid).find((child) => processState(child) === 'Z');
          if (zombie === undefined) await new Promise((r) => setTimeout(r, 10));
        }
        expect(readProcessStat('/proc', pid)).toEqual({ state: expect.stringMatching(/^[RSD]$/), startTime: startTimeOf(pid) });
        expect(hasExited(readProcessStat('/proc', pid))).toBe(false);
        expect(readProcessStat('/proc', zombie as number)?.state).toBe('Z');
        expect(hasExited(readProcessStat('/proc', zombie as number))).toBe(true);
      } finally {
        parent.kill('SIGKILL');
        await new Promise((r) => parent.once('exit', r));
      }
      expect(hasExited(readProcessStat('/proc', parent.pid as number))).toBe(true);
    });

    it('counts the dead state X as exited and any other as running', () => {
      expect(hasExited({ state: 'X', startTime: 1 })).toBe(true);
      expect(hasExited({ state: 'D', startTime: 1 })).toBe(false);
      expect(hasExited(undefined)).toBe(true);
    });

    it('gives undefined for a stat line it cannot parse', () => {
      expect(parseStartTime('1234 no parenthesis 3 4 5')).toBeUndefined();
      expect(parseStartTime('1234 (short) S 1 2')).toBeUndefined();
      expect(parseStartTime(`1234 (empty state)  ${'1 '.repeat(25)}`)).toBeUndefined();
    });

    it('says "no such process" only when the pid is gone, and throws when proc itself cannot be read', () => {
      const gone = 2 ** 22 + 17;
      expect(readProcessStatOrThrow('/proc', gone)).toBeUndefined();
      expect(readProcessStatOrThrow('/proc', process.pid)?.startTime).toBe(startTimeOf(process.pid));
      // A proc root that is a file: ENOTDIR is not "gone".
      expect(() => readProcessStatOrThrow('/proc/self/stat', 1)).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
      expect(readProcessStat('/proc/self/stat', 1)).toBeUndefined();
    });
  });

  describe('readCGroupName', () => {
    it("gives the cgroup the kernel lists this process and pid 1 in (cgroupTruth), '' for the root cgroup", async () => {
      await expect(readCGroupName('/proc', process.pid)).resolves.toBe(cgroupTruth(process.pid));
      expect(readCGroupNameSync('/proc', 1)).toBe(cgroupTruth(1));
    });

    it('refuses a cgroup file with no usable line, and skips lines that are not cgroup lines', () => {
      const root = mkdtempSync(join(tmpdir(), 'croot-proc-'));
      try {
        mkdirSync(join(root, '7'));
        writeFileSync(join(root, '7', 'cgroup'), 'garbage\n3:cpu\n');
        expect(() => readCGroupNameSync(root, 7)).toThrow(expect.objectContaining({ code: 'ERR_SYSTEM' }));
        writeFileSync(join(root, '7', 'cgroup'), 'garbage\n3:cpu\n4:memory:/docker/abc\n');
        expect(readCGroupNameSync(root, 7)).toBe('docker/abc');
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('reads a fake proc tree', async () => {
      const root = mkdtempSync(join(tmpdir(), 'croot-proc-'));
      try {
        mkdirSync(join(root, '42'));
        writeFileSync(join(root, '42', 'cgroup'), '0::/machine.slice/libpod-abc.scope/container\n');
        await expect(readCGroupName(root, 42)).resolves.toBe('machine.slice/libpod-abc.scope/container');
        await expect(readCGroupName(root, 43)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  });
});
