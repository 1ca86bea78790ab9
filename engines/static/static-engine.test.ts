import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule } from 'inversify';
import { defaultConfig, type StaticContainerConfig } from '../../core/config.js';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry } from '../../core/engine-registry.js';
import { ContainerProcessIdResolver } from '../../core/resolvers.js';
import { parsePidfile, StaticEngine, StaticEngineOptions } from './static-engine.js';
import { staticEngineModule } from './static-engine-module.js';
import { startTimeOf } from '../../test/support/processes.js';

let work: string;
let procRoot: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'croot-t-static-'));
  procRoot = join(work, 'proc');
  mkdirSync(procRoot);
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A fake `/proc/PID/stat` whose field 22 (start time) is `start`. */
function fakeProcess(pid: number, start: number): void {
  mkdirSync(join(procRoot, String(pid)), { recursive: true });
  const fields = Array.from({ length: 18 }, () => '0').join(' ');
  writeFileSync(join(procRoot, String(pid), 'stat'), `${pid} (init (x)) S ${fields} ${start} 0 0\n`);
}

function engineOf(staticContainers: StaticContainerConfig[], root = procRoot, recheckMs = 40): StaticEngine {
  return new StaticEngine(defaultConfig({ staticContainers, procRoot: root, env: {} }), { recheckMs });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
  it('reports a declared PID of a live process with its names, id and real start time', async () => {
    const engine = engineOf([{ name: 'self', aliases: ['me', 'myself'], id: 'self-1', pid: process.pid }], '/proc');
    const [record] = await engine.containers();
    expect(record).toMatchObject({ engine: 'static', id: 'self-1', names: ['self', 'me', 'myself'], running: true, pid: process.pid, source: 'config' });
    expect(record?.pidStartTime).toBe(startTimeOf(process.pid));
  });

  it('uses the name as the id when no id is declared', async () => {
    const engine = engineOf([{ name: 'box', pid: process.pid }], '/proc');
    expect((await engine.containers())[0]?.id).toBe('box');
  });

  it('reports a PID without a /proc entry as not running', async () => {
    const engine = engineOf([{ name: 'gone', pid: 4000 }]);
    const [record] = await engine.containers();
    expect(record).toMatchObject({ id: 'gone', running: false });
    expect(record?.pid).toBeUndefined();
    expect(engine.status().reason).toContain('process 4000 is not running');
  });

  it('keeps the start time of first sight, so a reused PID is answered with ERR_PID_REUSED', async () => {
    fakeProcess(4100, 5000);
    const container = createCrootContainer({
      config: { procRoot, env: {}, staticContainers: [{ name: 'sbx', pid: 4100 }] },
      modules: [staticEngineModule, new ContainerModule(({ bind }) => {
          bind(StaticEngineOptions).toConstantValue({ recheckMs: 20 });
        }),
      ],
    });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    const pids = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    expect(await pids.resolveProcessId('sbx')).toBe(4100);

    fakeProcess(4100, 9999); // the process died and another one took its PID
    await pause(40);
    expect((await registry.lookup('static:sbx')).pidStartTime).toBe(5000);
    await expect(pids.resolveProcessId('sbx')).rejects.toMatchObject({ code: 'ERR_PID_REUSED' });
    await registry.stop();
  });

  it('follows a pidfile: missing, then written, then rewritten to another process', async () => {
    const pidfile = join(work, 'sbx.pid');
    fakeProcess(4200, 100);
    fakeProcess(4300, 200);
    const engine = engineOf([{ name: 'sbx', pidfile }]);

    expect(await engine.containers()).toMatchObject([{ id: 'sbx', running: false }]);
    expect(engine.status().reason).toContain(`cannot read pidfile ${pidfile}: ENOENT`);

    writeFileSync(pidfile, '4200\n');
    await pause(50);
    expect(await engine.containers()).toMatchObject([{ running: true, pid: 4200, pidStartTime: 100 }]);

    writeFileSync(pidfile, '4300\n');
    await pause(50);
    expect(await engine.containers()).toMatchObject([{ running: true, pid: 4300, pidStartTime: 200 }]);
  });

  it('checks a pidfile at most once per recheck interval', async () => {
    const pidfile = join(work, 'sbx.pid');
    fakeProcess(4200, 100);
    fakeProcess(4300, 200);
    writeFileSync(pidfile, '4200\n');
    const engine = engineOf([{ name: 'sbx', pidfile }], procRoot, 5000);
    expect(await engine.containers()).toMatchObject([{ pid: 4200 }]);
    writeFileSync(pidfile, '4300\n');
    expect(await engine.containers()).toMatchObject([{ pid: 4200 }]);
  });

  it('reports a pidfile without a PID as not running, with the reason', async () => {
    const pidfile = join(work, 'bad.pid');
    writeFileSync(pidfile, 'not a pid\n');
    const engine = engineOf([{ name: 'bad', pidfile }]);
    expect(await engine.containers()).toMatchObject([{ running: false }]);
    expect(engine.status().reason).toContain(`pidfile ${pidfile} holds no PID`);
  });

  it('returns the same array while nothing changed, and a new one when a process dies', async () => {
    fakeProcess(4400, 1);
    const engine = engineOf([{ name: 'a', pid: 4400 }, { name: 'b', pid: process.pid }]);
    const first = await engine.containers();
    await pause(50);
    expect(await engine.containers()).toBe(first);

    rmSync(join(procRoot, '4400'), { recursive: true });
    await pause(50);
    const after = await engine.containers();
    expect(after).not.toBe(first);
    expect(after.map((r) => r.running)).toEqual([false, false]);
  });

  it('reports how many containers are declared', async () => {
    expect(engineOf([]).status()).toMatchObject({ engine: 'static', available: true, reason: '0 containers declared in the config' });
    expect(await engineOf([]).containers()).toEqual([]);
    expect(engineOf([{ name: 'a', pid: 1 }, { name: 'b', pid: 2 }]).status().reason).toMatch(/^2 containers declared in the config/);
  });
});

describe('StaticEngine.declare', () => {
  it('replaces the declared containers: new ones appear, dropped ones go', async () => {
    fakeProcess(100, 5000);
    fakeProcess(200, 6000);
    const engine = engineOf([{ name: 'a', pid: 100 }]);
    expect((await engine.containers()).map((r) => r.id)).toEqual(['a']);
    await engine.declare([{ name: 'b', pid: 200 }]);
    const records = await engine.containers();
    expect(records.map((r) => [r.id, r.pid, r.running])).toEqual([['b', 200, true]]);
    expect(engine.status().reason).toMatch(/^1 container declared/);
  });

  it('keeps the first start time of a container declared again unchanged, so a reused PID is still caught', async () => {
    fakeProcess(100, 5000);
    const engine = engineOf([{ name: 'a', pid: 100 }]);
    expect((await engine.containers())[0]?.pidStartTime).toBe(5000);
    fakeProcess(100, 9999); // the PID now belongs to another process
    await engine.declare([{ name: 'a', aliases: ['alpha'], pid: 100 }]);
    const [record] = await engine.containers();
    expect(record).toMatchObject({ names: ['a', 'alpha'], pidStartTime: 5000 });
  });
});
