import { execFileSync } from 'node:child_process';
import { settle } from '../../test/support/outcomes.js';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfig, type CrootConfig } from '../../core/config.js';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry } from '../../core/engine-registry.js';
import { CrootError } from '../../core/errors.js';
import { ContainerProcessIdResolver } from '../../core/resolvers.js';
import { LxcEngine, parseLxcInfo, type LxcEngineOptions } from './lxc-engine.js';
import { lxcEngineModule } from './lxc-engine-module.js';

/** PCP's QA tarball (see test/fixtures/lxc/README.md): var/lib/lxc/myvm/config from an LXC 1.0.6 host. */
const FIXTURE = resolve(__dirname, '../../test/fixtures/lxc/containers-lxc-1.0.6-root-001.tgz');

let work: string;
let lxcDir: string;

/** Writes an executable fake lxc-info printing `state` and `pid` for whatever `-n NAME` it is given. */
function fakeLxcInfo(file: string, state: string, pid?: number, extra = ''): string {
  const pidLine = pid === undefined ? '' : `echo "PID:            ${pid}"\n`;
  writeFileSync(
    file,
    `#!/bin/sh\n${extra}echo "Name:           $2"\necho "State:          ${state}"\n${pidLine}echo "CPU use:        0.41 seconds"\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** A proc root holding one process `pid` with start time `start` and the cgroup file `cgroup`. */
function fakeProc(root: string, pid: number, start: number, cgroup: string): string {
  mkdirSync(join(root, String(pid)), { recursive: true });
  const fields = Array.from({ length: 49 }, (_, i) => (i === 18 ? String(start) : '0'));
  writeFileSync(join(root, String(pid), 'stat'), `${pid} (init) S ${fields.join(' ')}\n`);
  writeFileSync(join(root, String(pid), 'cgroup'), cgroup);
  return root;
}

function engineWith(env: Record<string, string | undefined>, options?: LxcEngineOptions, config: Partial<CrootConfig> = {}): LxcEngine {
  return new LxcEngine(defaultConfig({ ...config, env: { PATH: process.env.PATH, ...env } }), options);
}

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'croot-t-lxc-'));
  execFileSync('tar', ['-xzf', FIXTURE, '-C', work]);
  lxcDir = join(work, 'var/lib/lxc');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('parseLxcInfo', () => {
  it('reads the state and the PID from lxc-info lines', () => {
    expect(parseLxcInfo('Name:           myvm\nState:          RUNNING\nPID:            17297\nCPU use:        1.5 seconds\n')).toEqual({
      state: 'RUNNING',
      pid: 17297,
    });
  });

  it('gives no PID for a stopped container', () => {
    expect(parseLxcInfo('Name:           myvm\nState:          STOPPED\n')).toEqual({ state: 'STOPPED' });
  });

  it('ignores a PID that is not a number', () => {
    expect(parseLxcInfo('State: RUNNING\nPID: none\n')).toEqual({ state: 'RUNNING' });
  });
});

describe('LxcEngine', () => {
  it("reports PCP's QA container myvm with the values 761.out expects (name myvm, running 1, pid 17297, cgroup /lxc/myvm)", async () => {
    // LXC 1.0.6 placed a container in /lxc/NAME of every v1 hierarchy; the hint is what the proc root shows.
    const proc = fakeProc(join(work, 'proc'), 17297, 4242, '4:memory:/lxc/myvm\n1:name=systemd:/lxc/myvm\n');
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 17297) }, undefined, { procRoot: proc });
    const records = await engine.containers();
    expect(records).toHaveLength(1);
    const [myvm] = records;
    expect(myvm).toMatchObject({
      engine: 'lxc',
      id: 'myvm',
      names: ['myvm'],
      running: true,
      paused: false,
      pid: 17297,
      pidStartTime: 4242,
      cgroupHint: 'lxc/myvm',
    });
    expect(engine.status()).toMatchObject({ engine: 'lxc', available: true });
  });

  it('takes the cgroup hint from the proc root, so LXC 4 and later show lxc.payload.NAME', async () => {
    const proc = fakeProc(join(work, 'proc'), 17297, 99, '4:memory:/lxc.payload.myvm\n0::/lxc.payload.myvm\n');
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 17297) }, undefined, { procRoot: proc });
    expect(await engine.containers()).toMatchObject([{ id: 'myvm', pid: 17297, cgroupHint: 'lxc.payload.myvm' }]);
  });

  it('gives no cgroup hint and no start time when the PID is not in the proc root', async () => {
    const proc = join(work, 'proc');
    mkdirSync(proc);
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 17297) }, undefined, { procRoot: proc });
    const [myvm] = await engine.containers();
    expect(myvm).toMatchObject({ id: 'myvm', running: true, pid: 17297 });
    expect(myvm?.cgroupHint).toBeUndefined();
    expect(myvm?.pidStartTime).toBeUndefined();
  });

  it('asks lxc-info about the listed directory (-P) for the state and PID only (-s -p)', async () => {
    const args = join(work, 'args');
    const info = fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 1, `printf "%s\\n" "$*" >${args}\n`);
    await engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: info }).containers();
    expect(readFileSync(args, 'utf8').trim()).toBe(`-n myvm -P ${lxcDir} -s -p`);
  });

  it('ignores a directory without a config file, as lxc-ls does, and sees it once the config is written', async () => {
    const calls = join(work, 'calls');
    const info = fakeLxcInfo(join(work, 'lxc-info'), 'STOPPED', undefined, `echo "$2" >>${calls}\n`);
    mkdirSync(join(lxcDir, 'half-made'));
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: info }, { cacheMs: 20 });
    expect((await engine.containers()).map((r) => r.id)).toEqual(['myvm']);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['myvm']);
    expect(engine.status().reason).not.toContain('failed');

    writeFileSync(join(lxcDir, 'half-made', 'config'), 'lxc.uts.name = half-made\n');
    await new Promise((r) => setTimeout(r, 40));
    expect((await engine.containers()).map((r) => r.id)).toEqual(['half-made', 'myvm']);
  });

  it('reports a STOPPED container as not running, without a PID', async () => {
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'STOPPED') });
    const [myvm] = await engine.containers();
    expect(myvm).toMatchObject({ id: 'myvm', running: false });
    expect(myvm?.pid).toBeUndefined();
  });

  it('reports a FROZEN container as running and paused', async () => {
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'FROZEN', 4242) });
    expect(await engine.containers()).toMatchObject([{ id: 'myvm', running: true, paused: true, pid: 4242 }]);
  });

  it('is unavailable, with the reason, and lists no containers when lxc-info is missing', async () => {
    const missing = join(work, 'no-such-dir/lxc-info');
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: missing });
    expect(await engine.containers()).toEqual([]);
    const status = engine.status();
    expect(status.available).toBe(false);
    expect(status.reason).toContain(missing);
    expect(status.reason).toContain('not found');
  });

  it('is unavailable when lxc-info is not on PATH', async () => {
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: undefined, PATH: join(work, 'empty-bin') });
    expect(await engine.containers()).toEqual([]);
    expect(engine.status()).toMatchObject({ available: false });
    expect(engine.status().reason).toContain('lxc-info not found');
  });

  it('is unavailable when the LXC directory does not exist', async () => {
    const dir = join(work, 'no-such-lxc');
    const engine = engineWith({ PCP_LXC_DIR: dir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 1) });
    expect(await engine.containers()).toEqual([]);
    expect(engine.status().available).toBe(false);
    expect(engine.status().reason).toContain(dir);
  });

  it('runs lxc-info at most once per container within the cache time and returns the same array while nothing changed', async () => {
    const calls = join(work, 'calls');
    const info = fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 17297, `echo "$2" >>${calls}\n`);
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: info }, { cacheMs: 300 });
    const first = await engine.containers();
    const again = await Promise.all([engine.containers(), engine.containers(), engine.containers()]);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['myvm']);
    for (const a of again) expect(a).toBe(first);

    await new Promise((r) => setTimeout(r, 350));
    const later = await engine.containers();
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['myvm', 'myvm']);
    expect(later).toBe(first);
  });

  it('re-lists the directory when a container is added and follows a state change', async () => {
    const infoFile = join(work, 'lxc-info');
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(infoFile, 'RUNNING', 17297) }, { cacheMs: 50 });
    const first = await engine.containers();
    expect(first.map((r) => r.id)).toEqual(['myvm']);

    mkdirSync(join(lxcDir, 'web2'));
    writeFileSync(join(lxcDir, 'web2', 'config'), 'lxc.uts.name = web2\n');
    fakeLxcInfo(infoFile, 'STOPPED');
    await new Promise((r) => setTimeout(r, 80));
    const second = await engine.containers();
    expect(second).not.toBe(first);
    expect(second.map((r) => [r.id, r.running])).toEqual([
      ['myvm', false],
      ['web2', false],
    ]);
  });

  it('kills an lxc-info that hangs and reports the container as not running', async () => {
    const info = join(work, 'lxc-info');
    writeFileSync(info, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(info, 0o755);
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: info }, { timeoutMs: 200 });
    const started = Date.now();
    const records = await engine.containers();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(records).toMatchObject([{ id: 'myvm', running: false }]);
    expect(engine.status().reason).toContain('1 lxc-info call(s) failed');
  });

  it('refuses a lookup whose signal is already aborted', async () => {
    const engine = engineWith({ PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 1) });
    const aborted = AbortSignal.abort();
    await expect(engine.containers(aborted)).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('is found through the registry, and the resolvers answer ERR_NOT_RUNNING because PID 17297 is not in the proc root', async () => {
    // 761.out's PID belongs to the host the fixture came from; croot checks /proc before answering.
    const emptyProc = join(work, 'proc');
    mkdirSync(emptyProc);
    const container = createCrootContainer({
      config: {
        procRoot: emptyProc,
        env: { PATH: process.env.PATH, PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo(join(work, 'lxc-info'), 'RUNNING', 17297) },
      },
      modules: [lxcEngineModule],
    });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(registry.ids()).toEqual(['lxc']);
    expect(await registry.lookup('lxc:myvm')).toMatchObject({ engine: 'lxc', id: 'myvm', pid: 17297, running: true });
    const pids = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    const err = await settle(() => pids.resolveProcessId('myvm')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrootError);
    expect((err as CrootError).code).toBe('ERR_NOT_RUNNING');
    await registry.stop();
  });
});
