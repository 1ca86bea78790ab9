/**
 * RootClient and the pmdaRoot* calls on the transport that receives fds, against
 * a real unix socket whose server writes the documented bytes
 * (/work/shared/docs/pcp-root-protocol.md, "Start body"): a STARTPMDA reply
 * of 104 bytes in one sendmsg, for pipe IPC with the write end of the
 * child's stdin and the read end of its stdout in one SCM_RIGHTS message.
 * The truth is the kernel: the pipes the server made, what comes out of
 * their other ends, and which fds this process still holds (/proc/self/fd).
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { describeWith, probes } from '../../test/support/components.js';
import { FakeRootServer } from '../../test/support/fake-root-server.js';
import { fdTarget, fdTransport, fdsOn, pipe, sendWithFds } from '../../test/support/fd-passing.js';
import { CrootError } from '../errors/croot-error.js';
import { RootClient } from './root-client.js';
import { pmdaRootConnect, pmdaRootContainerHostName, pmdaRootContainerProcessID, pmdaRootProcessStart, pmdaRootShutdown, type ProcessStartOut } from './pmda-root.js';
import { crootRejectionOf } from '../../test/support/outcomes.js';

/** A root PDU field by field: the header (type, length, status, version 2), 32-bit ints, raw bytes; `length` overrides the length field. */
function rootPdu(type: number, status: number, ints: number[] = [], tail: Buffer = Buffer.alloc(0), length?: number): Buffer {
  const out = Buffer.alloc(16 + 4 * ints.length);
  [type, length ?? out.length + tail.length, status, 2, ...ints].forEach((v, i) => out.writeInt32LE(v, i * 4));
  return Buffer.concat([out, tail]);
}

/** A STARTPMDA reply as pmdaroot sends it: 104 bytes, pid, the label and its length, other ints 0. */
function startReply(pid: number, label: string, status = 0, length?: number): Buffer {
  const name = Buffer.alloc(64);
  name.write(label);
  return rootPdu(0x9008, status, [pid, 0, 0, 0, Buffer.byteLength(label), 0], name, length);
}

/** A pipe whose ends the test owns until it closes them; `name` is what the kernel calls it. */
function kernelPipe(): { read: number; write: number; name: string } {
  const [read, write] = pipe();
  return { read, write, name: fdTarget(read) as string };
}

/** A server whose every reply is `reply` with `fds` attached; the server's copies of the fds are closed once sent. */
async function fdServer(reply: () => Buffer, fds: () => number[]): Promise<FakeRootServer> {
  return FakeRootServer.start({
    reply: (_req: Buffer, socket: Socket) => {
      const passed = fds();
      sendWithFds(socket, reply(), passed);
      for (const fd of passed) closeSync(fd);
      return undefined;
    },
  });
}

