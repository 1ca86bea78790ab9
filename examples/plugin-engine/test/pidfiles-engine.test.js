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

test('knows no container that has no pidfile', async () => {
  const { container, registry } = await croot(dir);
  try {
    await assert.rejects(container.get(ContainerProcessIdResolver).resolveProcessId('pidfiles:nobody-here'), { code: 'ERR_NO_CONTAINER' });
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
