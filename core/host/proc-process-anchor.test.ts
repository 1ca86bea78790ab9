import { once } from 'node:events';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childrenOf, processState, startTimeOf, testChildren } from '../../test/support/processes.js';
import { eventually } from '../../test/support/outcomes.js';
import { ProcProcessAnchor } from './proc-process-anchor.js';

describe(ProcProcessAnchor, () => {
  const children = testChildren();
  afterEach(() => children.reap());
  const start = children.start;

  it('says it holds processes through /proc, and why', () => {
    expect(new ProcProcessAnchor('/proc').mode()).toEqual({ kind: 'proc', reason: 'the native module is not loaded' });
    expect(new ProcProcessAnchor('/proc', 'pidfds ran out').mode()).toEqual({ kind: 'proc', reason: 'pidfds ran out' });
  });

  it('holds a running process: alive, with the PID and no pidfd, until the process dies', async () => {
    const child = start('sleep', ['600']);
    const handle = new ProcProcessAnchor('/proc').open(child.pid);
    expect(handle).toMatchObject({ pid: child.pid, pidfd: undefined, startTime: startTimeOf(child.pid) });
    expect(handle?.isAlive()).toBe(true);
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    expect(handle?.isAlive()).toBe(false);
  });

  it('gives no handle for a zombie, nor for a PID that names no process', async () => {
    // sh starts `true` in the background and becomes a sleep that never reaps it.
    const parent = start('sh', ['-c', 'true & exec sleep 600']);
    const zombie = await eventually(async () => childrenOf(parent.pid).find((pid) => processState(pid) === 'Z'));
    const anchor = new ProcProcessAnchor('/proc');
    expect(anchor.open(zombie)).toBeUndefined();
    const gone = start('true', []);
    await once(gone, 'exit');
    expect(anchor.open(gone.pid)).toBeUndefined();
  });

  it('reads the proc it is given, not the host’s', () => {
    const child = start('sleep', ['600']);
    const empty = mkdtempSync(join(tmpdir(), 'croot-t-proc-'));
    const linked = mkdtempSync(join(tmpdir(), 'croot-t-proc-'));
    try {
      // A proc root with no such PID: no process, although the host's /proc has one.
      expect(new ProcProcessAnchor(empty).open(child.pid)).toBeUndefined();
      // The same process reached through another path to proc.
      symlinkSync(`/proc/${child.pid}`, join(linked, String(child.pid)));
      expect(new ProcProcessAnchor(linked).open(child.pid)?.isAlive()).toBe(true);
    } finally {
      rmSync(empty, { recursive: true, force: true });
      rmSync(linked, { recursive: true, force: true });
    }
  });
});
