/**
 * crootd's server: PCP's root-socket protocol on a unix socket. Checks each
 * client's uid (SO_PEERCRED) and the connection limits at accept, sends
 * INFO, and hands the connection to a RootConnection, which frames and
 * answers its requests in order through the RootRequestHandler.
 *
 * The socket is bound under a temporary name in its directory and hard-linked
 * to its path: libuv unlinks the name it bound when the server closes, and
 * that name is gone by then, so closing never removes a socket another server
 * has put at the path since. close() removes the path itself only while it
 * still names the inode bound here.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, mkdirSync, readlinkSync, statSync, unlinkSync, type BigIntStats } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CONNECTION_LIMIT_DEFAULTS, CrootConfig, type ConnectionLimitOptions } from '../config/croot-config.js';
import { admit } from './connection-limits.js';
import { CrootError, Errno } from '../errors/croot-error.js';
import { ConnectionSocketFactory, PeerCredentialReader, type ConnectionSocket, type PeerCredentials } from '../host/host-services.js';
import { Logger, SilentLogger } from '../logging/logger.js';
import type { Frame } from '../protocol/frame-decoder.js';
import { ALL_FEATURES, encodeInfo } from '../protocol/root-pdus.js';
import { RootConnection } from './root-connection.js';
import { RootRequestHandler, type Reply } from './root-request-handler.js';

/** The longest path a unix socket address holds (sockaddr_un's sun_path, 108 bytes with its NUL). */
const SUN_PATH_MAX = 107;

export interface RootServerOptions extends ConnectionLimitOptions {
  /** Requests read ahead per connection before reading pauses (default 64). */
  readonly maxQueuedRequests?: number;
}

export const RootServerOptions = Symbol.for('croot/RootServerOptions');

type Limits = Required<ConnectionLimitOptions> & { readonly maxQueuedRequests: number };

/** What a running server has done, for `croot status`. */
export interface RootServerStats {
  readonly connections: number;
  readonly accepted: number;
  readonly refused: number;
  readonly evicted: number;
}

