/**
 * Engine health as the CLI shows it, and an engine picked up again without
 * restarting crootd: crootd starts with DOCKER_HOST at a unix socket where
 * nothing listens yet and PCP_DOCKER_DIR at an empty folder, so docker is
 * down (and says why). Then the Docker API appears at that path (a relay to
 * the real daemon's socket) and crootd, retrying with its backoff
 * (1 s, 2 s, 4 s, ... up to 30 s: engines/docker/docker-engine.ts), answers
 * for a docker container within a bounded wait.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { RootClient } from '../core/client/root-client.js';
import { eventually } from './support/outcomes.js';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, retryUntil, runCroot, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { makeTempDir } from './support/pcp-peer.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

const REAL_DOCKER_SOCKET = '/var/run/docker.sock';
/** The docker engine's tries come 1, 3, 7, 15, 31 s after the first: the relay opens early, so ≤ 40 s is ample. */
const PICKUP_BOUND_MS = 40000;

function probe(): string | undefined {
  return probes.root() ?? probes.docker() ?? builtBinaries() ?? probes.native();
}

/** A unix-socket relay to the real Docker API; `close()` ends every piped connection. */
async function startDockerRelay(path: string): Promise<{ server: Server; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection(REAL_DOCKER_SOCKET);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => res());
  });
  return {
    server,
    close: async (): Promise<void> => {
      for (const s of open) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

describeWith('root, docker, the native module and the built crootd', probe, 'docker engine health through crootd and the CLI', () => {
  const name = `croot-t-${randomBytes(4).toString('hex')}-health`;
  const created: string[] = [];
  let work: string;
  let dockerSocket: string;
  let env: NodeJS.ProcessEnv;
  let crootd: CrootdProcess | undefined;
  let socketPath: string;
  let relay: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    work = makeTempDir('croot-health-');
    dockerSocket = join(work, 'docker.sock');
    const emptyDockerDir = join(work, 'docker');
    mkdirSync(emptyDockerDir);
    env = { ...process.env, DOCKER_HOST: `unix://${dockerSocket}`, PCP_DOCKER_DIR: emptyDockerDir };
    socketPath = join(work, 'run', 'root.socket');
    crootd = await startCrootd({ socketPath, logPath: join(work, 'crootd.log'), env });
  }, 60000);

  afterAll(async () => {
    let problem: unknown;
    try {
      if (crootd !== undefined && crootd.child.exitCode === null && crootd.child.signalCode === null) {
        const exit = await crootd.stop('SIGTERM', 10000);
        if (exit.code !== 0) problem = new Error(`crootd exited ${JSON.stringify(exit)} on SIGTERM: ${crootd.stderr()}`);
      }
    } catch (err) {
      problem = err;
    }
    await relay?.close();
    removeDockerContainers(created);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    if (problem !== undefined) throw problem;
  }, 60000);

  it('logs docker as unavailable with the reason: no daemon at the socket, nothing in the folder', async () => {
    // Engines load after the socket listens: the line comes once they have.
    const line = await eventually(async () => (crootd?.log() ?? '').split('\n').find((l) => / engine docker: /.test(l)));
    expect(line).toMatch(/ WARN engine docker: unavailable reason=/);
    expect(line).toContain(`no daemon at ${dockerSocket} (ENOENT)`);
    expect(line).toContain(join(work, 'docker'));
  });

  it('shows docker down with the same reason in croot engines (same environment)', async () => {
    const [text, json] = await Promise.all([runCroot(['engines'], { env }), runCroot(['engines', '--json'], { env })]);
    expect(text.code).toBe(0);
    const line = text.stdout.split('\n').find((l) => l.startsWith('docker '));
    expect(line).toMatch(/^docker\s+down\s+no daemon at /);
    expect(line).toContain(`${dockerSocket} (ENOENT)`);
    const docker = (JSON.parse(json.stdout) as { engines: { engine: string; available: boolean; reason: string }[] }).engines.find((e) => e.engine === 'docker');
    expect(docker).toMatchObject({ available: false });
    expect(line).toContain(docker?.reason);
  });

  it(
    'answers for a docker container once the Docker API appears at that socket, without a restart',
    async () => {
      dockerRun(name, { hostname: `${name}-h` }, created);
      const pid = Number(dockerInspect(name, '{{.State.Pid}}'));
      const client = await RootClient.connect(socketPath);
      try {
        // The container exists, but crootd cannot see docker yet.
        await expect(client.processId(name)).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
        relay = await startDockerRelay(dockerSocket);
        const opened = Date.now();
        const answer = await retryUntil(
          () => client.processId(name).catch((err: Error) => err.message),
          (v) => v === pid,
          PICKUP_BOUND_MS,
          250,
        );
        expect({ answer, withinBound: Date.now() - opened <= PICKUP_BOUND_MS }).toEqual({ answer: pid, withinBound: true });
        await expect(client.hostname(name)).resolves.toBe(`${name}-h`);
      } finally {
        client.close();
      }
    },
    PICKUP_BOUND_MS + 15000,
  );

  it('shows docker up through that socket in croot engines now', async () => {
    const r = await runCroot(['engines'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').find((l) => l.startsWith('docker '))).toMatch(
      new RegExp(`^docker\\s+up\\s+daemon at ${dockerSocket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(API and events\\)`),
    );
  });

  it('logs docker coming back while crootd keeps running', async () => {
    // crootd re-checks engine health every 5 s.
    const deadline = Date.now() + 12000;
    while (!/ INFO engine docker: available reason=/.test(crootd?.log() ?? '') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(crootd?.log()).toMatch(/ INFO engine docker: available reason="daemon at /);
  }, 20000);
});
