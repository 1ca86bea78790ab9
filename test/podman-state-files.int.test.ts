/**
 * The built crootd reading a podman store whose files are broken under it: a
 * rootful store of this test's own (test/support/private-daemons.ts), real
 * containers, and their run state (`userdata/pidfile`, `conmon.pid`) and
 * c/storage's `containers.json` replaced by half-written, truncated or
 * oversized files, FIFOs, folders and symbolic links (to another container's
 * files, to /etc/passwd, to a FIFO outside the store), the way podman
 * replaces its own files (by rename), while clients ask without pause.
 *
 * What must hold: a container whose run state is broken is not answered
 * (never with another container's pid, or the host's hostname), every other
 * one is answered as podman says, crootd never waits on a FIFO and never
 * opens anything a link points at, and once the files are whole again every
 * container is answered, without restarting crootd. A broken
 * `containers.json` keeps the containers of its last good read answered.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { askCrootd } from '../core/client/extension-client.js';
import { AnswerChecker, AnswerHammer, ContainerTruth, wrongAnswers, type Incarnation } from './support/answer-hammer.js';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { buildPcpCClient } from './support/pcp-peer.js';
import { startPrivatePodman, type PrivatePodman } from './support/private-daemons.js';
import { FifoProbe, fifoInPlace, folderInPlace, folderLinkedTo, halfWritten, oversized, symlinkTo, truncated, type StateFault } from './support/state-file-faults.js';

jest.setTimeout(180000);

function probe(): string | undefined {
  return probes.root() ?? probes.podman() ?? probes.docker() ?? probes.pcpClientLib() ?? probes.native() ?? builtBinaries();
}

describeWith('root, podman, docker (for the test image), PCP’s C client library and the built crootd', probe, 'crootd reading a podman store whose files are broken under it', () => {
  const tag = randomBytes(4).toString('hex');
  const truth = new ContainerTruth();
  const ids = new Map<string, string>();
  const applied: StateFault[] = [];
  let store: PrivatePodman | undefined;
  let crootd: CrootdProcess | undefined;
  let hammer: AnswerHammer | undefined;
  let checker: AnswerChecker | undefined;
  let fifo: FifoProbe | undefined;
  let dir: string;
  let crootdPid: number;

  const name = (suffix: string): string => `croot-t-${tag}-${suffix}`;
  const userdata = (suffix: string): string => join((store as PrivatePodman).runDir, 'vfs-containers', ids.get(name(suffix)) as string, 'userdata');
  const list = (): string => join((store as PrivatePodman).storageDir, 'vfs-containers', 'containers.json');

  async function current(ref: string): Promise<Incarnation | undefined> {
    const out = await (store as PrivatePodman).podman(['inspect', '-f', '{{.State.Running}} {{.State.Pid}}', ref]).catch(() => 'false 0');
    const [running, pid] = out.split(' ');
    return running === 'true' ? truth.saw(ref, Number(pid)) : undefined;
  }

  async function run(suffix: string): Promise<void> {
    const ref = name(suffix);
    truth.add(ref, `h-${suffix}-${tag}`);
    ids.set(ref, await (store as PrivatePodman).run(ref, `h-${suffix}-${tag}`));
    await current(ref);
  }

  function apply(f: StateFault): void {
    applied.push(f);
    f.apply();
  }

  function undo(f: StateFault): void {
    f.undo();
    applied.splice(applied.indexOf(f), 1);
  }

  const all = (): string[] => [...truth.containers.keys()];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-podfiles-'));
    store = await startPrivatePodman();
    for (const suffix of ['ok', 'ok2', 'pidlink', 'pidfifo', 'pidhalf', 'pidout', 'pidbig', 'pidempty', 'folderlink']) await run(suffix);
    const configPath = join(dir, 'croot.json');
    writeFileSync(configPath, JSON.stringify({ disabledEngines: ['docker', 'containerd', 'lxc'] }));
    crootd = await startCrootd({
      socketPath: join(dir, 'root.socket'),
      logPath: join(dir, 'crootd.log'),
      args: ['--config', configPath, '--no-pcp-user'],
      env: { ...process.env, ...store.crootEnv() },
    });
    crootdPid = crootd.serverPid();
    const cClient = buildPcpCClient(dir);
    checker = new AnswerChecker(crootd.socketPath, cClient, truth);
    fifo = new FifoProbe(dir).start();
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
    // podman must find its own files again to remove its containers.
    for (const f of applied.reverse()) f.undo();
    await store?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers every container as podman says at first', async () => {
    await checker?.expectTold(all().map((ref) => [ref, 'answered'] as const), current);
  });

  it('does not answer a container whose run state is broken, and answers the others', async () => {
    const faults = [
      // pidfile and conmon.pid both another container's: a reader that follows links answers that container.
      symlinkTo(join(userdata('pidlink'), 'pidfile'), join(userdata('ok'), 'pidfile'), "another container's pidfile"),
      symlinkTo(join(userdata('pidlink'), 'conmon.pid'), join(userdata('ok'), 'conmon.pid'), "another container's conmon.pid"),
      fifoInPlace(join(userdata('pidfifo'), 'pidfile')),
      halfWritten(join(userdata('pidhalf'), 'pidfile')),
      symlinkTo(join(userdata('pidout'), 'pidfile'), (fifo as FifoProbe).path, 'a FIFO outside the store'),
      oversized(join(userdata('pidbig'), 'pidfile'), 64 * 1024),
      truncated(join(userdata('pidempty'), 'pidfile')),
      folderLinkedTo(userdata('folderlink'), userdata('ok'), "another container's userdata folder"),
    ];
    for (const f of faults) apply(f);
    const broken = ['pidlink', 'pidfifo', 'pidhalf', 'pidout', 'pidbig', 'pidempty', 'folderlink'].map(name);
    await checker?.expectTold(
      all().map((ref) => [ref, broken.includes(ref) ? 'not answered' : 'answered'] as const),
      current,
    );
    for (const f of faults.reverse()) undo(f);
    await checker?.expectTold(all().map((ref) => [ref, 'answered'] as const), current);
  });

  it('keeps answering the containers of the last good containers.json while it is broken', async () => {
    const faults = [
      halfWritten(list()),
      truncated(list()),
      symlinkTo(list(), '/etc/passwd'),
      symlinkTo(list(), (fifo as FifoProbe).path, 'a FIFO outside the store'),
      fifoInPlace(list()),
      folderInPlace(list()),
    ];
    /** The podman engine's health once `done` holds for it (or after 20 s). */
    const healthWhen = async (done: (reason: string) => boolean): Promise<string> => {
      const deadline = Date.now() + 20000;
      let reason = '';
      while (Date.now() < deadline && !done(reason)) {
        const doc = await askCrootd({ op: 'engines' }, crootd?.socketPath, { transport: nodeSocketTransport });
        reason = doc.engines?.find((e) => e.engine === 'podman')?.reason ?? '';
        if (!done(reason)) await new Promise((r) => setTimeout(r, 100));
      }
      return reason;
    };
    for (const f of faults) {
      apply(f);
      // The engine's health says when it has read the broken list.
      const reason = await healthWhen((r) => r.includes('last good read'));
      expect({ fault: f.name, reason }).toEqual({ fault: f.name, reason: expect.stringMatching(/containers\.json: .*last good read/) });
      // podman itself cannot read its broken list: the truth is the inits /proc shows alive.
      await checker?.expectTold(all().map((ref) => [ref, 'answered'] as const), async (ref) => truth.running(ref), 10000);
      undo(f);
      // The next fault is about the good list: the engine must have read it again first.
      const healed = await healthWhen((r) => r !== '' && !r.includes('containers.json:'));
      expect({ fault: f.name, healed }).toEqual({ fault: f.name, healed: expect.not.stringContaining('containers.json:') });
    }
    await checker?.expectTold(all().map((ref) => [ref, 'answered'] as const), current);
  });

  it('gave no client a wrong answer, never opened the FIFO a link pointed at, and was never restarted', async () => {
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
