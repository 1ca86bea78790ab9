import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTaskRuntime, readTaskSpec } from './containerd-tasks.js';

describe('readTaskRuntime and readTaskSpec on damaged task files', () => {
  let base: string;
  let taskRoot: string;
  let runcRoot: string;
  const bundle = (id: string): string => join(taskRoot, 'ns', id);
  const runc = (id: string): string => join(runcRoot, 'ns', id);

  /** A started task `id` as runc leaves it: init.pid, state.json naming the same PID, no exec.fifo. */
  function task(id: string, pid: number): void {
    mkdirSync(bundle(id), { recursive: true });
    mkdirSync(runc(id), { recursive: true });
    writeFileSync(join(bundle(id), 'init.pid'), String(pid));
    writeFileSync(join(runc(id), 'state.json'), JSON.stringify({ init_process_pid: pid, init_process_start: 4242 }));
    writeFileSync(join(bundle(id), 'config.json'), JSON.stringify({ hostname: `h-${id}` }));
  }

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'croot-ctr-tasks-'));
    taskRoot = join(base, 'tasks');
    runcRoot = join(base, 'runc');
    task('a', 1234);
    task('b', 5678);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('reads a whole task: its PID and runc’s start time', async () => {
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, pid: 1234, recordedStart: 4242 });
  });

  it('takes init.pid alone when there is no state.json (a runtime other than runc)', async () => {
    rmSync(join(runc('a'), 'state.json'));
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, pid: 1234 });
  });

  it('calls the run state damaged when init.pid is a link to another task’s', async () => {
    rmSync(join(bundle('a'), 'init.pid'));
    symlinkSync(join(bundle('b'), 'init.pid'), join(bundle('a'), 'init.pid'));
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: 'init.pid a symbolic link' });
  });

  it('calls the run state damaged when init.pid and state.json name two PIDs (init.pid cut short)', async () => {
    writeFileSync(join(bundle('a'), 'init.pid'), '12');
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: "init.pid says 12, runc's state.json 1234" });
  });

  it('calls the run state damaged when init.pid holds no PID, or state.json is not whole', async () => {
    writeFileSync(join(bundle('a'), 'init.pid'), '');
    writeFileSync(join(runc('b'), 'state.json'), '{"init_process_pid": 56');
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: 'init.pid holds no PID' });
    await expect(readTaskRuntime(bundle('b'), runc('b'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: "runc's state.json is not whole" });
  });

  it('finds the roots two folders above the task’s by default', async () => {
    await expect(readTaskRuntime(bundle('b'), runc('b'))).resolves.toEqual({ created: false, pid: 5678, recordedStart: 4242 });
    await expect(readTaskSpec(bundle('b'))).resolves.toEqual({ sandbox: false, hostname: 'h-b' });
  });

  it('reads no spec through a link, to another task’s config.json or through a linked bundle folder', async () => {
    rmSync(join(bundle('a'), 'config.json'));
    symlinkSync(join(bundle('b'), 'config.json'), join(bundle('a'), 'config.json'));
    symlinkSync(bundle('b'), bundle('c'));
    await expect(readTaskSpec(bundle('a'), taskRoot)).resolves.toBeUndefined();
    await expect(readTaskSpec(bundle('c'), taskRoot)).resolves.toBeUndefined();
    await expect(readTaskSpec(bundle('b'), taskRoot)).resolves.toEqual({ sandbox: false, hostname: 'h-b' });
  });
});
