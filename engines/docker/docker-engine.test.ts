import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ContainerModule, type Container } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer, type RegistryEvent } from '../../core/registry/engine-registry.js';
import { DirectoryWatcher } from '../../core/host/host-services.js';
import { ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';
import { codeOf, eventually, settle } from '../../test/support/outcomes.js';
import { startTimeOf } from '../../test/support/processes.js';
import { bootTimeTruth, clockTicksTruth } from '../../test/support/truth.js';
import { DockerEngine, DockerEngineOptions } from './docker-engine.js';
import { dockerEngineModule } from './docker-engine-module.js';

const FIXTURES = resolve(__dirname, '../../test/fixtures/pcp-qa');

let scratch: string;
const started: Container[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'croot-t-docker-engine-'));
});
afterEach(async () => {
  for (const c of started.splice(0)) await c.get<EngineRegistry>(EngineRegistry).stop();
});
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

/** A registry holding only the docker engine, started; `ready()` not awaited. */
async function croot(
  env: Record<string, string>,
  options: DockerEngineOptions = {},
  watcher?: DirectoryWatcher,
): Promise<{ c: Container; registry: EngineRegistry }> {
  const c = createCrootContainer({
    config: { env },
    modules: [
      dockerEngineModule,
      new ContainerModule(({ bind }) => {
        bind<DockerEngineOptions>(DockerEngineOptions).toConstantValue(options);
        // ready() then means the engine's own first load, however slow a loaded machine makes it.
        bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 600000, firstLoadTimeoutMs: 120000 });
        if (watcher !== undefined) bind<DirectoryWatcher>(DirectoryWatcher).toConstantValue(watcher);
      }),
    ],
  });
  started.push(c);
  const registry = c.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  return { c, registry };
}

const status = (registry: EngineRegistry) => registry.statuses().find((s) => s.engine === 'docker');

function unpack(tarball: string): string {
  const root = mkdtempSync(join(scratch, 'root-'));
  execFileSync('tar', ['-xzf', join(FIXTURES, tarball), '-C', root]);
  return join(root, 'var/lib/docker');
}

/** A unix socket that accepts, reads and never answers; `held` counts connections still open. */
async function silentSocket(path: string): Promise<{ server: Server; held: Set<Socket> }> {
  const held = new Set<Socket>();
  const server = createServer((s) => {
    held.add(s);
    s.resume();
    s.on('close', () => held.delete(s));
  });
  await new Promise<void>((res) => server.listen(path, res));
  return { server, held };
}

async function closeServer(s: { server: Server; held: Set<Socket> }): Promise<void> {
  for (const socket of s.held) socket.destroy();
  await new Promise<void>((res) => s.server.close(() => res()));
}

describe('DockerEngine with TLS files it cannot read', () => {
  it('is unavailable and names the missing ca.pem', async () => {
    const certs = mkdtempSync(join(scratch, 'tls-'));
    const { registry } = await croot({
      DOCKER_HOST: 'tcp://127.0.0.1:1',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
      PCP_DOCKER_DIR: join(certs, 'no-docker-dir'),
    });
    await registry.ready();
    expect(registry.containers()).toEqual([]);
    expect(status(registry)).toMatchObject({
      available: false,
      reason: `no daemon at 127.0.0.1:1 (TLS: cannot read the CA certificate ${join(certs, 'ca.pem')} (ENOENT)) and ${join(certs, 'no-docker-dir')}/containers absent`,
    });
  });
});

