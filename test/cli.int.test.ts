/**
 * bin/croot and bin/crootd as a user runs them (`node dist/bin/*.js`): the
 * answers for a real namespace sandbox declared in a config file, in-process
 * and through a running crootd; list, show, engines and status through
 * crootd's protocol extension; through PCP's own pmdaroot for a docker
 * container (and PCP's server saying it cannot list); every exit status,
 * output format and hint; crootd's socket directory, a second crootd on a
 * busy socket, SIGINT, its pidfile, and who may connect.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, CROOT, CROOTD, runCommand, runCroot, spawnCrootd, startCrootd, type CommandResult, type CrootdProcess } from './support/crootd-process.js';
import { cgroupTruth, hostnameOf } from './support/engine-containers.js';
import { makeTempDir, startPcpRoot, type PcpRootPeer } from './support/pcp-peer.js';
import { RawRootClient } from './support/raw-root-client.js';
import { T, containerRequest, readContainer } from './support/root-pdu-bytes.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

function probe(): string | undefined {
  return probes.root() ?? builtBinaries() ?? probes.native();
}

const ENGINES = ['containerd', 'docker', 'lxc', 'podman', 'static'];

/** croot's exit statuses, as docs/cli.md and croot(1) list them. */
const EXIT = { usage: 2, notFound: 3, ambiguous: 4, notRunning: 5, permission: 6, unreachable: 7, unsupported: 8, noEngine: 9 };

