/**
 * Third-party engine packages loaded by the built `croot` command: named in
 * CROOT_PLUGINS or in the config file's `plugins`, CommonJS or ES modules,
 * looked up from the config file's folder and never from the current
 * directory, left out by `disabledEngines`, and refused with a clear reason.
 * (test/plugin-package.int.test.ts installs a packed plugin beside a packed croot.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describeWith } from './support/components.js';
import { builtBinaries, CROOT, runCommand, type CommandResult } from './support/crootd-process.js';

const FIXTURES = resolve(__dirname, 'fixtures');
const PLUGIN = join(FIXTURES, 'plugin-example');

/** croot run from `/` (as under systemd), so nothing can be found through the current directory. */
async function croot(args: string[], env: NodeJS.ProcessEnv): Promise<CommandResult & { pid: number }> {
  // The engine's one container is the process that loaded it: croot itself. `sh -c 'exec'` gives its pid first.
  const r = await runCommand('sh', ['-c', 'cd / && echo $$ && exec "$0" "$@"', process.execPath, CROOT, ...args], { env });
  const [pid, ...rest] = r.stdout.split('\n');
  return { ...r, stdout: rest.join('\n'), pid: Number(pid) };
}

describeWith('the built bin/croot', builtBinaries, 'croot with plugin engines', () => {
  let work: string;
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
    delete e.CROOT_CONFIG;
    return e;
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'croot-t-plugins-'));
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  function config(content: unknown): string {
    const file = join(work, `config-${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(content));
    return file;
  }

  it('resolves a container that only a CommonJS plugin named in CROOT_PLUGINS knows', async () => {
    const r = await croot(['pid', 'example:self'], env({ CROOT_PLUGINS: PLUGIN }));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(Number(r.stdout.trim())).toBe(r.pid);
  });

  it('loads an ES module plugin', async () => {
    const r = await croot(['pid', 'esm:self'], env({ CROOT_PLUGINS: join(FIXTURES, 'plugin-esm') }));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(Number(r.stdout.trim())).toBe(r.pid);
  });

  it("takes a plugin path in the config file from the config file's folder, not the current directory", async () => {
    // The config file sits in `work`; the fixture is named relative to that folder.
    const file = config({ plugins: [relative(work, PLUGIN)] });
    expect(relative(work, PLUGIN)).toMatch(/^\.\.\//);
    const r = await croot(['--config', file, 'pid', 'example:self'], env());
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(Number(r.stdout.trim())).toBe(r.pid);
  });

  it('refuses a relative path in CROOT_PLUGINS (it would depend on the current directory), and still answers with the other engines', async () => {
    const r = await croot(['engines'], env({ CROOT_PLUGINS: './test/fixtures/plugin-example' }));
    expect(r.stderr).toContain('CROOT_PLUGINS: "./test/fixtures/plugin-example" is a relative path: give an absolute one');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^static +/m);
  });

  it('says why a plugin package cannot be found, and where it looked', async () => {
    const r = await croot(['engines'], env({ CROOT_PLUGINS: 'croot-engine-that-does-not-exist' }));
    expect(r.stderr).toMatch(/croot: warning: engine package "croot-engine-that-does-not-exist" not found; looked in \S*node_modules/);
    expect(r.code).toBe(0);
  });

  it('refuses a plugin built on its own copy of inversify, saying to use croot/inversify', async () => {
    const r = await croot(['engines'], env({ CROOT_PLUGINS: join(FIXTURES, 'plugin-foreign-inversify') }));
    expect(r.stderr).toContain("exports a ContainerModule of another copy of inversify: build it with ContainerModule from 'croot/inversify'");
  });

  it('leaves a plugin out when disabledEngines names its engine', async () => {
    const file = config({ plugins: [PLUGIN, join(FIXTURES, 'plugin-esm')], disabledEngines: ['example', 'esm'] });
    const r = await croot(['--config', file, 'engines', '--json'], env());
    expect(r.code).toBe(0);
    const engines = (JSON.parse(r.stdout) as { engines: { engine: string }[] }).engines.map((e) => e.engine);
    expect(engines).not.toContain('example');
    expect(engines).not.toContain('esm');
    const miss = await croot(['--config', file, 'pid', 'example:self'], env());
    expect(miss.code).toBe(3);
  });
});
