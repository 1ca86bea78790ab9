/**
 * croot as a user gets it: the packed tarball installed into a fresh global
 * prefix (`npm install -g --prefix DIR croot-x.tgz`, building the native
 * module as that install does) and into a fresh TypeScript project; the
 * README's commands run as written with the installed croot and crootd
 * (only PCP's system socket and pidfile swapped for private ones: the system
 * socket is shared), the README's library example compiled by `tsc` with
 * the project's default settings and run; and what the package ships:
 * man pages, source maps that resolve, docs that refer only to what ships.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, retryUntil, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { cgroupTruth, hostnameOf } from './support/engine-containers.js';
import { REPO, npmInstall, npmPack, runIn, type NpmResult } from './support/packaging.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const SYSTEM_SOCKET = '/var/lib/pcp/pmcd/root.socket';
const SYSTEM_PIDFILE = '/run/crootd.pid';

/** README lines that name containers or engines this machine cannot have for a test, and why. */
/** PCP's agent table, which the README's `crootd install-pmcd` edits. */
const PMCD_CONF = '/etc/pcp/pmcd/pmcd.conf';

const NOT_RUNNABLE: ReadonlyMap<string, string> = new Map([
  ['croot pid docker:web1', 'a Docker container named web1 (tests name theirs croot-t-*)'],
  ['croot cgroup k8s.io/3f2a...', 'an illustrative, elided Kubernetes id'],
  ['croot hostname prod/shop-7d9f/app', 'a Kubernetes pod'],
]);

/** The fenced blocks of `markdown` in `lang`, each as its text. */
function fenced(markdown: string, lang: string): string[] {
  const blocks: string[] = [];
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm');
  for (let m = re.exec(markdown); m !== null; m = re.exec(markdown)) blocks.push(m[1] as string);
  return blocks;
}

/** The commands of the README's "Use" section, without their comments. */
function useCommands(): string[] {
  const use = README.slice(README.indexOf('## Use'), README.indexOf('\n## ', README.indexOf('## Use') + 1));
  return fenced(use, 'sh')
    .flatMap((b) => b.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

function probe(): string | undefined {
  return probes.root() ?? builtBinaries() ?? probes.native();
}

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(dir, f)).isFile());
}

