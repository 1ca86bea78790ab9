/**
 * A scripted root-socket server on a real unix socket, for unit tests of
 * croot's clients: sends INFO (or given bytes) on accept, frames requests by
 * their length, records them, and answers each through `reply`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder } from '../../core/protocol/frame-decoder.js';
import { encodeInfo } from '../../core/protocol/root-pdus.js';

export interface FakeRootServerOptions {
  /** Bytes sent on accept; default PCP's INFO. `null`: nothing. */
  readonly greeting?: Buffer | null;
  /** Answer to one request: bytes to write (one write), or undefined for no answer. */
  readonly reply?: (request: Buffer, socket: Socket) => Buffer | undefined | Promise<Buffer | undefined>;
}

export class FakeRootServer {
  readonly requests: Buffer[] = [];
  /** Most requests seen waiting for an answer at once. */
  maxOutstanding = 0;
  private outstanding = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly dir: string,
  ) {}

  static async start(options: FakeRootServerOptions = {}): Promise<FakeRootServer> {
    const dir = mkdtempSync(join(tmpdir(), 'croot-fake-'));
    const path = join(dir, 'root.socket');
    let self: FakeRootServer | undefined;
    const server = createServer((socket) => self?.accept(socket, options));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    self = new FakeRootServer(server, path, dir);
    return self;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private accept(socket: Socket, options: FakeRootServerOptions): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const greeting = options.greeting === undefined ? encodeInfo() : options.greeting;
    if (greeting !== null) socket.write(greeting);
    const decoder = new FrameDecoder();
    let chain: Promise<void> = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.kind !== 'pdu') {
          socket.destroy();
          return;
        }
        this.requests.push(frame.bytes);
        this.outstanding++;
        this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
        chain = chain.then(async () => {
          const answer = await options.reply?.(frame.bytes, socket);
          this.outstanding--;
          if (answer !== undefined && !socket.destroyed) socket.write(answer);
        });
      }
    });
  }
}
