/**
 * DockerEngine choosing between Docker's files and its daemon
 * (docker-engine.test.ts covers the files and daemons that never answer):
 * `daemon: 'when-no-files'`, a tcp:// daemon tried again, a daemon that
 * answers its ping only, its health while a daemon loads (small HTTP
 * daemons whose inspects fail), the watches ended at stop, and the real
 * dockerd appearing and going away behind a socket the test makes: its
 * re-check through an event stream that says nothing, the tries after a
 * missed socket, a cut stream, and a socket folder removed and made again.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ContainerModule, type Container } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer } from '../../core/registry/engine-registry.js';
import type { ContainerSink } from '../../core/registry/engine-contribution.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { describeWith, probes } from '../../test/support/components.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { DaemonRelay } from '../../test/support/docker-relay.js';
import { ManualClock } from '../../test/support/manual-clock.js';
import { codeOf, eventually } from '../../test/support/outcomes.js';
import { dockerRun, removeDockerContainers, uniqueName } from '../../test/support/testbed.js';
import { DockerEngine, DockerEngineOptions } from './docker-engine.js';
import { dockerEngineModule } from './docker-engine-module.js';

const FIXTURE = resolve(__dirname, '../../test/fixtures/pcp-qa/containers-docker-1.3.2-root-001.tgz');

let scratch: string;
const started: Container[] = [];
const servers: Server[] = [];
const held = new Set<Socket>();

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'croot-t-docker-daemon-'));
});
afterEach(async () => {
  for (const c of started.splice(0)) await c.get<EngineRegistry>(EngineRegistry).stop();
  for (const s of held) s.destroy();
  for (const server of servers.splice(0)) await new Promise<void>((res) => server.close(() => res()));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A fresh copy of PCP QA's Docker 1.3.2 tree (three containers); its Docker folder. */
function fixtureDockerDir(): string {
  const root = mkdtempSync(join(scratch, 'root-'));
  execFileSync('tar', ['-xzf', FIXTURE, '-C', root]);
  return join(root, 'var/lib/docker');
}

/** The container modules of a registry holding only the docker engine (`engineModule`: a fresh copy, or the usual one). */
function crootContainer(env: Record<string, string>, options: DockerEngineOptions, watcher?: DirectoryWatcher, engineModule = dockerEngineModule): Container {
  const c = createCrootContainer({
    config: { env },
    modules: [
      engineModule,
      new ContainerModule(({ bind }) => {
        bind<DockerEngineOptions>(DockerEngineOptions).toConstantValue(options);
        // ready() means the engine's own first load; the safety net stays out of the way.
        bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 600000, firstLoadTimeoutMs: 120000 });
        if (watcher !== undefined) bind<DirectoryWatcher>(DirectoryWatcher).toConstantValue(watcher);
      }),
    ],
  });
  started.push(c);
  return c;
}

async function startedCroot(env: Record<string, string>, options: DockerEngineOptions = {}, watcher?: DirectoryWatcher): Promise<{ c: Container; registry: EngineRegistry }> {
  const c = crootContainer(env, options, watcher);
  const registry = c.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  await registry.ready();
  return { c, registry };
}

const reason = (registry: EngineRegistry): string | undefined => registry.statuses().find((s) => s.engine === 'docker')?.reason;
const reasonMatching = (registry: EngineRegistry, re: RegExp): Promise<string> =>
  eventually(async () => {
    const r = reason(registry);
    return r !== undefined && re.test(r) ? r : undefined;
  });

/** A unix or tcp server answering each connection with `answer` (its first request's text); connections counted. */
async function fakeDaemon(listen: string | 0, answer: (request: string, s: Socket) => void): Promise<{ connections: () => number; port: number }> {
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    held.add(s);
    s.on('close', () => held.delete(s));
    s.on('error', () => undefined);
    s.on('data', (chunk) => answer(chunk.toString('latin1'), s));
  });
  servers.push(server);
  await new Promise<void>((res) => (listen === 0 ? server.listen(0, '127.0.0.1', res) : server.listen(listen, res)));
  const address = server.address();
  return { connections: () => connections, port: typeof address === 'object' && address !== null ? (address as AddressInfo).port : 0 };
}

const pingOnly = (request: string, s: Socket): void => {
  if (request.startsWith('GET /_ping ')) s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK');
};

/** A watcher that misses every change (it only says it watches). */
const deaf: DirectoryWatcher = { watch: () => () => undefined };

