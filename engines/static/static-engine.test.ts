import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import { defaultConfig, type StaticContainerConfig } from '../../core/config/croot-config.js';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer } from '../../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';
import { codeOf, eventually, settle } from '../../test/support/outcomes.js';
import { parsePidfile } from './static-engine.js';
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

/** Field 22 of /proc/PID/stat, read by the test itself: the kernel's start time. */
function kernelStart(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

async function started(staticContainers: StaticContainerConfig[]): Promise<{ registry: EngineRegistry; pids: ContainerProcessIdResolver; c: Container }> {
  const c = createCrootContainer({ config: { staticContainers, env: {} }, modules: [staticEngineModule] });
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

describe('parsePidfile', () => {
  it('reads a PID from the first line', () => {
    expect(parsePidfile('1234\n')).toBe(1234);
    expect(parsePidfile('  77  \nrest')).toBe(77);
  });

  it('refuses an empty, zero, negative or non-numeric pidfile', () => {
    for (const bad of ['', '\n', '0', '-5', 'abc', '12x']) expect(parsePidfile(bad)).toBeUndefined();
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
    expect(found(registry, 'plain').id).toBe('plain');
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
    expect(registry.statuses()[0]?.reason).toContain('cannot read pidfile');

    const first = sleeper();
    writeFileSync(pidfile, `${first}\n`);
    await eventually(async () => ((await settle(() => pids.resolveProcessId('jail')).catch(() => 0)) === first ? true : undefined));

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
});
