/**
 * The Node floor: the least a Node server on the root socket can do. It
 * sends PCP's INFO PDU on accept, frames requests by their length field, and
 * answers each HOSTNAME/PROCESSID/CGROUPNAME request with one fixed reply of
 * the matching type in one write, whatever the name. No croot code; what
 * crootd costs above this is its own request path.
 *
 *   node dist/bench/floor-server.js SOCKET PID HOSTNAME CGROUP
 *
 * Prints "listening" once the socket accepts; ends on SIGTERM or when stdin closes.
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';

const HEADER = 16;
const CONTAINER = 24;

function containerReply(type: number, pid: number, value: string): Buffer {
  const name = Buffer.from(value);
  const pdu = Buffer.alloc(CONTAINER + name.length);
  pdu.writeInt32LE(type, 0);
  pdu.writeInt32LE(pdu.length, 4);
  pdu.writeInt32LE(0, 8);
  pdu.writeInt32LE(2, 12);
  pdu.writeInt32LE(pid, 16);
  pdu.writeInt32LE(name.length, 20);
  name.copy(pdu, CONTAINER);
  return pdu;
}

function main(argv: readonly string[]): void {
  const [socketPath, pidText, hostname = '', cgroup = ''] = argv;
  if (socketPath === undefined || pidText === undefined) throw new Error('usage: floor-server SOCKET PID HOSTNAME CGROUP');
  const pid = Number(pidText);
  const replies = new Map<number, Buffer>([
    [0x9001, containerReply(0x9002, pid, hostname)],
    [0x9003, containerReply(0x9004, pid, '')],
    [0x9005, containerReply(0x9006, pid, cgroup)],
  ]);
  const info = Buffer.from([0x00, 0x90, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);

  const server = createServer((socket: Socket) => {
    let pending: Buffer = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.write(info);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= HEADER) {
        const length = pending.readInt32LE(4);
        if (length < HEADER || length > 8192) {
          socket.destroy();
          return;
        }
        if (pending.length < length) break;
        const reply = replies.get(pending.readInt32LE(0));
        pending = pending.subarray(length);
        if (reply === undefined) {
          socket.destroy();
          return;
        }
        socket.write(reply);
      }
    });
  });
  rmSync(socketPath, { force: true });
  server.listen(socketPath, () => process.stdout.write('listening\n'));
  const stop = (): void => {
    server.close();
    rmSync(socketPath, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main(process.argv.slice(2));
