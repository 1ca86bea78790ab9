import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Container } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer, type RegistryEvent } from '../../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';
import { codeOf, eventually, settle } from '../../test/support/outcomes.js';
import { LossyWatcher } from '../../test/support/lossy-watcher.js';
import { RefusingWatcher } from '../../test/support/refusing-watcher.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { statFields } from '../../test/support/processes.js';
import { LxcEngine, LxcEngineOptions } from './lxc-engine.js';
import { cgroupMountPoints } from './lxc-cgroup-watch.js';
import { parseLxcInfo } from './lxc-info-runner.js';
import { lxcEngineModule } from './lxc-engine-module.js';
import { lxcRecordFrom, sameLxcRecord } from './lxc-record.js';

/** PCP's QA tarball (see test/fixtures/lxc/README.md): var/lib/lxc/myvm/config from an LXC 1.0.6 host. */
const FIXTURE = resolve(__dirname, '../../test/fixtures/lxc/containers-lxc-1.0.6-root-001.tgz');

let work: string;
let lxcDir: string;
let cgroupRoot: string;
let answers: string;
let calls: string;
const containers: Container[] = [];

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'croot-t-lxc-'));
  execFileSync('tar', ['-xzf', FIXTURE, '-C', work]);
  lxcDir = join(work, 'var/lib/lxc');
  cgroupRoot = join(work, 'cgroup');
  answers = join(work, 'answers');
  calls = join(work, 'calls');
  mkdirSync(cgroupRoot);
  mkdirSync(answers);
});

afterEach(async () => {
  for (const c of containers.splice(0)) await c.get<EngineRegistry>(EngineRegistry).stop();
  rmSync(work, { recursive: true, force: true });
});

/**
 * A fake lxc-info in PCP's QA style (`Name:`, `State:`, `PID:`, `CPU use:`)
 * whose answer for a container is the file answers/NAME (STOPPED when there
 * is none); it logs its arguments to `calls`.
 */
