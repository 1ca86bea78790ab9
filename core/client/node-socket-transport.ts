/**
 * A RootTransport in plain Node: `net.createConnection` on the unix socket,
 * replies framed by their `length` field. It cannot receive file descriptors
 * (`fds` is always empty), so pipe IPC needs the native transport.
 */
import { createConnection, type Socket } from 'node:net';
import { CrootError } from '../errors/croot-error.js';
import { systemError } from '../errors/system-error.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import type { ReceivedPdu, RootTransport, RootTransportFactory } from './root-transport.js';

interface Waiter {
  resolve(pdu: ReceivedPdu): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class NodeSocketTransport implements RootTransport {
  readonly passesFds = false;
  private readonly decoder = new FrameDecoder();
  private readonly frames: Buffer[] = [];
  private waiter: Waiter | undefined;
  private ended = false;
  private failure: Error | undefined;
  private closed = false;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.failure = systemError(err, 'root socket', { connect: true });
      this.wake();
    });
  }

  /** Connects to `path`; rejects after `timeoutMs` if the server does not accept. */
  static connect(path: string, timeoutMs: number): Promise<NodeSocketTransport> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path, allowHalfOpen: false });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CrootError('ERR_TIMEOUT', `connecting to ${path} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        reject(systemError(err, `cannot connect to ${path}`, { connect: true }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new NodeSocketTransport(socket));
      });
    });
  }

  send(pdu: Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) {
      return Promise.reject(new CrootError('ERR_NOT_CONNECTED', 'root socket is closed'));
    }
    return new Promise((resolve, reject) => {
      this.socket.write(pdu, (err) => (err ? reject(systemError(err, 'send', { connect: true })) : resolve()));
    });
  }

  receive(timeoutMs: number): Promise<ReceivedPdu> {
    if (this.waiter !== undefined) {
      return Promise.reject(new CrootError('ERR_PROTOCOL', 'a receive is already pending on this connection'));
    }
    if (this.closed) return Promise.reject(new CrootError('ERR_NOT_CONNECTED', 'root socket is closed'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (Number.isFinite(timeoutMs) && timeoutMs >= 0) {
        waiter.timer = setTimeout(() => {
          if (this.waiter === waiter) this.waiter = undefined;
          reject(new CrootError('ERR_TIMEOUT', `no reply within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiter = waiter;
      this.wake();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.reject(new CrootError('ERR_NOT_CONNECTED', 'root socket closed while waiting for a reply'));
    }
  }

  private onData(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) {
      if (frame.kind === 'pdu') {
        this.frames.push(frame.bytes);
      } else {
        this.failure = new CrootError('ERR_PROTOCOL', `unframeable reply from the server: ${frame.reason}`);
        this.socket.destroy();
      }
    }
    this.wake();
  }

  /** Hands the next frame (or the end, or an error) to the waiting receive. */
  private wake(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    const frame = this.frames.shift();
    if (frame !== undefined) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve({ data: frame, fds: [] });
    } else if (this.failure !== undefined) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.reject(this.failure);
    } else if (this.ended) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      // Like recv() returning 0: the peer closed the connection.
      waiter.resolve({ data: Buffer.alloc(0), fds: [] });
    }
  }
}

/** The pure-Node transport factory (no fd passing). */
export const nodeSocketTransport: RootTransportFactory = (path, timeoutMs) => NodeSocketTransport.connect(path, timeoutMs);
