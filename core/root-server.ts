/**
 * crootd's server: PCP's root-socket protocol on a unix socket. Sends INFO
 * on accept, answers HOSTNAME, PROCESSID and CGROUPNAME (and STARTPMDA /
 * STOPPMDA when a ProcessService is bound), frames by the length field, and
 * answers every request, in order, with one write.
 */
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from './config.js';
import { CrootError, Errno, statusOf } from './errors.js';
import { closeFds } from './fds.js';
import { FdSender, PeerCredentialReader, type PeerCredentials } from './host-services.js';
import { Logger, SilentLogger } from './logger.js';
import { ProcessService } from './process-service.js';
import {
  ALL_FEATURES,
  CONTAINER_HEADER_SIZE,
  FrameDecoder,
  IpcType,
  MAXPATHLEN,
  PduType,
  ROOT_PDU_VERSION,
  decodeContainer,
  decodeStart,
  decodeStop,
  encodeContainer,
  encodeErrorHeader,
  encodeInfo,
  encodeStart,
  encodeStop,
  getInt,
  replyTypeOf,
  type Frame,
} from './protocol.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from './resolvers.js';
import { ExtensionPduType } from './croot-extension.js';
import { ExtensionHandler } from './extension-handler.js';

export interface RootServerOptions {
  /** How long one request may take before it is answered with -ETIMEDOUT. */
  readonly requestTimeoutMs?: number;
  /** Requests read ahead per connection before reading pauses. */
  readonly maxQueuedRequests?: number;
  /** Connections served at once; more are closed at accept. */
  readonly maxConnections?: number;
}

const DEFAULTS: Required<RootServerOptions> = { requestTimeoutMs: 10000, maxQueuedRequests: 64, maxConnections: 1024 };

export const RootServerOptions = Symbol.for('croot/RootServerOptions');

interface Reply {
  readonly bytes: Buffer;
  /** fds to pass with SCM_RIGHTS, closed after sending. */
  readonly fds?: readonly number[];
  /** Close the connection after this reply (stream cannot be re-synchronised). */
  readonly close?: boolean;
}