describeWith('croot native', probes.native, 'processStart with pipe IPC (fds by SCM_RIGHTS)', () => {
  it("gives the child's stdin and stdout as streams on the two pipes the server passed", async () => {
    const stdin = kernelPipe();
    const stdout = kernelPipe();
    const server = await fdServer(
      () => startReply(4321, 'agent'),
      () => [stdin.write, stdout.read],
    );
    const client = await RootClient.connect(server.path, { transport: fdTransport });
    try {
      const started = await client.processStart(2, 'agent', '/usr/bin/agent -d 1');
      expect(started.pid).toBe(4321);
      // What this process received: the two pipes, in the documented order (infd, outfd).
      expect(started.fds.map(fdTarget)).toEqual([stdin.name, stdout.name]);
      // Bytes written to stdin come out of the child's end of that pipe...
      await new Promise<void>((resolve, reject) => started.stdin?.write('ping\n', (err) => (err ? reject(err) : resolve())));
      const got = Buffer.alloc(16);
      expect(got.subarray(0, readSync(stdin.read, got)).toString()).toBe('ping\n');
      // ...and what the child writes to its stdout is read from the stream, to its end.
      const text = new Promise<string>((resolve, reject) => {
        let all = '';
        started.stdout?.on('data', (chunk: Buffer) => (all += chunk.toString()));
        started.stdout?.on('end', () => resolve(all));
        started.stdout?.on('error', reject);
      });
      writeSync(stdout.write, 'pong\n');
      closeSync(stdout.write);
      await expect(text).resolves.toBe('pong\n');
      // Ending stdin closes its fd: the child reads the end of its input.
      await new Promise<void>((resolve) => started.stdin?.end(resolve));
      await new Promise<void>((resolve) => started.stdin?.once('close', resolve));
      expect(readSync(stdin.read, got)).toBe(0);
      expect(client.connected).toBe(true);
    } finally {
      client.close();
      closeSync(stdin.read);
      await server.close();
    }
  });

  it.each<[string, number]>([
    ['one fd', 1],
    ['three fds', 3],
  ])('refuses a pipe IPC reply with %s as ERR_PROTOCOL, closing what came and the connection', async (_what, count) => {
    const pipes = Array.from({ length: count }, kernelPipe);
    const server = await fdServer(
      () => startReply(777, 'agent'),
      () => pipes.map((p) => p.write),
    );
    const client = await RootClient.connect(server.path, { transport: fdTransport });
    try {
      const err = await crootRejectionOf(client.processStart(2, 'agent', '/usr/bin/agent'));
      expect(err).toMatchObject({ code: 'ERR_PROTOCOL', details: { pid: 777 } });
      expect(err.message).toContain(`carried ${count} fds, expected 2`);
      // Only the test's own read ends are left on those pipes.
      expect(pipes.map((p) => fdsOn(p.name))).toEqual(pipes.map((p) => [p.read]));
      expect(client.connected).toBe(false);
    } finally {
      client.close();
      for (const p of pipes) closeSync(p.read);
      await server.close();
    }
  });

  it('closes fds that came with an error reply, or with a socket-IPC reply, keeping the connection', async () => {
    const pipes = [kernelPipe(), kernelPipe(), kernelPipe(), kernelPipe()];
    const replies = [startReply(-1, 'agent', -13), startReply(555, 'agent')];
    const server = await fdServer(
      () => replies.shift() as Buffer,
      () => pipes.splice(0, 2).map((p) => p.write),
    );
    const held = [...pipes];
    const client = await RootClient.connect(server.path, { transport: fdTransport });
    try {
      const err = await crootRejectionOf(client.processStart(2, 'agent', '/usr/bin/agent'));
      expect(err).toMatchObject({ code: 'ERR_REMOTE', status: -13, message: 'start of "agent": Permission denied (-13)' });
      expect(client.connected).toBe(true);
      await expect(client.processStart(1, 'agent', '/usr/bin/agent')).resolves.toEqual({ pid: 555, stdin: undefined, stdout: undefined, fds: [] });
      expect(held.map((p) => fdsOn(p.name))).toEqual(held.map((p) => [p.read]));
    } finally {
      client.close();
      for (const p of held) closeSync(p.read);
      await server.close();
    }
  });
});

