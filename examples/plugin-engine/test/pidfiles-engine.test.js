// The engine as croot uses it: loaded into croot's container, asked through croot's resolvers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ContainerProcessIdResolver, EngineRegistry, createCrootContainer } from 'croot';
import engineModule from '../index.js';

let dir;
let child;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'croot-t-pidfiles-'));
  child = spawn('sleep', ['60'], { stdio: 'ignore' });
});

after(() => {
  child.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** croot with this engine alone, reading `folder`. */
async function croot(folder) {
  const container = createCrootContainer({ config: { env: { CROOT_PIDFILES_DIR: folder } }, modules: [engineModule] });
  const registry = container.get(EngineRegistry);
  await registry.start();
  await registry.ready();
  return { container, registry };
}

test('resolves NAME to the PID its pidfile holds, the PID of a real process', async () => {
  writeFileSync(join(dir, 'sleeper.pid.tmp'), `${child.pid}\n`);
  renameSync(join(dir, 'sleeper.pid.tmp'), join(dir, 'sleeper.pid'));
  const { container, registry } = await croot(dir);
  try {
    assert.equal(await container.get(ContainerProcessIdResolver).resolveProcessId('pidfiles:sleeper'), child.pid);
    assert.deepEqual(registry.statuses().map((s) => [s.engine, s.available]), [['pidfiles', true]]);
  } finally {
    await registry.stop();
  }
});

test('follows a pidfile written, and removed, after it started', async () => {
  const { container, registry } = await croot(dir);
  try {
    const pids = container.get(ContainerProcessIdResolver);
    writeFileSync(join(dir, 'late.pid.tmp'), `${child.pid}\n`);
    renameSync(join(dir, 'late.pid.tmp'), join(dir, 'late.pid'));
    assert.equal(await eventually(async () => pids.resolveProcessId('pidfiles:late')), child.pid);
    rmSync(join(dir, 'late.pid'));
    await eventually(async () => {
      try {
        pids.resolveProcessId('pidfiles:late');
      } catch (err) {
        return err.code === 'ERR_NO_CONTAINER' ? true : undefined;
      }
      return undefined;
    });
  } finally {
    await registry.stop();
  }
});

/** Asks `probe` every 20 ms until it answers (not undefined, no throw), for up to 5 s. */
async function eventually(probe) {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('knows no container that has no pidfile', async () => {
  const { container, registry } = await croot(dir);
  try {
    await assert.rejects(async () => container.get(ContainerProcessIdResolver).resolveProcessId('pidfiles:nobody-here'), { code: 'ERR_NO_CONTAINER' });
  } finally {
    await registry.stop();
  }
});

test('says why when its folder is missing', async () => {
  const { registry } = await croot(join(dir, 'missing'));
  try {
    const [status] = registry.statuses();
    assert.equal(status?.available, false);
    assert.match(status?.reason ?? '', /ENOENT/);
  } finally {
    await registry.stop();
  }
});