/**
 * A daemon (Docker's HTTP API, as much as a first load asks) listing the
 * containers `ids`, whose inspect answers only for those in `answered` and
 * is refused (500) for the others, again and again.
 */
function loadingDaemon(ids: readonly string[], answered: ReadonlySet<string>) {
  const reply = (status: string, body: string) => `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return (request: string, s: Socket): void => {
    const inspect = /^GET (?:\/v[\d.]+)?\/containers\/(\w+)\/json/.exec(request);
    if (request.startsWith('GET /_ping ')) pingOnly(request, s);
    else if (/^GET (?:\/v[\d.]+)?\/info/.test(request)) s.write(reply('200 OK', '{"CgroupDriver":"cgroupfs"}'));
    else if (/^GET (?:\/v[\d.]+)?\/events/.test(request)) s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    else if (/^GET (?:\/v[\d.]+)?\/containers\/json/.test(request)) s.write(reply('200 OK', JSON.stringify(ids.map((Id) => ({ Id, Names: [`/c-${Id.slice(0, 4)}`], State: 'exited' })))));
    else if (inspect !== null && answered.has(inspect[1] as string)) {
      const Id = inspect[1] as string;
      s.write(reply('200 OK', JSON.stringify({ Id, Name: `/c-${Id.slice(0, 4)}`, State: { Status: 'exited', Running: false, StartedAt: '2024-01-01T00:00:00Z' } })));
    } else if (inspect !== null) s.write(reply('500 Internal Server Error', '{"message":"overloaded"}'));
  };
}

describe('DockerEngine\'s defaults', () => {
  it('reads /var/lib/docker (PCP\'s default) when PCP_DOCKER_DIR is unset or empty', () => {
    expect(crootContainer({ PCP_DOCKER_DIR: '' }, {}).get(DockerEngine).dockerDir).toBe('/var/lib/docker');
    expect(crootContainer({}, {}).get(DockerEngine).dockerDir).toBe('/var/lib/docker');
  });
});

describe('DockerEngine with daemon: \'when-no-files\'', () => {
  /** Starts a fresh copy of the engine's modules until its first load is over, counting how often the daemon's side is loaded. */
  async function apiLoadsWith(env: Record<string, string>): Promise<{ loads: number; reason: string | undefined; afterRecheck: string | undefined }> {
    let loads = 0;
    let first: string | undefined;
    let later: string | undefined;
    await jest.isolateModulesAsync(async () => {
      jest.doMock('./docker-api-source.js', () => {
        loads++;
        return jest.requireActual('./docker-api-source.js');
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const isolated = require('./docker-engine-module.js') as typeof import('./docker-engine-module.js');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const engineClass = (require('./docker-engine.js') as typeof import('./docker-engine.js')).DockerEngine;
      const c = crootContainer(env, { daemon: 'when-no-files' }, undefined, isolated.dockerEngineModule);
      const registry = c.get<EngineRegistry>(EngineRegistry);
      await registry.start();
      await registry.ready();
      first = reason(registry);
      await c.get(engineClass).recheck();
      later = reason(registry);
    });
    return { loads, reason: first, afterRecheck: later };
  }

  it('answers from the files alone while Docker\'s containers folder can be read, never loading the daemon\'s side', async () => {
    const dockerDir = fixtureDockerDir();
    const sock = join(scratch, 'wnf-absent.sock');
    const wanted = `daemon at ${sock} not answered yet; reading ${dockerDir}: 3 containers`;
    expect(await apiLoadsWith({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: dockerDir })).toEqual({ loads: 0, reason: wanted, afterRecheck: wanted });
  });

  it('does not ask the daemon at a re-check made while the files are still being read', async () => {
    const dockerDir = fixtureDockerDir();
    let loads = 0;
    const pushed: string[][] = [];
    await jest.isolateModulesAsync(async () => {
      jest.doMock('./docker-api-source.js', () => {
        loads++;
        return jest.requireActual('./docker-api-source.js');
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const isolated = require('./docker-engine-module.js') as typeof import('./docker-engine-module.js');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const engineClass = (require('./docker-engine.js') as typeof import('./docker-engine.js')).DockerEngine;
      const engine = crootContainer({ DOCKER_HOST: `unix://${join(scratch, 'wnf-early.sock')}`, PCP_DOCKER_DIR: dockerDir }, { daemon: 'when-no-files' }, undefined, isolated.dockerEngineModule).get(engineClass);
      const sink: ContainerSink = {
        replaceAll: (records) => void pushed.push([...records].map((r) => r.names.join(',')).sort()),
        upsert: () => undefined,
        remove: () => undefined,
        health: () => undefined,
      };
      await engine.start(sink);
      // The folder's reading started in start() and needs the file system: it cannot have ended yet.
      await engine.recheck();
      await eventually(async () => (pushed.length > 0 ? true : undefined));
      await engine.stop();
    });
    expect({ loads, pushed }).toEqual({ loads: 0, pushed: [['desperate_turing', 'dreamy_elion', 'jolly_sinoussi']] });
  });

  it('asks the daemon when there is no containers folder', async () => {
    const sock = join(scratch, 'wnf-none.sock');
    const none = join(scratch, 'wnf-no-docker-dir');
    expect(await apiLoadsWith({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: none })).toMatchObject({
      loads: 1,
      reason: `no daemon at ${sock} (ENOENT) and ${none}/containers absent`,
    });
  });
});

