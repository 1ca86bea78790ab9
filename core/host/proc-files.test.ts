import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { startTimeOf } from '../../test/support/processes.js';
import { chooseCGroupPath, parseCGroupFile, parseStartTime, readCGroupName, readStartTime } from './proc-files.js';

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

    it('keeps long paths whole', () => {
      const long = `/kubepods.slice/${'x'.repeat(300)}/cri-containerd-${'a'.repeat(64)}.scope`;
      expect(chooseCGroupPath(parseCGroupFile(`0::${long}\n`))).toBe(long.slice(1));
    });
  });

  describe('readCGroupName', () => {
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
