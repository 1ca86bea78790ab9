/**
 * DockerApiSource on its own: against the real dockerd (its records compared
 * with `docker inspect` and /proc, its events and its safety net following
 * changes the test makes), and against small HTTP daemons on a unix socket
 * for the answers a healthy dockerd never gives (an error status, an answer
 * cut short, an inspect that keeps failing, a container gone mid-load).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import { commandWorks, describeWith, probes } from '../../test/support/components.js';
import { DaemonRelay } from '../../test/support/docker-relay.js';
import { ManualClock } from '../../test/support/manual-clock.js';
import { eventually } from '../../test/support/outcomes.js';
import { dockerInspect, dockerRun, removeDockerContainers, uniqueName, type TestContainer } from '../../test/support/testbed.js';
import { makeTestPki } from '../../test/support/test-pki.js';
import { bootTimeTruth, cgroupTruth, clockTicksTruth, startTimeFromStatFile } from '../../test/support/truth.js';
import { DockerApiSource, describeDockerError, type DockerApiProgress, type DockerApiSourceOptions } from './docker-api-source.js';
import { dockerEndpointFrom } from './docker-endpoint.js';

let scratch: string;
const sources: DockerApiSource[] = [];
const servers: Server[] = [];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'croot-t-docker-api-'));
});
afterEach(async () => {
  for (const s of sources.splice(0)) s.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((res) => server.close(() => res()));
  }
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What a source told its engine, in order. */
interface Told {
  readonly upserts: ContainerRecord[];
  readonly removes: string[];
  readonly lost: string[];
  readonly progress: DockerApiProgress[];
}

/** A source for the daemon at `socket`, remembering what it tells; closed after each test. */
function sourceAt(socket: string, options: Partial<DockerApiSourceOptions> = {}): { source: DockerApiSource; told: Told } {
  const told: Told = { upserts: [], removes: [], lost: [], progress: [] };
  const source: DockerApiSource = new DockerApiSource({
    endpoint: dockerEndpointFrom({ DOCKER_HOST: `unix://${socket}` }),
    bootTime: bootTimeTruth(),
    onUpsert: (record) => told.upserts.push(record),
    onRemove: (id) => told.removes.push(id),
    onLost: (why) => told.lost.push(why),
    onProgress: () => told.progress.push(source.progress()),
    ...options,
  });
  sources.push(source);
  return { source, told };
}

/** The rejection's message of `promise` (which must reject). */
async function failureOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('resolved, expected a rejection');
}

type Route = (req: IncomingMessage, res: ServerResponse) => boolean;

/** An HTTP daemon on a unix socket: each request goes to the first route that takes it; any other gets 404. */
async function fakeDaemon(name: string, ...routes: Route[]): Promise<string> {
  const path = join(scratch, `${name}.sock`);
  const server = createServer((req, res) => {
    if (!routes.some((route) => route(req, res))) res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"message":"no such route"}');
  });
  servers.push(server);
  await new Promise<void>((res) => server.listen(path, res));
  return path;
}

/** A route for `GET /<path>` (Docker's API paths, with or without a version prefix). */
const on =
  (path: RegExp, answer: (res: ServerResponse, req: IncomingMessage) => void): Route =>
  (req, res) => {
    const bare = (req.url ?? '').replace(/^\/v[\d.]+/, '').split('?')[0] ?? '';
    if (!path.test(bare)) return false;
    answer(res, req);
    return true;
  };
const json = (status: number, body: unknown) => (res: ServerResponse) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
const pingOk = on(/^\/_ping$/, (res) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('OK'));
const info = on(/^\/info$/, json(200, { CgroupDriver: 'cgroupfs' }));
/** An event stream that starts and then says nothing. */
const quietEvents = on(/^\/events$/, (res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
});
/** An event stream that starts, hands its response to `open` (to write events into), and says nothing by itself. */
const eventsTo = (open: (res: ServerResponse) => void): Route =>
  on(/^\/events$/, (res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    open(res);
  });