describe('DockerEngine trying a daemon again', () => {
  it('asks the daemon again at a re-check with daemon \'when-no-files\' while there is no containers folder', async () => {
    const sock = join(scratch, 'wnf-again.sock');
    const daemon = await fakeDaemon(sock, (_request, s) => s.destroy());
    // No timed try: only the re-check can ask again.
    const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: join(scratch, 'wnf-again-none') }, { daemon: 'when-no-files', retryMinMs: 600000, retryMaxMs: 600000 });
    await reasonMatching(registry, /ECONNRESET/);
    const before = daemon.connections();
    await c.get(DockerEngine).recheck();
    expect(await eventually(async () => (daemon.connections() > before ? daemon.connections() - before : undefined))).toBe(1);
  });

  it('tries a tcp:// daemon again and again with backoff while it fails, reading the files meanwhile', async () => {
    const daemon = await fakeDaemon(0, (_request, s) => s.destroy());
    const dockerDir = fixtureDockerDir();
    const { registry } = await startedCroot({ DOCKER_HOST: `tcp://127.0.0.1:${daemon.port}`, PCP_DOCKER_DIR: dockerDir }, { retryMinMs: 10, retryMaxMs: 40 });
    await eventually(async () => (daemon.connections() >= 4 ? true : undefined));
    expect(await reasonMatching(registry, /unreachable/)).toBe(`daemon at 127.0.0.1:${daemon.port} unreachable (ECONNRESET); reading ${dockerDir}: 3 containers`);
    expect(registry.lookup('dreamy_elion')).toMatchObject({ source: 'disk' });
  });

  it('waits retryMinMs on its clock before its second try at a failing daemon, twice as long before each next, never more than retryMaxMs', async () => {
    const daemon = await fakeDaemon(0, (_request, s) => s.destroy());
    const clock = new ManualClock();
    await startedCroot({ DOCKER_HOST: `tcp://127.0.0.1:${daemon.port}`, PCP_DOCKER_DIR: fixtureDockerDir() }, { retryMinMs: 1000, retryMaxMs: 4000, clock });
    const waits: number[] = [];
    for (let tried = 1; tried <= 4; tried++) {
      // The try has failed and the next one waits on the clock; it is not made before its time.
      await eventually(async () => (daemon.connections() === tried && clock.pending().length === 1 ? true : undefined));
      const [wait = 0] = clock.pending();
      waits.push(wait);
      clock.advance(wait - 1);
      expect([daemon.connections(), clock.pending()]).toEqual([tried, [1]]);
      clock.advance(1);
    }
    expect(waits).toEqual([1000, 2000, 4000, 4000]);
  });

  it('leaves the next try at a failing daemon to its backoff timer at a re-check made while that timer is set', async () => {
    let before: number | undefined;
    const daemon = await fakeDaemon(0, (request, s) => {
      if (request === 'MARK') before = daemon.connections() - 1;
      s.destroy();
    });
    const { c, registry } = await startedCroot({ DOCKER_HOST: `tcp://127.0.0.1:${daemon.port}`, PCP_DOCKER_DIR: fixtureDockerDir() }, { retryMinMs: 600000, retryMaxMs: 600000 });
    await reasonMatching(registry, /unreachable \(ECONNRESET\)/);
    await c.get(DockerEngine).recheck();
    // A connection of the test's own, made after the re-check: the kernel queues connections to a listener in the order they came.
    createConnection(daemon.port, '127.0.0.1').on('error', () => undefined).end('MARK');
    expect(await eventually(async () => before)).toBe(1);
  });

  it('says how far a daemon that answers its ping has come, the files answering meanwhile', async () => {
    const sock = join(scratch, 'ping-only.sock');
    await fakeDaemon(sock, pingOnly);
    const dockerDir = fixtureDockerDir();
    const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: dockerDir }, { requestTimeoutMs: 600000 });
    expect(await reasonMatching(registry, /answers/)).toBe(`daemon at ${sock} answers, loading: listing its containers; meanwhile reading ${dockerDir}: 3 containers`);
    expect(registry.statuses().find((s) => s.engine === 'docker')?.available).toBe(true);
    expect(c.get(DockerEngine).source).toBe('disk');
  });

  it('ends every watch at stop: the files\' and the socket folder\'s', async () => {
    const counting = new CountingWatcher();
    const dockerDir = fixtureDockerDir();
    const sockDir = join(scratch, 'sockdir');
    mkdirSync(sockDir);
    const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${sockDir}/docker.sock`, PCP_DOCKER_DIR: dockerDir }, {}, counting);
    await eventually(async () => (counting.active.has(sockDir) ? true : undefined));
    expect(counting.active.get(join(dockerDir, 'containers'))).toBe(1);
    expect(counting.active.size).toBe(5);
    await registry.stop();
    expect([...counting.active.keys()]).toEqual([]);
    // Nothing of the files is shown any more.
    expect(registry.containers()).toEqual([]);
    expect(c.get(DockerEngine).source).toBeUndefined();
    // A re-check that comes after stop settles and watches nothing again.
    expect(await c.get(DockerEngine).recheck().then(() => 'settled')).toBe('settled');
    expect([...counting.active.keys()]).toEqual([]);
  });
});

describe('DockerEngine watching for a socket', () => {
  it('keeps one watch on the socket\'s folder however many tries fail', async () => {
    const counting = new CountingWatcher();
    const sockDir = join(scratch, 'once-dir');
    mkdirSync(sockDir);
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sockDir}/docker.sock`, PCP_DOCKER_DIR: fixtureDockerDir() }, { retryMinMs: 10, retryMaxMs: 40 }, counting);
    await reasonMatching(registry, /unreachable \(ENOENT\)/);
    // A socket that drops every connection: its appearance brings a try, and a few more with backoff, each failing.
    const daemon = await fakeDaemon(join(sockDir, 'docker.sock'), (_request, s) => s.destroy());
    await eventually(async () => (daemon.connections() >= 3 ? true : undefined));
    await reasonMatching(registry, /unreachable \(ECONNRESET\)/);
    expect(counting.active.get(sockDir)).toBe(1);
  });
});