function fakeLxcInfo(extra = ''): string {
  const file = join(work, 'lxc-info');
  writeFileSync(
    file,
    `#!/bin/sh\necho "$*" >>${calls}\n${extra}echo "Name:           $2"\ncat "${answers}/$2" 2>/dev/null || echo "State:          STOPPED"\necho "CPU use:        0.41 seconds"\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** What the fake lxc-info says about `name` from now on (written whole, then moved in). */
function answer(name: string, state: string, pid?: number): void {
  writeFileSync(join(answers, '.next'), `State:          ${state}\n${pid === undefined ? '' : `PID:            ${pid}\n`}`);
  renameSync(join(answers, '.next'), join(answers, name));
}

function callsFor(name: string): number {
  return existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter((l) => l.startsWith(`-n ${name} `)).length : 0;
}

/** A proc root holding one process `pid` with start time `start` and the cgroup file `cgroup`. */
function fakeProc(pid: number, start: number, cgroup: string): string {
  const root = join(work, 'proc');
  mkdirSync(join(root, String(pid)), { recursive: true });
  const fields = Array.from({ length: 49 }, (_, i) => (i === 18 ? String(start) : '0'));
  writeFileSync(join(root, String(pid), 'stat'), `${pid} (init) S ${fields.join(' ')}\n`);
  writeFileSync(join(root, String(pid), 'cgroup'), cgroup);
  return root;
}

interface Croot {
  readonly registry: EngineRegistry;
  readonly pids: ContainerProcessIdResolver;
  readonly engine: LxcEngine;
}

async function croot(
  env: Record<string, string | undefined>,
  options: LxcEngineOptions = {},
  procRoot = join(work, 'proc'),
  watcher?: DirectoryWatcher,
  registryOptions: EngineRegistryOptions = {},
): Promise<Croot> {
  const c = createCrootContainer({ config: { procRoot, env: { PATH: process.env.PATH, PCP_LXC_DIR: lxcDir, ...env } }, modules: [lxcEngineModule] });
  if (watcher !== undefined) c.bind<DirectoryWatcher>(DirectoryWatcher).toConstantValue(watcher);
  c.bind<LxcEngineOptions>(LxcEngineOptions).toConstantValue({ cgroupRoots: [cgroupRoot], ...options });
  c.bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 600000, ...registryOptions });
  containers.push(c);
  const registry = c.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  await registry.ready();
  return { registry, pids: c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver), engine: c.get(LxcEngine) };
}

function found(registry: EngineRegistry, ref: string): IndexedContainer {
  return registry.lookup(ref) as IndexedContainer;
}

/** Waits until the index's `name` satisfies `test`. */
function until(registry: EngineRegistry, name: string, test: (c: IndexedContainer) => boolean): Promise<IndexedContainer> {
  return eventually(async () => {
    const c = registry.containers().find((x) => x.id === name);
    return c !== undefined && test(c) ? c : undefined;
  });
}

function status(registry: EngineRegistry): { available: boolean; reason: string } {
  const s = registry.statuses().find((x) => x.engine === 'lxc');
  if (s === undefined) throw new Error('no lxc status');
  return s;
}

/**
 * A real watcher that runs `before(dir)` just before it watches `dir`: a
 * change made there then is one made between the engine's look at the folder
 * and its watch of it, for which no event comes.
 */
class BeforeWatchWatcher implements DirectoryWatcher {
  private readonly inner = new NodeDirectoryWatcher();
  constructor(private readonly before: (dir: string) => void) {}
  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    this.before(dir);
    return this.inner.watch(dir, onEvent);
  }
}

/** A LossyWatcher that also keeps how many watches are open on each folder. */
class CountingLossyWatcher extends LossyWatcher {
  readonly active = new Map<string, number>();
  override watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    const end = super.watch(dir, onEvent);
    this.active.set(dir, (this.active.get(dir) ?? 0) + 1);
    let ended = false;
    return () => {
      if (!ended) this.active.set(dir, (this.active.get(dir) ?? 0) - 1);
      ended = true;
      end();
    };
  }
}

/** A real watcher that keeps every event it has handed to croot (after croot's handler returned). */
class RecordingWatcher implements DirectoryWatcher {
  readonly delivered: DirectoryEvent[] = [];
  private readonly inner = new NodeDirectoryWatcher();
  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    return this.inner.watch(dir, (event) => {
      onEvent(event);
      this.delivered.push(event);
    });
  }
}

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
    expect(parseLxcInfo('State: RUNNING\nPID: x12\n')).toEqual({ state: 'RUNNING' });
  });

  it('takes the first State and PID lines, in any case and spacing, and nothing else', () => {
    expect(parseLxcInfo('  state :  running  \npid:12x\nPID:\t 42 \nState: STOPPED\nPID: 43\nIP: 10.0.0.2\n')).toEqual({ state: 'RUNNING', pid: 42 });
    expect(parseLxcInfo('Name: myvm\nCPU use: 0.41 seconds\n')).toEqual({});
  });
});

describe('lxcRecordFrom', () => {
  // LXC's states (lxc_state_t): the init process exists from RUNNING until STOPPED, through a freeze and a stop under way.
  it.each([
    ['RUNNING', true, false],
    ['FREEZING', true, true],
    ['FROZEN', true, true],
    ['THAWED', true, false],
    ['STOPPING', true, false],
    ['STARTING', false, false],
    ['ABORTING', false, false],
    ['STOPPED', false, false],
  ])('%s with a PID: running %s, paused %s', (state, running, paused) => {
    const record = lxcRecordFrom('web', { state, pid: 4242 });
    expect(record).toMatchObject({ engine: 'lxc', id: 'web', names: ['web'], running, paused, restarting: false, state, source: 'lxc-info' });
    expect(record.pid).toBe(running ? 4242 : undefined);
  });

  it('is not running without a PID, or with PID 0, whatever the state says', () => {
    const facts = (r: ReturnType<typeof lxcRecordFrom>): unknown => [r.running, r.paused, r.pid, r.state];
    expect(facts(lxcRecordFrom('web', { state: 'RUNNING' }))).toEqual([false, false, undefined, 'RUNNING']);
    expect(facts(lxcRecordFrom('web', { state: 'FROZEN', pid: 0 }))).toEqual([false, false, undefined, 'FROZEN']);
    expect(facts(lxcRecordFrom('web', { pid: 4242 }))).toEqual([false, false, undefined, undefined]);
  });

  it('tells apart two answers that differ in state, PID or pause only', () => {
    const running = lxcRecordFrom('web', { state: 'RUNNING', pid: 1 });
    expect(sameLxcRecord(running, lxcRecordFrom('web', { state: 'RUNNING', pid: 1 }))).toBe(true);
    expect(sameLxcRecord(running, lxcRecordFrom('web', { state: 'RUNNING', pid: 2 }))).toBe(false);
    expect(sameLxcRecord(running, lxcRecordFrom('web', { state: 'THAWED', pid: 1 }))).toBe(false);
    expect(sameLxcRecord(running, { ...running, paused: true })).toBe(false);
    expect(sameLxcRecord(lxcRecordFrom('web', { state: 'STOPPED' }), lxcRecordFrom('web', { state: 'ABORTING' }))).toBe(false);
    expect(sameLxcRecord(running, { ...running, source: 'directory' })).toBe(false);
    expect(sameLxcRecord(running, { ...running, pending: true })).toBe(false);
    expect(sameLxcRecord(running, { ...running, running: false })).toBe(false);
  });
});

describe('cgroupMountPoints', () => {
  it('gives the mount points of cgroup and cgroup2 file systems, escapes decoded, others left out', () => {
    const mountinfo = [
      '25 1 0:23 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755',
      '26 25 0:24 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
      '27 25 0:25 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory',
      '28 25 0:26 / /mnt/with\\040space rw - cgroup cgroup rw,pids',
      '',
    ].join('\n');
    expect(cgroupMountPoints(mountinfo)).toEqual(['/sys/fs/cgroup/unified', '/sys/fs/cgroup/memory', '/mnt/with space']);
  });
});

describe('LxcEngine', () => {
  it("reports PCP's QA container myvm with the values 761.out expects (name myvm, running 1, pid 17297, cgroup /lxc/myvm)", async () => {
    // LXC 1.0.6 placed a container in /lxc/NAME of every v1 hierarchy; the registry reads it from the proc root.
    fakeProc(17297, 4242, '4:memory:/lxc/myvm\n1:name=systemd:/lxc/myvm\n');
    answer('myvm', 'RUNNING', 17297);
    const { registry, pids } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    const myvm = await until(registry, 'myvm', (c) => c.running);
    expect(myvm).toMatchObject({ engine: 'lxc', id: 'myvm', names: ['myvm'], running: true, paused: false, restarting: false, pid: 17297, state: 'RUNNING' });
    expect(myvm).toMatchObject({ liveness: 'running', cgroup: 'lxc/myvm', startTime: 4242 });
    expect(pids.resolveProcessId('lxc.myvm')).toBe(17297);
    expect(status(registry)).toMatchObject({ available: true });
  });

  it('asks lxc-info about the listed folder (-P) for the state and PID only (-s -p)', async () => {
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    expect(readFileSync(calls, 'utf8').trim()).toBe(`-n myvm -P ${lxcDir} -s -p`);
  });

  it('reports a STOPPED container as not running, without a PID', async () => {
    answer('myvm', 'STOPPED');
    const { registry, pids } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    const myvm = await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    expect(myvm).toMatchObject({ running: false, pid: undefined });
    expect(await codeOf(() => pids.resolveProcessId('myvm'))).toBe('ERR_NOT_RUNNING');
  });

  it('reports a FROZEN container as running and paused', async () => {
    fakeProc(4242, 77, '0::/lxc.payload.myvm\n');
    answer('myvm', 'FROZEN', 4242);
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    expect(await until(registry, 'myvm', (c) => c.state === 'FROZEN')).toMatchObject({ running: true, paused: true, pid: 4242, cgroup: 'lxc.payload.myvm' });
  });

  it('ignores a folder without a config file, as lxc-ls does, and takes it once the config is written', async () => {
    mkdirSync(join(lxcDir, 'half-made'));
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    expect(registry.containers().map((c) => c.id)).toEqual(['myvm']);
    writeFileSync(join(lxcDir, 'half-made', 'config'), 'lxc.uts.name = half-made\n');
    await until(registry, 'half-made', (c) => c.state === 'STOPPED');
  });

  it('lists the containers lxc-ls lists: a symbolic link to a container folder, no hidden folder', async () => {
    // A folder of configs LXC 5 loads (PCP's myvm has keys it no longer takes, so lxc-ls leaves it out).
    const dir = join(work, 'lxc-ls');
    const elsewhere = join(work, 'elsewhere');
    const make = (folder: string): void => {
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'config'), '');
    };
    const lxcLs = (): string[] => execFileSync('lxc-ls', ['-P', dir, '-1'], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').sort();
    make(join(dir, 'plain'));
    make(join(elsewhere, 'linked'));
    symlinkSync(join(elsewhere, 'linked'), join(dir, 'linked'));
    make(join(dir, '.hidden'));
    expect(lxcLs()).toEqual(['linked', 'plain']);
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo(), PCP_LXC_DIR: dir });
    await until(registry, 'linked', (c) => c.state === 'STOPPED');
    expect(registry.containers().map((c) => c.id).sort()).toEqual(lxcLs());
    // Made after the start: the same. The hidden one first, so its event has come when the link's has.
    make(join(dir, '.late'));
    make(join(elsewhere, 'late'));
    symlinkSync(join(elsewhere, 'late'), join(dir, 'late'));
    await until(registry, 'late', (c) => c.state === 'STOPPED');
    expect(lxcLs()).toEqual(['late', 'linked', 'plain']);
    expect(registry.containers().map((c) => c.id).sort()).toEqual(lxcLs());
  });

  it('watches a folder made without a config until the config is written, and no longer; a re-check meanwhile lists it as no container', async () => {
    const watcher = new CountingWatcher();
    const { registry, engine } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), watcher);
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    const half = join(lxcDir, 'half');
    mkdirSync(half);
    await eventually(async () => (watcher.active.get(half) === 1 ? true : undefined));
    await engine.recheck();
    expect(registry.containers().map((c) => c.id)).toEqual(['myvm']);
    writeFileSync(join(half, 'config'), 'lxc.uts.name = half\n');
    await until(registry, 'half', (c) => c.state === 'STOPPED');
    expect(watcher.active.has(half)).toBe(false);
  });

  it('takes a container whose config is written between its look at the new folder and its watch of it', async () => {
    const late = join(lxcDir, 'late');
    const watcher = new BeforeWatchWatcher((dir) => {
      if (dir === late) writeFileSync(join(late, 'config'), 'lxc.uts.name = late\n');
    });
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), watcher);
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    mkdirSync(late);
    await until(registry, 'late', (c) => c.state === 'STOPPED');
  });

  it('does not bring back a container destroyed while lxc-info was answering about it', async () => {
    // Logs the call; about myvm it answers only once the file "go" exists.
    const info = join(work, 'lxc-info');
    writeFileSync(info, `#!/bin/sh\necho "$*" >>${calls}\nif [ "$2" = myvm ]; then while [ ! -e ${work}/go ]; do sleep 0.02; done; fi\necho "State: STOPPED"\n`);
    chmodSync(info, 0o755);
    const { registry } = await croot({ PCP_LXC_INFO: info }, { concurrency: 1 });
    await eventually(async () => (callsFor('myvm') === 1 ? true : undefined));
    rmSync(join(lxcDir, 'myvm'), { recursive: true });
    await eventually(async () => (registry.containers().length === 0 ? true : undefined));
    // One lxc-info at a time: the marker's runs once myvm's answer has been handled.
    mkdirSync(join(lxcDir, 'marker'));
    writeFileSync(join(lxcDir, 'marker', 'config'), '');
    await until(registry, 'marker', (c) => c.record.pending === true);
    writeFileSync(join(work, 'go'), '');
    await until(registry, 'marker', (c) => c.state === 'STOPPED');
    expect(registry.containers().map((c) => c.id)).toEqual(['marker']);
  });

  it('follows lxc-create and lxc-destroy: a folder with a config coming, then going', async () => {
    const { registry, pids } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    mkdirSync(join(work, 'staging', 'web2'), { recursive: true });
    writeFileSync(join(work, 'staging', 'web2', 'config'), 'lxc.uts.name = web2\n');
    renameSync(join(work, 'staging', 'web2'), join(lxcDir, 'web2'));
    await until(registry, 'web2', (c) => c.state === 'STOPPED');
    rmSync(join(lxcDir, 'web2'), { recursive: true });
    await eventually(async () => ((await codeOf(() => pids.resolveProcessId('web2'))) === 'ERR_NO_CONTAINER' ? true : undefined));
  });

  it('follows a start and a stop from the cgroup folders LXC makes and removes, asking lxc-info about that container only', async () => {
    fakeProc(5150, 99, '0::/lxc.payload.myvm\n');
    mkdirSync(join(lxcDir, 'other'));
    writeFileSync(join(lxcDir, 'other', 'config'), 'lxc.uts.name = other\n');
    const { registry, pids } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    await until(registry, 'other', (c) => c.state === 'STOPPED');

    answer('myvm', 'RUNNING', 5150);
    mkdirSync(join(cgroupRoot, 'lxc.monitor.myvm'));
    mkdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
    await eventually(async () => ((await settle(() => pids.resolveProcessId('myvm')).catch(() => 0)) === 5150 ? true : undefined));

    answer('myvm', 'STOPPED');
    rmdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
    rmdirSync(join(cgroupRoot, 'lxc.monitor.myvm'));
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    expect(callsFor('other')).toBe(1);
  });

  it("ignores other cgroup folders at a hierarchy's root, even one named like a container", async () => {
    fakeProc(5167, 86, '0::/lxc.payload.other\n');
    mkdirSync(join(lxcDir, 'other'));
    writeFileSync(join(lxcDir, 'other', 'config'), '');
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    await until(registry, 'other', (c) => c.state === 'STOPPED');
    mkdirSync(join(cgroupRoot, 'system.slice'));
    mkdirSync(join(cgroupRoot, 'myvm'));
    // A start after them in the same folder: once it is answered, the folders before it have been seen.
    answer('other', 'RUNNING', 5167);
    mkdirSync(join(cgroupRoot, 'lxc.payload.other'));
    await until(registry, 'other', (c) => c.running);
    expect(callsFor('myvm')).toBe(1);
  });

  it('follows the lxc/NAME layout of LXC 3 and earlier, the lxc folder made at the first start', async () => {
    fakeProc(5151, 98, '4:memory:/lxc/myvm\n');
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    answer('myvm', 'RUNNING', 5151);
    mkdirSync(join(cgroupRoot, 'lxc'));
    mkdirSync(join(cgroupRoot, 'lxc', 'myvm'));
    expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5151, liveness: 'running', cgroup: 'lxc/myvm' });
    answer('myvm', 'STOPPED');
    rmdirSync(join(cgroupRoot, 'lxc', 'myvm'));
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
  });

  it('asks again, without a new signal, while lxc-info reports a passing state such as STARTING', async () => {
    fakeProc(5152, 97, '0::/lxc.payload.myvm\n');
    answer('myvm', 'STARTING');
    // The second answer onwards: RUNNING.
    const info = fakeLxcInfo(`[ "$(grep -c myvm ${calls})" -ge 2 ] && printf 'State: RUNNING\\nPID: 5152\\n' >${answers}/myvm\n`);
    const { registry } = await croot({ PCP_LXC_INFO: info });
    expect(await until(registry, 'myvm', (c) => c.state === 'RUNNING')).toMatchObject({ running: true, pid: 5152 });
  });

  it('runs lxc-info once per container at load and not again while nothing signals a change', async () => {
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    // A container created later is the marker: once it is answered, every earlier signal has been handled.
    mkdirSync(join(lxcDir, 'marker'));
    writeFileSync(join(lxcDir, 'marker', 'config'), '');
    await until(registry, 'marker', (c) => c.state === 'STOPPED');
    expect([callsFor('myvm'), callsFor('marker')]).toEqual([1, 1]);
  });

  it('is unavailable, with the reason, and lists no containers when lxc-info is missing', async () => {
    const missing = join(work, 'no-such-dir/lxc-info');
    const { registry } = await croot({ PCP_LXC_INFO: missing });
    expect(registry.containers()).toEqual([]);
    expect(status(registry).available).toBe(false);
    expect(status(registry).reason).toContain(`${missing} not found`);
  });

  it('is unavailable when lxc-info is not on PATH', async () => {
    const { registry } = await croot({ PCP_LXC_INFO: undefined, PATH: join(work, 'empty-bin') });
    expect(registry.containers()).toEqual([]);
    expect(status(registry)).toMatchObject({ available: false, reason: expect.stringContaining('lxc-info not found') });
  });

  it('is unavailable while the LXC folder does not exist, and reads it once it appears', async () => {
    const later = join(work, 'not', 'yet', 'lxc');
    answer('myvm', 'STOPPED');
    const c = createCrootContainer({ config: { procRoot: join(work, 'proc'), env: { PATH: process.env.PATH, PCP_LXC_DIR: later, PCP_LXC_INFO: fakeLxcInfo() } }, modules: [lxcEngineModule] });
    c.bind<LxcEngineOptions>(LxcEngineOptions).toConstantValue({ cgroupRoots: [cgroupRoot] });
    containers.push(c);
    const registry = c.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    await registry.ready();
    expect(registry.containers()).toEqual([]);
    expect(status(registry)).toMatchObject({ available: false, reason: expect.stringContaining(later) });
    mkdirSync(join(work, 'not', 'yet'), { recursive: true });
    renameSync(lxcDir, later);
    await until(registry, 'myvm', (x) => x.state === 'STOPPED');
    expect(status(registry).available).toBe(true);
  });

  it('waits for an absent LXC folder with one watch however many re-checks come, and reads it once when it appears', async () => {
    const later = join(work, 'not', 'yet', 'lxc');
    const watcher = new CountingWatcher();
    const { registry, engine } = await croot({ PCP_LXC_INFO: fakeLxcInfo(), PCP_LXC_DIR: later }, {}, join(work, 'proc'), watcher);
    await engine.recheck();
    await engine.recheck();
    expect(status(registry).available).toBe(false);
    // The nearest folder of the path that exists.
    expect(Object.fromEntries(watcher.active)).toEqual({ [work]: 1 });
    mkdirSync(join(work, 'not', 'yet'), { recursive: true });
    renameSync(lxcDir, later);
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    // A re-check waits for every lxc-info run under way: after it, the appearance's have all ended.
    await engine.recheck();
    expect(callsFor('myvm')).toBe(2);
  });

  describe('a hanging lxc-info', () => {
    /** An lxc-info that writes its PID to `pidfile` and never ends, through a child of its own (no exec). */
    function hangingLxcInfo(pidfile: string): string {
      const file = join(work, 'lxc-info');
      writeFileSync(file, `#!/bin/sh\necho $$ >${pidfile}\nsleep 1000\necho never\n`);
      chmodSync(file, 0o755);
      return file;
    }

    function alive(pid: number): boolean {
      const state = statFields(pid)?.[0];
      return state !== undefined && state !== 'Z';
    }

    /** Processes of process group `pgid` that have not exited (the kernel's /proc; zombies are dead). */
    /** The pid a script wrote to `file` (`echo $$ >file`), once the whole line is there: the shell makes the file before it writes. */
    function pidIn(file: string): number | undefined {
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      return /^\d+\n$/.test(text) ? Number(text) : undefined;
    }

    function groupMembers(pgid: number): number[] {
      return readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .map(Number)
        .filter((pid) => Number(statFields(pid)?.[2]) === pgid && alive(pid));
    }

    it('does not hold the first load: the names are pushed at once, and a request waits for lxc-info (bounded) instead of hearing "not running"', async () => {
      const pidfile = join(work, 'hung.pid');
      // The request's bound (the registry's first-load bound) made short: the test waits it out.
      const { registry, pids } = await croot({ PCP_LXC_INFO: hangingLxcInfo(pidfile) }, { timeoutMs: 600000 }, join(work, 'proc'), undefined, { firstLoadTimeoutMs: 200 });
      expect(registry.containers().find((c) => c.id === 'myvm')?.record).toMatchObject({ running: false, pending: true });
      const hung = await eventually(async () => pidIn(pidfile));
      expect(await codeOf(() => pids.resolveProcessId('myvm'))).toBe('ERR_ENGINE_LOADING');
      expect(alive(hung)).toBe(true);
    });

    it('kills the whole process group at the timeout and says so in the health', async () => {
      const pidfile = join(work, 'hung.pid');
      const { registry } = await croot({ PCP_LXC_INFO: hangingLxcInfo(pidfile) }, { timeoutMs: 300 });
      const hung = await eventually(async () => pidIn(pidfile));
      await eventually(async () => (status(registry).reason.includes('lxc-info failed for myvm (timed out after 300 ms)') ? true : undefined));
      expect(status(registry).available).toBe(true);
      // The script's own child (sleep) went with it: nothing of the group is left.
      await eventually(async () => (groupMembers(hung).length === 0 ? true : undefined));
      expect(found(registry, 'myvm').running).toBe(false);
    });

    it('kills at the timeout an lxc-info that ignores SIGTERM, and its child', async () => {
      const pidfile = join(work, 'hung.pid');
      const info = join(work, 'lxc-info');
      // SIGTERM ignored by the script and, inherited, by its sleep.
      writeFileSync(info, `#!/bin/sh\ntrap '' TERM\necho $$ >${pidfile}\nsleep 1000\necho never\n`);
      chmodSync(info, 0o755);
      const { registry } = await croot({ PCP_LXC_INFO: info }, { timeoutMs: 300 });
      const hung = await eventually(async () => pidIn(pidfile));
      await eventually(async () => (status(registry).reason.includes('lxc-info failed for myvm (timed out after 300 ms)') ? true : undefined));
      await eventually(async () => (groupMembers(hung).length === 0 ? true : undefined));
    });

    it('is killed when the engine stops', async () => {
      const pidfile = join(work, 'hung.pid');
      const { registry } = await croot({ PCP_LXC_INFO: hangingLxcInfo(pidfile) }, { timeoutMs: 600000 });
      const hung = await eventually(async () => pidIn(pidfile));
      // The script and its sleep.
      await eventually(async () => (groupMembers(hung).length === 2 ? true : undefined));
      await registry.stop();
      await eventually(async () => (groupMembers(hung).length === 0 ? true : undefined));
    });
  });

  it('ends every watch when it stops: the LXC folder, a half-made container folder, the cgroup folders, a wait for an absent folder', async () => {
    mkdirSync(join(cgroupRoot, 'lxc'));
    mkdirSync(join(lxcDir, 'half'));
    const watcher = new CountingWatcher();
    const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), watcher);
    await until(registry, 'myvm', (c) => c.state === 'STOPPED');
    expect(Object.fromEntries(watcher.active)).toEqual({ [lxcDir]: 1, [join(lxcDir, 'half')]: 1, [cgroupRoot]: 1, [join(cgroupRoot, 'lxc')]: 1 });
    const waiting = new CountingWatcher();
    const absent = await croot({ PCP_LXC_INFO: fakeLxcInfo(), PCP_LXC_DIR: join(work, 'not', 'yet') }, {}, join(work, 'proc'), waiting);
    expect(Object.fromEntries(waiting.active)).toEqual({ [work]: 1 });
    await registry.stop();
    await absent.registry.stop();
    expect(Object.fromEntries(watcher.active)).toEqual({});
    expect(Object.fromEntries(waiting.active)).toEqual({});
  });

  describe('.recheck', () => {
    it('lists again and asks lxc-info again, changing nothing in the index when nothing changed', async () => {
      answer('myvm', 'STOPPED');
      const { registry, engine } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      const events: RegistryEvent[] = [];
      registry.subscribe((e) => events.push(e));
      await engine.recheck();
      expect(callsFor('myvm')).toBe(2);
      expect(events).toEqual([]);
    });

    it('catches a restart no signal announced: the same state with another PID', async () => {
      fakeProc(5154, 95, '0::/lxc.payload.myvm\n');
      fakeProc(5155, 94, '0::/lxc.payload.myvm\n');
      answer('myvm', 'RUNNING', 5154);
      const { registry, engine, pids } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      await until(registry, 'myvm', (c) => c.pid === 5154);
      answer('myvm', 'RUNNING', 5155);
      await engine.recheck();
      expect(pids.resolveProcessId('myvm')).toBe(5155);
    });

    it('places no second watch: a start signalled after it runs lxc-info once', async () => {
      fakeProc(5172, 78, '0::/lxc.payload.myvm\n');
      // The parent folder of LXC 3 and earlier, there before croot: watched too; and a container folder lxc-create has not finished.
      mkdirSync(join(cgroupRoot, 'lxc'));
      mkdirSync(join(lxcDir, 'half'));
      const watcher = new CountingWatcher();
      const { registry, engine } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), watcher);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      const placed = watcher.placed;
      await engine.recheck();
      expect(watcher.placed).toBe(placed);
      expect(Object.fromEntries(watcher.active)).toEqual({ [lxcDir]: 1, [join(lxcDir, 'half')]: 1, [cgroupRoot]: 1, [join(cgroupRoot, 'lxc')]: 1 });
      answer('myvm', 'RUNNING', 5172);
      mkdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
      await until(registry, 'myvm', (c) => c.running);
      // A re-check waits for every lxc-info run about the container under way: the start's have all ended after it.
      await engine.recheck();
      // The first load, the two re-checks, and the start.
      expect(callsFor('myvm')).toBe(4);
    });

    it('leaves a container with an answer as it was, with no change in the index, when lxc-info then fails', async () => {
      fakeProc(5173, 77, '0::/lxc.payload.myvm\n');
      answer('myvm', 'RUNNING', 5173);
      const info = fakeLxcInfo(`[ -e ${work}/fail ] && { echo "$2: lxc.conf unreadable" >&2; exit 1; }\n`);
      const { registry, engine, pids } = await croot({ PCP_LXC_INFO: info });
      await until(registry, 'myvm', (c) => c.running);
      const events: RegistryEvent[] = [];
      registry.subscribe((e) => events.push(e));
      writeFileSync(join(work, 'fail'), '');
      await engine.recheck();
      expect(status(registry).reason).toBe(`reads ${lxcDir} with ${info} (1 container); lxc-info failed for myvm (exited with 1: myvm: lxc.conf unreadable)`);
      expect(events.filter((e) => e.kind !== 'health')).toEqual([]);
      expect(found(registry, 'myvm')).toMatchObject({ running: true, pid: 5173, state: 'RUNNING' });
      expect(pids.resolveProcessId('myvm')).toBe(5173);
    });

    it('catches a change no signal announced (a freeze)', async () => {
      fakeProc(5153, 96, '0::/lxc.payload.myvm\n');
      answer('myvm', 'RUNNING', 5153);
      const { registry, engine } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      await until(registry, 'myvm', (c) => c.state === 'RUNNING');
      answer('myvm', 'FROZEN', 5153);
      await engine.recheck();
      expect(found(registry, 'myvm')).toMatchObject({ running: true, paused: true, state: 'FROZEN' });
    });
  });

  describe('its health', () => {
    it('names the folder, the lxc-info it runs and how many containers it has, and nothing else when all is well', async () => {
      mkdirSync(join(lxcDir, 'other'));
      writeFileSync(join(lxcDir, 'other', 'config'), '');
      const info = fakeLxcInfo();
      const { registry } = await croot({ PCP_LXC_INFO: info });
      await until(registry, 'other', (c) => c.state === 'STOPPED');
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(status(registry)).toEqual(expect.objectContaining({ available: true, reason: `reads ${lxcDir} with ${info} (2 containers)` }));
    });

    it('names the first three containers lxc-info failed for, by name, and how many more', async () => {
      for (const name of ['a', 'b', 'c', 'd']) {
        mkdirSync(join(lxcDir, name));
        writeFileSync(join(lxcDir, name, 'config'), '');
      }
      const info = join(work, 'lxc-info');
      writeFileSync(info, `#!/bin/sh\necho "$2 doesn't exist" >&2\nexit 1\n`);
      chmodSync(info, 0o755);
      const { registry } = await croot({ PCP_LXC_INFO: info });
      const failed = (n: string): string => `${n} (exited with 1: ${n} doesn't exist)`;
      const want = `reads ${lxcDir} with ${info} (5 containers); lxc-info failed for ${failed('a')}, ${failed('b')}, ${failed('c')}, and 2 more`;
      await eventually(async () => (status(registry).reason === want ? true : undefined)).catch(() => expect(status(registry).reason).toBe(want));
      expect(status(registry).available).toBe(true);
    });

    it('says no cgroup folder is watched when its proc root has no mount table and no cgroup root is given', async () => {
      const info = fakeLxcInfo();
      const c = createCrootContainer({ config: { procRoot: join(work, 'proc'), env: { PATH: process.env.PATH, PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: info } }, modules: [lxcEngineModule] });
      containers.push(c);
      const registry = c.get<EngineRegistry>(EngineRegistry);
      await registry.start();
      await until(registry, 'myvm', (x) => x.state === 'STOPPED');
      expect(status(registry).reason).toBe(`reads ${lxcDir} with ${info} (1 container); no cgroup folder watched: starts and stops show at the next re-check`);
    });
  });

  describe('folders it cannot watch', () => {
    it('reads an LXC folder it cannot watch, says so, and finds a new container at the re-check', async () => {
      const info = fakeLxcInfo();
      const { registry, engine } = await croot({ PCP_LXC_INFO: info }, {}, join(work, 'proc'), new RefusingWatcher(new Map([[lxcDir, 'ENOSPC']])));
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(status(registry)).toMatchObject({
        available: true,
        reason: `reads ${lxcDir} with ${info} (1 container); cannot watch ${lxcDir} (watching ${lxcDir}: ENOSPC: System limit for number of file watchers reached, watch '${lxcDir}'); its changes show at the next re-check`,
      });
      mkdirSync(join(lxcDir, 'late'));
      writeFileSync(join(lxcDir, 'late', 'config'), '');
      await engine.recheck();
      expect(registry.containers().map((c) => c.id).sort()).toEqual(['late', 'myvm']);
    });

    it('says which cgroup root it cannot watch, and that starts then wait for the re-check', async () => {
      const info = fakeLxcInfo();
      const { registry } = await croot({ PCP_LXC_INFO: info }, {}, join(work, 'proc'), new RefusingWatcher(new Map([[cgroupRoot, 'ENOSPC']])));
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(status(registry).reason).toBe(
        `reads ${lxcDir} with ${info} (1 container); no cgroup folder watched: starts and stops show at the next re-check; ` +
          `cannot watch ${cgroupRoot} (watching ${cgroupRoot}: ENOSPC: System limit for number of file watchers reached, watch '${cgroupRoot}'); its changes show at the next re-check`,
      );
    });
  });

  describe('more of what LXC does', () => {
    it('asks about the folder as listed when PCP_LXC_DIR ends in slashes', async () => {
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo(), PCP_LXC_DIR: `${lxcDir}//` });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(readFileSync(calls, 'utf8').trim()).toBe(`-n myvm -P ${lxcDir} -s -p`);
    });

    it('finds lxc-info on PATH, passing over an empty entry and a file that is not executable', async () => {
      const noexec = join(work, 'noexec');
      const bin = join(work, 'bin');
      mkdirSync(noexec);
      mkdirSync(bin);
      writeFileSync(join(noexec, 'lxc-info'), '#!/bin/sh\nexit 3\n');
      renameSync(fakeLxcInfo(), join(bin, 'lxc-info'));
      answer('myvm', 'STOPPED');
      const { registry } = await croot({ PCP_LXC_INFO: undefined, PATH: `:${noexec}:${bin}:${process.env.PATH}` });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(status(registry)).toMatchObject({ available: true, reason: expect.stringContaining(`reads ${lxcDir} with lxc-info (1 container)`) });
    });

    it('says why lxc-info failed (its exit status and first line of stderr) and leaves the container not running', async () => {
      const info = join(work, 'lxc-info');
      writeFileSync(info, `#!/bin/sh\necho "$2 doesn't exist" >&2\necho "second line" >&2\nexit 1\n`);
      chmodSync(info, 0o755);
      const { registry, pids } = await croot({ PCP_LXC_INFO: info });
      await eventually(async () => (status(registry).reason.includes("lxc-info failed for myvm (exited with 1: myvm doesn't exist)") ? true : undefined));
      expect(status(registry).available).toBe(true);
      expect(await codeOf(() => pids.resolveProcessId('myvm'))).toBe('ERR_NOT_RUNNING');
    });

    it("reads no more than 64 KiB of lxc-info's output: a State line after 200 KB of other lines is not taken", async () => {
      fakeProc(5164, 89, '0::/lxc.payload.myvm\n');
      const info = join(work, 'lxc-info');
      // 2 000 lines of 100 bytes, then the answer.
      writeFileSync(info, `#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do printf '%099d\\n' 0; i=$((i+1)); done\necho "State: RUNNING"\necho "PID: 5164"\n`);
      chmodSync(info, 0o755);
      const { registry } = await croot({ PCP_LXC_INFO: info });
      const myvm = await until(registry, 'myvm', (c) => c.record.source === 'lxc-info');
      expect(myvm).toMatchObject({ running: false, state: undefined });
    });

    it('becomes unavailable when lxc-info disappears after the load, and lists nothing', async () => {
      const info = fakeLxcInfo();
      const { registry } = await croot({ PCP_LXC_INFO: info });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      rmSync(info);
      mkdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
      await eventually(async () => (status(registry).available === false ? true : undefined));
      expect(status(registry).reason).toContain(`${info} not found`);
      expect(registry.containers()).toEqual([]);
    });

    it('asks once more when a start is signalled while lxc-info is still answering about the container', async () => {
      fakeProc(5165, 88, '0::/lxc.payload.myvm\n');
      answer('myvm', 'STOPPED');
      // Reads its answer, logs the call, then prints the answer only once the file "go" exists.
      const info = join(work, 'lxc-info');
      writeFileSync(info, `#!/bin/sh\na=$(cat "${answers}/$2")\necho "$*" >>${calls}\nwhile [ ! -e ${work}/go ]; do sleep 0.02; done\necho "$a"\n`);
      chmodSync(info, 0o755);
      const watcher = new RecordingWatcher();
      const { registry } = await croot({ PCP_LXC_INFO: info }, {}, join(work, 'proc'), watcher);
      await eventually(async () => (callsFor('myvm') === 1 ? true : undefined));
      answer('myvm', 'RUNNING', 5165);
      mkdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
      await eventually(async () => (watcher.delivered.some((e) => e.name === 'lxc.payload.myvm') ? true : undefined));
      writeFileSync(join(work, 'go'), '');
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5165 });
      expect(callsFor('myvm')).toBe(2);
    });

    it('runs no more lxc-info children at once than its concurrency', async () => {
      for (const name of ['b', 'c', 'd']) {
        mkdirSync(join(lxcDir, name));
        writeFileSync(join(lxcDir, name, 'config'), '');
      }
      const running = join(work, 'running');
      mkdirSync(running);
      // Each child marks itself running, waits for the file go/NAME, and says RUNNING with PID 1.
      const info = join(work, 'lxc-info');
      writeFileSync(info, `#!/bin/sh\ntouch ${running}/$2\nwhile [ ! -e ${work}/go/$2 ]; do sleep 0.02; done\nrm ${running}/$2\necho "State: STOPPED"\n`);
      chmodSync(info, 0o755);
      mkdirSync(join(work, 'go'));
      const { registry } = await croot({ PCP_LXC_INFO: info }, { concurrency: 2 });
      const first = await eventually(async () => (readdirSync(running).length === 2 ? readdirSync(running) : undefined));
      for (const name of first) writeFileSync(join(work, 'go', name), '');
      const rest = ['b', 'c', 'd', 'myvm'].filter((n) => !first.includes(n));
      await eventually(async () => (readdirSync(running).sort().join() === rest.join() ? true : undefined));
      for (const name of rest) writeFileSync(join(work, 'go', name), '');
      for (const name of ['b', 'c', 'd', 'myvm']) await until(registry, name, (c) => c.state === 'STOPPED');
    });

    it('takes a start shown as NAME-1 (the name LXC uses when NAME is taken) as NAME', async () => {
      fakeProc(5160, 90, '0::/lxc.payload.myvm-1\n');
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      answer('myvm', 'RUNNING', 5160);
      mkdirSync(join(cgroupRoot, 'lxc.payload.myvm-1'));
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5160, cgroup: 'lxc.payload.myvm-1' });
    });

    it('follows the lxc/NAME layout when the lxc folder is there before croot', async () => {
      fakeProc(5163, 93, '4:memory:/lxc/myvm\n');
      mkdirSync(join(cgroupRoot, 'lxc'));
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      answer('myvm', 'RUNNING', 5163);
      mkdirSync(join(cgroupRoot, 'lxc', 'myvm'));
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5163, cgroup: 'lxc/myvm' });
    });

    it('follows the lxc folder (LXC 3 and earlier) removed and made again, with one watch on it, asking lxc-info about the container started only', async () => {
      fakeProc(5174, 76, '4:memory:/lxc/myvm\n');
      mkdirSync(join(cgroupRoot, 'lxc'));
      mkdirSync(join(lxcDir, 'other'));
      writeFileSync(join(lxcDir, 'other', 'config'), '');
      const watcher = new CountingWatcher();
      const { registry, engine } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), watcher);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      await until(registry, 'other', (c) => c.state === 'STOPPED');
      const parent = join(cgroupRoot, 'lxc');
      rmdirSync(parent);
      await eventually(async () => (watcher.active.has(parent) ? undefined : true));
      answer('myvm', 'RUNNING', 5174);
      mkdirSync(join(parent, 'myvm'), { recursive: true });
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5174, cgroup: 'lxc/myvm' });
      answer('myvm', 'STOPPED');
      rmdirSync(join(parent, 'myvm'));
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      // A re-check waits for every lxc-info run under way, and opens no second watch.
      await engine.recheck();
      expect(Object.fromEntries(watcher.active)).toEqual({ [lxcDir]: 1, [cgroupRoot]: 1, [parent]: 1 });
      // other: the first load and the re-check.
      expect(callsFor('other')).toBe(2);
    });

    it('watches a cgroup root again at the re-check after it went and came back (a remount)', async () => {
      fakeProc(5175, 75, '0::/lxc.payload.myvm\n');
      const watcher = new CountingWatcher();
      const { registry, engine } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), watcher);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      rmdirSync(cgroupRoot);
      await eventually(async () => (watcher.active.has(cgroupRoot) ? undefined : true));
      mkdirSync(cgroupRoot);
      await engine.recheck();
      expect(watcher.active.get(cgroupRoot)).toBe(1);
      answer('myvm', 'RUNNING', 5175);
      mkdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5175 });
    });

    it('follows the lxc.payload/NAME layout, a parent folder made with its first container already in it', async () => {
      fakeProc(5161, 91, '4:memory:/lxc.payload/myvm\n');
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      answer('myvm', 'RUNNING', 5161);
      mkdirSync(join(work, 'staging', 'lxc.payload', 'myvm'), { recursive: true });
      renameSync(join(work, 'staging', 'lxc.payload'), join(cgroupRoot, 'lxc.payload'));
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5161, cgroup: 'lxc.payload/myvm' });
    });

    it('finds the cgroup roots in the mount table of its proc root when none are given', async () => {
      const proc = join(work, 'proc');
      fakeProc(5162, 92, '0::/lxc.payload.myvm\n');
      mkdirSync(join(proc, 'self'), { recursive: true });
      writeFileSync(join(proc, 'self', 'mountinfo'), `30 25 0:26 / ${cgroupRoot.replace(/ /g, '\\040')} rw,nosuid - cgroup2 cgroup2 rw\n31 25 0:27 / ${work} rw - tmpfs tmpfs rw\n`);
      const c = createCrootContainer({ config: { procRoot: proc, env: { PATH: process.env.PATH, PCP_LXC_DIR: lxcDir, PCP_LXC_INFO: fakeLxcInfo() } }, modules: [lxcEngineModule] });
      c.bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 600000 });
      containers.push(c);
      const registry = c.get<EngineRegistry>(EngineRegistry);
      await registry.start();
      await registry.ready();
      await until(registry, 'myvm', (x) => x.state === 'STOPPED');
      answer('myvm', 'RUNNING', 5162);
      mkdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
      expect(await until(registry, 'myvm', (x) => x.running)).toMatchObject({ pid: 5162 });
      expect(status(registry).reason).not.toContain('no cgroup folder watched');
    });

    it('says when no cgroup folder can be watched, so starts and stops wait for the re-check', async () => {
      const missing = join(work, 'no-cgroup');
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, { cgroupRoots: [missing] });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(status(registry).reason).toContain('no cgroup folder watched');
      expect(status(registry).reason).toContain(`cannot watch ${missing}`);
      expect(status(registry).available).toBe(true);
    });

    it('drops every container when the LXC folder goes, and reads it again when it comes back', async () => {
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      const saved = join(work, 'saved-lxc');
      renameSync(lxcDir, saved);
      await eventually(async () => (registry.containers().length === 0 && !status(registry).available ? true : undefined));
      renameSync(saved, lxcDir);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(status(registry).available).toBe(true);
    });

    it('drops at the re-check a container whose config was removed (lxc-ls no longer lists it), and takes it again once the config is written back', async () => {
      const info = fakeLxcInfo();
      const { registry, engine } = await croot({ PCP_LXC_INFO: info });
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      const config = readFileSync(join(lxcDir, 'myvm', 'config'));
      // Only the LXC folder itself is watched for a container that has its config: the removal shows at the re-check.
      rmSync(join(lxcDir, 'myvm', 'config'));
      await engine.recheck();
      expect(registry.containers()).toEqual([]);
      expect(status(registry).reason).toBe(`reads ${lxcDir} with ${info} (0 containers)`);
      writeFileSync(join(lxcDir, 'myvm', 'config'), config);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      expect(status(registry).reason).toBe(`reads ${lxcDir} with ${info} (1 container)`);
    });

    it('forgets a half-made folder removed before its config was written, and takes it if made again', async () => {
      mkdirSync(join(lxcDir, 'half'));
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() });
      rmdirSync(join(lxcDir, 'half'));
      mkdirSync(join(lxcDir, 'half'));
      writeFileSync(join(lxcDir, 'half', 'config'), '');
      await until(registry, 'half', (c) => c.state === 'STOPPED');
    });
  });

  describe('lost events', () => {
    it('lists the LXC folder again when it reports an overflow', async () => {
      const lossy = new LossyWatcher();
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), lossy);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      lossy.losing = true;
      mkdirSync(join(lxcDir, 'lost'));
      writeFileSync(join(lxcDir, 'lost', 'config'), '');
      rmSync(join(lxcDir, 'myvm'), { recursive: true });
      await eventually(async () => (['lost', 'myvm'].every((n) => lossy.lost.some((l) => l.dir === lxcDir && l.event.name === n)) ? true : undefined));
      lossy.overflow(lxcDir);
      await until(registry, 'lost', (c) => c.state === 'STOPPED');
      expect(registry.containers().map((c) => c.id)).toEqual(['lost']);
    });

    it('keeps its one watch of the LXC folder when an overflow makes it list the folder again', async () => {
      const lossy = new CountingLossyWatcher();
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), lossy);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      lossy.overflow(lxcDir);
      // Listed again, then every container asked about again.
      await eventually(async () => (callsFor('myvm') === 2 ? true : undefined));
      expect(lossy.active.get(lxcDir)).toBe(1);
    });

    it('asks lxc-info about every container again when a cgroup root reports an overflow', async () => {
      fakeProc(5170, 80, '0::/lxc.payload.myvm\n');
      const lossy = new LossyWatcher();
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), lossy);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      lossy.losing = true;
      answer('myvm', 'RUNNING', 5170);
      mkdirSync(join(cgroupRoot, 'lxc.payload.myvm'));
      await eventually(async () => (lossy.lost.some((l) => l.event.name === 'lxc.payload.myvm') ? true : undefined));
      lossy.overflow(cgroupRoot);
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5170 });
    });

    it('asks lxc-info about every container again when the lxc cgroup folder (LXC 3 and earlier) reports an overflow', async () => {
      fakeProc(5171, 79, '4:memory:/lxc/myvm\n');
      mkdirSync(join(cgroupRoot, 'lxc'));
      const lossy = new LossyWatcher();
      const { registry } = await croot({ PCP_LXC_INFO: fakeLxcInfo() }, {}, join(work, 'proc'), lossy);
      await until(registry, 'myvm', (c) => c.state === 'STOPPED');
      lossy.losing = true;
      answer('myvm', 'RUNNING', 5171);
      mkdirSync(join(cgroupRoot, 'lxc', 'myvm'));
      await eventually(async () => (lossy.lost.some((l) => l.event.name === 'myvm') ? true : undefined));
      lossy.overflow(join(cgroupRoot, 'lxc'));
      expect(await until(registry, 'myvm', (c) => c.running)).toMatchObject({ pid: 5171, cgroup: 'lxc/myvm' });
    });
  });
});
