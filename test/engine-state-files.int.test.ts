/**
 * The built crootd reading Docker's and containerd's state files when they
 * are broken: a dockerd and a containerd of this test's own
 * (test/support/private-daemons.ts), real containers and tasks, and their
 * files replaced (the way the engines replace their own, by rename) by
 * half-written, empty or oversized files, FIFOs, folders and symbolic links
 * (to /etc/passwd, to another container's file or folder, to a FIFO outside
 * the tree): Docker's `config.v2.json` and its container folder; containerd's
 * task bundle (`init.pid`, `config.json`, the bundle folder) and runc's
 * `state.json`. dockerd is SIGKILLed first (its containers run on), so
 * crootd reads Docker's files, as it does whenever the daemon is away.
 *
 * What must hold, while clients ask without pause: a container whose files
 * are broken is not answered, or (Docker, files broken after a good read) is
 * answered from its last good state while its init still runs; every other
 * container is answered as its engine says; no answer is another container's
 * or the host's; crootd never opens what a link points at and never waits on
 * a FIFO; once the files are whole again every container is answered,
 * without restarting crootd.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askCrootd } from '../core/client/extension-client.js';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { AnswerChecker, AnswerHammer, ContainerTruth, wrongAnswers, type Expectation, type Incarnation } from './support/answer-hammer.js';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { buildPcpCClient } from './support/pcp-peer.js';
import { startPrivateDaemons, type PrivateDaemons } from './support/private-daemons.js';
import { FifoProbe, fifoInPlace, folderInPlace, folderLinkedTo, halfWritten, oversized, symlinkTo, truncated, type StateFault } from './support/state-file-faults.js';

jest.setTimeout(180000);

function probe(): string | undefined {
  return probes.root() ?? probes.docker() ?? probes.containerd() ?? probes.pcpClientLib() ?? probes.native() ?? builtBinaries();
}

describeWith('root, docker, containerd, PCP’s C client library and the built crootd', probe, 'crootd reading Docker’s and containerd’s state files when they are broken', () => {
  const tag = randomBytes(4).toString('hex');
  const ns = `croot-t-${tag}`;
  const truth = new ContainerTruth();
  const dockerIds = new Map<string, string>();
  const ctrIds = new Map<string, string>();
  const applied: StateFault[] = [];
  let daemons: PrivateDaemons | undefined;
  let crootd: CrootdProcess | undefined;
  let hammer: AnswerHammer | undefined;
  let checker: AnswerChecker | undefined;
  let fifo: FifoProbe | undefined;
  let dir: string;
  let crootdPid: number;

  const d = (suffix: string): string => `croot-t-${tag}-${suffix}`;
  const c = (suffix: string): string => `${ns}/${suffix}`;
  const dockerDir = (suffix: string): string => join((daemons as PrivateDaemons).dockerd?.dataRoot ?? '', 'containers', dockerIds.get(d(suffix)) as string);
  const bundle = (suffix: string): string => join((daemons as PrivateDaemons).containerd.taskDir, ns, suffix);
  const runcState = (suffix: string): string => join((daemons as PrivateDaemons).containerd.runcRoot, ns, suffix, 'state.json');

  const dockerFaulty = ['half', 'empty', 'passwd', 'other', 'out', 'fifo', 'folder', 'big', 'dirlink'];
  const ctrFaulty = ['pidlink', 'pidhalf', 'statehalf', 'stateout', 'statefifo', 'specpasswd', 'specother', 'specbig', 'bundlelink'];

  /** Docker's faults, one container each. */
  function dockerFaults(): StateFault[] {
    const config = (suffix: string): string => join(dockerDir(suffix), 'config.v2.json');
    const outside = (fifo as FifoProbe).path;
    return [
      halfWritten(config('half')),
      truncated(config('empty')),
      symlinkTo(config('passwd'), '/etc/passwd'),
      symlinkTo(config('other'), config('ok'), "another container's config.v2.json"),
      symlinkTo(config('out'), outside, 'a FIFO outside the tree'),
      fifoInPlace(config('fifo')),
      folderInPlace(config('folder')),
      oversized(config('big'), 5 * 1024 * 1024),
      folderLinkedTo(dockerDir('dirlink'), dockerDir('ok'), "another container's folder"),
    ];
  }

  /** containerd's and runc's faults, one task each. */
  function ctrFaults(): StateFault[] {
    const outside = (fifo as FifoProbe).path;
    return [
      symlinkTo(join(bundle('pidlink'), 'init.pid'), join(bundle('ok'), 'init.pid'), "another task's init.pid"),
      halfWritten(join(bundle('pidhalf'), 'init.pid')),
      halfWritten(runcState('statehalf')),
      symlinkTo(runcState('stateout'), outside, 'a FIFO outside the tree'),
      fifoInPlace(runcState('statefifo')),
      symlinkTo(join(bundle('specpasswd'), 'config.json'), '/etc/passwd'),
      symlinkTo(join(bundle('specother'), 'config.json'), join(bundle('ok'), 'config.json'), "another task's config.json"),
      oversized(join(bundle('specbig'), 'config.json'), 5 * 1024 * 1024),
      folderLinkedTo(bundle('bundlelink'), bundle('ok'), "another task's bundle"),
    ];
  }

  /** The init that runs: by /proc for Docker's containers (dockerd is down), by `ctr task ls` for tasks. */
  async function current(ref: string): Promise<Incarnation | undefined> {
    const id = ctrIds.get(ref);
    if (id === undefined) return truth.running(ref);
    const pid = await (daemons as PrivateDaemons).containerd.taskPid(ns, id);
    return pid === undefined ? undefined : truth.saw(ref, pid);
  }

  const all = (): string[] => [...truth.containers.keys()];
  const expectations = (notAnswered: readonly string[], either: readonly string[] = []): Array<readonly [string, Expectation]> =>
    all().map((ref) => [ref, either.includes(ref) ? 'answered or not answered' : notAnswered.includes(ref) ? 'not answered' : 'answered'] as const);

  function applyAll(faults: readonly StateFault[]): void {
    for (const f of faults) {
      applied.push(f);
      f.apply();
    }
  }

  function undoAll(): void {
    for (const f of applied.splice(0).reverse()) f.undo();
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-files-'));
    daemons = await startPrivateDaemons({ docker: true, namespaces: [ns] });
    const dockerd = daemons.dockerd as NonNullable<PrivateDaemons['dockerd']>;
    for (const suffix of ['ok', 'ok2', ...dockerFaulty]) {
      const name = d(suffix);
      truth.add(name, `h-${suffix}-${tag}`);
      dockerIds.set(name, await dockerd.run(name, { hostname: `h-${suffix}-${tag}` }));
      const pid = Number(await dockerd.docker(['inspect', '-f', '{{.State.Pid}}', name]));
      truth.saw(name, pid);
    }
    for (const suffix of ['ok', 'ok2', ...ctrFaulty]) {
      truth.add(c(suffix), `c-${suffix}-${tag}`);
      ctrIds.set(c(suffix), suffix);
      await daemons.containerd.run(ns, suffix, { hostname: `c-${suffix}-${tag}` });
      await current(c(suffix));
    }
    // The containers run on without dockerd; croot reads Docker's files from now on.
    await dockerd.process.kill('SIGKILL');
    fifo = new FifoProbe(dir).start();
    applyAll([...dockerFaults(), ...ctrFaults()]);
    const configPath = join(dir, 'croot.json');
    writeFileSync(configPath, JSON.stringify({ disabledEngines: ['podman', 'lxc'] }));
    crootd = await startCrootd({
      socketPath: join(dir, 'root.socket'),
      logPath: join(dir, 'crootd.log'),
      args: ['--config', configPath, '--no-pcp-user'],
      env: { ...process.env, ...daemons.crootEnv() },
    });
    crootdPid = crootd.serverPid();
    const cClient = buildPcpCClient(dir);
    checker = new AnswerChecker(crootd.socketPath, cClient, truth);
    hammer = new AnswerHammer({
      socketPath: crootd.socketPath,
      cClient,
      crootClients: 2,
      cClients: 2,
      pickRef: () => all()[Math.floor(Math.random() * all().length)] as string,
    }).start();
  });

  afterAll(async () => {
    fifo?.stop();
    await hammer?.stop();
    checker?.close();
    await crootd?.stop();
    // The engines must find their own files again to remove what they run.
    undoAll();
    await daemons?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('does not answer the containers whose files were broken when it loaded them, and answers the others', async () => {
    await checker?.expectTold(expectations([...dockerFaulty.map(d), ...ctrFaulty.map(c)]), current);
    const doc = await askCrootd({ op: 'engines' }, crootd?.socketPath, { transport: nodeSocketTransport });
    expect(doc.engines?.find((e) => e.engine === 'containerd')?.reason).toMatch(/run state damaged, so not running for croot: /);
  });

  it('answers every container once its files are whole again', async () => {
    undoAll();
    await checker?.expectTold(expectations([]), current);
  });

  it('answers a Docker container from its last good state while its config breaks under it', async () => {
    applyAll(dockerFaults());
    // Time for crootd to read every change: a file it refused would make the container unanswered, or wrong.
    await new Promise((r) => setTimeout(r, 2000));
    // A container folder moved away is a container removed, for Docker's files as for Docker. A folder
    // cannot be renamed over a file: the config is missing for a moment, which may be read as a removal too.
    await checker?.expectTold(expectations([d('dirlink')], [d('folder')]), current);
    // An init dies meanwhile: its last good state is no longer true, and is not answered.
    const half = truth.running(d('half')) as Incarnation;
    process.kill(half.pid, 'SIGKILL');
    await truth.waitGone(half);
    await checker?.expectTold(expectations([d('dirlink'), d('half')], [d('folder')]), current);
    undoAll();
    await checker?.expectTold(expectations([d('half')]), current);
  });

  it('gave no client a wrong answer, never opened the FIFO links pointed at, and was never restarted', async () => {
    fifo?.stop();
    await hammer?.stop();
    truth.noteGone();
    const h = hammer as AnswerHammer;
    expect(h.broken).toEqual([]);
    expect(wrongAnswers(truth, h.answers)).toEqual([]);
    expect(h.answers.length).toBeGreaterThan(100);
    expect(fifo?.opened).toBe(0);
    const status = await askCrootd({ op: 'status' }, crootd?.socketPath, { transport: nodeSocketTransport });
    expect(status.server?.pid).toBe(crootdPid);
  });
});
