/**
 * A unix socket relaying to the real dockerd's (test/docker-engine.int.test.ts,
 * engines/docker/docker-engine.daemon.test.ts): a daemon whose socket a test
 * makes appear and whose connections it cuts, the daemon behind it real.
 */
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A unix socket relaying to the real daemon's, which a test can open and
 * cut. With `muteEvents`, a request for /events gets its response headers
 * and then nothing, ever: an event stream that misses every change.
 */
export class DaemonRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly path: string,
    private readonly muteEvents = false,
    private readonly target = '/var/run/docker.sock',
  ) {}

  async open(): Promise<void> {
    rmSync(this.path, { force: true });
    const server = createServer((client) => {
      this.hold(client);
      const upstream = createConnection(this.target);
      this.hold(upstream, client);
      upstream.pipe(client);
      if (!this.muteEvents) {
        client.pipe(upstream);
        return;
      }
      // Node's HTTP clients keep connections alive and send one request at a
      // time, so a request for /events may come on a connection that carried
      // others before it: each chunk that starts a request is looked at.
      let muted = false;
      client.on('data', (chunk: Buffer) => {
        if (muted) return;
        if (/^GET \S*\/events[?\s]/.test(chunk.toString('latin1'))) {
          muted = true;
          upstream.unpipe(client);
          client.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
          return;
        }
        upstream.write(chunk);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.path, resolve));
  }

  private hold(s: Socket, peer?: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {
      s.destroy();
      peer?.destroy();
    });
    peer?.on('close', () => s.destroy());
  }

  /** Stops listening and cuts every relayed connection (the event stream with them). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
