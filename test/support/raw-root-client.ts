/**
 * A raw root-socket client for tests that send arbitrary bytes: it reads
 * replies off a real unix socket, framed by their length field, and tells a
 * close apart from silence.
 */
import { createConnection, type Socket } from 'node:net';

export class RawRootClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /**
   * Connects to `path` and (with `readInfo`, the default) reads the INFO PDU
   * the server sends first. With `asUid` (root only) the connect(2) is made
   * with that effective uid, which is what the server's SO_PEERCRED reads.
   */
  static async open(path: string, readInfo = true, asUid?: number): Promise<RawRootClient> {
    const seteuid = process.seteuid as (id: number) => void;
    const euid = process.geteuid?.() ?? 0;
    if (asUid !== undefined) seteuid(asUid);
    let socket: Socket;
    try {
      // connect(2) on a unix socket is made at once, inside createConnection.
      socket = createConnection(path);
    } finally {
      if (asUid !== undefined) seteuid(euid);
    }
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawRootClient(socket);
    if (readInfo) await client.next();
    return client;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next PDU, or undefined once the server closed; throws after `timeoutMs` of silence. */
  async next(timeoutMs = 5000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 8) {
        const len = this.buf.readInt32LE(4);
        if (len >= 8 && this.buf.length >= len) {
          const pdu = this.buf.subarray(0, len);
          this.buf = this.buf.subarray(len);
          return Buffer.from(pdu);
        }
      }
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a reply (${this.buf.length} bytes buffered)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(b, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.socket.destroy();
  }
}