@injectable()
export class RootServer {
  private server: Server | undefined;
  private socketPath: string | undefined;
  /** The socket's inode as bound, to tell it from a file another process has put at the path since. */
  private bound: BigIntStats | undefined;
  private readonly connections = new Set<RootConnection>();
  /** Uids that may connect: the config's, until setAllowedUids. */
  private allowed: ReadonlySet<number>;
  private readonly limits: Limits;
  private readonly logger: Logger;
  private warnedNoCreds = false;
  private readonly info = encodeInfo(ALL_FEATURES);
  private readonly counters = { accepted: 0, refused: 0, evicted: 0 };

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(RootRequestHandler) private readonly handler: RootRequestHandler,
    @inject(Logger) @optional() logger: Logger | undefined,
    @inject(PeerCredentialReader) @optional() private readonly credentials: PeerCredentialReader | undefined,
    @inject(RootServerOptions) @optional() options: RootServerOptions | undefined,
    @inject(ConnectionSocketFactory) @optional() private readonly sockets: ConnectionSocketFactory | undefined,
  ) {
    this.logger = logger ?? new SilentLogger();
    this.limits = { ...CONNECTION_LIMIT_DEFAULTS, maxQueuedRequests: 64, ...(config.connectionLimits ?? {}), ...(options ?? {}) };
    this.allowed = new Set(config.allowUids);
    handler.serverFacts = () => ({
      socket: this.socketPath,
      allowUids: [...this.allowed],
      peers: [...this.connections].map((c) => c.peer),
    });
  }

  /** Uids that may connect now. */
  get allowedUids(): readonly number[] {
    return [...this.allowed];
  }

  /**
   * Replaces the uids that may connect (crootd's SIGHUP). Connections of a
   * uid no longer allowed are closed at once; returns how many.
   */
  setAllowedUids(uids: readonly number[]): number {
    this.allowed = new Set(uids);
    let closed = 0;
    for (const connection of this.connections) {
      if (this.allowed.has(connection.peer.uid)) continue;
      this.logger.warn('connection closed: uid no longer allowed', { uid: connection.peer.uid, pid: connection.peer.pid });
      connection.socket.destroy();
      closed += 1;
    }
    return closed;
  }

  /** The path being served: set by listen(), undefined again once close() has begun. */
  get path(): string | undefined {
    return this.socketPath;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** The connection limits in force. */
  get connectionLimits(): Required<ConnectionLimitOptions> {
    const { maxConnections, maxConnectionsPerUid, reservedForRoot, idleTimeoutMs } = this.limits;
    return { maxConnections, maxConnectionsPerUid, reservedForRoot, idleTimeoutMs };
  }

  stats(): RootServerStats {
    return { connections: this.connections.size, ...this.counters };
  }

  /**
   * Binds the socket (directory created 0700 when missing; a stale socket
   * replaced, a live one or any file that appears meanwhile refused). The
   * socket has its mode before it appears at `path`.
   */
  async listen(path: string = this.config.socketPath): Promise<string> {
    if (this.server !== undefined) throw new CrootError('ERR_CONFIG', `already listening on ${this.socketPath}`);
    // libuv cuts a longer path to fit sun_path and binds that: refuse it instead of listening somewhere else.
    const bytes = Buffer.byteLength(path);
    if (bytes > SUN_PATH_MAX) {
      throw new CrootError('ERR_CONFIG', `socket path ${path} is ${bytes} bytes, more than the ${SUN_PATH_MAX} a unix socket address holds`, {
        status: -Errno.ENAMETOOLONG,
      });
    }
    prepareDirectory(dirname(path), this.logger);
    await removeStaleSocket(path);
    // Half-open: a client that shuts down its writing side still gets every answer.
    // Paused: accept() adopts the fd before Node reads it, or resumes Node's socket.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    const temporary = temporaryPath(path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(temporary, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error('server error', { error: err.message }));
    try {
      this.bound = publish(temporary, path, this.config.socketMode);
    } catch (err) {
      // libuv unlinks the temporary name.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
    this.server = server;
    this.socketPath = path;
    this.logger.info('listening', {
      socket: path,
      mode: this.config.socketMode.toString(8),
      allowUids: [...this.allowed].join(','),
    });
    return path;
  }

  /** Removes the socket if its path still names it, stops accepting, closes every connection. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    const path = this.socketPath as string;
    this.server = undefined;
    this.socketPath = undefined;
    // Before the server closes: while it listens, a server starting meanwhile finds it live and stays off the path.
    removeIfSame(path, this.bound as BigIntStats);
    this.bound = undefined;
    for (const connection of this.connections) connection.socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.logger.info('closed', { socket: path });
  }

  private accept(socket: Socket): void {
    const fd = socketFd(socket);
    if (this.credentials === undefined || fd === undefined) {
      if (!this.warnedNoCreds) {
        this.logger.error('cannot read peer credentials (native module not loaded); refusing connections');
        this.warnedNoCreds = true;
      }
      socket.destroy();
      return;
    }
    let peer: PeerCredentials;
    try {
      peer = this.credentials.peerCredentials(fd);
    } catch (err) {
      this.logger.warn('peer credentials unavailable; connection refused', { error: (err as Error).message });
      socket.destroy();
      return;
    }
    if (!this.allowed.has(peer.uid)) {
      this.counters.refused++;
      this.logger.warn('connection refused: uid not allowed', { uid: peer.uid, pid: peer.pid });
      socket.destroy();
      return;
    }
    const pmcd = isPmcd(peer.pid);
    const admission = admit({ uid: peer.uid, pmcd }, this.connections, this.limits);
    if (!admission.admit) {
      this.counters.refused++;
      this.logger.warn('connection refused: limit reached', { uid: peer.uid, pid: peer.pid, reason: admission.reason });
      socket.destroy();
      return;
    }
    let carrier: ConnectionSocket = socket;
    if (this.sockets !== undefined) {
      try {
        carrier = this.sockets.adopt(fd);
      } catch (err) {
        this.counters.refused++;
        this.logger.warn('connection refused: cannot take it over', { uid: peer.uid, pid: peer.pid, error: (err as Error).message });
        socket.destroy();
        return;
      }
      // The adopted duplicate carries the connection from here; Node's socket goes.
      socket.destroy();
    } else {
      socket.resume();
    }
    // Only a newcomer that is taken over displaces anyone.
    if (admission.evict !== undefined) {
      this.counters.evicted++;
      this.logger.warn('idle connection dropped for a new one', { uid: admission.evict.peer.uid, pid: admission.evict.peer.pid });
      admission.evict.socket.destroy();
    }
    this.counters.accepted++;
    const connection = new RootConnection(carrier, peer, pmcd, this.host, this.limits.maxQueuedRequests, this.limits.idleTimeoutMs);
    this.connections.add(connection);
    this.logger.debug('client connected', { pid: peer.pid, uid: peer.uid, pmcd });
    connection.start(this.info);
  }

  private readonly host = {
    answer: (frame: Frame, peer: PeerCredentials): Reply | Promise<Reply> => this.handler.answer(frame, peer),
    sendWithFds: (socket: ConnectionSocket, reply: Reply): void => {
      const fd = socketFd(socket);
      const sender = this.handler.fdSender;
      if (fd === undefined || sender === undefined) throw new CrootError('ERR_NOT_SUPPORTED', 'cannot pass fds on this socket');
      sender.sendWithFds(fd, reply.bytes, reply.fds ?? []);
    },
    closed: (connection: RootConnection): void => {
      this.connections.delete(connection);
      this.logger.debug('client gone', { pid: connection.peer.pid });
    },
  };
}

/** pmcd itself: crootd's parent (pmcd starts crootd under `--pmda`), or a process whose executable is pmcd. */
function isPmcd(pid: number): boolean {
  if (pid <= 0) return false;
  if (pid === process.ppid) return true;
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`)) === 'pmcd';
  } catch {
    return false;
  }
}

/** The fd of an adopted socket, or of Node's socket (its handle's). */
function socketFd(socket: ConnectionSocket): number | undefined {
  const own = (socket as { fd?: unknown }).fd;
  if (typeof own === 'number') return own >= 0 ? own : undefined;
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
}

/**
 * A name next to `path` for binding, random and no longer than the room
 * sun_path leaves in that directory (never less than `path`'s own name takes).
 */
function temporaryPath(path: string): string {
  const dir = dirname(path);
  const room = SUN_PATH_MAX - Buffer.byteLength(dir) - 1;
  const name = `.${randomBytes(8).toString('hex')}`;
  return join(dir, name.slice(-room));
}

/**
 * Gives the socket bound at `temporary` its mode, then its name `path`
 * through link(2), which (unlike rename(2)) fails when anything has taken
 * `path` since the stale-socket check. Returns the socket's inode.
 */
function publish(temporary: string, path: string, mode: number): BigIntStats {
  chmodSync(temporary, mode);
  const bound = lstatSync(temporary, { bigint: true });
  try {
    linkSync(temporary, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    throw new CrootError('ERR_CONFIG', `${path} appeared while croot was binding it (another server starting?)`, { status: -Errno.EBUSY });
  }
  unlinkSync(temporary);
  return bound;
}

/** Unlinks `path` only while it names the inode `bound`. */
function removeIfSame(path: string, bound: BigIntStats): void {
  try {
    const now = lstatSync(path, { bigint: true });
    if (now.dev === bound.dev && now.ino === bound.ino) unlinkSync(path);
  } catch {
    // already gone
  }
}

function prepareDirectory(dir: string, logger: Logger): void {
  try {
    const st = statSync(dir);
    if ((st.mode & 0o077) !== 0 && (st.mode & 0o1000) === 0) {
      logger.warn('socket directory is reachable by others; PCP keeps it 0700', { dir, mode: (st.mode & 0o7777).toString(8) });
    }
  } catch {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
}

/**
 * Throws when another server listens on `path`, or `path` is not a socket;
 * removes a stale socket. crootd calls it before starting its engines.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new CrootError('ERR_CONFIG', `${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new CrootError('ERR_CONFIG', `another server is already listening on ${path}`, { status: -Errno.EBUSY });
  unlinkSync(path);
}