describe('DockerEngine backing off after its socket appears', () => {
  it('tries again with backoff while the new socket fails, and leaves it to the socket\'s next event once the wait reaches retryMaxMs', async () => {
    const sockDir = join(scratch, 'backoff-dir');
    mkdirSync(sockDir);
    const clock = new ManualClock();
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sockDir}/docker.sock`, PCP_DOCKER_DIR: fixtureDockerDir() }, { retryMinMs: 1000, retryMaxMs: 4000, clock });
    await reasonMatching(registry, /unreachable \(ENOENT\)/);
    // The socket's folder is watched: no timed try while there is no socket.
    expect(clock.pending()).toEqual([]);
    // A socket that drops its first two connections and refuses the third's ping with HTTP 500, so that each failure shows.
    const daemon = await fakeDaemon(join(sockDir, 'docker.sock'), (_request, s) => {
      if (daemon.connections() < 3) s.destroy();
      else s.end('HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\ngone');
    });
    const waits: number[] = [];
    for (let tried = 1; tried <= 2; tried++) {
      await eventually(async () => (daemon.connections() === tried && clock.pending().length === 1 ? true : undefined));
      const [wait = 0] = clock.pending();
      waits.push(wait);
      clock.advance(wait);
    }
    expect(waits).toEqual([1000, 2000]);
    // The third try failed with the wait at its maximum: told in the health, and no timed try follows.
    await reasonMatching(registry, /HTTP 500/);
    expect([daemon.connections(), clock.pending()]).toEqual([3, []]);
  });
});

describe('DockerEngine told by hand of events in its socket\'s folder', () => {
  /** A watcher whose events the test gives, at once, in its own order. */
  class HandWatcher implements DirectoryWatcher {
    private readonly watches = new Map<string, (event: DirectoryEvent) => void>();
    watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
      this.watches.set(dir, onEvent);
      return () => this.watches.delete(dir);
    }
    tell(dir: string, event: DirectoryEvent): void {
      this.watches.get(dir)?.(event);
    }
    watching(dir: string): boolean {
      return this.watches.has(dir);
    }
  }

  /**
   * The engine waiting for its socket (its folder watched by hand, no timed try), and a daemon listening
   * there that it has not been told of. `accepted`: the connections in the order the kernel queued them (a
   * try connects while the event that makes it is handled), each named by its first request; `mark()`
   * queues one of the test's own.
   */
  async function waitingEngine(name: string): Promise<{ registry: EngineRegistry; tell: (event: DirectoryEvent) => void; mark: () => void; accepted: string[] }> {
    const sockDir = join(scratch, name);
    mkdirSync(sockDir);
    const sock = join(sockDir, 'docker.sock');
    const hand = new HandWatcher();
    const clock = new ManualClock();
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: fixtureDockerDir() }, { clock, requestTimeoutMs: 600000 }, hand);
    await reasonMatching(registry, /unreachable \(ENOENT\)/);
    expect([hand.watching(sockDir), clock.pending()]).toEqual([true, []]);
    const accepted: string[] = [];
    const server = createServer((s) => {
      const slot = accepted.push('?') - 1;
      held.add(s);
      s.on('close', () => held.delete(s));
      s.on('error', () => undefined);
      s.once('data', (chunk) => {
        const request = chunk.toString('latin1');
        accepted[slot] = request === 'MARK' ? 'mark' : request.split(' ', 2).join(' ');
        pingOnly(request, s);
      });
    });
    servers.push(server);
    await new Promise<void>((res) => server.listen(sock, res));
    return {
      registry,
      tell: (event) => hand.tell(sockDir, event),
      mark: () => void createConnection(sock).on('error', () => undefined).end('MARK'),
      accepted,
    };
  }

  /** The first `n` connections once each has said what it is (a daemon that answers is asked more, on connections of their own). */
  const first = (accepted: string[], n: number): Promise<string[]> =>
    eventually(async () => (accepted.length >= n && !accepted.slice(0, n).includes('?') ? accepted.slice(0, n) : undefined));

  it('makes no try at the daemon for another file or for its socket\'s removal, and one for its socket', async () => {
    const { registry, tell, mark, accepted } = await waitingEngine('other-file-dir');
    tell({ kind: 'changed', name: 'docker.sock.tmp' });
    tell({ kind: 'removed', name: 'docker.sock' });
    mark();
    tell({ kind: 'changed', name: 'docker.sock' });
    expect(await reasonMatching(registry, /answers/)).toMatch(/loading: listing its containers/);
    expect(await first(accepted, 2)).toEqual(['mark', 'GET /_ping']);
  });

  it('tries the daemon when the kernel says the folder\'s events were lost', async () => {
    const { registry, tell, mark, accepted } = await waitingEngine('overflow-dir');
    tell({ kind: 'overflow', name: '' });
    mark();
    expect(await reasonMatching(registry, /answers/)).toMatch(/loading: listing its containers/);
    expect(await first(accepted, 2)).toEqual(['GET /_ping', 'mark']);
  });
});

describe('DockerEngine seeing its socket appear', () => {
  it('makes one try at the daemon however many events the socket\'s appearance brings at once', async () => {
    const sockDir = join(scratch, 'twice-dir');
    mkdirSync(sockDir);
    const sock = join(sockDir, 'docker.sock');
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: fixtureDockerDir() }, { retryMinMs: 600000, retryMaxMs: 600000, requestTimeoutMs: 600000 });
    await reasonMatching(registry, /unreachable \(ENOENT\)/);
    let pings = 0;
    await fakeDaemon(sock, (request, s) => {
      if (request.startsWith('GET /_ping ')) pings++;
      pingOnly(request, s);
    });
    // Made, then its mode set, as dockerd does: two events for the one socket, read together.
    chmodSync(sock, 0o660);
    expect(await reasonMatching(registry, /answers/)).toMatch(/loading: listing its containers/);
    expect(pings).toBe(1);
  });
});

describe('DockerEngine while a daemon that answers loads', () => {
  const [a, b] = ['a1'.repeat(32), 'b2'.repeat(32)];

  it('says how many containers are inspected and how many wait to be tried again, and why, the files answering meanwhile', async () => {
    const sock = join(scratch, 'loading-files.sock');
    await fakeDaemon(sock, loadingDaemon([a, b], new Set([a])));
    const dockerDir = fixtureDockerDir();
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: dockerDir }, { inspectAttempts: 100, inspectRetryMs: 600000 });
    // One inspected, the other refused: the reason may pass through "0 of 2 ... 1 inspect to retry" on the way.
    expect(await reasonMatching(registry, /1 of 2 containers inspected, 1 inspect to retry/)).toBe(
      `daemon at ${sock} answers, loading: 1 of 2 containers inspected, 1 inspect to retry (HTTP 500: (HTTP code 500) server error - overloaded); meanwhile reading ${dockerDir}: 3 containers`,
    );
    expect(registry.statuses().find((s) => s.engine === 'docker')?.available).toBe(true);
    expect(registry.lookup('dreamy_elion')).toMatchObject({ source: 'disk' });
  });

  it('says its first load is not complete when there are no files to answer meanwhile', async () => {
    const sock = join(scratch, 'loading-none.sock');
    await fakeDaemon(sock, loadingDaemon([a, b], new Set()));
    const c = crootContainer({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: join(scratch, 'loading-none') }, { inspectAttempts: 100, inspectRetryMs: 600000 });
    const registry = c.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    // Both inspects refused: the reason passes through "1 inspect to retry" on the way.
    expect(await reasonMatching(registry, /2 inspects to retry/)).toBe(
      `daemon at ${sock} answers, loading: 0 of 2 containers inspected, 2 inspects to retry (HTTP 500: (HTTP code 500) server error - overloaded); its first load is not complete`,
    );
    expect(registry.statuses().find((s) => s.engine === 'docker')?.available).toBe(false);
  });

  it('waits between an inspect\'s tries as long as inspectRetryMs says, on its clock', async () => {
    const sock = join(scratch, 'loading-clock.sock');
    await fakeDaemon(sock, loadingDaemon([a], new Set()));
    const clock = new ManualClock();
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: fixtureDockerDir() }, { inspectRetryMs: 7000, clock });
    await reasonMatching(registry, /1 inspect to retry/);
    expect(clock.pending()).toEqual([7000]);
  });

  it('gives up after as many tries of an inspect as it is told, naming the container', async () => {
    const sock = join(scratch, 'loading-fails.sock');
    await fakeDaemon(sock, loadingDaemon([a], new Set()));
    const none = join(scratch, 'loading-fails');
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: none }, { inspectAttempts: 2, inspectRetryMs: 10, retryMinMs: 600000 });
    expect(reason(registry)).toBe(`no daemon at ${sock} (inspect of container ${a.slice(0, 12)} failed 2 times (HTTP 500: (HTTP code 500) server error - overloaded)) and ${none}/containers absent`);
  });

  it('closes the event stream of a daemon in use when it stops', async () => {
    const sock = join(scratch, 'stop-following.sock');
    const streams = new Set<Socket>();
    const answer = loadingDaemon([a, b], new Set([a, b]));
    await fakeDaemon(sock, (request, s) => {
      if (/^GET (?:\/v[\d.]+)?\/events/.test(request)) {
        streams.add(s);
        s.on('close', () => streams.delete(s));
      }
      answer(request, s);
    });
    const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: join(scratch, 'stop-following') });
    expect(await reasonMatching(registry, /API/)).toBe(`daemon at ${sock} (API and events): 2 containers`);
    expect(streams.size).toBe(1);
    // The engine's own stop (the registry's hides an engine's failure to stop): it settles, and the stream is closed.
    const engine = c.get(DockerEngine);
    expect(await engine.stop().then(() => 'stopped')).toBe('stopped');
    expect(engine.source).toBeUndefined();
    expect(await eventually(async () => (streams.size === 0 ? 0 : undefined))).toBe(0);
  });

  it('has no more inspects in flight at the daemon than inspectConcurrency says', async () => {
    const ids = ['c1', 'd2', 'e3', 'f4', 'a5'].map((x) => x.repeat(32));
    const sock = join(scratch, 'inspect-concurrency.sock');
    const answer = loadingDaemon(ids, new Set(ids));
    /** Inspects the daemon has received and not answered yet; the most at once. */
    const waiting: (() => void)[] = [];
    let most = 0;
    await fakeDaemon(sock, (request, s) => {
      if (!/^GET (?:\/v[\d.]+)?\/containers\/\w+\/json/.test(request)) return answer(request, s);
      waiting.push(() => answer(request, s));
      most = Math.max(most, waiting.length);
    });
    const c = crootContainer({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: join(scratch, 'inspect-concurrency') }, { inspectConcurrency: 2 });
    const registry = c.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    // The daemon answers one inspect whenever two wait (or the last one): a third would come only past the limit.
    for (let left = ids.length; left > 0; left--) {
      await eventually(async () => (waiting.length >= Math.min(2, left) ? true : undefined));
      (waiting.shift() as () => void)();
    }
    expect(await reasonMatching(registry, /API/)).toBe(`daemon at ${sock} (API and events): 5 containers`);
    expect(most).toBe(2);
  });

  it('lets go of a daemon still being pinged when it stops', async () => {
    const sock = join(scratch, 'stop-pinging.sock');
    const daemon = await fakeDaemon(sock, () => undefined);
    const { registry } = await startedCroot({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: fixtureDockerDir() }, { probeTimeoutMs: 600000 });
    await eventually(async () => (daemon.connections() === 1 && held.size === 1 ? true : undefined));
    await registry.stop();
    expect(await eventually(async () => (held.size === 0 ? 0 : undefined))).toBe(0);
  });
});

describe('DockerEngine\'s bound on the daemon\'s ping', () => {
  afterEach(() => jest.useRealTimers());

  it('waits for the ping as long as probeTimeoutMs says, longer than the default 3 s, and uses a daemon that answers within it', async () => {
    const sock = join(scratch, 'slow-ping.sock');
    let answerPing: (() => void) | undefined;
    let pingCame = (): void => undefined;
    const pinged = new Promise<void>((res) => (pingCame = res));
    await fakeDaemon(sock, (request, s) => {
      if (!request.startsWith('GET /_ping ')) return;
      answerPing = () => pingOnly(request, s);
      pingCame();
    });
    // Only setTimeout is faked: the ping's bound runs on a clock the test moves; sockets and files stay real.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'setInterval', 'clearInterval', 'Date', 'hrtime', 'performance'] });
    const c = crootContainer({ DOCKER_HOST: `unix://${sock}`, PCP_DOCKER_DIR: join(scratch, 'slow-ping') }, { probeTimeoutMs: 5000 });
    await c.get<EngineRegistry>(EngineRegistry).start();
    await pinged;
    jest.advanceTimersByTime(4000);
    jest.useRealTimers();
    (answerPing as () => void)();
    const registry = c.get<EngineRegistry>(EngineRegistry);
    expect(await reasonMatching(registry, /answers|timed out/)).toBe(`daemon at ${sock} answers, loading: listing its containers; its first load is not complete`);
  });
});

