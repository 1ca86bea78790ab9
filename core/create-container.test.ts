import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { settle } from '../test/support/outcomes.js';
import { cgroupTruth } from '../test/support/truth.js';
import { CrootConfig } from './config/croot-config.js';
import { createCrootContainer, loadPluginFrom, loadPluginModule, readPluginManifest } from './create-container.js';
import { EngineRegistry } from './registry/engine-registry.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from './registry/container-resolvers.js';

const fixtures = resolve(__dirname, '..', 'test', 'fixtures');

/** A fresh folder under the system's tmp, removed after the test. */
let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'croot-t-plugins-'));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** Writes `files` (path relative to `scratch` -> text; objects as JSON) and returns `scratch`/`at`. */
function tree(files: Record<string, unknown>, at = ''): string {
  for (const [path, content] of Object.entries(files)) {
    const file = join(scratch, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return join(scratch, at);
}

/** The message of the CrootError `fn` throws (failing the test when it throws something else or nothing). */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toMatchObject({ code: 'ERR_CONFIG' });
    return (err as Error).message;
  }
  throw new Error('did not throw');
}

describe('createCrootContainer', () => {
  it('binds the configuration it is given, defaults filled in', () => {
    const container = createCrootContainer({ config: { socketPath: '/tmp/croot-t/root.socket', allowUids: [0, 42] } });
    expect(container.get<CrootConfig>(CrootConfig)).toMatchObject({ socketPath: '/tmp/croot-t/root.socket', allowUids: [0, 42], procRoot: '/proc' });
  });

  it('answers hostnames, PIDs and cgroups through one registry, which knows the engines of the modules given', async () => {
    const container = createCrootContainer({ modules: [await loadPluginModule(join(fixtures, 'plugin-example'))] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(container.get<EngineRegistry>(EngineRegistry)).toBe(registry);
    expect(registry.ids()).toEqual(['example']);
    // The cgroup resolver reads the kernel's answer for the engine's PID: this process's.
    const cgroup = await settle(() => container.get<ContainerCGroupResolver>(ContainerCGroupResolver).resolveCGroupName('example:self'));
    expect([cgroup.pid, cgroup.value]).toEqual([process.pid, cgroupTruth(process.pid)]);
    // Without the native module nothing can enter a UTS namespace: a clear ERR_NATIVE_LOAD, not a guess (docs/errors.md).
    await expect(settle(() => container.get<ContainerHostnameResolver>(ContainerHostnameResolver).resolveHostname('example:self'))).rejects.toMatchObject({
      code: 'ERR_NATIVE_LOAD',
    });
  });

  it('builds containers that share nothing', () => {
    const a = createCrootContainer({ config: { socketPath: '/tmp/a.socket' } });
    const b = createCrootContainer({ config: { socketPath: '/tmp/b.socket' } });
    expect([a.get<CrootConfig>(CrootConfig).socketPath, b.get<CrootConfig>(CrootConfig).socketPath]).toEqual(['/tmp/a.socket', '/tmp/b.socket']);
    expect(a.get(EngineRegistry)).not.toBe(b.get(EngineRegistry));
  });
});

describe('loadPluginModule', () => {
  it('loads a third-party engine from its package and resolves through it like a built-in one', async () => {
    const module = await loadPluginModule(join(fixtures, 'plugin-example'));
    const container = createCrootContainer({ modules: [module] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(registry.ids()).toEqual(['example']);
    await expect(settle(() => container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId('example:self'))).resolves.toBe(process.pid);
  });

  it('finds a package by a path relative to the first folder it is given (the config file’s), not the current directory', async () => {
    const container = createCrootContainer({ modules: [await loadPluginModule('./plugin-example', fixtures)] });
    expect(container.get<EngineRegistry>(EngineRegistry).ids()).toEqual(['example']);
    await expect(loadPluginModule('./test/fixtures/plugin-example', [])).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    await expect(loadPluginModule('./plugin-example')).rejects.toMatchObject({ code: 'ERR_CONFIG', message: expect.stringContaining('is relative') });
  });

  it('says which package is missing, and where it looked', async () => {
    await expect(loadPluginModule('croot-engine-that-does-not-exist', fixtures)).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining(`"croot-engine-that-does-not-exist" not found; looked in ${join(fixtures, 'node_modules')}`),
    });
  });

  it('refuses a package without a croot.module field', async () => {
    await expect(loadPluginModule(join(fixtures, 'plugin-without-module'))).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('no "croot.module" field'),
    });
  });

  it('leaves a disabled engine out of the registry, whoever bound it', async () => {
    const module = await loadPluginModule(join(fixtures, 'plugin-example'));
    const container = createCrootContainer({ config: { disabledEngines: ['example'] }, modules: [module] });
    expect(container.get<EngineRegistry>(EngineRegistry).ids()).toEqual([]);
  });
});