/** Runs `argv` as uid/gid 65534 (nobody), with node, from `/`. */
function runAsNobody(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CommandResult> {
  return runCommand('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, CROOT, ...args], env === undefined ? {} : { env });
}

/** What `croot` printed and how it ended, in one comparable shape (with stderr when it failed, to show why). */
function outcome(r: CommandResult): { code: number | null; stdout: string; stderr?: string } {
  return r.code === 0 ? { code: r.code, stdout: r.stdout } : { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

describeWith('root, the native module and the built bin/croot, bin/crootd', probe, 'the croot and crootd commands', () => {
  const tag = randomBytes(4).toString('hex');
  const sandboxName = `croot-t-${tag}-sbx`;
  const stoppedName = `croot-t-${tag}-stopped`;
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
          // Its pidfile does not exist: declared, not running.
          { name: stoppedName, pidfile: 'no-such.pid' },
        ],
      }),
    );
    // A directory that does not exist yet: crootd makes it.
    socketDir = join(work, 'run', 'pmcd');
    socketPath = join(socketDir, 'root.socket');
    crootd = await startCrootd({ socketPath, logPath: join(work, 'crootd.log'), args: ['--config', configPath, '--pidfile', join(work, 'crootd.pid')] });
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

    it('prints one answer as the JSON document every command uses, with --json or --format json', async () => {
      const r = await runCroot(['pid', sandboxName, '--config', configPath, '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({
        schemaVersion: 1,
        containers: [{ engine: 'static', id: sandboxName, names: [sandboxName], state: 'running', pid: Number(truth.pid) }],
      });
      const viaCrootd = await runCroot(['hostname', sandboxName, '--socket', socketPath, '--format', 'json']);
      expect(JSON.parse(viaCrootd.stdout)).toEqual({
        schemaVersion: 1,
        containers: [{ engine: null, id: null, names: [sandboxName], state: null, pid: Number(truth.pid), hostname: truth.hostname }],
      });
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

    it('shows the same record as JSON in-process and through crootd (its protocol extension)', async () => {
      const expected = {
        schemaVersion: 1,
        containers: [
          { engine: 'static', id: sandboxName, names: [sandboxName], state: 'running', pid: Number(truth.pid), hostname: truth.hostname, cgroup: truth.cgroup },
        ],
      };
      const local = await runCroot(['show', sandboxName, '--config', configPath, '--json']);
      expect(JSON.parse(local.stdout)).toEqual(expected);
      const remote = await runCroot(['show', sandboxName, '--socket', socketPath, '--json']);
      expect(JSON.parse(remote.stdout)).toEqual(expected);
    });

    it.each([
      ['in-process', ['--config']],
      ['through crootd', ['--socket']],
    ])('shows a declared container that is not running with each answer’s reason, and exits 0 (%s)', async (how, [flag]) => {
      const r = await runCroot(['show', stoppedName, flag as string, how === 'in-process' ? configPath : socketPath, '--json']);
      expect(r.code).toBe(0);
      const [c] = (JSON.parse(r.stdout) as { containers: Record<string, unknown>[] }).containers;
      expect(c).toMatchObject({ engine: 'static', state: 'stopped', pid: null, hostname: null, cgroup: null });
      expect(c?.errors).toMatchObject({ pid: { code: 'ERR_NOT_RUNNING', status: -3 }, hostname: { status: -3 }, cgroup: { status: -3 } });
    });

    it.each([
      ['in-process', ['show', 'pid', 'hostname', 'cgroup'], '--config'],
      ['through crootd', ['show', 'pid', 'hostname', 'cgroup'], '--socket'],
    ])('exits 3 with "MESSAGE (-12399: Container not found)" for a name that matches nothing (%s)', async (how, commands, flag) => {
      const where = how === 'in-process' ? configPath : socketPath;
      for (const command of commands) {
        const r = await runCroot([command, `croot-t-${tag}-nosuch`, flag, where]);
        expect({ command, code: r.code, stdout: r.stdout }).toEqual({ command, code: EXIT.notFound, stdout: '' });
        expect(r.stderr.split('\n')[0]).toMatch(new RegExp(`^croot: .*croot-t-${tag}-nosuch.* \\(-12399: Container not found\\)$`));
      }
    });

    it.each([
      ['in-process', '--config'],
      ['through crootd', '--socket'],
    ])('exits 4 for an ambiguous id prefix, naming both candidates and how to pick one (%s)', async (how, flag) => {
      const r = await runCroot(['pid', ambiguousPrefix, flag, how === 'in-process' ? configPath : socketPath]);
      expect(r).toMatchObject({ code: EXIT.ambiguous, stdout: '' });
      expect(r.stderr).toContain('ambiguous');
      expect(r.stderr).toContain(`static:${ambiguousPrefix}0000000001`);
      expect(r.stderr).toContain(`static:${ambiguousPrefix}0000000002`);
      expect(r.stderr).toMatch(/\(-76: Name not unique on network\)/);
      expect(r.stderr).toMatch(/^croot: hint: .*ENGINE:NAME/m);
    });

    it('names the candidates in crootd’s log too', () => {
      const line = (crootd?.log() ?? '').split('\n').find((l) => / WARN request failed .*status=-76/.test(l) && l.includes(ambiguousPrefix));
      expect(line).toContain(`static:${ambiguousPrefix}0000000001`);
      expect(line).toContain(`static:${ambiguousPrefix}0000000002`);
    });

    it.each([
      ['in-process', '--config'],
      ['through crootd', '--socket'],
    ])('exits 5 for a declared container that is not running (%s)', async (how, flag) => {
      const r = await runCroot(['pid', stoppedName, flag, how === 'in-process' ? configPath : socketPath]);
      expect(r).toMatchObject({ code: EXIT.notRunning, stdout: '' });
      expect(r.stderr).toMatch(/\(-3: No such process\)/);
    });
  });

  describe('exit statuses for the command line itself and the server', () => {
    it.each([
      ['an unknown command', ['frobnicate'], "unknown command 'frobnicate'"],
      ['a missing NAME', ['pid'], "missing required argument 'name'"],
      ['an unknown --format', ['list', '--format', 'yaml'], "'yaml' is invalid"],
      ['an unknown --state', ['list', '--state', 'bogus'], "argument 'bogus' is invalid"],
      ['an unknown option', ['list', '--frob'], "unknown option '--frob'"],
    ])('exits 2 for %s, saying so on stderr', async (_what, args, message) => {
      const r = await runCroot(args);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: EXIT.usage, stdout: '' });
      expect(r.stderr).toContain(message);
    });

    it('exits 2 for a config file that cannot be used, naming the file and the key', async () => {
      const bad = join(work, 'bad.json');
      writeFileSync(bad, JSON.stringify({ sockt: '/x' }));
      const r = await runCroot(['list', '--config', bad]);
      expect(r.code).toBe(EXIT.usage);
      expect(r.stderr).toContain(`config file ${bad}: "sockt" is not a known key`);
    });

    it('exits 7 when nothing listens at --socket, with a hint to start crootd', async () => {
      const missing = join(work, 'nothing-here.socket');
      for (const args of [['pid', sandboxName], ['list'], ['status']]) {
        const r = await runCroot([...args, '--socket', missing]);
        expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: EXIT.unreachable, stdout: '' });
        expect(r.stderr).toContain(`cannot connect to ${missing}`);
        expect(r.stderr).toContain(`croot: hint: is crootd (or pmcd's pmdaroot) listening on ${missing}?`);
      }
    });

    it('lists every exit status in --help', async () => {
      const r = await runCroot(['--help']);
      expect(r.code).toBe(0);
      for (const code of [0, 1, ...Object.values(EXIT)]) expect(r.stdout).toMatch(new RegExp(`^  ${code} +\\S`, 'm'));
    });
  });

  describe('croot status', () => {
    it('describes the running crootd: its pid, socket, uptime, who may connect, engines, and the requests it answered', async () => {
      const before = JSON.parse((await runCroot(['status', '--socket', socketPath, '--json'])).stdout) as {
        schemaVersion: number;
        server: { pid: number; socket: string; version: string; uptimeSeconds: number; allowUids: number[]; connections: { open: number; peers: { pid: number; uid: number }[] }; requests: { total: number; byKind: Record<string, number> } };
        engines: { engine: string }[];
      };
      expect(before.schemaVersion).toBe(1);
      expect(before.server).toMatchObject({ pid: crootd?.pid, socket: socketPath, version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
      expect(before.server.allowUids).toContain(0);
      // The one connection open is the one asking.
      expect(before.server.connections.open).toBe(1);
      expect(before.server.connections.peers[0]?.uid).toBe(0);
      expect(before.engines.map((e) => e.engine).sort()).toEqual(ENGINES);
      await runCroot(['pid', sandboxName, '--socket', socketPath]);
      await runCroot(['hostname', sandboxName, '--socket', socketPath]);
      const after = JSON.parse((await runCroot(['status', '--socket', socketPath, '--json'])).stdout) as typeof before;
      // Two questions and this status request since the first status.
      expect(after.server.requests.total - before.server.requests.total).toBe(3);
      expect((after.server.requests.byKind.pid ?? 0) - (before.server.requests.byKind.pid ?? 0)).toBe(1);
      expect((after.server.requests.byKind.hostname ?? 0) - (before.server.requests.byKind.hostname ?? 0)).toBe(1);
      // The same question twice on one connection: the second is answered again by the connection itself.
      const raw = await RawRootClient.open(socketPath);
      try {
        for (let i = 0; i < 2; i++) {
          await raw.write(containerRequest(T.PROCESSID_REQ, 0, sandboxName));
          expect(readContainer((await raw.next(5000)) as Buffer)).toMatchObject({ type: T.PROCESSID, status: 0, pid: sandbox?.pid });
        }
      } finally {
        raw.close();
      }
      const again = JSON.parse((await runCroot(['status', '--socket', socketPath, '--json'])).stdout) as { server: { requests: { total: number; answeredAgain: number } } };
      expect(again.server.requests.total - after.server.requests.total).toBe(3);
      expect(again.server.requests.answeredAgain - (after.server.requests as { answeredAgain?: number }).answeredAgain!).toBe(1);
      const table = await runCroot(['status', '--socket', socketPath]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^requests +\d+ \(.*\), \d+ failed, [1-9]\d* answered again from replies given before$/m);
      expect(table.stdout).toMatch(new RegExp(`^server +crootd \\S+, pid ${crootd?.pid}$`, 'm'));
      expect(table.stdout).toMatch(new RegExp(`^socket +${socketPath.replace(/[.]/g, '\\.')}$`, 'm'));
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

    it('exits 5 when PCP answers PID -1 (a container that is not running), instead of printing -1', async () => {
      const stopped = `croot-t-${tag}-dkstop`;
      dockerRun(stopped, { createOnly: true }, created);
      const r = await runCroot(['pid', stopped, '--socket', peer?.socketPath ?? '']);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: EXIT.notRunning, stdout: '' });
      expect(r.stderr).toContain('the server answered PID -1');
    });

    it.each([['list'], ['engines'], ['status']])('says plainly that PCP’s pmdaroot cannot answer croot %s, and exits 8', async (command) => {
      const r = await runCroot([command, '--socket', peer?.socketPath ?? '']);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: EXIT.unsupported, stdout: '' });
      expect(r.stderr).toContain("does not speak croot's extension, so it cannot list");
    });

    it('shows the three answers PCP’s pmdaroot gives, with engine, id and state unknown', async () => {
      const r = await runCroot(['show', name, '--socket', peer?.socketPath ?? '', '--json']);
      const pid = Number(dockerInspect(name, '{{.State.Pid}}'));
      expect(JSON.parse(r.stdout)).toEqual({
        schemaVersion: 1,
        containers: [{ engine: null, id: null, names: [name], state: null, pid, hostname: hostnameOf(pid), cgroup: cgroupTruth(pid) }],
      });
    });

    it('exits 6 in-process as a user who cannot read Docker’s state, saying so and hinting at root or --socket', async () => {
      const r = await runAsNobody(['pid', name]);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: EXIT.permission, stdout: '' });
      expect(r.stderr).toMatch(/permission denied reading the state of .*docker/);
      expect(r.stderr).toContain('croot: hint: run as root, or use --socket PATH to ask a running crootd');
    });
  });

  describe('croot list and croot engines', () => {
    const declared = (): string[] => [sandboxName, `croot-t-${tag}-one`, `croot-t-${tag}-two`, stoppedName];

    it('lists the declared containers sorted by engine and name, with state, PID, digest ids cut to 12, and exits 0', async () => {
      const r = await runCroot(['list', '--config', configPath, '--engine', 'static']);
      expect(r.code).toBe(0);
      const [header, ...rows] = r.stdout.trimEnd().split('\n');
      expect(header?.split(/\s+/)).toEqual(['ENGINE', 'ID', 'STATE', 'PID', 'NAMES']);
      expect(rows.map((l) => l.split(/\s+/))).toEqual([
        ['static', `${ambiguousPrefix}00`, 'running', String(sandbox?.pid), `croot-t-${tag}-one`],
        ['static', sandboxName, 'running', String(sandbox?.pid), sandboxName],
        ['static', stoppedName, 'stopped', '-', stoppedName],
        ['static', `${ambiguousPrefix}00`, 'running', String(sandbox?.pid), `croot-t-${tag}-two`],
      ]);
      const whole = await runCroot(['list', '--config', configPath, '--engine', 'static', '--no-trunc']);
      expect(whole.stdout.split('\n').map((l) => l.split(/\s+/)[1])).toEqual(
        expect.arrayContaining([`${ambiguousPrefix}0000000001`, `${ambiguousPrefix}0000000002`]),
      );
    });

    it('prints the same list in the same order every time, in-process and through crootd', async () => {
      const runs = await Promise.all([
        runCroot(['list', '--config', configPath, '--engine', 'static', '--json']),
        runCroot(['list', '--config', configPath, '--engine', 'static', '--json']),
        runCroot(['list', '--socket', socketPath, '--engine', 'static', '--json']),
      ]);
      const containers = runs.map((r) => (JSON.parse(r.stdout) as { containers: unknown[] }).containers);
      expect(containers[1]).toEqual(containers[0]);
      expect(containers[2]).toEqual(containers[0]);
      expect((containers[0] as { names: string[] }[]).map((c) => c.names[0]).sort()).toEqual(declared().sort());
    });

    it('filters by state, and prints only ids with -q', async () => {
      const r = await runCroot(['list', '--config', configPath, '--engine', 'static', '--state', 'stopped', '-q']);
      expect(outcome(r)).toEqual({ code: 0, stdout: `${stoppedName}\n` });
      const running = await runCroot(['list', '--socket', socketPath, '--engine', 'static', '--state', 'running', '-q', '--no-trunc']);
      expect(running.stdout.trim().split('\n').sort()).toEqual([`${ambiguousPrefix}0000000001`, `${ambiguousPrefix}0000000002`, sandboxName].sort());
    });

    it('prints valid JSON with one entry per engine for engines --json, in-process and through crootd', async () => {
      for (const where of [[], ['--socket', socketPath]]) {
        const r = await runCroot(['engines', '--json', ...where]);
        expect(r.code).toBe(0);
        const parsed = JSON.parse(r.stdout) as { schemaVersion: number; engines: { engine: string; available: boolean; reason: string; checkedAt: string }[] };
        expect(parsed.schemaVersion).toBe(1);
        expect(parsed.engines.map((e) => e.engine)).toEqual(ENGINES);
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
          expect(Number.isNaN(Date.parse(e.checkedAt))).toBe(false);
        }
      }
    });

    it('exits 9 when no engine is available, still printing the engines and why', async () => {
      const nowhere = join(work, 'nowhere');
      const config = join(work, 'no-static.json');
      writeFileSync(config, JSON.stringify({ disabledEngines: ['static'] }));
      const env = {
        ...process.env,
        DOCKER_HOST: `unix://${nowhere}/docker.sock`,
        PCP_DOCKER_DIR: nowhere,
        PCP_PODMAN_DATADIR: nowhere,
        PCP_PODMAN_RUNDIR: nowhere,
        CROOT_PODMAN_SOCKET: `${nowhere}/podman.sock`,
        CROOT_CONTAINERS_STORAGE_CONF: '',
        CROOT_PODMAN_ROOTLESS: '0',
        CROOT_CONTAINERD_TASK_DIR: nowhere,
        PCP_LXC_DIR: nowhere,
      };
      const r = await runCroot(['engines', '--config', config], { env });
      expect(r.code).toBe(EXIT.noEngine);
      expect(r.stdout).toMatch(/^docker +down +/m);
      expect(r.stderr).toContain('no engine is available');
    });
  });

  describe('croot completion', () => {
    it('completes commands and the names croot lists, in bash', async () => {
      const script = (await runCroot(['completion', 'bash'])).stdout;
      const shim = join(work, 'bin');
      mkdirSync(shim, { recursive: true });
      writeFileSync(join(shim, 'croot'), `#!/bin/sh\nexec ${process.execPath} ${CROOT} "$@"\n`, { mode: 0o755 });
      const complete = async (line: string): Promise<string[]> => {
        const words = line.split(' ');
        const program = [
          script,
          `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}`,
          '_croot',
          'printf "%s\\n" "${COMPREPLY[@]}"',
        ].join('\n');
        const r = await runCommand('bash', ['-c', program], { env: { ...process.env, PATH: `${shim}:${process.env.PATH ?? ''}` } });
        return r.stdout.split('\n').filter(Boolean).sort();
      };
      expect(await complete('croot st')).toEqual(['status']);
      expect(await complete('croot list --state s')).toEqual(['stopped']);
      expect(await complete(`croot --config ${configPath} pid croot-t-${tag}-s`)).toEqual([sandboxName, stoppedName].sort());
    });

    it('prints a zsh script that defines its completion function', async () => {
      const r = await runCroot(['completion', 'zsh']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^#compdef croot$/m);
      expect(r.stdout).toContain('compdef _croot croot');
    });

    it('exits 2 for a shell it does not know', async () => {
      expect((await runCroot(['completion', 'fish'])).code).toBe(EXIT.usage);
    });
  });

  it.each([
    ['croot', CROOT],
    ['bin/croot (the launcher, which answers --version itself)', join(__dirname, '..', 'bin', 'croot')],
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
      expect(r.stderr).toContain('npm rebuild -g croot');
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

      it('makes croot as that user exit 6 on the 0755 socket, hinting at what to ask for', async () => {
        chmodSync(refusing.socketPath, 0o755);
        const r = await runAsNobody(['pid', 'anything', '--socket', refusing.socketPath]);
        expect({ code: r.code, stdout: r.stdout }).toEqual({ code: EXIT.permission, stdout: '' });
        expect(r.stderr).toContain('EACCES');
        expect(r.stderr).toContain('croot: hint: ');
      });

      it('makes croot as that user exit 7 when crootd closes the connection, hinting at the allow-list', async () => {
        chmodSync(refusing.socketPath, 0o777);
        const r = await runAsNobody(['list', '--socket', refusing.socketPath]);
        expect({ code: r.code, stdout: r.stdout }).toEqual({ code: EXIT.unreachable, stdout: '' });
        expect(r.stderr).toContain('closed the connection before sending INFO');
        expect(r.stderr).toContain('uid 65534 needs --allow-uid/--allow-user');
      });

      it('lets the uid in with --allow-uid 65534: the client receives the 24-byte INFO', async () => {
        chmodSync(allowing.socketPath, 0o777);
        await expect(connectAsNobody(allowing.socketPath)).resolves.toEqual({ connected: true, bytes: 24, error: '' });
        expect(allowing.log()).toMatch(/ INFO listening .*allowUids=0,65534/);
      });
    });

    it('writes its pid to --pidfile once listening', () => {
      expect(readFileSync(join(work, 'crootd.pid'), 'utf8')).toBe(`${crootd?.pid}\n`);
    });

    it('exits 0 on SIGINT and removes its socket and pidfile', async () => {
      expect(existsSync(socketPath)).toBe(true);
      const exit = await (crootd as CrootdProcess).stop('SIGINT', 10000);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(existsSync(socketPath)).toBe(false);
      expect(existsSync(join(work, 'crootd.pid'))).toBe(false);
      expect(crootd?.log()).toMatch(/ INFO stopping signal=SIGINT/);
    });
  });
});