describeWith('croot native', probes.native, 'replies read with one recvmsg, as PCP reads them', () => {
  it('refuses a reply shorter than a header as a short reply (-EINVAL), not a crash, and drops the connection', async () => {
    const server = await FakeRootServer.start({ reply: () => rootPdu(0x9002, -12399).subarray(0, 12) });
    const client = await RootClient.connect(server.path, { transport: fdTransport });
    try {
      await expect(crootRejectionOf(client.hostname('web1'))).resolves.toMatchObject({ code: 'ERR_PROTOCOL', status: -22 });
      expect(client.connected).toBe(false);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('checks the version before the status of a whole reply, as libpcp_pmda does', async () => {
    const newer = rootPdu(0x9002, -12399, [0, 0]);
    newer.writeInt32LE(3, 12);
    const server = await FakeRootServer.start({ reply: () => newer });
    const client = await RootClient.connect(server.path, { transport: fdTransport });
    try {
      await expect(crootRejectionOf(client.hostname('web1'))).resolves.toMatchObject({ code: 'ERR_VERSION', status: -95 });
    } finally {
      client.close();
      await server.close();
    }
  });

  it('pmdaRootProcessStart hands over both fds of a pipe IPC reply, and closes any other number, giving -1', async () => {
    const pipes = [kernelPipe(), kernelPipe(), kernelPipe()];
    const counts = [2, 1];
    const server = await fdServer(
      () => startReply(31337, 'agent'),
      () => pipes.splice(0, counts.shift() as number).map((p) => p.write),
    );
    const held = [...pipes];
    const fd = await pmdaRootConnect(server.path, { transport: fdTransport, timeoutMs: 5000 });
    try {
      const out: ProcessStartOut = {};
      await expect(pmdaRootProcessStart(fd, 2, 'agent', 5, '/bin/agent', 10, out)).resolves.toBe(0);
      expect(out.pid).toBe(31337);
      expect([fdTarget(out.infd as number), fdTarget(out.outfd as number)]).toEqual([held[0]?.name, held[1]?.name]);
      closeSync(out.infd as number);
      closeSync(out.outfd as number);
      const again: ProcessStartOut = {};
      await expect(pmdaRootProcessStart(fd, 2, 'agent', 5, '/bin/agent', 10, again)).resolves.toBe(0);
      expect(again).toEqual({ pid: 31337, infd: -1, outfd: -1 });
      expect(held.map((p) => fdsOn(p.name))).toEqual(held.map((p) => [p.read]));
    } finally {
      pmdaRootShutdown(fd);
      for (const p of held) closeSync(p.read);
      await server.close();
    }
  });

  it('pmdaRootProcessStart: -E2BIG for 104 bytes read whose length field says fewer, -EINVAL for fewer bytes read', async () => {
    const replies = [startReply(9, 'agent', 0, 100), startReply(9, 'agent').subarray(0, 100)];
    const server = await FakeRootServer.start({ reply: () => replies.shift() });
    const fd = await pmdaRootConnect(server.path, { transport: fdTransport, timeoutMs: 5000 });
    try {
      await expect(pmdaRootProcessStart(fd, 1, 'agent', 5, '/bin/agent', 10, {})).resolves.toBe(-7);
      await expect(pmdaRootProcessStart(fd, 1, 'agent', 5, '/bin/agent', 10, {})).resolves.toBe(-22);
    } finally {
      pmdaRootShutdown(fd);
      await server.close();
    }
  });

  it('pmdaRootContainerHostName: -EINVAL when fewer bytes were read than namelen + 1 past the 16-byte header', async () => {
    const whole = rootPdu(0x9002, 0, [77, 9], Buffer.from('web1-host'));
    const replies = [whole.subarray(0, 24), whole.subarray(0, 25), whole.subarray(0, 26)];
    const server = await FakeRootServer.start({ reply: () => replies.shift() });
    const fd = await pmdaRootConnect(server.path, { transport: fdTransport, timeoutMs: 5000 });
    try {
      const buffer = Buffer.alloc(64, 0x58);
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, buffer)).resolves.toBe(-22);
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, buffer)).resolves.toBe(-22);
      expect(buffer.every((b) => b === 0x58)).toBe(true);
      // namelen + 1 + 16 bytes read is enough for libpcp_pmda: the name is what was read, NUL-terminated.
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, buffer)).resolves.toBe(9);
      expect(buffer.subarray(0, 10)).toEqual(Buffer.from('we\0\0\0\0\0\0\0\0'));
      // PROCESSID decodes the same way before it gives the pid.
      replies.push(rootPdu(0x9004, 0, [77, 9], Buffer.alloc(0), 33));
      await expect(pmdaRootContainerProcessID(fd, 'web1', 5)).resolves.toBe(-22);
    } finally {
      pmdaRootShutdown(fd);
      await server.close();
    }
  });
});