describe('DockerEngine without a daemon (DOCKER_HOST at a socket that does not exist)', () => {
  const deadSocket = '/nonexistent/croot-docker.sock';
  const env = (dockerDir: string) => ({ DOCKER_HOST: `unix://${deadSocket}`, PCP_DOCKER_DIR: dockerDir });

  it('reads PCP_DOCKER_DIR and says why the daemon is not used', async () => {
    const dockerDir = unpack('containers-docker-1.3.2-root-001.tgz');
    const { c, registry } = await croot(env(dockerDir));
    await registry.ready();
    expect(c.get(DockerEngine).source).toBe('disk');
    expect(status(registry)).toMatchObject({
      available: true,
      reason: `daemon at ${deadSocket} unreachable (ENOENT); reading ${dockerDir}: 3 containers`,
    });
  });

  it('says why there is nothing when neither the daemon nor the folder is there', async () => {
    const { registry } = await croot(env(join(scratch, 'no-such-docker-dir')));
    await registry.ready();
    expect(registry.containers()).toEqual([]);
    expect(status(registry)).toMatchObject({
      available: false,
      reason: `no daemon at ${deadSocket} (ENOENT) and ${join(scratch, 'no-such-docker-dir')}/containers absent`,
    });
    expect(await codeOf(() => registry.lookup('docker:anything'))).toBe('ERR_NO_CONTAINER');
  });

  it('resolves fixture containers by name, id prefix and /name, with Docker\'s state, refusing the stopped one', async () => {
    const { c, registry } = await croot(env(unpack('containers-docker-1.3.2-root-001.tgz')));
    await registry.ready();
    expect((registry.lookup('/dreamy_elion') as IndexedContainer).id).toBe('d2e89f8c107e1b7ae899603469cd524618897d52197fbbd6aaf961454202f23e');
    expect(registry.lookup('252b')).toMatchObject({ names: ['desperate_turing'], running: false, state: 'exited', source: 'disk' });
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    expect(await codeOf(() => pids.resolveProcessId('desperate_turing'))).toBe('ERR_NOT_RUNNING');
  });

  it('never hands out a 2014 fixture\'s PID: that process is gone or was reused since', async () => {
    const { c, registry } = await croot(env(unpack('containers-docker-1.3.2-root-001.tgz')));
    await registry.ready();
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    for (const name of ['jolly_sinoussi', 'dreamy_elion']) {
      expect(['ERR_NOT_RUNNING', 'ERR_PID_REUSED']).toContain(await codeOf(() => pids.resolveProcessId(name)));
    }
  });

  it('pushes each change of the files into the index as it happens', async () => {
    const dockerDir = unpack('containers-docker-1.3.2-root-001.tgz');
    const { registry } = await croot(env(dockerDir));
    await registry.ready();
    const events: RegistryEvent[] = [];
    registry.subscribe((e) => events.push(e));
    const template = '2cb8e83aa13ae05b7d11146ed0daae3607cd1a73d793544e06411fd8f4afc255';
    const id = 'feedf00d'.repeat(8);
    const config = JSON.parse(readFileSync(join(dockerDir, 'containers', template, 'config.json'), 'utf8')) as Record<string, unknown>;
    const write = (name: string): void => {
      const file = join(dockerDir, 'containers', id, 'config.json');
      writeFileSync(`${file}.tmp`, JSON.stringify({ ...config, ID: id, Name: `/${name}`, State: { Running: false, StartedAt: '2024-01-01T00:00:00Z' } }));
      renameSync(`${file}.tmp`, file);
    };
    const seen = (kind: string, name: string) =>
      eventually(async () => events.find((e) => e.kind === kind && e.kind !== 'health' && e.container.id === id && e.container.names[0] === name));

    mkdirSync(join(dockerDir, 'containers', id));
    write('fresh');
    expect(((await seen('added', 'fresh')) as { container: IndexedContainer }).container).toMatchObject({ state: 'exited', running: false, source: 'disk' });
    write('renamed');
    await seen('updated', 'renamed');
    expect((registry.lookup('renamed') as IndexedContainer).id).toBe(id);
    expect(await codeOf(() => registry.lookup('fresh'))).toBe('ERR_NO_CONTAINER');
    rmSync(join(dockerDir, 'containers', id), { recursive: true });
    await seen('removed', 'renamed');
    expect(await codeOf(() => registry.lookup('renamed'))).toBe('ERR_NO_CONTAINER');
    expect(status(registry)?.reason).toMatch(/: 3 containers$/);
  });

  it('says so as soon as Docker\'s containers folder appears or goes, with no try at the daemon between', async () => {
    const dockerDir = join(scratch, 'folder-comes-and-goes');
    mkdirSync(dockerDir);
    // No timed try at the daemon: only the folder's own events can change what the engine says.
    const { registry } = await croot(env(dockerDir), { retryMinMs: 600000, retryMaxMs: 600000 });
    await registry.ready();
    const absent = { available: false, reason: `no daemon at ${deadSocket} (ENOENT) and ${dockerDir}/containers absent` };
    expect(status(registry)).toMatchObject(absent);
    mkdirSync(join(dockerDir, 'containers'));
    expect(await eventually(async () => (status(registry)?.available === true ? status(registry) : undefined))).toMatchObject({
      reason: `daemon at ${deadSocket} unreachable (ENOENT); reading ${dockerDir}: 0 containers`,
    });
    rmSync(join(dockerDir, 'containers'), { recursive: true });
    expect(await eventually(async () => (status(registry)?.available === false ? status(registry) : undefined))).toMatchObject(absent);
  });
});