@injectable()
export class RootServer {
  private server: Server | undefined;
  private socketPath: string | undefined;
  private socketIno: number | undefined;
  /** Live connections and who is at the other end. */
  private readonly sockets = new Map<Socket, PeerCredentials>();
  /** Uids that may connect: the config's, until setAllowedUids. */
  private allowed: ReadonlySet<number>;
  private readonly options: Required<RootServerOptions>;
  private readonly logger: Logger;
  private warnedNoCreds = false;

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(ContainerHostnameResolver) private readonly hostnames: ContainerHostnameResolver,
    @inject(ContainerProcessIdResolver) private readonly pids: ContainerProcessIdResolver,
    @inject(ContainerCGroupResolver) private readonly cgroups: ContainerCGroupResolver,
    @inject(Logger) @optional() logger: Logger | undefined,
    @inject(PeerCredentialReader) @optional() private readonly credentials: PeerCredentialReader | undefined,
    @inject(FdSender) @optional() private readonly fdSender: FdSender | undefined,
    @inject(ProcessService) @optional() private readonly processes: ProcessService | undefined,
    @inject(RootServerOptions) @optional() options: RootServerOptions | undefined,
    @inject(ExtensionHandler) @optional() private readonly extension: ExtensionHandler | undefined,
  ) {
    this.logger = logger ?? new SilentLogger();
    this.options = { ...DEFAULTS, ...(options ?? {}) };
    this.allowed = new Set(config.allowUids);
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
    for (const [socket, peer] of this.sockets) {
      if (this.allowed.has(peer.uid)) continue;
      this.logger.warn('connection closed: uid no longer allowed', { uid: peer.uid, pid: peer.pid });
      socket.destroy();
      closed += 1;
    }
    return closed;
  }

  /** The path being served, once listening. */
  get path(): string | undefined {
    return this.socketPath;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Binds the socket (directory created 0700 when missing; a stale socket replaced, a live one refused). */
  async listen(path: string = this.config.socketPath): Promise<string> {
    if (this.server !== undefined) throw new CrootError('ERR_CONFIG', `already listening on ${this.socketPath}`);
    prepareDirectory(dirname(path), this.logger);
    await removeStaleSocket(path);
    const server = createServer({ allowHalfOpen: false }, (socket) => this.accept(socket));
    server.maxConnections = this.options.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error('server error', { error: err.message }));
    chmodSync(path, this.config.socketMode);
    this.server = server;
    this.socketPath = path;
    this.socketIno = statSync(path).ino;
    this.logger.info('listening', {
      socket: path,
      mode: this.config.socketMode.toString(8),
      allowUids: [...this.allowed].join(','),
    });
    return path;
  }

  /** Stops accepting, closes every connection, removes the socket if it is still ours. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const socket of this.sockets.keys()) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const path = this.socketPath;
    if (path !== undefined) {
      try {
        if (statSync(path).ino === this.socketIno) unlinkSync(path);
      } catch {
        // already gone
      }
    }
    this.logger.info('closed', { socket: path });
  }

  private accept(socket: Socket): void {
    const fd = socketFd(socket);
    let peer: PeerCredentials | undefined;
    if (this.credentials === undefined || fd === undefined) {
      if (!this.warnedNoCreds) {
        this.logger.error('cannot read peer credentials (native module not loaded); refusing connections');
        this.warnedNoCreds = true;
      }
      socket.destroy();
      return;
    }
    try {
      peer = this.credentials.peerCredentials(fd);
    } catch (err) {
      this.logger.warn('peer credentials unavailable; connection refused', { error: (err as Error).message });
      socket.destroy();
      return;
    }
    if (!this.allowed.has(peer.uid)) {
      this.logger.warn('connection refused: uid not allowed', { uid: peer.uid, pid: peer.pid });
      socket.destroy();
      return;
    }
    this.sockets.set(socket, peer);
    this.logger.debug('client connected', { pid: peer.pid, uid: peer.uid });
    new Connection(socket, peer, this, this.options).start();
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.logger.debug('client gone', { pid: peer?.pid });
    });
  }

  /**
   * Answers one framed request, timed by `deadline` (the connection's; it
   * times one request at a time). Never throws: every failure becomes an
   * error reply.
   */
  async answer(frame: Frame, peer: PeerCredentials, deadline: RequestDeadline): Promise<Reply | undefined> {
    if (frame.kind === 'broken') {
      this.logger.warn('unframeable request; closing', { pid: peer.pid, reason: frame.reason, type: hex(frame.header.type) });
      return { bytes: errorReply(frame.header.type, -Errno.EINVAL, 0), close: true };
    }
    const h = frame.header;
    this.extension?.countRequest(h.type);
    if (h.version < 1 || h.version > ROOT_PDU_VERSION) {
      return { bytes: errorReply(h.type, -Errno.ENOTSUP, 0) };
    }
    const signal = deadline.start();
    try {
      if (h.type === ExtensionPduType.REQUEST && this.extension !== undefined) {
        const facts = { socket: this.socketPath, allowUids: this.allowedUids, peers: [...this.sockets.values()] };
        return { bytes: await this.extension.answer(frame.bytes, facts, peer, signal) };
      }
      switch (h.type) {
        case PduType.HOSTNAME_REQ:
        case PduType.PROCESSID_REQ:
        case PduType.CGROUPNAME_REQ:
          return { bytes: await this.answerContainer(frame.bytes, signal) };
        case PduType.STARTPMDA_REQ:
          return await this.answerStart(frame.bytes, peer);
        case PduType.STOPPMDA_REQ:
          return { bytes: await this.answerStop(frame.bytes, peer) };
        default:
          this.logger.warn('unknown request type', { pid: peer.pid, type: hex(h.type) });
          return { bytes: encodeErrorHeader(h.type, -Errno.ENOTSUP) };
      }
    } catch (err) {
      this.extension?.countFailure();
      const status = signal.aborted && !(err instanceof CrootError) ? -Errno.ETIMEDOUT : statusOf(err);
      this.logger[status === -12399 ? 'debug' : 'warn']('request failed', {
        pid: peer.pid,
        type: hex(h.type),
        status,
        error: err instanceof Error ? err.message : String(err),
      });
      return { bytes: errorReply(h.type, status, echoPid(frame.bytes)) };
    } finally {
      deadline.finish();
    }
  }

  private async answerContainer(bytes: Buffer, signal: AbortSignal): Promise<Buffer> {
    const req = decodeContainer(bytes);
    const replyType = req.type + 1;
    if (req.name.length === 0) {
      if (req.pid <= 0) throw new CrootError('ERR_INVALID_NAME', 'neither a container name nor a pid');
      // namelen 0 with a pid: answer for that process directly.
      switch (req.type) {
        case PduType.HOSTNAME_REQ:
          return encodeContainer(replyType, await this.hostnames.resolveHostnameOfProcess(req.pid, signal), { pid: req.pid });
        case PduType.CGROUPNAME_REQ:
          return encodeContainer(replyType, await this.cgroups.resolveCGroupNameOfProcess(req.pid), { pid: req.pid });
        default:
          await this.cgroups.resolveCGroupNameOfProcess(req.pid); // checks that it exists
          return encodeContainer(replyType, '', { pid: req.pid });
      }
    }
    switch (req.type) {
      case PduType.HOSTNAME_REQ: {
        const answer = await this.hostnames.resolveHostname(req.name, signal);
        return encodeContainer(replyType, truncate(answer.value), { pid: answer.pid });
      }
      case PduType.CGROUPNAME_REQ: {
        const answer = await this.cgroups.resolveCGroupName(req.name, signal);
        return encodeContainer(replyType, truncate(answer.value), { pid: answer.pid });
      }
      default:
        return encodeContainer(replyType, '', { pid: await this.pids.resolveProcessId(req.name, signal) });
    }
  }

  private async answerStart(bytes: Buffer, peer: PeerCredentials): Promise<Reply> {
    const req = decodeStart(bytes);
    if (this.processes === undefined) {
      throw new CrootError('ERR_NOT_SUPPORTED', 'process services are not enabled in this server');
    }
    if (req.ipctype !== IpcType.PIPE && req.ipctype !== IpcType.SOCKET) {
      throw new CrootError('ERR_PROTOCOL', `unknown ipctype ${req.ipctype}`, { status: -Errno.EINVAL });
    }
    if (req.namelen < 1 || req.argslen < 1) {
      throw new CrootError('ERR_PROTOCOL', 'STARTPMDA needs a label and a command line', { status: -Errno.EINVAL });
    }
    if (req.ipctype === IpcType.PIPE && this.fdSender === undefined) {
      throw new CrootError('ERR_NOT_SUPPORTED', 'pipe IPC needs fd passing (native module not loaded)');
    }
    const started = await this.processes.start({ ipctype: req.ipctype, label: req.label, args: req.args }, peer);
    this.logger.info('started process', { label: req.label, pid: started.pid, by: peer.pid });
    return {
      bytes: encodeStart(PduType.STARTPMDA, { pid: started.pid, label: req.label }),
      fds: started.fds,
    };
  }

  private async answerStop(bytes: Buffer, peer: PeerCredentials): Promise<Buffer> {
    const req = decodeStop(bytes);
    if (this.processes === undefined) {
      throw new CrootError('ERR_NOT_SUPPORTED', 'process services are not enabled in this server');
    }
    const result = req.force
      ? await this.processes.terminate(req.pid, peer)
      : await this.processes.wait(req.pid, peer);
    return encodeStop(PduType.STOPPMDA, { pid: result.pid, code: result.code, force: req.force });
  }

  /**
   * Sends one reply in one write (sendmsg when fds travel with it). Waits
   * only while the socket's buffer is full, so a client that does not read
   * cannot make the server queue replies without bound.
   */
  async send(socket: Socket, reply: Reply): Promise<void> {
    const fds = reply.fds ?? [];
    try {
      if (fds.length === 0) {
        if (!socket.write(reply.bytes) && !socket.destroyed) await drained(socket);
        return;
      }
      // Everything written before must be out before sendmsg bypasses Node's queue.
      while (socket.writableLength > 0 && !socket.destroyed) await drained(socket);
      const fd = socketFd(socket);
      if (fd === undefined || this.fdSender === undefined) throw new CrootError('ERR_NOT_SUPPORTED', 'cannot pass fds on this socket');
      this.fdSender.sendWithFds(fd, reply.bytes, fds);
    } finally {
      closeFds(fds);
    }
  }
}

