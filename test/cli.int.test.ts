/**
 * bin/croot and bin/crootd as a user runs them (`node dist/bin/*.js`): the
 * answers for a real namespace sandbox declared in a config file, in-process
 * and through a running crootd; through PCP's own pmdaroot for a docker
 * container; errors and exit statuses; crootd's socket directory, a second
 * crootd on a busy socket, SIGINT, and who may connect.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, CROOT, CROOTD, runCommand, runCroot, spawnCrootd, startCrootd, type CommandResult, type CrootdProcess } from './support/crootd-process.js';
import { cgroupTruth, hostnameOf } from './support/engine-containers.js';
import { makeTempDir, startPcpRoot, type PcpRootPeer } from './support/pcp-peer.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

function probe(): string | undefined {
  return probes.root() ?? builtBinaries() ?? probes.native();
}

const ENGINES = ['containerd', 'docker', 'lxc', 'podman', 'static'];

/** What `croot` printed and how it ended, in one comparable shape (with stderr when it failed, to show why). */
function outcome(r: CommandResult): { code: number | null; stdout: string; stderr?: string } {
  return r.code === 0 ? { code: r.code, stdout: r.stdout } : { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

describeWith('root, the native module and the built bin/croot, bin/crootd', probe, 'the croot and crootd commands', () => {
  const tag = randomBytes(4).toString('hex');
  const sandboxName = `croot-t-${tag}-sbx`;
  // Declared ids may be digests too; prefixes find only those.
  const ambiguousPrefix = `ab${tag}`;
  let work: string;
  let configPath: string;
  let sandbox: Sandbox | undefined;
  let crootd: CrootdProcess | undefined;
  let socketDir: string;
  let socketPath: string;
  const others: CrootdProcess[] = [];

  beforeAll(async () => {
    work = makeTempDir('croot-cli-');
    sandbox = await startSandbox(`${sandboxName}-h`);
    configPath = join(work, 'croot.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        containers: [
          { name: sandboxName, pid: sandbox.pid },
          // Two more for the same process whose ids share a prefix: that prefix is ambiguous.
          { name: `croot-t-${tag}-one`, id: `${ambiguousPrefix}0000000001`, pid: sandbox.pid },
          { name: `croot-t-${tag}-two`, id: `${ambiguousPrefix}0000000002`, pid: sandbox.pid },
        ],
      }),
    );
    // A directory that does not exist yet: crootd makes it.
    socketDir = join(work, 'run', 'pmcd');
    socketPath = join(socketDir, 'root.socket');
    crootd = await startCrootd({ socketPath, logPath: join(work, 'crootd.log'), args: ['--config', configPath] });
  }, 60000);

  afterAll(async () => {
    for (const p of [crootd, ...others]) if (p !== undefined) await p.stop('SIGKILL', 5000);
    await sandbox?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }, 60000);

  describe('croot hostname|pid|cgroup NAME', () => {
    let truth: { hostname: string; pid: string; cgroup: string };

    beforeAll(() => {
      const pid = sandbox?.pid ?? -1;
      truth = { hostname: hostnameOf(pid), pid: String(pid), cgroup: cgroupTruth(pid) };
    });

    it('sees the sandbox under its own hostname in the kernel (the truth the answers are checked against)', () => {
      expect(truth.hostname).toBe(`${sandboxName}-h`);
    });

    /** `croot hostname|pid|cgroup SANDBOX` with `where` (`--config FILE` or `--socket PATH`): each outcome. */
    async function answers(...where: string[]): Promise<ReturnType<typeof outcome>[]> {
      const results = await Promise.all((['hostname', 'pid', 'cgroup'] as const).map((q) => runCroot([q, sandboxName, ...where])));
      return results.map(outcome);
    }

    /** The outcomes the kernel's truth calls for: each printed, exit 0. */
    function truthfulAnswers(): ReturnType<typeof outcome>[] {
      return [truth.hostname, truth.pid, truth.cgroup].map((value) => ({ code: 0, stdout: `${value}\n` }));
    }

    it('prints the sandbox’s hostname, pid and cgroup in-process with --config, and exits 0', async () => {
      expect(await answers('--config', configPath)).toEqual(truthfulAnswers());
    });

    it('prints the same through a running crootd with --socket', async () => {
      expect(await answers('--socket', socketPath)).toEqual(truthfulAnswers());
    });

    it('shows engine, id, names, state and the three answers in-process with croot show', async () => {
      const r = await runCroot(['show', sandboxName, '--config', configPath]);
      expect(outcome(r)).toEqual({
        code: 0,
        stdout: [
          'engine    static',
          `id        ${sandboxName}`,
          `names     ${sandboxName}`,
          'state     running',
          `pid       ${truth.pid}`,
          `hostname  ${truth.hostname}`,
          `cgroup    ${truth.cgroup}`,
          '',
        ].join('\n'),
      });
    });

    it('shows the same as JSON, and only the three answers through crootd', async () => {
      const local = await runCroot(['show', sandboxName, '--config', configPath, '--json']);
      expect(JSON.parse(local.stdout)).toEqual({
        name: sandboxName,
        engine: 'static',
        id: sandboxName,
        names: [sandboxName],
        state: 'running',
        pid: { value: Number(truth.pid) },
        hostname: { value: truth.hostname },
        cgroup: { value: truth.cgroup },
      });
      const remote = await runCroot(['show', sandboxName, '--socket', socketPath, '--json']);
      expect(JSON.parse(remote.stdout)).toEqual({
        name: sandboxName,
        pid: { value: Number(truth.pid) },
        hostname: { value: truth.hostname },
        cgroup: { value: truth.cgroup },
      });
    });

    it.each([
      ['in-process', ['--config']],
      ['through crootd', ['--socket']],
    ])('croot show exits 1 with "Container not found" for a name that matches nothing (%s)', async (how, [flag]) => {
      const r = await runCroot(['show', `croot-t-${tag}-nosuch`, flag as string, how === 'in-process' ? configPath : socketPath]);
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toMatch(/^croot: .*Container not found/);
    });

    it.each([
      ['in-process', (name: string): string[] => ['pid', name, '--config', configPath]],
      ['through crootd', (name: string): string[] => ['pid', name, '--socket', socketPath]],
    ])('prints "Container not found" on stderr and exits 1 for a name that matches nothing (%s)', async (_how, args) => {
      const r = await runCroot(args(`croot-t-${tag}-nosuch`));
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toMatch(/^croot: .*Container not found/);
      expect(r.stderr).toContain(`croot-t-${tag}-nosuch`);
    });

    it('exits 1 for an ambiguous id prefix, naming both candidates', async () => {
      const r = await runCroot(['pid', ambiguousPrefix, '--config', configPath]);
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toContain('ambiguous');
      expect(r.stderr).toContain(`static:${ambiguousPrefix}0000000001`);
      expect(r.stderr).toContain(`static:${ambiguousPrefix}0000000002`);
    });

    it('exits 1 for an ambiguous id prefix through crootd too (the wire carries only the status)', async () => {
      const r = await runCroot(['pid', ambiguousPrefix, '--socket', socketPath]);
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toMatch(/\(-76\)/);
      // crootd's log names them instead.
      const line = (crootd?.log() ?? '').split('\n').find((l) => / WARN request failed .*status=-76/.test(l) && l.includes(ambiguousPrefix));
      expect(line).toContain(`static:${ambiguousPrefix}0000000001`);
      expect(line).toContain(`static:${ambiguousPrefix}0000000002`);
    });
  });

  describeWith('docker and PCP’s pmdaroot', () => probes.docker() ?? probes.pcp(), 'against PCP’s own pmdaroot', () => {
    const created: string[] = [];
    const name = `croot-t-${tag}-dk`;
    let peer: PcpRootPeer | undefined;

    beforeAll(async () => {
      dockerRun(name, { hostname: `${name}-h` }, created);
      peer = await startPcpRoot({ env: { PCP_DOCKER_DIR: '/var/lib/docker' } });
    }, 60000);

    afterAll(async () => {
      await peer?.stop();
      removeDockerContainers(created);
    }, 60000);

    it('prints what croot prints in-process for a docker container, and what docker and the kernel say', async () => {
      const questions = ['hostname', 'pid', 'cgroup'] as const;
      const [viaPcp, local] = await Promise.all([
        Promise.all(questions.map((q) => runCroot([q, name, '--socket', peer?.socketPath ?? '']))),
        Promise.all(questions.map((q) => runCroot([q, name]))),
      ]);
      const pid = Number(dockerInspect(name, '{{.State.Pid}}'));
      const truth = [`${hostnameOf(pid)}\n`, `${pid}\n`, `${cgroupTruth(pid)}\n`];
      expect(local.map(outcome)).toEqual(truth.map((stdout) => ({ code: 0, stdout })));
      expect(viaPcp.map(outcome)).toEqual(local.map(outcome));
    });
  });

  describe('croot list and croot engines', () => {
    it('lists the sandbox from the config and a line for every engine', async () => {
      const r = await runCroot(['list', '--config', configPath]);
      expect(r.code).toBe(0);
      const engineLines = r.stdout.split('\n').filter((l) => l.startsWith('engine '));
      expect(engineLines.map((l) => l.split(/\s+/)[1]).sort()).toEqual(ENGINES);
      expect(engineLines.find((l) => /^engine static\s+up\s/.test(l))).toContain('3 containers');
      const row = r.stdout.split('\n').find((l) => l.endsWith(` ${sandboxName}`));
      expect(row?.split(/\s+/)).toEqual(['static', sandboxName.slice(0, 12), 'running', String(sandbox?.pid), sandboxName]);
    });

    it('prints valid JSON with one entry per engine for engines --json', async () => {
      const r = await runCroot(['engines', '--json']);
      expect(r.code).toBe(0);
      const parsed = JSON.parse(r.stdout) as { engines: { engine: string; available: boolean; reason: string }[] };
      expect(parsed.engines.map((e) => e.engine).sort()).toEqual(ENGINES);
      // An engine whose own CLI answers here must be reported available (static needs nothing).
      const cliAnswers: Record<string, () => string | undefined> = {
        docker: probes.docker,
        podman: probes.podman,
        containerd: probes.containerd,
        lxc: probes.lxc,
        static: () => undefined,
      };
      for (const e of parsed.engines) {
        const missing = cliAnswers[e.engine]?.();
        expect([e.engine, e.available]).toEqual([e.engine, missing === undefined ? true : e.available]);
        expect(e.reason.length).toBeGreaterThan(0);
      }
    });

    it('exits 0 for --help, with the usage on stdout', async () => {
      const r = await runCroot(['--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: croot /);
    });

    it('exits non-zero for an unknown subcommand, saying so on stderr', async () => {
      const r = await runCroot(['frobnicate']);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBeNull();
      expect(r.stderr).toContain("unknown command 'frobnicate'");
    });
  });

  it.each([
    ['croot', CROOT],
    ['crootd', CROOTD],
  ])('%s --version prints the version of the package.json it was built from, and exits 0', async (_name, file) => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await runCommand('node', [file, '--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  describe('crootd', () => {
    it('creates a missing socket directory with mode 0700', () => {
      expect(statSync(socketDir).isDirectory()).toBe(true);
      expect((statSync(socketDir).mode & 0o7777).toString(8)).toBe('700');
      expect(statSync(socketPath).isSocket()).toBe(true);
    });

    it('refuses to start without its native module: exit 1, the paths it tried, how to build it, no socket made', async () => {
      // A copy of the built package without native/build (as `npm install -g` leaves it when install scripts are off).
      const pkg = join(work, 'no-native-pkg');
      mkdirSync(join(pkg, 'native'), { recursive: true });
      cpSync(join(__dirname, '..', 'dist'), join(pkg, 'dist'), { recursive: true });
      cpSync(join(__dirname, '..', 'package.json'), join(pkg, 'package.json'));
      cpSync(join(__dirname, '..', 'native', 'binding.gyp'), join(pkg, 'native', 'binding.gyp'));
      symlinkSync(join(__dirname, '..', 'node_modules'), join(pkg, 'node_modules'));
      const sock = join(work, 'no-native', 'root.socket');
      const env = { ...process.env, CROOT_NATIVE_PATH: '' };
      const r = await runCommand(process.execPath, [join(pkg, 'dist', 'bin', 'crootd.js'), '--socket', sock], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("croot's native module could not be loaded");
      expect(r.stderr).toContain(`${join(pkg, 'native', 'build', 'Release', 'croot_native.node')}: no such file`);
      expect(r.stderr).toContain('npm rebuild croot');
      expect(existsSync(sock)).toBe(false);
    });

    it('refuses to start on a socket another crootd serves: exit 1, a clear message, the socket left alone', async () => {
      const second = spawnCrootd({ socketPath, logPath: join(work, 'second.log'), args: ['--config', configPath] });
      others.push(second);
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([second.exited, new Promise((r) => (timer = setTimeout(() => r('still running'), 20000)))]);
      clearTimeout(timer);
      expect(exit).toEqual({ code: 1, signal: null });
      expect(second.stderr()).toContain(`another server is already listening on ${socketPath}`);
      // The first one still answers on the same socket.
      expect(outcome(await runCroot(['pid', sandboxName, '--socket', socketPath]))).toEqual({ code: 0, stdout: `${sandbox?.pid}\n` });
    }, 30000);

    describe('who may connect', () => {
      // A 0711 directory (crootd would make its own 0700, which nobody else may even traverse),
      // and each socket made writable by the test after crootd made it 0755: connect(2)
      // needs write permission on the socket file, so without this the kernel would refuse
      // uid 65534 before crootd's own SO_PEERCRED check could.
      let open: string;
      let refusing: CrootdProcess;
      let allowing: CrootdProcess;

      /** A tiny client run as uid/gid 65534: whether it connected, the bytes it got, its error. */
      async function connectAsNobody(path: string): Promise<{ connected: boolean; bytes: number; error: string }> {
        const script = [
          "const s = require('net').createConnection(process.argv[1]);",
          "let connected = false, bytes = 0, error = '';",
          "s.on('connect', () => { connected = true; });",
          's.on(\'data\', (d) => { bytes += d.length; if (bytes >= 24) s.destroy(); });',
          "s.on('error', (e) => { error = e.code || e.message; });",
          "s.on('close', () => { console.log(JSON.stringify({ connected, bytes, error })); process.exit(0); });",
          'setTimeout(() => s.destroy(), 3000);',
        ].join('\n');
        const r = await runCommand('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', script, path]);
        if (r.code !== 0) throw new Error(`client as uid 65534 failed (${r.code}): ${r.stderr}`);
        return JSON.parse(r.stdout) as { connected: boolean; bytes: number; error: string };
      }

      beforeAll(async () => {
        open = join(work, 'open');
        mkdirSync(open);
        chmodSync(work, 0o711);
        chmodSync(open, 0o711);
        refusing = await startCrootd({ socketPath: join(open, 'refusing.socket'), logPath: join(work, 'refusing.log') });
        others.push(refusing);
        allowing = await startCrootd({ socketPath: join(open, 'allowing.socket'), logPath: join(work, 'allowing.log'), args: ['--allow-uid', '65534'] });
        others.push(allowing);
      }, 60000);

      it('makes its socket 0755, so the kernel alone keeps other users out', async () => {
        expect((statSync(refusing.socketPath).mode & 0o777).toString(8)).toBe('755');
        await expect(connectAsNobody(refusing.socketPath)).resolves.toEqual({ connected: false, bytes: 0, error: 'EACCES' });
      });

      it('closes the connection of a uid it does not allow, before sending anything, and logs it', async () => {
        chmodSync(refusing.socketPath, 0o777);
        const result = await connectAsNobody(refusing.socketPath);
        expect({ connected: result.connected, bytes: result.bytes }).toEqual({ connected: true, bytes: 0 });
        expect(refusing.log()).toMatch(/ WARN connection refused: uid not allowed uid=65534 /);
      });

      it('lets the uid in with --allow-uid 65534: the client receives the 24-byte INFO', async () => {
        chmodSync(allowing.socketPath, 0o777);
        await expect(connectAsNobody(allowing.socketPath)).resolves.toEqual({ connected: true, bytes: 24, error: '' });
        expect(allowing.log()).toMatch(/ INFO listening .*allowUids=0,65534/);
      });
    });

    it('exits 0 on SIGINT and removes its socket', async () => {
      expect(existsSync(socketPath)).toBe(true);
      const exit = await (crootd as CrootdProcess).stop('SIGINT', 10000);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(existsSync(socketPath)).toBe(false);
      expect(crootd?.log()).toMatch(/ INFO stopping signal=SIGINT/);
    });
  });
});