const containerJson = (Id: string) => ({ Id, Name: `/c-${Id.slice(0, 4)}`, State: { Status: 'exited', Running: false, StartedAt: '2024-01-01T00:00:00Z' } });
const inspectOk = on(/^\/containers\/\w+\/json$/, (res, req) => json(200, containerJson(/\/containers\/(\w+)\/json/.exec(req.url ?? '')?.[1] ?? ''))(res));
const ID = 'ab'.repeat(32);
const listOne = on(/^\/containers\/json$/, json(200, [{ Id: ID, Names: ['/lonely'], State: 'running' }]));

/** A daemon that lists one container and refuses every inspect of it (HTTP 500), counting the inspects. */
async function overloadedDaemon(name: string): Promise<{ socket: string; inspects: () => number }> {
  let inspects = 0;
  const socket = await fakeDaemon(
    name,
    pingOk,
    info,
    quietEvents,
    listOne,
    on(/^\/containers\/\w+\/json$/, (res) => {
      inspects++;
      json(500, { message: 'overloaded' })(res);
    }),
  );
  return { socket, inspects: () => inspects };
}

describe('DockerApiSource and a daemon that answers wrong', () => {
  it('fails with the endpoint\'s problem, asking no daemon (not the default socket either)', async () => {
    const endpoint = dockerEndpointFrom({ DOCKER_HOST: 'ssh://croot@example.invalid' });
    const source = new DockerApiSource({ endpoint, bootTime: bootTimeTruth(), onUpsert: () => undefined, onRemove: () => undefined, onLost: () => undefined });
    sources.push(source);
    const failure = await failureOf(source.connect());
    expect(failure).toMatch(/^ssh:\/\/croot@example\.invalid: /);
    expect(failure).toBe(endpoint.problem);
    expect(source.progress().answered).toBe(false);
  });

  it('fails on a ping answered with an error status, saying which', async () => {
    const socket = await fakeDaemon('ping-500', on(/^\/_ping$/, (res) => res.writeHead(500).end('down')));
    const { source, told } = sourceAt(socket);
    expect(await failureOf(source.connect())).toBe('HTTP 500 to /_ping');
    expect(source.progress().answered).toBe(false);
    expect(told.progress).toEqual([]);
  });

  it('fails "timed out" on a ping not answered within its bound', async () => {
    const socket = await fakeDaemon('ping-silent', on(/^\/_ping$/, () => undefined));
    const { source, told } = sourceAt(socket, { probeTimeoutMs: 100 });
    expect(await failureOf(source.connect())).toBe('timed out');
    expect(told.progress).toEqual([]);
  });

  it('fails at once on a ping answer cut short', async () => {
    const socket = await fakeDaemon(
      'ping-cut',
      on(/^\/_ping$/, (res) => {
        res.writeHead(200, { 'Content-Length': '10' });
        res.write('OK');
        setImmediate(() => res.socket?.destroy());
      }),
    );
    // Node reports the cut as `aborted` (or, without an error, the close says it); never a success, never a wait for the bound.
    expect(await failureOf(sourceAt(socket, { probeTimeoutMs: 600000 }).source.connect())).toMatch(/^(aborted|the answer to \/_ping was cut short)$/);
  });

  it('fails with the event stream\'s end when it ends during the first load', async () => {
    const socket = await fakeDaemon('events-end', pingOk, info, on(/^\/events$/, (res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end()));
    const { source, told } = sourceAt(socket);
    expect(await failureOf(source.connect())).toMatch(/^event stream (ended|closed)$/);
    expect(told.lost).toEqual([]);
  });

  it('leaves out a container the daemon no longer knows when it is inspected', async () => {
    const socket = await fakeDaemon('gone', pingOk, info, quietEvents, listOne, on(/^\/containers\/\w+\/json$/, json(404, { message: 'No such container' })));
    const { source } = sourceAt(socket);
    expect(await source.connect()).toEqual([]);
    expect(source.progress()).toEqual({ answered: true, listed: 1, inspected: 1, retrying: 0, lastError: undefined });
  });

  it('tries a failing inspect again after a growing wait, says so meanwhile, then gives up naming the container', async () => {
    const { socket, inspects } = await overloadedDaemon('inspect-500');
    const { source, told } = sourceAt(socket, { inspectAttempts: 3, inspectRetryMs: 20 });
    expect(await failureOf(source.connect())).toBe(`inspect of container ${ID.slice(0, 12)} failed 3 times (HTTP 500: (HTTP code 500) server error - overloaded)`);
    expect(inspects()).toBe(3);
    // Health as it went: answered, listed, then each wait announced and ended.
    expect(told.progress.map((p) => [p.listed, p.retrying, p.lastError])).toEqual([
      [undefined, 0, undefined],
      [1, 0, undefined],
      [1, 1, 'HTTP 500: (HTTP code 500) server error - overloaded'],
      [1, 0, 'HTTP 500: (HTTP code 500) server error - overloaded'],
      [1, 1, 'HTTP 500: (HTTP code 500) server error - overloaded'],
      [1, 0, 'HTTP 500: (HTTP code 500) server error - overloaded'],
    ]);
  });

  it('waits inspectRetryMs on its clock before an inspect\'s second try, twice as long before each next, never more than 5 s', async () => {
    const { socket, inspects } = await overloadedDaemon('inspect-waits');
    const clock = new ManualClock();
    const { source } = sourceAt(socket, { inspectAttempts: 5, inspectRetryMs: 1500, clock });
    const connecting = failureOf(source.connect());
    const waits: number[] = [];
    for (let tried = 1; tried < 5; tried++) {
      // The try has failed and the next one waits on the clock; it is not made before its time.
      await eventually(async () => (inspects() === tried && clock.pending().length === 1 ? true : undefined));
      const [wait = 0] = clock.pending();
      waits.push(wait);
      clock.advance(wait - 1);
      expect([inspects(), clock.pending()]).toEqual([tried, [1]]);
      clock.advance(1);
    }
    expect(await connecting).toBe(`inspect of container ${ID.slice(0, 12)} failed 5 times (HTTP 500: (HTTP code 500) server error - overloaded)`);
    expect(waits).toEqual([1500, 3000, 5000, 5000]);
    expect(clock.pending()).toEqual([]);
  });
});

describe('DockerApiSource and a small daemon', () => {
  it('applies the events that came during its first load once told to follow', async () => {
    const socket = await fakeDaemon(
      'backlog',
      pingOk,
      info,
      eventsTo((res) => {
        res.write(`${JSON.stringify({ Type: 'container', Action: 'destroy', Actor: { ID: 'ef'.repeat(32) } })}\n`);
        res.write(`${JSON.stringify({ Type: 'container', Action: 'create', Actor: { ID } })}\n`);
      }),
      on(/^\/containers\/json$/, (res) => setTimeout(() => json(200, [])(res), 100)),
      inspectOk,
    );
    const { source, told } = sourceAt(socket);
    expect(await source.connect()).toEqual([]);
    expect(told.upserts).toEqual([]);
    source.startFollowing();
    expect(await eventually(async () => told.upserts[0])).toMatchObject({ id: ID, names: ['c-abab'], state: 'exited' });
    expect(source.size).toBe(1);
    // The end of a container it never knew is nothing to tell.
    expect(told.removes).toEqual([]);
  });

  it('tells the engine it is lost when an inspect after the first load keeps failing', async () => {
    let events: ServerResponse | undefined;
    const socket = await fakeDaemon(
      'inspect-later',
      pingOk,
      info,
      eventsTo((res) => (events = res)),
      on(/^\/containers\/json$/, json(200, [])),
      on(/^\/containers\/\w+\/json$/, json(500, { message: 'overloaded' })),
    );
    const { source, told } = sourceAt(socket, { inspectAttempts: 2, inspectRetryMs: 10 });
    await source.connect();
    const loadProgress = told.progress.length;
    source.startFollowing();
    events?.write(`${JSON.stringify({ Type: 'container', Action: 'start', Actor: { ID } })}\n`);
    expect(await eventually(async () => told.lost[0])).toBe(`inspect of container ${ID.slice(0, 12)} failed 2 times (HTTP 500: (HTTP code 500) server error - overloaded)`);
    expect(told.upserts).toEqual([]);
    // Progress is the first load's: the retry after it moves no health.
    expect(told.progress).toHaveLength(loadProgress);
  });

  it('loads through a tcp:// daemon without TLS, pinged at its host and port', async () => {
    const asked: string[] = [];
    const server = createServer((req, res) => {
      asked.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
      if (![pingOk, info, quietEvents, listOne, inspectOk].some((route) => route(req, res))) res.writeHead(404).end();
    });
    servers.push(server);
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const source = new DockerApiSource({
      endpoint: dockerEndpointFrom({ DOCKER_HOST: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}` }),
      bootTime: bootTimeTruth(),
      onUpsert: () => undefined,
      onRemove: () => undefined,
      onLost: () => undefined,
    });
    sources.push(source);
    expect((await source.connect()).map((r) => r.id)).toEqual([ID]);
    expect(asked[0]).toBe('GET /_ping');
  });

  it('gives the cgroup Docker\'s systemd driver puts a container in', async () => {
    const socket = await fakeDaemon('systemd', pingOk, on(/^\/info$/, json(200, { CgroupDriver: 'systemd' })), quietEvents, listOne, inspectOk);
    expect((await sourceAt(socket).source.connect()).map((r) => r.cgroupHint)).toEqual([`system.slice/docker-${ID}.scope`]);
  });

  it('moves its progress in tenths of a long list, and at its end', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `${String(i).padStart(2, '0')}${'cd'.repeat(31)}`);
    const socket = await fakeDaemon('tenths', pingOk, info, quietEvents, on(/^\/containers\/json$/, json(200, ids.map((Id) => ({ Id, State: 'exited' })))), inspectOk);
    const { source, told } = sourceAt(socket, { inspectConcurrency: 1 });
    expect(await source.connect()).toHaveLength(25);
    // A tenth of 25 is 3 inspects; the last 25th is told as well.
    expect(told.progress.map((p) => p.inspected)).toEqual([0, 0, 3, 6, 9, 12, 15, 18, 21, 24, 25]);
  });

  it('ends its event stream and a pending retry at close', async () => {
    let streamClosed = false;
    const socket = await fakeDaemon(
      'close',
      pingOk,
      info,
      eventsTo((res) => res.on('close', () => (streamClosed = true))),
      listOne,
      on(/^\/containers\/\w+\/json$/, json(500, { message: 'overloaded' })),
    );
    const { source, told } = sourceAt(socket, { inspectRetryMs: 600000 });
    const connecting = source.connect();
    await eventually(async () => (told.progress.at(-1)?.retrying === 1 ? true : undefined));
    const before = told.progress.length;
    source.close();
    // The wait of ten minutes before the next try ends at once.
    expect(await failureOf(connecting)).toBe('closed');
    expect(await eventually(async () => (streamClosed ? true : undefined))).toBe(true);
    // No callback after close: the ended wait is not told as progress.
    expect(told.progress).toHaveLength(before);
  });

  it('ends an inspect the daemon holds at close, and its load with it', async () => {
    let held: IncomingMessage | undefined;
    let heldClosed = false;
    const socket = await fakeDaemon(
      'close-mid-inspect',
      pingOk,
      info,
      quietEvents,
      listOne,
      on(/^\/containers\/\w+\/json$/, (_res, req) => {
        held = req;
        req.socket.on('close', () => (heldClosed = true));
      }),
    );
    // The inspect's own bound is ten minutes: only the close can end it.
    const { source } = sourceAt(socket, { requestTimeoutMs: 600000 });
    let failure: string | undefined;
    void failureOf(source.connect()).then((message) => (failure = message));
    await eventually(async () => held);
    source.close();
    // Ended by the close (an abort), not by a bound.
    expect(await eventually(async () => failure)).toMatch(/aborted|closed/);
    expect(await eventually(async () => (heldClosed ? true : undefined))).toBe(true);
    expect(source.progress()).toMatchObject({ listed: 1, inspected: 0 });
  });

  it('tells nothing once closed after the first load: the event stream it ends is no loss, a re-check asks nothing', async () => {
    let streamClosed = false;
    let lists = 0;
    const socket = await fakeDaemon(
      'close-later',
      pingOk,
      info,
      eventsTo((res) => res.on('close', () => (streamClosed = true))),
      on(/^\/containers\/json$/, (res) => {
        lists++;
        json(200, [{ Id: ID, Names: ['/lonely'], State: 'running' }])(res);
      }),
      inspectOk,
    );
    const { source, told } = sourceAt(socket);
    expect(await source.connect()).toHaveLength(1);
    source.startFollowing();
    source.close();
    expect(await eventually(async () => (streamClosed ? true : undefined))).toBe(true);
    await source.recheck();
    expect(lists).toBe(1);
    expect(told).toMatchObject({ upserts: [], removes: [], lost: [] });
  });

  it('fails with the event stream\'s end during an inspect in flight at once, not after the wait before its retry', async () => {
    let events: ServerResponse | undefined;
    let inspects = 0;
    const socket = await fakeDaemon(
      'end-mid-inspect',
      pingOk,
      info,
      eventsTo((res) => (events = res)),
      listOne,
      // Never answered: the stream's end aborts it.
      on(/^\/containers\/\w+\/json$/, () => {
        inspects++;
        events?.end();
      }),
    );
    const { source } = sourceAt(socket, { inspectRetryMs: 600000 });
    let failure: string | undefined;
    void failureOf(source.connect()).then((message) => (failure = message));
    expect(await eventually(async () => failure)).toMatch(/^event stream (ended|closed)$/);
    expect(inspects).toBe(1);
    expect(source.progress()).toMatchObject({ listed: 1, inspected: 0, retrying: 0 });
  });
});

describeWith('openssl', () => commandWorks('openssl', ['version']), 'DockerApiSource and a daemon over TLS that demands a client certificate', () => {
  let pki: string;
  let port: number;
  /** Common names of the client certificates the daemon accepted. */
  const clients: string[] = [];
  /** The daemon's connections now open. */
  const connections = new Set<TLSSocket>();
  let pingStatus = 200;
  let daemon: ReturnType<typeof createHttpsServer> | undefined;

  beforeAll(async () => {
    pki = join(scratch, 'pki');
    mkdirSync(pki);
    makeTestPki(pki);
    const pem = (name: string) => readFileSync(join(pki, `${name}.pem`));
    const routes = [on(/^\/_ping$/, (res) => res.writeHead(pingStatus).end('OK')), info, quietEvents, on(/^\/containers\/json$/, json(200, []))];
    const server = createHttpsServer({ key: pem('server-key'), cert: pem('server'), ca: pem('ca'), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject.CN));
      if (!routes.some((route) => route(req, res))) res.writeHead(404).end();
    });
    // Idle connections stay open until the client ends them.
    server.keepAliveTimeout = 0;
    server.on('secureConnection', (socket: TLSSocket) => {
      connections.add(socket);
      socket.on('close', () => connections.delete(socket));
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    port = (server.address() as AddressInfo).port;
    daemon = server;
  });
  afterAll(async () => {
    daemon?.closeAllConnections();
    await new Promise<void>((res) => (daemon === undefined ? res() : daemon.close(() => res())));
  });

  /** A DOCKER_CERT_PATH with the CA `ca` and, when given, the client certificate `client`. */
  function certPath(ca: string, client?: string): string {
    const dir = mkdtempSync(join(scratch, 'certs-'));
    copyFileSync(join(pki, `${ca}.pem`), join(dir, 'ca.pem'));
    if (client !== undefined) {
      copyFileSync(join(pki, `${client}.pem`), join(dir, 'cert.pem'));
      copyFileSync(join(pki, `${client}-key.pem`), join(dir, 'key.pem'));
    }
    return dir;
  }

  function tlsSource(certs: string, at = port): DockerApiSource {
    const source = new DockerApiSource({
      endpoint: dockerEndpointFrom({ DOCKER_HOST: `tcp://127.0.0.1:${at}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }),
      bootTime: bootTimeTruth(),
      onUpsert: () => undefined,
      onRemove: () => undefined,
      onLost: () => undefined,
    });
    sources.push(source);
    return source;
  }

  it('loads through the daemon with the client certificate its CA signed', async () => {
    clients.length = 0;
    const source = tlsSource(certPath('ca', 'client'));
    expect(await source.connect()).toEqual([]);
    expect(source.progress()).toMatchObject({ answered: true, listed: 0 });
    // Every request, the ping's and dockerode's, came with that certificate.
    expect(clients.length).toBeGreaterThanOrEqual(4);
    expect(new Set(clients)).toEqual(new Set(['croot client']));
  });

  it('ends with "closed" when closed while it reads the TLS files, having reached no daemon', async () => {
    clients.length = 0;
    const source = tlsSource(certPath('ca', 'client'));
    const connecting = source.connect();
    source.close();
    expect(await failureOf(connecting)).toBe('closed');
    expect(clients).toEqual([]);
  });

  it('closes its connections to the daemon at close, the ones kept for the next request too', async () => {
    const source = tlsSource(certPath('ca', 'client'));
    await source.connect();
    expect(connections.size).toBeGreaterThan(0);
    source.close();
    expect(await eventually(async () => (connections.size === 0 ? true : undefined))).toBe(true);
  });

  it('says a refused handshake is TLS\'s doing, naming the certificate it sent', async () => {
    const certs = certPath('ca', 'rogue');
    expect(await failureOf(tlsSource(certs).connect())).toMatch(new RegExp(`^TLS with 127\\.0\\.0\\.1:${port} failed: [A-Z0-9_]+; sent client certificate ${join(certs, 'cert.pem')}$`));
  });

  it('names the client files that were absent when it sent none', async () => {
    const certs = certPath('ca');
    expect(await failureOf(tlsSource(certs).connect())).toMatch(
      new RegExp(`^TLS with 127\\.0\\.0\\.1:${port} failed: [A-Z0-9_]+; sent no client certificate \\(${join(certs, 'cert.pem')}, ${join(certs, 'key.pem')} absent\\)$`),
    );
  });

  it('does not blame TLS for an HTTP status, which needs a handshake that went through', async () => {
    pingStatus = 503;
    try {
      expect(await failureOf(tlsSource(certPath('ca', 'client')).connect())).toBe('HTTP 503 to /_ping');
    } finally {
      pingStatus = 200;
    }
  });

  it('does not blame TLS when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const free = (closed.address() as AddressInfo).port;
    await new Promise<void>((res) => closed.close(() => res()));
    expect(await failureOf(tlsSource(certPath('ca', 'client'), free).connect())).toBe(`connect ECONNREFUSED 127.0.0.1:${free}`);
  });
});

describe('describeDockerError', () => {
  it('gives the errno code, "timed out" or "closed" for an abort, or the HTTP status', () => {
    expect(describeDockerError(Object.assign(new Error('connect ENOENT /x'), { code: 'ENOENT' }))).toBe('ENOENT');
    expect(describeDockerError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).toBe('timed out');
    const closing = new AbortController();
    closing.abort();
    expect(describeDockerError(Object.assign(new Error('aborted'), { name: 'AbortError' }), closing.signal)).toBe('closed');
    expect(describeDockerError(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }), new AbortController().signal)).toBe('timed out');
    expect(describeDockerError(Object.assign(new Error('no such image'), { statusCode: 404 }))).toBe('HTTP 404: no such image');
    expect(describeDockerError('plain words')).toBe('plain words');
    // A rejection with no value at all (a bare `reject()`) is named, not thrown over.
    expect(describeDockerError(undefined)).toBe('undefined');
    expect(describeDockerError(null)).toBe('null');
  });
});

