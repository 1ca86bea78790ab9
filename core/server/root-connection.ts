/**
 * One client of the root socket: frames its bytes by PDU length, answers its
 * requests in order (synchronously whenever the answer is at hand), writes
 * each reply with one write, and answers everything it received before the
 * client shut down its side (half-close) before closing its own. A reply
 * with a stream (croot's `events`) turns the connection into that stream:
 * nothing the client sends afterwards is read as a request, and the
 * client's half-close or close ends it.
 */
import { closeFds } from '../host/close-fds.js';
import type { ConnectionSocket, PeerCredentials } from '../host/host-services.js';
import type { LimitedConnection } from './connection-limits.js';
import { FrameDecoder, type Frame } from '../protocol/frame-decoder.js';
import type { ReplyStream, StreamOutlet } from './extension-handler.js';
import type { Reply } from './root-request-handler.js';

/** What a connection needs of its server. */
export interface ConnectionHost {
  answer(frame: Frame, peer: PeerCredentials): Reply | Promise<Reply>;
  /** Sends a reply that carries fds (one sendmsg); throws when it cannot. */
  sendWithFds(socket: ConnectionSocket, reply: Reply): void;
  closed(connection: RootConnection): void;
}

export class RootConnection implements LimitedConnection {
  private readonly decoder = new FrameDecoder();
  private readonly queue: Frame[] = [];
  private head = 0;
  /** A reply is being waited for (or fds wait for the socket to drain). */
  private busy = false;
  /** The client shut down its writing side: answer what is queued, then end. */
  private ended = false;
  private closedFlag = false;
  private answered = 0;
  private last = performance.now();
  /** Ends the stream this connection carries, once it carries one. */
  private stopStream: (() => void) | undefined;
  private streaming = false;

  constructor(
    readonly socket: ConnectionSocket,
    readonly peer: PeerCredentials,
    readonly pmcd: boolean,
    private readonly host: ConnectionHost,
    private readonly maxQueued: number,
    idleTimeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('end', () => {
      this.ended = true;
      this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closedFlag = true;
      this.queue.length = 0;
      this.head = 0;
      const stop = this.stopStream;
      this.stopStream = undefined;
      stop?.();
      host.closed(this);
    });
    // Node's socket timer, re-armed by any traffic; one per connection, none per request.
    // (A socket answers by itself only after this connection has answered once: `answered` covers it.)
    socket.setTimeout(idleTimeoutMs, () => {
      if (this.answered === 0 || this.decoder.pending > 0) socket.destroy();
    });
  }

  get uid(): number {
    return this.peer.uid;
  }

  idle(): boolean {
    return !this.busy && this.head === this.queue.length && this.decoder.pending === 0;
  }

  lastActivity(): number {
    // Requests the socket answered by itself (ReplyCache) are activity too.
    const alone = this.socket.lastAnsweredAlone ?? 0;
    return alone > this.last ? alone : this.last;
  }

  /** Sends INFO (the first PDU a client expects). */
  start(info: Buffer): void {
    this.socket.write(info);
  }

  private received(chunk: Buffer): void {
    this.last = performance.now();
    if (this.streaming) return;
    const frames = this.decoder.push(chunk);
    for (let i = 0; i < frames.length; i++) this.queue.push(frames[i] as Frame);
    this.pump();
  }

  /** Answers queued requests in order until one has to be waited for or the socket is full. */
  private pump(): void {
    const socket = this.socket;
    if (this.streaming) {
      if (this.ended && !this.closedFlag) socket.end();
      return;
    }
    while (!this.busy && !this.closedFlag && this.head < this.queue.length) {
      if (socket.writableNeedDrain) {
        socket.pause();
        return;
      }
      const frame = this.queue[this.head++] as Frame;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      const reply = this.host.answer(frame, this.peer);
      if (reply instanceof Promise) {
        this.busy = true;
        reply.then(
          (r) => {
            this.busy = false;
            this.send(r);
            this.pump();
          },
          () => {
            this.busy = false;
            socket.destroy();
          },
        );
        return;
      }
      this.send(reply);
    }
    if (this.closedFlag) return;
    if (this.head >= this.queue.length && !this.busy) {
      if (this.ended) {
        socket.end();
        return;
      }
      if (socket.isPaused() && !socket.writableNeedDrain) socket.resume();
      // Nothing pending: the socket may answer what its server's ReplyCache holds, until it hands us data again.
      if (this.decoder.pending === 0 && socket.idle !== undefined) socket.idle();
    }
    if (this.queue.length - this.head >= this.maxQueued) socket.pause();
  }

  private send(reply: Reply): void {
    const socket = this.socket;
    if (this.closedFlag || socket.destroyed) {
      closeFds(reply.fds ?? []);
      return;
    }
    if (reply.fds !== undefined && reply.fds.length > 0) {
      if (socket.writableLength > 0) {
        // Everything written before must be out before sendmsg bypasses Node's queue.
        // Rare (STARTPMDA behind unsent replies): look again shortly.
        this.busy = true;
        setTimeout(() => {
          this.busy = false;
          this.send(reply);
          this.pump();
        }, 1);
        return;
      }
      try {
        this.host.sendWithFds(socket, reply);
      } catch {
        socket.destroy();
        return;
      } finally {
        closeFds(reply.fds);
      }
    } else if (reply.bytes.length > 0) {
      socket.write(reply.bytes);
    }
    this.answered++;
    this.last = performance.now();
    if (reply.close) {
      this.closedFlag = true;
      socket.end();
    } else if (reply.stream !== undefined) {
      this.openStream(reply.stream);
    }
  }

  /** From now on the connection carries `stream`: never idle, never answering another request. */
  private openStream(stream: ReplyStream): void {
    const socket = this.socket;
    this.busy = true;
    this.streaming = true;
    this.queue.length = 0;
    this.head = 0;
    // Reading goes on (and is discarded), so the client's half-close and close are seen.
    if (socket.isPaused()) socket.resume();
    const outlet: StreamOutlet = {
      write: (bytes) => {
        if (socket.writable) socket.write(bytes);
      },
      get backlog() {
        return socket.writableLength;
      },
      close: () => socket.destroy(),
    };
    try {
      this.stopStream = stream(outlet);
    } catch {
      socket.destroy();
    }
  }
}
