import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import { defaultConfig, type StaticContainerConfig } from '../../core/config/croot-config.js';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer } from '../../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';
import { DirectoryWatcher } from '../../core/host/host-services.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { codeOf, eventually, settle } from '../../test/support/outcomes.js';
import { parsePidfile, StaticEngine } from './static-engine.js';
import { staticEngineModule } from './static-engine-module.js';

let work: string;
const children: ChildProcess[] = [];
const containers: Container[] = [];

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'croot-t-static-'));
});

afterEach(async () => {
  for (const c of containers.splice(0)) await c.get<EngineRegistry>(EngineRegistry).stop();
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function sleeper(): number {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  children.push(child);
  return child.pid as number;
}

/** The PID of a process that has exited and been reaped: the kernel has no such process now. */
async function deadPid(): Promise<number> {
  const child = spawn('true', [], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid as number;
}

/** Field 22 of /proc/PID/stat, read by the test itself: the kernel's start time. */
function kernelStart(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

interface Croot {
  registry: EngineRegistry;
  pids: ContainerProcessIdResolver;
  c: Container;
}

async function started(staticContainers: StaticContainerConfig[], watcher?: DirectoryWatcher): Promise<Croot> {
  const c = createCrootContainer({ config: { staticContainers, env: {} }, modules: [staticEngineModule] });
  if (watcher !== undefined) c.bind<DirectoryWatcher>(DirectoryWatcher).toConstantValue(watcher);
  c.bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 60000 });
  containers.push(c);
  const registry = c.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  await registry.ready();
  return { registry, pids: c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver), c };
}

function found(registry: EngineRegistry, ref: string): IndexedContainer {
  return registry.lookup(ref) as IndexedContainer;
}

function reason(registry: EngineRegistry): string | undefined {
  return registry.statuses().find((s) => s.engine === 'static')?.reason;
}

/** Waits until `ref` resolves to `pid`. */
function resolvesTo(pids: ContainerProcessIdResolver, ref: string, pid: number): Promise<true> {
  return eventually(async () => ((await settle(() => pids.resolveProcessId(ref)).catch(() => 0)) === pid ? true : undefined));
}

/** Waits until `ref` is known but not running. */
function notRunning(pids: ContainerProcessIdResolver, ref: string): Promise<true> {
  return eventually(async () => ((await codeOf(() => pids.resolveProcessId(ref))) === 'ERR_NOT_RUNNING' ? true : undefined));
}

describe('parsePidfile', () => {
  it('reads a PID from the first line', () => {
    expect(parsePidfile('1234\n')).toBe(1234);
    expect(parsePidfile('  77  \nrest')).toBe(77);
  });

  it('refuses an empty, zero, negative or non-numeric pidfile', () => {
    for (const bad of ['', '\n', '0', '-5', 'abc', '12x']) expect(parsePidfile(bad)).toBeUndefined();
  });

  it('refuses what is a number to JavaScript but not a PID in decimal: hex, exponent, sign, fraction, beyond a safe integer', () => {
    for (const bad of ['0x1f', '1e3', '+5', '1.5', 'x12', '99999999999999999999', '\n12']) expect([bad, parsePidfile(bad)]).toEqual([bad, undefined]);
  });
});

describe('StaticEngine', () => {
  it('reports a declared PID of a live process with its names and id, held with the kernel start time', async () => {
    const pid = sleeper();
    const { registry, pids } = await started([{ name: 'box', aliases: ['me', 'myself'], id: 'box-1', pid }]);
    for (const ref of ['box', 'me', 'myself', 'box-1', 'static:box', 'static.me']) expect([ref, pids.resolveProcessId(ref)]).toEqual([ref, pid]);
    const c = found(registry, 'box');
    expect(c).toMatchObject({ engine: 'static', id: 'box-1', names: ['box', 'me', 'myself'], liveness: 'running', source: 'config' });
    expect(c.startTime).toBe(kernelStart(pid));
  });

  it('uses the name as the id when no id is declared', async () => {
    const { registry } = await started([{ name: 'plain', pid: sleeper() }]);
    expect(found(registry, 'plain')).toMatchObject({ id: 'plain', names: ['plain'] });
  });

  it('answers ERR_NOT_RUNNING once the declared process has exited', async () => {
    const pid = sleeper();
    const { pids } = await started([{ name: 'brief', pid }]);
    expect(pids.resolveProcessId('brief')).toBe(pid);
    process.kill(pid, 'SIGKILL');
    await eventually(async () => ((await codeOf(() => pids.resolveProcessId('brief'))) === 'ERR_NOT_RUNNING' ? true : undefined));
  });

  it('follows a pidfile as it is written, rewritten, moved in and removed', async () => {
    const dir = join(work, 'run');
    mkdirSync(dir);
    const pidfile = join(dir, 'jail.pid');
    const { pids, registry } = await started([{ name: 'jail', pidfile }]);
    expect(await codeOf(() => pids.resolveProcessId('jail'))).toBe('ERR_NOT_RUNNING');
    expect(found(registry, 'jail').running).toBe(false);
    expect(reason(registry)).toBe(`1 container declared in the config; jail: cannot read pidfile ${pidfile}: ENOENT`);

    const first = sleeper();
    writeFileSync(pidfile, `${first}\n`);
    await eventually(async () => ((await settle(() => pids.resolveProcessId('jail')).catch(() => 0)) === first ? true : undefined));
    expect(found(registry, 'jail').source).toBe('pidfile');
    expect(reason(registry)).toBe('1 container declared in the config');

    const second = sleeper();
    writeFileSync(join(dir, 'tmp'), `${second}\n`);
    renameSync(join(dir, 'tmp'), pidfile);
    await eventually(async () => ((await settle(() => pids.resolveProcessId('jail')).catch(() => 0)) === second ? true : undefined));
    expect(found(registry, 'jail').startTime).toBe(kernelStart(second));

    unlinkSync(pidfile);
    await eventually(async () => ((await codeOf(() => pids.resolveProcessId('jail'))) === 'ERR_NOT_RUNNING' ? true : undefined));
  });

  it('picks up a pidfile whose folder appears later, at the next re-check', async () => {
    const dir = join(work, 'later');
    const pidfile = join(dir, 'x.pid');
    const c = createCrootContainer({ config: { staticContainers: [{ name: 'late', pidfile }], env: {} }, modules: [staticEngineModule] });
    c.bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 50 });
    containers.push(c);
    const registry = c.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    expect(await codeOf(() => pids.resolveProcessId('late'))).toBe('ERR_NOT_RUNNING');
    const pid = sleeper();
    mkdirSync(dir);
    writeFileSync(pidfile, `${pid}\n`);
    await eventually(async () => ((await settle(() => pids.resolveProcessId('late')).catch(() => 0)) === pid ? true : undefined));
  });

  it('takes a re-read configuration: new containers appear, dropped ones go', async () => {
    const a = sleeper();
    const b = sleeper();
    const { registry, pids } = await started([{ name: 'a', pid: a }]);
    await registry.reconfigure(defaultConfig({ staticContainers: [{ name: 'b', pid: b }], env: {} }));
    expect(pids.resolveProcessId('b')).toBe(b);
    expect(await codeOf(() => pids.resolveProcessId('a'))).toBe('ERR_NO_CONTAINER');
  });

  it('says which declared containers have no usable PID', async () => {
    const { registry } = await started([{ name: 'nothing' }]);
    expect(registry.statuses()[0]).toMatchObject({ engine: 'static', available: true, reason: expect.stringContaining('nothing: neither a valid pid nor a pidfile') });
  });

  it('reports a pidfile naming no live process, or holding no PID, as not running and says why', async () => {
    const dir = join(work, 'run');
    mkdirSync(dir);
    const dead = await deadPid();
    writeFileSync(join(dir, 'dead.pid'), `${dead}\n`);
    writeFileSync(join(dir, 'junk.pid'), 'not a pid\n');
    const live = sleeper();
    const { pids, registry } = await started([
      { name: 'dead', pidfile: join(dir, 'dead.pid') },
      { name: 'junk', pidfile: join(dir, 'junk.pid') },
      { name: 'live', pid: live },
    ]);
    expect(await codeOf(() => pids.resolveProcessId('dead'))).toBe('ERR_NOT_RUNNING');
    expect(await codeOf(() => pids.resolveProcessId('junk'))).toBe('ERR_NOT_RUNNING');
    expect(pids.resolveProcessId('live')).toBe(live);
    expect(['dead', 'junk', 'live'].map((name) => found(registry, name).running)).toEqual([false, false, true]);
    expect(reason(registry)).toBe(`3 containers declared in the config; dead: process ${dead} is not running; junk: pidfile ${join(dir, 'junk.pid')} holds no PID`);
  });

  it('refuses a declared PID that is zero, negative or not an integer', async () => {
    const { pids, registry } = await started([
      { name: 'zero', pid: 0 },
      { name: 'negative', pid: -1 },
      { name: 'fraction', pid: 1.5 },
    ]);
    for (const name of ['zero', 'negative', 'fraction']) expect([name, await codeOf(() => pids.resolveProcessId(name))]).toEqual([name, 'ERR_NOT_RUNNING']);
    expect(['zero', 'negative', 'fraction'].map((name) => found(registry, name).running)).toEqual([false, false, false]);
    for (const name of ['zero', 'negative', 'fraction']) expect(reason(registry)).toContain(`${name}: neither a valid pid nor a pidfile`);
  });

  it('follows a pidfile beside a container declared by PID', async () => {
    const dir = join(work, 'run');
    mkdirSync(dir);
    const a = sleeper();
    const { pids } = await started([
      { name: 'by-pid', pid: a },
      { name: 'by-file', pidfile: join(dir, 'b.pid') },
    ]);
    const b = sleeper();
    writeFileSync(join(dir, 'b.pid'), `${b}\n`);
    await resolvesTo(pids, 'by-file', b);
    expect(pids.resolveProcessId('by-pid')).toBe(a);
  });

  it('sees the pidfile folder moved away, and follows the folder made again once re-checked', async () => {
    const dir = join(work, 'run');
    mkdirSync(dir);
    const pidfile = join(dir, 'jail.pid');
    const first = sleeper();
    writeFileSync(pidfile, `${first}\n`);
    const watcher = new CountingWatcher();
    const { pids, c } = await started([{ name: 'jail', pidfile }], watcher);
    expect(pids.resolveProcessId('jail')).toBe(first);

    renameSync(dir, join(work, 'run.old'));
    await notRunning(pids, 'jail');
    expect(watcher.active.has(dir)).toBe(false);

    mkdirSync(dir);
    await c.get(StaticEngine).recheck();
    expect(watcher.active.get(dir)).toBe(1);
    const second = sleeper();
    writeFileSync(pidfile, `${second}\n`);
    await resolvesTo(pids, 'jail', second);
    await c.get(StaticEngine).recheck();
    expect(watcher.active.get(dir)).toBe(1);
  });

  it('watches only the folders of the pidfiles the configuration names, and none once stopped', async () => {
    const one = join(work, 'one');
    const two = join(work, 'two');
    mkdirSync(one);
    mkdirSync(two);
    const watcher = new CountingWatcher();
    const { registry, pids } = await started([{ name: 'jail', pidfile: join(one, 'jail.pid') }, { name: 'by-pid', pid: sleeper() }], watcher);
    expect([...watcher.active]).toEqual([[one, 1]]);

    await registry.reconfigure(defaultConfig({ staticContainers: [{ name: 'jail', pidfile: join(two, 'jail.pid') }, { name: 'also', pidfile: join(two, 'also.pid') }], env: {} }));
    expect([...watcher.active]).toEqual([[two, 1]]);
    const pid = sleeper();
    writeFileSync(join(two, 'jail.pid'), `${pid}\n`);
    await resolvesTo(pids, 'jail', pid);

    await registry.stop();
    expect([...watcher.active]).toEqual([]);
  });
});