describe('DockerEngine\'s safety net, with a watcher that misses every change', () => {
  it('finds at its re-check what changed in the files, and only then', async () => {
    const watched: string[] = [];
    const deaf: DirectoryWatcher = {
      watch: (dir) => {
        watched.push(dir);
        return () => undefined;
      },
    };
    const dockerDir = unpack('containers-docker-1.3.2-root-001.tgz');
    const { c, registry } = await croot({ DOCKER_HOST: `unix://${join(scratch, 'nothing-here.sock')}`, PCP_DOCKER_DIR: dockerDir }, {}, deaf);
    await registry.ready();
    const victim = 'd2e89f8c107e1b7ae899603469cd524618897d52197fbbd6aaf961454202f23e';
    // It asked to watch the containers folder, each container's, and the folder where the socket would appear.
    expect(watched).toEqual(expect.arrayContaining([join(dockerDir, 'containers'), join(dockerDir, 'containers', victim), scratch]));
    rmSync(join(dockerDir, 'containers', victim), { recursive: true });
    expect((registry.lookup('dreamy_elion') as IndexedContainer).id).toBe(victim);
    await c.get(DockerEngine).recheck();
    expect(await codeOf(() => registry.lookup('dreamy_elion'))).toBe('ERR_NO_CONTAINER');
    expect(registry.containers()).toHaveLength(2);
    expect(status(registry)?.reason).toMatch(/: 2 containers$/);
  });
});

describe('DockerEngine with a daemon that accepts and never answers', () => {
  let socket: { server: Server; held: Set<Socket> } | undefined;
  afterEach(async () => {
    if (socket !== undefined) await closeServer(socket);
    socket = undefined;
  });

  it('answers from the files while the daemon\'s ping is still waiting', async () => {
    const path = join(scratch, 'silent-1.sock');
    socket = await silentSocket(path);
    const dockerDir = unpack('containers-docker-1.3.2-root-001.tgz');
    const { c, registry } = await croot({ DOCKER_HOST: `unix://${path}`, PCP_DOCKER_DIR: dockerDir }, { probeTimeoutMs: 600000 });
    await registry.ready();
    // The ping is still out, unanswered; the files answer anyway, synchronously.
    expect(socket.held.size).toBe(1);
    expect(c.get(DockerEngine).source).toBe('disk');
    expect(registry.lookup('dreamy_elion')).toMatchObject({ engine: 'docker', source: 'disk' });
    expect(status(registry)).toMatchObject({ available: true, reason: `daemon at ${path} not answered yet; reading ${dockerDir}: 3 containers` });
  });

  it('gives up on it after its bound when there are no files either, and says so', async () => {
    const path = join(scratch, 'silent-2.sock');
    socket = await silentSocket(path);
    const { registry } = await croot({ DOCKER_HOST: `unix://${path}`, PCP_DOCKER_DIR: join(scratch, 'none') }, { probeTimeoutMs: 300 });
    const waiting = registry.lookup('docker:web');
    expect(waiting).toBeInstanceOf(Promise);
    expect(await codeOf(waiting as Promise<unknown>)).toBe('ERR_NO_CONTAINER');
    expect(status(registry)).toMatchObject({ available: false, reason: `no daemon at ${path} (timed out) and ${join(scratch, 'none')}/containers absent` });
    // The ping's connection was given up, not left open.
    expect(await eventually(async () => (socket?.held.size === 0 ? 0 : undefined))).toBe(0);
  });
});

describe('DockerEngine loading 2 000 containers from the files', () => {
  const COUNT = 2000;
  const idOf = (i: number) => `${i.toString(16).padStart(8, '0')}${'c0ffee42'.repeat(7)}`;
  const nameOf = (i: number) => `synthetic-${i}`;
  /** Index → the real sleeper whose PID the container records. */
  const sleepers = new Map<number, number>();
  let dockerDir: string;

  const kernelStart = (pid: number): number => startTimeOf(pid) as number;
  const bootTime = bootTimeTruth();
  const ticks = clockTicksTruth();

  beforeAll(() => {
    dockerDir = join(scratch, 'synthetic');
    for (const i of [7, 500, 1999]) {
      const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
      children.push(child);
      sleepers.set(i, child.pid as number);
    }
    for (let i = 0; i < COUNT; i++) {
      const dir = join(dockerDir, 'containers', idOf(i));
      mkdirSync(dir, { recursive: true });
      const pid = sleepers.get(i);
      const state =
        pid === undefined
          ? { Running: false, Pid: 0, StartedAt: '2024-05-01T10:00:00Z' }
          : { Running: true, Pid: pid, StartedAt: new Date((bootTime + kernelStart(pid) / ticks) * 1000).toISOString() };
      writeFileSync(join(dir, 'config.v2.json'), JSON.stringify({ ID: idOf(i), Name: `/${nameOf(i)}`, State: state, Config: { Hostname: `h${i}` } }));
      writeFileSync(join(dir, 'hostconfig.json'), JSON.stringify({ CgroupParent: '' }));
    }
  });

  it('answers right for every one, and the event loop keeps turning while it loads', async () => {
    let turns = 0;
    let counting = true;
    const tick = (): void => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    const { c, registry } = await croot({ DOCKER_HOST: `unix://${join(scratch, 'absent.sock')}`, PCP_DOCKER_DIR: dockerDir });
    await registry.ready();
    counting = false;
    expect(turns).toBeGreaterThan(20);

    expect(registry.containers()).toHaveLength(COUNT);
    expect(status(registry)?.reason).toMatch(new RegExp(`: ${COUNT} containers$`));
    for (let i = 0; i < COUNT; i++) {
      const found = registry.lookup(nameOf(i)) as IndexedContainer;
      if (found.id !== idOf(i) || found.hostname !== `h${i}`) throw new Error(`${nameOf(i)} found as ${found.id} (${found.hostname})`);
    }
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    for (const [i, pid] of sleepers) {
      expect([nameOf(i), await settle(() => pids.resolveProcessId(nameOf(i)))]).toEqual([nameOf(i), pid]);
      expect((registry.lookup(idOf(i).slice(0, 12)) as IndexedContainer).startTime).toBe(kernelStart(pid));
    }
    expect(await codeOf(() => pids.resolveProcessId(nameOf(8)))).toBe('ERR_NOT_RUNNING');
    expect(registry.lookup(nameOf(8))).toMatchObject({ state: 'exited', running: false });
  });
});

