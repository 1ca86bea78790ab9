/**
 * The built crootd while the daemons of its engines are SIGKILLed and
 * restarted under it: a dockerd and a containerd of this test's own
 * (test/support/private-daemons.ts: their own roots, sockets and runc root,
 * so the testbed's daemons are never touched), with 8 clients asking without
 * pause (4 through PCP's C library, 4 through croot's RootClient) while
 * containers are started, stopped and killed.
 *
 * What must hold: every answer is right for the container asked for (its
 * hostname, an init it really had that the test had not yet seen dead, that
 * init's cgroup: test/support/answer-hammer.ts); no connection is refused
 * or dropped and no request fails with anything but a PCP "no container",
 * "not running", "reused" or "loading" status; crootd keeps answering from
 * Docker's files while dockerd is down, and follows each daemon again once
 * it is back, without being restarted. The truth is taken from `docker
 * inspect` and `ctr task ls` of the private daemons and from /proc.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askCrootd } from '../core/client/extension-client.js';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { AnswerChecker, AnswerHammer, ContainerTruth, wrongAnswers, type Incarnation } from './support/answer-hammer.js';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { buildPcpCClient } from './support/pcp-peer.js';
import { startPrivateDaemons, type PrivateDaemons } from './support/private-daemons.js';

jest.setTimeout(180000);

function probe(): string | undefined {
  return probes.root() ?? probes.docker() ?? probes.containerd() ?? probes.pcpClientLib() ?? probes.native() ?? builtBinaries();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describeWith('root, docker, containerd, PCP’s C client library and the built crootd', probe, 'crootd while dockerd and containerd are SIGKILLed and restarted', () => {
  const tag = randomBytes(4).toString('hex');
  const ns = `croot-t-${tag}`;
  const truth = new ContainerTruth();
  /** What the test did to each container: how to ask its engine about it. */
  const kinds = new Map<string, { engine: 'docker' } | { engine: 'containerd'; id: string }>();
  const never = [`croot-t-${tag}-never`, `${ns}/never`, 'docker:nothing-here'];
  let daemons: PrivateDaemons | undefined;
  let crootd: CrootdProcess | undefined;
  let hammer: AnswerHammer | undefined;
  let dir: string;
  let crootdPid: number;
  let checker: AnswerChecker | undefined;

  const docker = (): NonNullable<PrivateDaemons['dockerd']> => daemons?.dockerd as NonNullable<PrivateDaemons['dockerd']>;
  const containerd = (): PrivateDaemons['containerd'] => (daemons as PrivateDaemons).containerd;

  /** Runs a Docker container and records its init. */
  async function dockerRun(suffix: string, args: readonly string[] = []): Promise<string> {
    const name = `croot-t-${tag}-${suffix}`;
    const hostname = `h-${suffix}-${tag}`;
    truth.add(name, hostname);
    kinds.set(name, { engine: 'docker' });
    await docker().run(name, { hostname, args });
    await dockerTruth(name);
    return name;
  }

  /** Runs a ctr task in the test's namespace and records its init. */
  async function ctrRun(id: string): Promise<string> {
    const ref = `${ns}/${id}`;
    kinds.set(ref, { engine: 'containerd', id });
    // A ctr task sets its own hostname once it runs (ctr has no --hostname): the hammer learns of it only after, since
    // until then its UTS namespace rightly holds the host's name.
    await containerd().run(ns, id, { hostname: `c-${id}-${tag}` });
    truth.add(ref, `c-${id}-${tag}`);
    await ctrTruth(ref);
    return ref;
  }

  /** What `docker inspect` says runs for `name` now (its init recorded), undefined when nothing does. */
  async function dockerTruth(name: string): Promise<Incarnation | undefined> {
    const out = await docker()
      .docker(['inspect', '-f', '{{.State.Running}} {{.State.Pid}}', name])
      .catch(() => 'false 0');
    const [running, pid] = out.split(' ');
    return running === 'true' ? truth.saw(name, Number(pid)) : undefined;
  }

  async function ctrTruth(ref: string): Promise<Incarnation | undefined> {
    const kind = kinds.get(ref);
    if (kind?.engine !== 'containerd') throw new Error(`${ref} is not a ctr task`);
    const pid = await containerd().taskPid(ns, kind.id);
    return pid === undefined ? undefined : truth.saw(ref, pid);
  }

  /** The init that runs for `ref` by its engine's CLI when the daemon is up, else by /proc. */
  async function current(ref: string): Promise<Incarnation | undefined> {
    const kind = kinds.get(ref);
    if (kind?.engine === 'docker' && docker().process.running) return dockerTruth(ref);
    if (kind?.engine === 'containerd' && containerd().process.running) return ctrTruth(ref);
    return truth.running(ref);
  }

  /** Waits until crootd tells both clients about every container the test made what its engine (or /proc) says runs. */
  async function expectFollowed(): Promise<void> {
    await (checker as AnswerChecker).expectTold(
      [...truth.containers.keys()].map((ref) => [ref, 'as it runs'] as const),
      current,
      40000,
    );
  }

  /** Waits until crootd says the Docker engine reads `what` (its health in `croot engines`). */
  async function expectDockerReads(what: RegExp, timeoutMs = 40000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let reason = '';
    while (Date.now() < deadline) {
      const doc = await askCrootd({ op: 'engines' }, crootd?.socketPath, { transport: nodeSocketTransport });
      reason = doc.engines?.find((e) => e.engine === 'docker')?.reason ?? '';
      if (what.test(reason)) break;
      await sleep(200);
    }
    expect(reason).toMatch(what);
    return reason;
  }

  /** Kills a container's init from the host (no daemon involved) and waits until it is gone. */
  async function killInit(ref: string): Promise<void> {
    const inc = truth.running(ref);
    if (inc === undefined) throw new Error(`${ref} has no running init`);
    process.kill(inc.pid, 'SIGKILL');
    await truth.waitGone(inc);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-restart-'));
    daemons = await startPrivateDaemons({ docker: true, namespaces: [ns] });
    await dockerRun('keep');
    await dockerRun('always', ['--restart', 'always']);
    await dockerRun('dies');
    await ctrRun('keep');
    await ctrRun('dies');
    const configPath = join(dir, 'croot.json');
    // Only the private daemons: podman and LXC would read the testbed's stores.
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
    const refs = (): string[] => [...truth.containers.keys()];
    hammer = new AnswerHammer({
      socketPath: crootd.socketPath,
      cClient,
      crootClients: 4,
      cClients: 4,
      // Mostly containers the test made (running or not), now and then a name that never was one.
      pickRef: () => (Math.random() < 0.9 ? (refs()[Math.floor(Math.random() * refs().length)] as string) : (never[Math.floor(Math.random() * never.length)] as string)),
    }).start();
  });

  afterAll(async () => {
    await hammer?.stop();
    checker?.close();
    await crootd?.stop();
    await daemons?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers what both daemons say once it has loaded', async () => {
    await expectDockerReads(/\(API and events\)/);
    await expectFollowed();
  });

  it('keeps answering from Docker’s files while dockerd is SIGKILLed, and sees a container die meanwhile', async () => {
    await docker().process.kill('SIGKILL');
    const reason = await expectDockerReads(/unreachable.*reading .*: \d+ containers?/);
    expect(reason).toContain(docker().dataRoot);
    // The containers run on without dockerd (their shims are containerd's): crootd still answers for them.
    await expectFollowed();
    await killInit(`croot-t-${tag}-dies`);
    // And ctr tasks come and go meanwhile.
    await ctrRun('churn1');
    await expectFollowed();
    await containerd().remove(ns, 'churn1');
    await expectFollowed();
  });

  it('follows dockerd again once it is restarted: the containers it stopped, restarted, started and removed', async () => {
    await docker().process.start();
    await expectDockerReads(/\(API and events\)/);
    // Without live-restore, dockerd stops what it finds running; `--restart always` starts again under a new pid.
    await expectFollowed();
    expect(await dockerTruth(`croot-t-${tag}-keep`)).toBeUndefined();
    const always = truth.get(`croot-t-${tag}-always`).incarnations;
    expect(always.length).toBe(2);
    await docker().docker(['start', `croot-t-${tag}-keep`]);
    await dockerTruth(`croot-t-${tag}-keep`);
    const churn = await dockerRun('churn2');
    await expectFollowed();
    await docker().docker(['rm', '-f', churn]);
    await expectFollowed();
  });

  it('keeps answering while containerd is SIGKILLed, and follows it once restarted', async () => {
    await containerd().process.kill('SIGKILL');
    await killInit(`${ns}/dies`);
    await expectFollowed();
    await containerd().process.start();
    await ctrRun('after');
    // dockerd reconnects to its containerd by itself; a run before it has may fail, and is tried again.
    let name: string | undefined;
    for (let i = 0; name === undefined; i++) {
      try {
        name = await dockerRun(`after${i}`);
      } catch (err) {
        if (i >= 20) throw err;
        truth.containers.delete(`croot-t-${tag}-after${i}`);
        await docker().docker(['rm', '-f', `croot-t-${tag}-after${i}`]).catch(() => undefined);
        await sleep(500);
      }
    }
    await expectFollowed();
    await containerd().remove(ns, 'keep');
    await expectFollowed();
  });

  it('gave no client a wrong answer, refused or dropped no connection, and was never restarted', async () => {
    await hammer?.stop();
    truth.noteGone();
    const h = hammer as AnswerHammer;
    expect(h.broken).toEqual([]);
    expect(wrongAnswers(truth, h.answers)).toEqual([]);
    // Every client was answered, many times over, through every phase.
    for (const client of ['croot-0', 'croot-1', 'croot-2', 'croot-3', 'pcp-c-0', 'pcp-c-1', 'pcp-c-2', 'pcp-c-3']) expect(h.asked.get(client) ?? 0).toBeGreaterThan(20);
    expect(h.answers.length).toBeGreaterThan(100);
    const status = await askCrootd({ op: 'status' }, crootd?.socketPath, { transport: nodeSocketTransport });
    expect(status.server?.pid).toBe(crootdPid);
    expect(crootd?.child.exitCode).toBeNull();
  });
});
