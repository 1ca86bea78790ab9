/**
 * A root-socket server that goes away, for tests of how croot's clients see
 * it: on a real unix socket, it sends PCP's INFO and never reads. Closing a
 * unix stream socket while the client's bytes sit unread in it makes the
 * kernel fail the client's next read with ECONNRESET; a server that closed
 * before the client wrote makes the write fail with EPIPE.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RootTransportFactory } from '../../core/client/root-transport.js';
import { PCP_INFO } from './root-pdu-bytes.js';

export class VanishingRootServer {
  /** The accepted connections, in order. */
  readonly sockets: Socket[] = [];

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly dir: string,
  ) {}

  /**
   * Listens on a fresh socket. Each connection gets `greeting` (default
   * PCP's INFO); with `closeAtOnce` the server then closes it at once.
   */
  static async start(options: { greeting?: Buffer; closeAtOnce?: boolean } = {}): Promise<VanishingRootServer> {
    const dir = mkdtempSync(join(tmpdir(), 'croot-t-vanish-'));
    const path = join(dir, 'root.socket');
    let self: VanishingRootServer | undefined;
    // Paused from the start: what the client writes stays unread in the socket.
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      self?.sockets.push(socket);
      socket.on('error', () => undefined);
      socket.write(options.greeting ?? PCP_INFO);
      if (options.closeAtOnce === true) socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    self = new VanishingRootServer(server, path, dir);
    return self;
  }

  /** Writes `bytes` on the newest connection (without reading what the client sent). */
  write(bytes: Buffer): void {
    this.sockets.at(-1)?.write(bytes);
  }

  /** Closes the newest connection, unread bytes and all. */
  vanish(): void {
    this.sockets.at(-1)?.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `factory`'s transports, calling `afterSend` once each PDU has been written to the socket. */
export function afterEachSend(factory: RootTransportFactory, afterSend: () => void): RootTransportFactory {
  return async (path, timeoutMs) => {
    const transport = await factory(path, timeoutMs);
    return {
      passesFds: transport.passesFds === true,
      async send(pdu: Buffer): Promise<void> {
        await transport.send(pdu);
        afterSend();
      },
      receive: (ms: number) => transport.receive(ms),
      close: () => transport.close(),
    };
  };
}
