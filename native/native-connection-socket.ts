/**
 * A ConnectionSocket on the addon's StreamSocket: crootd's server adopts
 * each accepted connection into one, so a request costs libuv's epoll, one
 * read(2), one call into JavaScript and one send(2), without Node's stream
 * machinery between them (docs/native.md, "Connections"). It behaves as
 * Node's net.Socket does with `allowHalfOpen` where RootConnection relies on
 * it: 'end' when the peer shuts down its side, writing goes on until end(),
 * the socket closes once both sides have ended, 'close' comes
 * asynchronously after destroy(), and the idle timer counts reads and writes.
 * Given crootd's NativeReplyCache, it answers by itself, while its connection
 * is idle(), the requests the cache holds (docs/native.md, "Replies answered
 * again"); those answers count as traffic too.
 */
import { injectable, inject, optional } from 'inversify';
import type { ConnectionSocket, ConnectionSocketFactory } from '../core/host/host-services.js';
import { CrootNative, StreamSocketEvent, type NativeError, type ReplyCache, type StreamSocket } from './croot-native.js';
import { NativeReplyCache } from './native-reply-cache.js';

/** performance.now() is uv_hrtime() since the time origin, as the addon's lastAnswered: the difference, in ms. */
const HRTIME_AT_ORIGIN_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

type Listener = (value?: unknown) => void;
type EventName = 'data' | 'end' | 'drain' | 'close' | 'error';

export class NativeConnectionSocket implements ConnectionSocket {
  private readonly socket: StreamSocket;
  private readonly listeners: Record<EventName, Listener[]> = { data: [], end: [], drain: [], close: [], error: [] };
  private closed = false;
  /** end() was called: nothing more is written. */
  private ending = false;
  /** The peer shut down its side. */
  private peerEnded = false;
  private paused = false;
  /** Bytes are queued in the addon (a write was not taken whole); cleared by its DRAIN. */
  private needDrain = false;
  /** The idle timer: one per socket, re-armed lazily from `last`, never per request. */
  private idleMs = 0;
  private onIdle: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  /** Inside the addon's callback, whose return value says idle (no extra call into the addon). */
  private inEvent = false;
  private idleMark = false;

  constructor(native: CrootNative, fd: number, replies?: ReplyCache) {
    this.socket = new native.StreamSocket(fd, (kind, value) => this.event(kind, value), replies);
  }

  get lastAnsweredAlone(): number {
    const at = this.socket.lastAnswered;
    return at === 0 ? 0 : at - HRTIME_AT_ORIGIN_MS;
  }

  idle(): void {
    if (this.closed) return;
    if (this.inEvent) this.idleMark = true;
    else this.socket.idle();
  }

  get fd(): number {
    return this.socket.fd;
  }

  get destroyed(): boolean {
    return this.closed;
  }

  get writable(): boolean {
    return !this.closed && !this.ending;
  }

  get writableLength(): number {
    return this.closed ? 0 : this.socket.queued;
  }

  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  isPaused(): boolean {
    return this.paused;
  }

  on(event: EventName, listener: (value: never) => void): this {
    this.listeners[event].push(listener as Listener);
    return this;
  }

  write(bytes: Buffer): boolean {
    if (!this.writable) return false;
    const queued = this.socket.write(bytes);
    if (queued < 0) {
      this.destroy();
      return false;
    }
    this.touch();
    if (queued > 0) this.needDrain = true;
    return queued === 0;
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.socket.end();
    if (this.peerEnded && !this.needDrain) {
      this.destroy();
      return;
    }
    // The peer's end must be seen to close: read on, even if paused (what arrives now is dropped).
    // Node's socket does the same: pause() there stops the flow, not the reading of end of file.
    if (this.paused) this.socket.resume();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    process.nextTick(() => this.emit('close'));
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    if (!this.closed && !this.ending) this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.closed) this.socket.resume();
  }

  setTimeout(ms: number, onIdle: () => void): void {
    this.idleMs = ms;
    this.onIdle = onIdle;
    this.touch();
  }

  /** The addon's callback: dispatches, then tells the addon whether the connection was left idle. */
  private event(kind: StreamSocketEvent, value: Buffer | NativeError | undefined): boolean {
    this.inEvent = true;
    this.idleMark = false;
    try {
      this.dispatch(kind, value);
    } finally {
      this.inEvent = false;
    }
    return this.idleMark && !this.closed;
  }

  private dispatch(kind: StreamSocketEvent, value: Buffer | NativeError | undefined): void {
    if (this.closed) return;
    switch (kind) {
      case StreamSocketEvent.DATA:
        this.touch();
        // After end() nothing sent is answered any more: read only to see the peer's end.
        if (!this.ending) this.emit('data', value);
        return;
      case StreamSocketEvent.END:
        this.peerEnded = true;
        this.emit('end');
        if (this.ending && !this.needDrain) this.destroy();
        return;
      case StreamSocketEvent.DRAIN:
        this.needDrain = false;
        if (this.ending && this.peerEnded) {
          this.destroy();
          return;
        }
        this.emit('drain');
        return;
      default:
        this.emit('error', value);
        this.destroy();
    }
  }

  private emit(event: EventName, value?: unknown): void {
    const listeners = this.listeners[event];
    for (let i = 0; i < listeners.length; i++) (listeners[i] as Listener)(value);
  }

  /** Traffic: the idle timer is armed if it is not (it checks `last` when it fires). */
  private touch(): void {
    this.last = performance.now();
    if (this.timer === undefined && this.onIdle !== undefined && !this.closed) this.arm(this.idleMs);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.expired(), ms);
    this.timer.unref();
  }

  private expired(): void {
    this.timer = undefined;
    if (this.closed) return;
    const quiet = performance.now() - Math.max(this.last, this.lastAnsweredAlone);
    if (quiet < this.idleMs) {
      this.arm(this.idleMs - quiet);
      return;
    }
    // Fires once per quiet spell; the next traffic arms it again.
    this.onIdle?.();
  }
}

/** Adopts accepted connections into NativeConnectionSockets, each answering from crootd's NativeReplyCache when one is bound. */
@injectable()
export class NativeConnectionSocketFactory implements ConnectionSocketFactory {
  constructor(
    @inject(CrootNative) private readonly native: CrootNative,
    @inject(NativeReplyCache) @optional() private readonly replies?: NativeReplyCache,
  ) {}

  adopt(fd: number): NativeConnectionSocket {
    return new NativeConnectionSocket(this.native, fd, this.replies?.table);
  }
}