describeWith('docker', probes.docker, 'DockerEngine and the real dockerd behind a socket that appears and goes away', () => {
  it('switches to the daemon as soon as its socket appears, back to the files when its stream ends, and again when it is back', async () => {
    const relay = new DaemonRelay(join(scratch, 'relay.sock'));
    const dockerDir = fixtureDockerDir();
    // No timer tries again: only the socket's appearance can.
    const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${relay.path}`, PCP_DOCKER_DIR: dockerDir }, { retryMinMs: 600000, retryMaxMs: 600000 });
    const engine = c.get(DockerEngine);
    try {
      expect(await reasonMatching(registry, /unreachable/)).toBe(`daemon at ${relay.path} unreachable (ENOENT); reading ${dockerDir}: 3 containers`);
      expect(engine.source).toBe('disk');
      await relay.open();
      expect(await reasonMatching(registry, /API/)).toMatch(new RegExp(`^daemon at ${relay.path} \\(API and events\\): \\d+ containers?$`));
      expect(engine.source).toBe('api');
      // The files' containers are not the daemon's.
      expect(registry.containers().some((r) => r.names.includes('dreamy_elion'))).toBe(false);
      await relay.cut();
      // Back to the files, read afresh: the reason names them once they are read.
      expect(await reasonMatching(registry, /unreachable.*: \d+ containers?$/)).toMatch(new RegExp(`^daemon at ${relay.path} unreachable \\(event stream (ended|closed|failed)[^)]*\\); reading ${dockerDir}: 3 containers$`));
      expect(engine.source).toBe('disk');
      await relay.open();
      await reasonMatching(registry, /API/);
      expect(engine.source).toBe('api');
    } finally {
      await relay.cut();
    }
  });

  const created: string[] = [];
  afterAll(() => removeDockerContainers(created));

  it('finds at its re-check a container an event stream that says nothing missed', async () => {
    const relay = new DaemonRelay(join(scratch, 'mute.sock'), true);
    await relay.open();
    try {
      const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${relay.path}`, PCP_DOCKER_DIR: join(scratch, 'mute-none') });
      await reasonMatching(registry, /API/);
      const late = dockerRun(uniqueName(), { createOnly: true }, created);
      expect(await codeOf(() => registry.lookup(late.name))).toBe('ERR_NO_CONTAINER');
      await c.get(DockerEngine).recheck();
      expect(registry.lookup(late.name)).toMatchObject({ id: late.id, state: 'created', source: 'api' });
      const n = registry.containers().length;
      expect(reason(registry)).toBe(`daemon at ${relay.path} (API and events): ${n} container${n === 1 ? '' : 's'}`);
    } finally {
      await relay.cut();
    }
  });

  it('adds a container docker creates and drops it when docker removes it, while its API is in use', async () => {
    const { registry } = await startedCroot({ DOCKER_HOST: 'unix:///var/run/docker.sock', PCP_DOCKER_DIR: join(scratch, 'follow-none') });
    await reasonMatching(registry, /API/);
    const made = dockerRun(uniqueName(), { createOnly: true }, created);
    expect(await eventually(async () => registry.containers().find((r) => r.id === made.id))).toMatchObject({ names: [made.name], state: 'created', source: 'api' });
    removeDockerContainers([made.id]);
    expect(await eventually(async () => (registry.containers().some((r) => r.id === made.id) ? undefined : true))).toBe(true);
    expect(await codeOf(() => registry.lookup(made.name))).toBe('ERR_NO_CONTAINER');
  });

  it('tries the daemon once more at its re-check when it missed the socket appearing', async () => {
    const relay = new DaemonRelay(join(scratch, 'missed.sock'));
    const dockerDir = fixtureDockerDir();
    const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${relay.path}`, PCP_DOCKER_DIR: dockerDir }, { retryMinMs: 600000, retryMaxMs: 600000 }, deaf);
    try {
      await reasonMatching(registry, /unreachable/);
      await relay.open();
      const engine = c.get(DockerEngine);
      expect(engine.source).toBe('disk');
      await engine.recheck();
      await reasonMatching(registry, /API/);
      expect(engine.source).toBe('api');
    } finally {
      await relay.cut();
    }
  });

  it('tries again a few times after its stream was cut, with no socket event, and finds the daemon back', async () => {
    const relay = new DaemonRelay(join(scratch, 'back.sock'));
    await relay.open();
    try {
      const dockerDir = fixtureDockerDir();
      const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${relay.path}`, PCP_DOCKER_DIR: dockerDir }, { retryMinMs: 300, retryMaxMs: 1200 }, deaf);
      await reasonMatching(registry, /API/);
      const health: string[] = [];
      registry.subscribe((e) => {
        if (e.kind === 'health' && e.status.engine === 'docker') health.push(`${e.status.available ? 'available' : 'unavailable'}: ${e.status.reason}`);
      });
      await relay.cut();
      await relay.open();
      // Lost (the files not read yet), then the daemon's API again: found by a timed try, as no watch reports anything.
      await eventually(async () => (health.some((r) => r.includes('unreachable (event stream')) && health.at(-1)?.includes('(API and events)') ? true : undefined));
      expect(health.find((r) => r.includes('unreachable (event stream'))).toMatch(
        new RegExp(`^unavailable: daemon at ${relay.path} unreachable \\(event stream (ended|closed|failed)[^)]*\\); ${dockerDir} not read yet$`),
      );
      expect(health.at(-1)).toMatch(new RegExp(`^available: daemon at ${relay.path} \\(API and events\\): \\d+ containers?$`));
      expect(c.get(DockerEngine).source).toBe('api');
    } finally {
      await relay.cut();
    }
  });

  it('picks the daemon up when the folder its socket lives in is removed and made again', async () => {
    const counting = new CountingWatcher();
    const sockDir = join(scratch, 'gone-dir');
    mkdirSync(sockDir);
    const relay = new DaemonRelay(join(sockDir, 'docker.sock'));
    const { c, registry } = await startedCroot({ DOCKER_HOST: `unix://${relay.path}`, PCP_DOCKER_DIR: fixtureDockerDir() }, { retryMinMs: 50, retryMaxMs: 100 }, counting);
    try {
      await reasonMatching(registry, /unreachable/);
      await eventually(async () => (counting.active.has(sockDir) ? true : undefined));
      rmSync(sockDir, { recursive: true });
      await eventually(async () => (counting.active.has(sockDir) ? undefined : true));
      mkdirSync(sockDir);
      // Watched again once made (a try after the folder went finds it), so the socket's appearance is seen.
      await eventually(async () => (counting.active.has(sockDir) ? true : undefined));
      await relay.open();
      await reasonMatching(registry, /API/);
      expect(c.get(DockerEngine).source).toBe('api');
    } finally {
      await relay.cut();
    }
  });
});