describe('DockerEngine and dockerode', () => {
  /**
   * Starts the engine (from a fresh copy of its modules, counting how often
   * dockerode is loaded) against a daemon at `path` answering as `answer`
   * says, until its first load is over; gives the count and the health.
   */
  async function dockerodeLoadsWith(path: string, answer: (request: string, socket: Socket) => void): Promise<{ loads: number; reason: string | undefined }> {
    let loads = 0;
    let reason: string | undefined;
    const held = new Set<Socket>();
    const server = createServer((s) => {
      held.add(s);
      s.on('close', () => held.delete(s));
      s.on('data', (chunk) => answer(chunk.toString('latin1'), s));
    });
    await new Promise<void>((res) => server.listen(path, res));
    try {
      await jest.isolateModulesAsync(async () => {
        jest.doMock('dockerode', () => {
          loads++;
          return jest.requireActual('dockerode');
        });
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const isolated = require('./docker-engine-module.js') as typeof import('./docker-engine-module.js');
        const c = createCrootContainer({
          config: { env: { DOCKER_HOST: `unix://${path}`, PCP_DOCKER_DIR: join(scratch, 'none') } },
          modules: [
            isolated.dockerEngineModule,
            new ContainerModule(({ bind }) => {
              bind<DockerEngineOptions>(DockerEngineOptions).toConstantValue({ probeTimeoutMs: 300, requestTimeoutMs: 300 });
              // ready() waits for the engine's own verdict, not the registry's 5 s first-load bound (a loaded machine may
              // spend seconds loading dockerode in the isolated module registry before the engine's 300 ms bounds start).
              bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ firstLoadTimeoutMs: 120000 });
            }),
          ],
        });
        started.push(c);
        const registry = c.get<EngineRegistry>(EngineRegistry);
        await registry.start();
        await registry.ready();
        reason = status(registry)?.reason;
      });
    } finally {
      await closeServer({ server, held });
    }
    return { loads, reason };
  }

  it('is not loaded while no daemon answers', async () => {
    const path = join(scratch, 'silent-3.sock');
    expect(await dockerodeLoadsWith(path, () => undefined)).toEqual({ loads: 0, reason: `no daemon at ${path} (timed out) and ${join(scratch, 'none')}/containers absent` });
  });

  /** A full garbage collection now, as a long-lived crootd gets at any moment (V8's gc(), exposed to a fresh context). */
  function collectGarbage(): void {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  }

  it('is loaded once the daemon answers its ping; a daemon silent after that is given up on after the request bound, a garbage collection meanwhile notwithstanding', async () => {
    const path = join(scratch, 'ping-only.sock');
    const pingOnly = (request: string, s: Socket): void => {
      if (request.startsWith('GET /_ping ')) s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK');
      // The next request waits on its bound alone; memory collected now must not take that bound away.
      else collectGarbage();
    };
    expect(await dockerodeLoadsWith(path, pingOnly)).toEqual({ loads: 1, reason: `no daemon at ${path} (timed out) and ${join(scratch, 'none')}/containers absent` });
  });

  it('gives up on a daemon that never starts its event stream, after the request bound', async () => {
    const path = join(scratch, 'no-events.sock');
    const noEvents = (request: string, s: Socket): void => {
      const json = (body: string) => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      if (request.startsWith('GET /_ping ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
      else if (request.startsWith('GET /info')) s.write(json('{"CgroupDriver":"systemd"}'));
    };
    expect(await dockerodeLoadsWith(path, noEvents)).toEqual({ loads: 1, reason: `no daemon at ${path} (timed out) and ${join(scratch, 'none')}/containers absent` });
  });
});
