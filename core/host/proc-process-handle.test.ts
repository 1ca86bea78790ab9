import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { childrenOf, processState, startTimeOf, testChildren } from '../../test/support/processes.js';
import { ProcProcessHandle } from './proc-process-handle.js';

async function waitFor(what: string, probe: () => boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe(ProcProcessHandle, () => {
  const children = testChildren();
  afterEach(() => children.reap());
  const start = children.start;

  it('holds a running process by its start time, and has no pidfd', () => {
    const child = start('sleep', ['600']);
    const handle = ProcProcessHandle.open(child.pid)!;
    expect(handle.pid).toBe(child.pid);
    expect(handle.pidfd).toBeUndefined();
    expect(handle.startTime).toBe(startTimeOf(child.pid));
    expect(handle.isAlive()).toBe(true);
  });

  it('reads a process whose name holds spaces and parentheses', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'croot-t-'));
    try {
      const odd = path.join(dir, 'a) b (c');
      fs.symlinkSync(fs.realpathSync('/bin/sleep'), odd);
      const child = start(odd, ['600']);
      await waitFor('the renamed sleep', () => fs.readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'a) b (c');
      const handle = ProcProcessHandle.open(child.pid)!;
      expect(handle.startTime).toBe(startTimeOf(child.pid));
      expect(handle.isAlive()).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a zombie is not alive', async () => {
    // sh starts `true` in the background and becomes a sleep that never reaps it.
    const parent = start('sh', ['-c', 'true & exec sleep 600']);
    let zombie: number | undefined;
    await waitFor('the zombie', () => {
      zombie = childrenOf(parent.pid).find((pid) => processState(pid) === 'Z');
      return zombie !== undefined;
    });
    const handle = ProcProcessHandle.open(zombie!)!;
    expect(handle).toBeDefined();
    expect(handle.isAlive()).toBe(false);
  });

  it('says a process that exited and was reaped is not alive, and open() finds no such process', async () => {
    const child = start('sleep', ['600']);
    const handle = ProcProcessHandle.open(child.pid)!;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    expect(fs.existsSync(`/proc/${child.pid}`)).toBe(false);
    expect(handle.isAlive()).toBe(false);
    expect(ProcProcessHandle.open(child.pid)).toBeUndefined();
    expect(ProcProcessHandle.open(0)).toBeUndefined();
    expect(ProcProcessHandle.open(-5)).toBeUndefined();
  });

  it('is not alive once another process stands in its PID’s place, as after a PID reuse', () => {
    const child = start('sleep', ['600']);
    // A proc root whose entry for the child's PID the test can point at another process (init, started at boot).
    const proc = fs.mkdtempSync(path.join(os.tmpdir(), 'croot-t-proc-'));
    try {
      fs.symlinkSync(`/proc/${child.pid}`, path.join(proc, String(child.pid)));
      const handle = ProcProcessHandle.open(child.pid, { procRoot: proc })!;
      expect([handle.startTime, handle.isAlive()]).toEqual([startTimeOf(child.pid), true]);
      expect(startTimeOf(1)).not.toBe(startTimeOf(child.pid));
      fs.rmSync(path.join(proc, String(child.pid)));
      fs.symlinkSync('/proc/1', path.join(proc, String(child.pid)));
      expect(handle.isAlive()).toBe(false);
      fs.rmSync(path.join(proc, String(child.pid)));
      expect(handle.isAlive()).toBe(false);
    } finally {
      fs.rmSync(proc, { recursive: true, force: true });
    }
  });

  it('is not alive after close(), which calls onClose once', () => {
    const child = start('sleep', ['600']);
    let closes = 0;
    const handle = ProcProcessHandle.open(child.pid, { onClose: () => closes++ })!;
    handle.close();
    handle.close();
    expect(closes).toBe(1);
    expect(handle.isAlive()).toBe(false);
    expect(processState(child.pid)).toMatch(/^[RS]$/);
  });
});