describeWith('root, the built package and npm', probe, 'the packed croot, installed', () => {
  let dir: string;
  let prefix: string;
  let pkg: string;
  let project: string;
  let install: NpmResult;
  let projectInstall: NpmResult;
  let sandbox: Sandbox;
  let crootd: CrootdProcess | undefined;
  let env: NodeJS.ProcessEnv;
  const socket = (): string => join(dir, 'pmcd', 'root.socket');
  const pidfile = (): string => join(dir, 'crootd.pid');
  /** A README line as run here: the system socket and pidfile swapped for private ones. */
  const localized = (line: string): string => line.split(SYSTEM_SOCKET).join(socket()).split(SYSTEM_PIDFILE).join(pidfile());

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-install-'));
    const packs = join(dir, 'packs');
    mkdirSync(packs);
    const tarball = await npmPack(REPO, packs);
    prefix = join(dir, 'prefix');
    project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'croot-t-project', version: '1.0.0', private: true, type: 'module' }));
    // --foreground-scripts: to see the native build announce itself (npm otherwise keeps a script's output to itself).
    [install, projectInstall] = await Promise.all([
      runIn(dir, 'npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], { timeoutMs: 900000 }),
      npmInstall(project, ['--ignore-scripts', tarball, 'typescript@6.0.3']),
    ]);
    pkg = join(prefix, 'lib', 'node_modules', 'croot');

    sandbox = await startSandbox(`croot-t-readme-h`);
    writeFileSync(join(dir, 'croot.json'), JSON.stringify({ containers: [{ name: 'web1', pid: sandbox.pid }] }));
    env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, CROOT_CONFIG: join(dir, 'croot.json') };
    delete env.CROOT_PLUGINS;
    delete env.CROOT_NATIVE_PATH;
  }, 1200000);

  afterAll(async () => {
    // `crootd install-pmcd` of the README must never outlive the test: it points pmcd at this prefix.
    if (prefix !== undefined && readFileSync(PMCD_CONF, 'utf8').includes(prefix)) {
      await runIn('/', join(prefix, 'bin', 'crootd'), ['uninstall-pmcd'], { env });
    }
    await crootd?.stop('SIGTERM', 10000);
    await sandbox?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }, 60000);

  describe('npm install -g --prefix DIR croot.tgz', () => {
    it('installs, building the native module, and says so before the compiler starts', () => {
      expect({ code: install.code, stderr: install.code === 0 ? '' : install.stderr }).toEqual({ code: 0, stderr: '' });
      expect(existsSync(join(pkg, 'native', 'build', 'Release', 'croot_native.node'))).toBe(true);
      const out = `${install.stdout}\n${install.stderr}`;
      const announced = out.indexOf('croot: building its native module');
      expect(announced).toBeGreaterThanOrEqual(0);
      expect(out.indexOf('gyp info', announced)).toBeGreaterThan(announced);
      expect(out.slice(0, announced)).not.toContain('gyp info');
    });

    it('puts croot and crootd on the prefix’s PATH, printing the packed version', async () => {
      for (const command of ['croot', 'crootd']) {
        const r = await runIn('/', join(prefix, 'bin', command), ['--version']);
        expect({ command, code: r.code, stdout: r.stdout }).toEqual({ command, code: 0, stdout: `${VERSION}\n` });
      }
    });

    it('installs the man pages croot(1) and crootd(8), which man renders, with every exit status', async () => {
      const croot1 = await runIn('/', 'man', ['-M', join(prefix, 'share', 'man'), '1', 'croot'], { env: { ...process.env, MANWIDTH: '100', MAN_KEEP_FORMATTING: '' } });
      expect(croot1.code).toBe(0);
      expect(croot1.stdout).toContain('EXIT STATUS');
      for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) expect(croot1.stdout).toMatch(new RegExp(`^ +${code} +\\S`, 'm'));
      const crootd8 = await runIn('/', 'man', ['-M', join(prefix, 'share', 'man'), '8', 'crootd']);
      expect(crootd8.code).toBe(0);
      expect(crootd8.stdout).toContain('--pidfile');
    });

    it('ships source maps whose sources are all in the package', () => {
      const missing: string[] = [];
      const maps = filesUnder(pkg).filter((f) => f.endsWith('.js.map') && !f.startsWith('node_modules/'));
      expect(maps.length).toBeGreaterThan(50);
      for (const map of maps) {
        const { sources } = JSON.parse(readFileSync(join(pkg, map), 'utf8')) as { sources: string[] };
        for (const source of sources) if (!existsSync(resolve(dirname(join(pkg, map)), source))) missing.push(`${map} -> ${source}`);
      }
      expect(missing).toEqual([]);
    });

    it('ships a LICENSE (MIT, as package.json says) and a CHANGELOG', () => {
      expect(readFileSync(join(pkg, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
      expect((JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { license: string }).license).toBe('MIT');
      expect(readFileSync(join(pkg, 'CHANGELOG.md'), 'utf8')).toMatch(/^# Changelog/);
    });

    it('ships docs whose links and paths all point at files in the package (or say they are in the source repository)', () => {
      const shipped = new Set(filesUnder(pkg).filter((f) => !f.startsWith('node_modules/')));
      const exists = (path: string): boolean => shipped.has(path) || [...shipped].some((f) => f.startsWith(`${path.replace(/\/$/, '')}/`));
      const dangling: string[] = [];
      for (const doc of [...shipped].filter((f) => f.endsWith('.md'))) {
        // A section (heading to heading) that says it is about the source repository may name its files.
        for (const section of readFileSync(join(pkg, doc), 'utf8').split(/^(?=#)/m)) {
          if (/source repository/.test(section)) continue;
          const prose = section.replace(/^```[\s\S]*?^```/gm, '');
          const links = [...prose.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1] as string).filter((l) => !/^[a-z]+:/.test(l));
          for (const link of links) {
            const target = relative(pkg, resolve(dirname(join(pkg, doc)), link));
            if (!exists(target)) dangling.push(`${doc}: (${link})`);
          }
          const paths = [...prose.matchAll(/`((?:bin|core|engines|native|examples|docs|packaging|man|test|bench|scripts|dist|\.ci)\/[^`\s]*)`/g)].map((m) => m[1] as string);
          // `engines/<id>/...` and `*.ts` are patterns, not paths.
          for (const path of paths.filter((p) => !/[<*]/.test(p))) if (!exists(path)) dangling.push(`${doc}: \`${path}\``);
        }
      }
      expect(dangling).toEqual([]);
    });
  });

  describe('the README, as written', () => {
    it('has commands this test runs, and lists the ones it cannot', () => {
      const commands = useCommands();
      expect(commands.filter((c) => !NOT_RUNNABLE.has(c)).length).toBeGreaterThanOrEqual(10);
      for (const line of NOT_RUNNABLE.keys()) expect(commands).toContain(line);
    });

    it('runs every command of its "Use" section with the installed croot and crootd, each exiting 0', async () => {
      const commands = useCommands().filter((c) => !NOT_RUNNABLE.has(c));
      // crootd runs in the foreground: start it first, as a user would in another terminal.
      const server = commands.find((c) => c.startsWith('crootd '));
      expect(server).toBeDefined();
      const args = localized(server as string).split(/\s+/).slice(1);
      crootd = await startCrootd({ bin: join(prefix, 'bin', 'crootd'), socketPath: socket(), logPath: join(dir, 'crootd.log'), args: args.filter((_, i) => args[i] !== '--socket' && args[i - 1] !== '--socket'), env });
      const results: { command: string; code: number | null; stderr: string }[] = [];
      const pmcdConf = readFileSync(PMCD_CONF, 'utf8');
      for (const command of commands.filter((c) => c !== server)) {
        const r = await runIn('/', 'sh', ['-c', localized(command)], { env });
        results.push({ command, code: r.code, stderr: r.code === 0 ? '' : r.stderr });
        if (command.startsWith('crootd install-pmcd') && r.code === 0) {
          // pmcd's root line now runs this package's crootd; its uninstall-pmcd gives pmcd.conf back as it was.
          expect(readFileSync(PMCD_CONF, 'utf8')).toMatch(new RegExp(`^root\\s+1\\s+pipe\\s+binary\\s+\\S*${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S*crootd --pmda$`, 'm'));
          const undo = await runIn('/', 'sh', ['-c', 'crootd uninstall-pmcd'], { env });
          expect({ code: undo.code, stderr: undo.code === 0 ? '' : undo.stderr }).toEqual({ code: 0, stderr: '' });
          expect(readFileSync(PMCD_CONF, 'utf8')).toBe(pmcdConf);
        }
        if (command === 'croot hostname web1') expect(r.stdout).toBe(`${hostnameOf(sandbox.pid)}\n`);
        if (command.startsWith('croot show web1 --format json')) {
          expect((JSON.parse(r.stdout) as { containers: unknown[] }).containers[0]).toMatchObject({
            engine: 'static',
            names: ['web1'],
            pid: sandbox.pid,
            hostname: hostnameOf(sandbox.pid),
            cgroup: cgroupTruth(sandbox.pid),
          });
        }
      }
      expect(results.filter((r) => r.code !== 0)).toEqual([]);
      // The kill -HUP line reached this crootd through its pidfile.
      const log = await retryUntil(async () => crootd?.log() ?? '', (l) => / INFO SIGHUP: config re-read /.test(l), 10000);
      expect(log).toMatch(/ INFO SIGHUP: config re-read containers=web1/);
    });

    it('compiles its library example with tsc and the project’s default settings (tsc --init), and runs it', async () => {
      expect({ code: projectInstall.code, stderr: projectInstall.code === 0 ? '' : projectInstall.stderr }).toEqual({ code: 0, stderr: '' });
      const [example] = fenced(README, 'ts');
      expect(example).toBeDefined();
      writeFileSync(join(project, 'example.ts'), example as string);
      const tsc = join(project, 'node_modules', '.bin', 'tsc');
      expect((await runIn(project, tsc, ['--init'])).code).toBe(0);
      const compiled = await runIn(project, tsc, ['-p', '.']);
      expect({ code: compiled.code, out: compiled.stdout }).toEqual({ code: 0, out: '' });
      expect(crootd).toBeDefined();
      const r = await runIn(project, process.execPath, ['example.js', socket(), 'web1']);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `${hostnameOf(sandbox.pid)}\n`, stderr: '' });
    });

    it('gives type files that every entry point can be compiled against, library files checked too', async () => {
      writeFileSync(
        join(project, 'entry-points.ts'),
        [
          "import { RootClient, createCrootContainer, EngineContribution, type CrootDocument } from 'croot';",
          "import { ContainerModule, injectable } from 'croot/inversify';",
          "import { dockerEngineModule, type DockerEndpoint } from 'croot/engines/docker';",
          "import { podmanEngineModule } from 'croot/engines/podman';",
          "import { containerdEngineModule } from 'croot/engines/containerd';",
          "import { lxcEngineModule } from 'croot/engines/lxc';",
          "import { staticEngineModule } from 'croot/engines/static';",
          "import { nativeModule } from 'croot/native';",
          'export const modules: ContainerModule[] = [dockerEngineModule, podmanEngineModule, containerdEngineModule, lxcEngineModule, staticEngineModule, nativeModule];',
          'export const token: symbol = EngineContribution;',
          'export type Endpoint = DockerEndpoint;',
          'export const made = createCrootContainer({ modules });',
          'export const connect: typeof RootClient.connect = RootClient.connect;',
          'export const decorate = injectable;',
          'export function count(d: CrootDocument): number { return d.containers?.length ?? 0; }',
          '',
        ].join('\n'),
      );
      const tsc = join(project, 'node_modules', '.bin', 'tsc');
      const r = await runIn(project, tsc, ['-p', '.', '--noEmit', '--skipLibCheck', 'false']);
      expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: '' });
    });
  });
});
