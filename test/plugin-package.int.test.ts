/**
 * An engine plugin as a real npm package: examples/plugin-engine/ packed,
 * installed with a packed croot into a fresh folder, named in a config file,
 * and asked for a real process through the installed croot and crootd.
 *
 * Installed with --ignore-scripts, and pointed at this checkout's built
 * native module (CROOT_NATIVE_PATH): building the addon once more is what
 * test/package-install.int.test.ts checks; here it is the plugin.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { REPO, npmInstall, npmPack, runIn } from './support/packaging.js';

const NATIVE = join(REPO, 'native', 'build', 'Release', 'croot_native.node');

function probe(): string | undefined {
  return probes.root() ?? builtBinaries() ?? probes.native();
}

describeWith('root, the built package and npm', probe, 'a packed plugin installed beside a packed croot', () => {
  let dir: string;
  let app: string;
  let pids: string;
  let sleeper: ChildProcess;
  let crootd: CrootdProcess | undefined;
  let env: NodeJS.ProcessEnv;
  const socket = (): string => join(dir, 'run', 'root.socket');
  const bin = (name: string): string => join(app, 'node_modules', '.bin', name);
  /** The installed croot, run from `/` as a user would from anywhere. */
  const croot = (args: readonly string[], extra: NodeJS.ProcessEnv = {}): ReturnType<typeof runIn> => runIn('/', bin('croot'), args, { env: { ...env, ...extra } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-plugin-pkg-'));
    const packs = join(dir, 'packs');
    mkdirSync(packs);
    const crootTgz = await npmPack(REPO, packs);
    const pluginTgz = await npmPack(join(REPO, 'examples', 'plugin-engine'), packs);
    app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'croot-t-app', version: '1.0.0', private: true }));
    const installed = await npmInstall(app, ['--ignore-scripts', crootTgz, pluginTgz]);
    if (installed.code !== 0) throw new Error(`npm install failed (${installed.code}):\n${installed.stderr}`);

    pids = join(dir, 'pids');
    mkdirSync(pids);
    sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    writeFileSync(join(pids, '.web.tmp'), `${sleeper.pid}\n`);
    renameSync(join(pids, '.web.tmp'), join(pids, 'web.pid'));
    writeFileSync(join(app, 'croot.json'), JSON.stringify({ plugins: ['croot-engine-pidfiles'] }));
    env = { ...process.env, CROOT_PIDFILES_DIR: pids, CROOT_NATIVE_PATH: NATIVE };
    delete env.CROOT_PLUGINS;
    delete env.CROOT_CONFIG;
    crootd = await startCrootd({ bin: bin('crootd'), socketPath: socket(), logPath: join(dir, 'crootd.log'), args: ['--config', join(app, 'croot.json')], env });
  }, 600000);

  afterAll(async () => {
    await crootd?.stop('SIGTERM', 10000);
    sleeper?.kill('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }, 60000);

  it('installs the plugin with croot as its only dependency: no inversify of its own', async () => {
    expect(existsSync(join(app, 'node_modules', 'croot-engine-pidfiles', 'node_modules'))).toBe(false);
    const ls = await runIn(app, 'npm', ['ls', '--all', '--json', 'croot-engine-pidfiles']);
    expect(ls.code).toBe(0);
  });

  it('resolves the process a pidfile names, in-process, through the installed croot and the config file', async () => {
    const r = await croot(['--config', join(app, 'croot.json'), 'pid', 'pidfiles:web']);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `${sleeper.pid}\n`, stderr: '' });
  });

  it('resolves it through the installed crootd, which loaded the plugin from its config file', async () => {
    const r = await croot(['--socket', socket(), 'pid', 'web']);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: `${sleeper.pid}\n` });
    const listed = await croot(['--socket', socket(), 'list', '--engine', 'pidfiles', '--json']);
    expect(JSON.parse(listed.stdout)).toMatchObject({
      containers: [{ engine: 'pidfiles', id: 'web', names: ['web'], state: 'running', pid: sleeper.pid }],
    });
  });

  it("finds the plugin from croot's own install when CROOT_PLUGINS names it", async () => {
    const elsewhere = join(dir, 'elsewhere.json');
    writeFileSync(elsewhere, '{}');
    const r = await croot(['--config', elsewhere, 'pid', 'pidfiles:web'], { CROOT_PLUGINS: 'croot-engine-pidfiles' });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: `${sleeper.pid}\n` });
  });

  it('passes its own tests against the installed croot', async () => {
    const r = await runIn(app, process.execPath, ['--test', join('node_modules', 'croot-engine-pidfiles', 'test')], { env });
    expect({ code: r.code, failures: r.stdout.match(/^# fail \d+$/m)?.[0] }).toEqual({ code: 0, failures: '# fail 0' });
  });
});