describe('readPluginManifest', () => {
  const pkg = (name: string | number | undefined, croot: Record<string, unknown> = { module: './lib/engine.js' }): Record<string, unknown> =>
    name === undefined ? { croot } : { name, croot };

  it("finds a package by name in a folder's node_modules, the nearest first, and says what its croot field names", () => {
    const from = tree(
      {
        'app/node_modules/croot-engine-t/package.json': pkg('croot-engine-t', { module: './lib/engine.js', engine: 'tee' }),
        'node_modules/croot-engine-t/package.json': pkg('outer'),
        'app/config/.keep': '',
      },
      'app/config',
    );
    const dir = join(scratch, 'app', 'node_modules', 'croot-engine-t');
    expect(readPluginManifest('croot-engine-t', [from])).toStrictEqual({ name: 'croot-engine-t', dir, modulePath: join(dir, 'lib', 'engine.js'), engine: 'tee' });
  });

  it('looks in the folders in the order given: the first that has the package wins, a later one is looked in when the first has not', () => {
    tree({
      'a/node_modules/croot-engine-t/package.json': pkg('from-a'),
      'b/node_modules/croot-engine-t/package.json': pkg('from-b'),
      'c/.keep': '',
      // A folder left behind without its package.json is not the package.
      'd/node_modules/croot-engine-t/lib/engine.js': '',
    });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((f) => join(scratch, f)) as [string, string, string, string];
    expect(readPluginManifest('croot-engine-t', [a, b]).name).toBe('from-a');
    expect(readPluginManifest('croot-engine-t', [b, a]).name).toBe('from-b');
    expect(readPluginManifest('croot-engine-t', [c, b]).dir).toBe(join(b, 'node_modules', 'croot-engine-t'));
    expect(readPluginManifest('croot-engine-t', [d, a]).dir).toBe(join(a, 'node_modules', 'croot-engine-t'));
  });

  it('names the package by what it was asked for when its package.json has no name, and leaves out an engine id that is not a string', () => {
    const dir = tree({ 'p/package.json': pkg(undefined, { module: 'm.js', engine: 42 }), 'q/package.json': pkg(7) }, 'p');
    expect(readPluginManifest(dir, [])).toStrictEqual({ name: dir, dir, modulePath: join(dir, 'm.js') });
    expect(readPluginManifest('./q', [scratch]).name).toBe('./q');
  });

  it('says where it looked for a package it cannot find: the node_modules folders upwards from each folder, each once, at most 8', () => {
    const deep = tree({ 'a/b/c/d/e/f/g/h/i/j/.keep': '' }, 'a/b/c/d/e/f/g/h/i/j');
    const message = configError(() => readPluginManifest('croot-engine-nowhere', [deep, join(scratch, 'a')]));
    const looked = /looked in (.*)$/.exec(message)?.[1]?.split(', ') ?? [];
    expect(looked).toHaveLength(8);
    expect(looked.slice(0, 3)).toEqual([join(deep, 'node_modules'), join(deep, '..', 'node_modules'), join(deep, '..', '..', 'node_modules')]);
    const shallow = configError(() => readPluginManifest('croot-engine-nowhere', [join(scratch, 'a', 'b'), join(scratch, 'a')]));
    const list = /looked in (.*)$/.exec(shallow)?.[1]?.split(', ') ?? [];
    expect(list.slice(0, 3)).toEqual([join(scratch, 'a', 'b', 'node_modules'), join(scratch, 'a', 'node_modules'), join(scratch, 'node_modules')]);
    expect(new Set(list).size).toBe(list.length);
  });

  it('takes a relative path from the first folder only, and refuses one when there is no folder to take it from', () => {
    tree({ 'b/plugin/package.json': pkg('in-b'), 'a/.keep': '' });
    expect(configError(() => readPluginManifest('./plugin', [join(scratch, 'a'), join(scratch, 'b')]))).toContain(
      `not found: no ${join(scratch, 'a', 'plugin', 'package.json')}`,
    );
    expect(readPluginManifest('./plugin', [join(scratch, 'b'), join(scratch, 'a')]).name).toBe('in-b');
    expect(configError(() => readPluginManifest('./plugin', []))).toContain('is relative, and there is no config file');
  });

  it('refuses a folder without a package.json, and one whose package.json is not JSON, saying which file', () => {
    const dir = tree({ 'bad/package.json': '{ "name": ', 'empty/.keep': '' });
    expect(configError(() => readPluginManifest(join(dir, 'empty'), []))).toContain(`not found: no ${join(dir, 'empty', 'package.json')}`);
    expect(configError(() => readPluginManifest(join(dir, 'bad'), []))).toContain(`cannot read ${join(dir, 'bad', 'package.json')}`);
    // The parser's own complaint comes along as the cause.
    expect(() => readPluginManifest(join(dir, 'bad'), [])).toThrow(expect.objectContaining({ cause: expect.any(SyntaxError) }));
  });
});

describe('loadPluginFrom', () => {
  it('refuses a ContainerModule of another copy of inversify, saying how to build it with croot’s', async () => {
    await expect(loadPluginModule(join(fixtures, 'plugin-foreign-inversify'))).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringMatching(/exports a ContainerModule of another copy of inversify: build it with ContainerModule from 'croot\/inversify' and depend on croot as a peer/),
    });
  });

  it('refuses a module that exports no ContainerModule, and one that fails to load, naming the module', async () => {
    const dir = tree({
      'none/index.js': 'exports.engineModule = { load() {} };',
      'nothing/index.js': 'exports.other = 1;',
      'broken/index.js': "throw new Error('plugin exploded');",
    });
    const none = join(dir, 'none', 'index.js');
    await expect(loadPluginFrom({ name: 'croot-engine-none', dir: join(dir, 'none'), modulePath: none })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: `"croot-engine-none" (${none}) exports no ContainerModule as default or engineModule (make one with ContainerModule from 'croot/inversify')`,
    });
    const nothing = join(dir, 'nothing', 'index.js');
    await expect(loadPluginFrom({ name: 'croot-engine-nothing', dir: join(dir, 'nothing'), modulePath: nothing })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('exports no ContainerModule as default or engineModule'),
    });
    const broken = join(dir, 'broken', 'index.js');
    const err = await loadPluginFrom({ name: 'croot-engine-broken', dir: join(dir, 'broken'), modulePath: broken }, 'asked-name').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ code: 'ERR_CONFIG', message: `engine package "asked-name": cannot load ${broken}: plugin exploded` });
    expect((err?.cause as Error).message).toBe('plugin exploded');
  });
});
