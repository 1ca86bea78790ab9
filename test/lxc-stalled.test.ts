/**
 * A hanging lxc-info delays nobody: with the LXC engine (PCP's QA tarball and
 * an lxc-info that never ends) and the static engine (a real sleeper
 * process) in one registry, a request for the static container is answered
 * while lxc-info is still hanging.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { LxcEngineOptions, lxcEngineModule } from '../engines/lxc/index.js';
import { staticEngineModule } from '../engines/static/index.js';
import { codeOf, eventually, settle } from './support/outcomes.js';
import { statFields } from './support/processes.js';

const FIXTURE = join(__dirname, 'fixtures', 'lxc', 'containers-lxc-1.0.6-root-001.tgz');

describe('a hanging lxc-info', () => {
  let work: string;
  let sleeper: ChildProcess;
  let registry: EngineRegistry | undefined;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'croot-t-lxc-stall-'));
    execFileSync('tar', ['-xzf', FIXTURE, '-C', work]);
    sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' });
  });

  afterEach(async () => {
    await registry?.stop();
    sleeper.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('does not delay a request for a static container in the same registry', async () => {
    const pidfile = join(work, 'lxc-info.pid');
    const lxcInfo = join(work, 'lxc-info');
    writeFileSync(lxcInfo, `#!/bin/sh\necho $$ >${pidfile}\nexec sleep 1000\n`);
    chmodSync(lxcInfo, 0o755);
    const c = createCrootContainer({
      config: {
        env: { PATH: process.env.PATH, PCP_LXC_DIR: join(work, 'var/lib/lxc'), PCP_LXC_INFO: lxcInfo },
        staticContainers: [{ name: 'box', pid: sleeper.pid as number }],
      },
      modules: [lxcEngineModule, staticEngineModule],
    });
    // lxc-info is given longer than a request waits, so the request's wait is what ends first.
    c.bind<LxcEngineOptions>(LxcEngineOptions).toConstantValue({ timeoutMs: 600000 });
    registry = c.get<EngineRegistry>(EngineRegistry);
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    void registry.start();

    // lxc-info is running and has not answered...
    // Once its whole line is written (the shell makes the pid file before it writes).
    const hung = await eventually(async () => {
      const text = existsSync(pidfile) ? readFileSync(pidfile, 'utf8') : '';
      return /^\d+\n$/.test(text) ? Number(text) : undefined;
    });
    // ...and the static container is answered meanwhile; LXC's names are listed, their state not known:
    // a request for one waits (at most the first-load wait) and is never told "not running".
    expect(await settle(() => pids.resolveProcessId('box'))).toBe(sleeper.pid);
    expect(registry.containers().find((c) => c.id === 'myvm')?.record).toMatchObject({ running: false, pending: true });
    expect(await codeOf(() => pids.resolveProcessId('lxc:myvm'))).toBe('ERR_ENGINE_LOADING');
    expect(statFields(hung)?.[0]).toMatch(/^[RS]$/);
  });
});