describeWith('docker', probes.docker, 'DockerApiSource against the real dockerd', () => {
  const created: string[] = [];
  let running: TestContainer;
  let idle: TestContainer;
  const DOCKER_SOCKET = '/var/run/docker.sock';

  beforeAll(() => {
    running = dockerRun(uniqueName(), { hostname: 'api-source-host' }, created);
    idle = dockerRun(uniqueName(), { createOnly: true }, created);
    // By id too: a test renames containers, and one that fails midway leaves the new name.
    created.push(running.id, idle.id);
  });
  afterAll(() => removeDockerContainers(created));

  const byId = (records: readonly ContainerRecord[], id: string) => records.find((r) => r.id === id);

  it('lists and inspects every container, each as docker inspect and the kernel show it', async () => {
    const { source, told } = sourceAt(DOCKER_SOCKET);
    const records = await source.connect();
    const pid = Number(dockerInspect(running.id, '{{.State.Pid}}'));
    const r = byId(records, running.id);
    expect(r).toMatchObject({ engine: 'docker', names: [running.name], running: true, state: 'running', pid, hostname: 'api-source-host', source: 'api' });
    // The cgroup the kernel holds the init process in; Docker's start time of it, within a few seconds of the kernel's.
    expect(r?.cgroupHint).toBe(cgroupTruth(pid));
    expect(Math.abs((r?.pidStartTime ?? 0) - startTimeFromStatFile(`/proc/${pid}/stat`))).toBeLessThan(5 * clockTicksTruth());
    expect(byId(records, idle.id)).toMatchObject({ names: [idle.name], running: false, state: 'created' });
    expect(byId(records, idle.id)?.pid).toBeUndefined();
    expect(source.containers()).toEqual(records);
    expect(source.size).toBe(records.length);
    const progress = source.progress();
    expect(progress).toMatchObject({ answered: true, inspected: progress.listed, retrying: 0 });
    expect(progress.listed).toBeGreaterThanOrEqual(2);
    // The first load is told through its result and progress only.
    expect(told.upserts).toEqual([]);
    expect(told.progress.at(-1)).toEqual(progress);
  });

  it('follows the event stream once told to: a container created, renamed and removed', async () => {
    const { source, told } = sourceAt(DOCKER_SOCKET);
    await source.connect();
    source.startFollowing();
    const late = dockerRun(uniqueName(), { createOnly: true }, created);
    created.push(late.id);
    expect(await eventually(async () => told.upserts.find((r) => r.id === late.id))).toMatchObject({ names: [late.name], state: 'created', running: false });
    const renamed = uniqueName();
    execFileSync('docker', ['rename', late.id, renamed]);
    await eventually(async () => told.upserts.find((r) => r.id === late.id && r.names[0] === renamed));
    expect(byId(source.containers(), late.id)?.names).toEqual([renamed]);
    removeDockerContainers([late.id]);
    await eventually(async () => (told.removes.includes(late.id) ? true : undefined));
    expect(byId(source.containers(), late.id)).toBeUndefined();
    expect(told.lost).toEqual([]);
  });

  it('tells the engine once the event stream is cut after the first load', async () => {
    const relay = new DaemonRelay(join(scratch, 'cut.sock'));
    await relay.open();
    try {
      const { source, told } = sourceAt(relay.path);
      await source.connect();
      source.startFollowing();
      await relay.cut();
      expect(await eventually(async () => told.lost[0])).toMatch(/^event stream (ended|closed|failed)/);
      expect(told.lost).toHaveLength(1);
    } finally {
      await relay.cut();
    }
  });

  it('finds at its re-check what an event stream that says nothing missed: a container created, started, renamed, removed', async () => {
    const relay = new DaemonRelay(join(scratch, 'mute.sock'), true);
    await relay.open();
    try {
      const { source, told } = sourceAt(relay.path);
      const first = await source.connect();
      source.startFollowing();
      const late = dockerRun(uniqueName(), { createOnly: true }, created);
      const renamed = uniqueName();
      execFileSync('docker', ['rename', idle.id, renamed]);
      const mine = () => told.upserts.map((r) => r.id).filter((id) => [late.id, idle.id, running.id].includes(id)).sort();
      await source.recheck();
      // Only what changed is inspected again (other tests' containers may come and go meanwhile).
      expect(mine()).toEqual([late.id, idle.id].sort());
      expect(byId(source.containers(), idle.id)?.names).toEqual([renamed]);
      execFileSync('docker', ['rename', idle.id, idle.name]);
      told.upserts.length = 0;
      execFileSync('docker', ['start', late.id]);
      removeDockerContainers([running.id]);
      await source.recheck();
      expect(mine()).toEqual([idle.id, late.id].sort());
      expect(byId(source.containers(), late.id)).toMatchObject({ running: true, pid: Number(dockerInspect(late.id, '{{.State.Pid}}')) });
      expect(byId(first, running.id)).toBeDefined();
      expect(told.removes.filter((id) => [late.id, idle.id, running.id].includes(id))).toEqual([running.id]);
      expect(byId(source.containers(), running.id)).toBeUndefined();
    } finally {
      await relay.cut();
    }
  });
});