/**
 * The time limit of the request a connection is answering. A connection
 * answers one request at a time, so it keeps one AbortSignal for request
 * after request and arms a timer per request; the signal is replaced once it
 * has fired. Creating an AbortSignal per request (`AbortSignal.timeout`)
 * cost ~15 µs plus garbage-collector work for its weak references, more than
 * the lookup it guards (docs/benchmarks.md).
 */
export class RequestDeadline {
  private controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  /** Starts timing a request: the signal aborts with a TimeoutError after `timeoutMs`, unless finish() comes first. */
  start(): AbortSignal {
    if (this.controller.signal.aborted) this.controller = new AbortController();
    const controller = this.controller;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), this.timeoutMs);
    this.timer.unref();
    return controller.signal;
  }

  /** The request is answered: its time limit no longer applies. */
  finish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** One client: reads, frames, answers in order; a slow answer stalls only this client. */
class Connection {
  private readonly decoder = new FrameDecoder();
  private readonly queue: Frame[] = [];
  private readonly deadline: RequestDeadline;
  private busy = false;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly peer: PeerCredentials,
    private readonly server: RootServer,
    private readonly options: Required<RootServerOptions>,
  ) {
    this.deadline = new RequestDeadline(options.requestTimeoutMs);
  }

  start(): void {
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.queue.push(frame);
      if (this.queue.length >= this.options.maxQueuedRequests) socket.pause();
      void this.pump();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.queue.length = 0;
    });
    socket.write(encodeInfo(ALL_FEATURES));
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.closed) {
        const frame = this.queue.shift();
        if (frame === undefined) break;
        const reply = await this.server.answer(frame, this.peer, this.deadline);
        if (this.closed || reply === undefined) {
          closeFds(reply?.fds ?? []);
          continue;
        }
        try {
          await this.server.send(this.socket, reply);
        } catch {
          this.socket.destroy();
          break;
        }
        if (reply.close) {
          this.socket.end();
          this.closed = true;
        }
        if (this.socket.isPaused() && this.queue.length < this.options.maxQueuedRequests / 2) this.socket.resume();
      }
    } finally {
      this.busy = false;
    }
  }
}

/** Resolves once `socket` can take more writes, or is closed. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** An error reply shaped like the request's reply type, so C clients decode it. */
function errorReply(requestType: number, status: number, pid: number): Buffer {
  const replyType = replyTypeOf(requestType);
  switch (replyType) {
    case PduType.HOSTNAME:
    case PduType.PROCESSID:
    case PduType.CGROUPNAME:
      return encodeContainer(replyType, '', { pid, status });
    case PduType.STARTPMDA:
      return encodeStart(replyType, { pid: -1, label: '', status });
    case PduType.STOPPMDA:
      return encodeStop(replyType, { pid, status });
    default:
      return encodeErrorHeader(requestType, status);
  }
}

/** The pid field of a request, when it has one, for echoing in an error reply. */
function echoPid(bytes: Buffer): number {
  if (bytes.length < CONTAINER_HEADER_SIZE) return 0;
  if (getInt(bytes, 0) === PduType.STARTPMDA_REQ) return -1;
  return getInt(bytes, 16);
}

function truncate(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  return bytes.length < MAXPATHLEN ? value : bytes.subarray(0, MAXPATHLEN - 1).toString('utf8');
}

function hex(type: number): string {
  return `0x${(type >>> 0).toString(16)}`;
}

function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
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

