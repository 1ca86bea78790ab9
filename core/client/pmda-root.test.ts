import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeRootServer } from '../../test/support/fake-root-server.js';
import {
  pmdaRootConnect,
  pmdaRootContainerCGroupName,
  pmdaRootContainerHostName,
  pmdaRootContainerProcessID,
  pmdaRootProcessStart,
  pmdaRootProcessTerminate,
  pmdaRootProcessWait,
  pmdaRootShutdown,
  type ProcessStartOut,
} from './pmda-root.js';
import { PduType, decodeStop, encodeContainer, encodeInfo, encodeStart, encodeStop } from '../protocol/root-pdus.js';

/** Answers container requests with `hostname`/`cgroup` and pid 4242, or `status` for the name "nosuch". */
function containerReply(request: Buffer): Buffer {
  const type = request.readInt32LE(0);
  const name = request.subarray(24).toString('latin1');
  if (name.startsWith('nosuch')) return encodeContainer(type + 1, '', { status: -12399 });
  if (type === PduType.PROCESSID_REQ) return encodeContainer(type + 1, '', { pid: 4242 });
  return encodeContainer(type + 1, type === PduType.HOSTNAME_REQ ? 'web1-host' : 'docker/abc', { pid: 4242 });
}

async function withHandle(
  options: Parameters<typeof FakeRootServer.start>[0],
  body: (fd: number, server: FakeRootServer) => Promise<void>,
): Promise<void> {
  const server = await FakeRootServer.start(options);
  const fd = await pmdaRootConnect(server.path, { timeoutMs: 1000 });
  try {
    expect(fd).toBeGreaterThanOrEqual(0);
    await body(fd, server);
  } finally {
    pmdaRootShutdown(fd);
    await server.close();
  }
}

describe('pmdaRootConnect', () => {
  it('returns a handle >= 0 after a good INFO', async () => {
    await withHandle({}, async (fd) => {
      expect(Number.isInteger(fd)).toBe(true);
    });
  });

  it('connects within the default bound when given no options', async () => {
    const server = await FakeRootServer.start({ reply: containerReply });
    const fd = await pmdaRootConnect(server.path);
    try {
      expect(fd).toBeGreaterThanOrEqual(0);
      await expect(pmdaRootContainerProcessID(fd, 'web1', 5)).resolves.toBe(4242);
    } finally {
      pmdaRootShutdown(fd);
      await server.close();
    }
  });

  it('returns -1 when the connect fails, as libpcp does whatever the errno', async () => {
    await expect(pmdaRootConnect('/nonexistent/croot/root.socket')).resolves.toBe(-1);
  });

  it.each<[string, () => Buffer, number]>([
    ['-EINVAL for an INFO that is not 24 bytes', () => encodeStop(PduType.INFO, { pid: 0 }), -22],
    ['-ESRCH for a 24-byte PDU that is not INFO', () => encodeContainer(PduType.HOSTNAME, ''), -3],
    ['the INFO status itself', () => encodeInfo(7, -12366), -12366],
    [
      '-ENOTSUP for a newer version',
      () => {
        const b = encodeInfo();
        b.writeInt32LE(3, 12);
        return b;
      },
      -95,
    ],
  ])('returns %s', async (_what, greeting, expected) => {
    const server = await FakeRootServer.start({ greeting: greeting() });
    try {
      await expect(pmdaRootConnect(server.path, { timeoutMs: 500 })).resolves.toBe(expected);
    } finally {
      await server.close();
    }
  });
});

describe('pmdaRootContainerHostName', () => {
  it('fills the buffer with the NUL-terminated hostname and returns its length', async () => {
    await withHandle({ reply: containerReply }, async (fd) => {
      const buffer = Buffer.alloc(64, 0x58);
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, buffer)).resolves.toBe(9);
      expect(buffer.subarray(0, 10)).toEqual(Buffer.from('web1-host\0'));
      expect(buffer[10]).toBe(0x58);
    });
  });

  it('returns -E2BIG and leaves the buffer alone when the hostname and its NUL do not fit buflen', async () => {
    await withHandle({ reply: containerReply }, async (fd) => {
      const buffer = Buffer.alloc(64, 0x58);
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, buffer, 9)).resolves.toBe(-7);
      expect(buffer.every((b) => b === 0x58)).toBe(true);
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, buffer, 10)).resolves.toBe(9);
    });
  });

  it('sends exactly namelen bytes of the name, cut at a NUL and zero-padded like strncpy', async () => {
    await withHandle({ reply: containerReply }, async (fd, server) => {
      const buffer = Buffer.alloc(64);
      await pmdaRootContainerHostName(fd, 'web1', 5, buffer);
      await pmdaRootContainerHostName(fd, 'web1', 2, buffer);
      await pmdaRootContainerHostName(fd, 'web1', 7, buffer);
      expect(server.requests.map((r) => [r.readInt32LE(20), r.subarray(24).toString('hex')])).toEqual([
        [5, Buffer.from('web1\0').toString('hex')],
        [2, Buffer.from('we').toString('hex')],
        [7, Buffer.from('web1\0\0\0').toString('hex')],
      ]);
    });
  });

  it('copies a name like strncpy: up to its first NUL, whatever follows it', async () => {
    await withHandle({ reply: containerReply }, async (fd, server) => {
      const buffer = Buffer.alloc(64);
      await pmdaRootContainerHostName(fd, Buffer.from('web1\0junk'), 9, buffer);
      await pmdaRootContainerHostName(fd, Buffer.from('\0junk'), 5, buffer);
      expect(server.requests.map((r) => r.subarray(20).toString('hex'))).toEqual([
        Buffer.concat([Buffer.from([9, 0, 0, 0]), Buffer.from('web1'), Buffer.alloc(5)]).toString('hex'),
        Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.alloc(5)]).toString('hex'),
      ]);
    });
  });

  it('refuses namelen < 0 with -EINVAL and namelen >= 4096 with -E2BIG before sending', async () => {
    await withHandle({ reply: containerReply }, async (fd, server) => {
      const buffer = Buffer.alloc(64);
      await expect(pmdaRootContainerHostName(fd, 'web1', -1, buffer)).resolves.toBe(-22);
      await expect(pmdaRootContainerHostName(fd, 'web1', 4096, buffer)).resolves.toBe(-7);
      await expect(pmdaRootContainerHostName(fd, 'web1', 4095, buffer)).resolves.toBe(9);
      expect(server.requests).toHaveLength(1);
    });
  });

  it('returns the server status for an unknown container', async () => {
    await withHandle({ reply: containerReply }, async (fd) => {
      await expect(pmdaRootContainerHostName(fd, 'nosuch', 7, Buffer.alloc(64))).resolves.toBe(-12399);
    });
  });

  it('returns -ENOTCONN for a negative handle and -1 (a failed send) for an unknown one', async () => {
    await expect(pmdaRootContainerHostName(-1, 'web1', 5, Buffer.alloc(64))).resolves.toBe(-107);
    await expect(pmdaRootContainerHostName(987654, 'web1', 5, Buffer.alloc(64))).resolves.toBe(-1);
  });

  it('asks by pid when name is null: pid = namelen, namelen 0', async () => {
    await withHandle({ reply: () => encodeContainer(PduType.HOSTNAME, 'pid-host', { pid: 321 }) }, async (fd, server) => {
      const buffer = Buffer.alloc(64);
      await expect(pmdaRootContainerHostName(fd, null, 321, buffer)).resolves.toBe(8);
      const req = server.requests[0] as Buffer;
      expect([req.readInt32LE(16), req.readInt32LE(20), req.length]).toEqual([321, 0, 24]);
    });
  });

  it('returns -ESRCH for a reply of another type and -EINVAL for one shorter than 24 bytes', async () => {
    const short = Buffer.alloc(16);
    short.writeInt32LE(PduType.HOSTNAME, 0);
    short.writeInt32LE(16, 4);
    short.writeInt32LE(2, 12);
    await withHandle({ reply: (req) => (req.readInt32LE(20) === 1 ? encodeContainer(PduType.CGROUPNAME, 'x') : short) }, async (fd) => {
      await expect(pmdaRootContainerHostName(fd, 'a', 1, Buffer.alloc(8))).resolves.toBe(-3);
      await expect(pmdaRootContainerHostName(fd, 'ab', 2, Buffer.alloc(8))).resolves.toBe(-22);
    });
  });
});

describe('pmdaRootContainerProcessID and pmdaRootContainerCGroupName', () => {
  it('returns the pid, and the cgroup name length with the buffer filled', async () => {
    await withHandle({ reply: containerReply }, async (fd) => {
      await expect(pmdaRootContainerProcessID(fd, 'web1', 5)).resolves.toBe(4242);
      const buffer = Buffer.alloc(64, 0x58);
      await expect(pmdaRootContainerCGroupName(fd, 'web1', 5, buffer)).resolves.toBe(10);
      expect(buffer.subarray(0, 11).toString('latin1')).toBe('docker/abc\0');
      await expect(pmdaRootContainerProcessID(fd, 'nosuch', 7)).resolves.toBe(-12399);
    });
  });
});

describe('pmdaRoot process calls', () => {
  it('checks label and args lengths before sending', async () => {
    await withHandle({}, async (fd, server) => {
      const out: ProcessStartOut = {};
      await expect(pmdaRootProcessStart(fd, 1, 'x', 0, 'a', 1, out)).resolves.toBe(-22);
      await expect(pmdaRootProcessStart(fd, 1, 'x', 1, 'a', 0, out)).resolves.toBe(-22);
      await expect(pmdaRootProcessStart(fd, 1, 'x'.repeat(64), 64, 'a', 1, out)).resolves.toBe(-7);
      await expect(pmdaRootProcessStart(fd, 1, 'x', 1, 'a'.repeat(4096), 4096, out)).resolves.toBe(-7);
      expect(server.requests).toHaveLength(0);
      expect(out).toEqual({});
    });
  });

  it('returns 0 with the pid, and infd/outfd -1 when no fds came', async () => {
    await withHandle({ reply: () => encodeStart(PduType.STARTPMDA, { pid: 31337, label: 'agent' }) }, async (fd, server) => {
      const out: ProcessStartOut = {};
      await expect(pmdaRootProcessStart(fd, 1, 'agent', 5, '/bin/agent -d', 13, out)).resolves.toBe(0);
      expect(out).toEqual({ pid: 31337, infd: -1, outfd: -1 });
      const req = server.requests[0] as Buffer;
      expect(req.length).toBe(104 + 13);
      expect(req.subarray(40, 104)).toEqual(Buffer.concat([Buffer.from('agent'), Buffer.alloc(59)]));
      expect(req.subarray(104).toString()).toBe('/bin/agent -d');
    });
  });

  it('returns the STARTPMDA status of a failed start', async () => {
    await withHandle({ reply: () => encodeStart(PduType.STARTPMDA, { pid: -1, label: '', status: -2 }) }, async (fd) => {
      const out: ProcessStartOut = {};
      await expect(pmdaRootProcessStart(fd, 2, 'agent', 5, '/bin/none', 9, out)).resolves.toBe(-2);
      expect(out).toEqual({});
    });
  });

  it('returns the reaped pid and status from wait, and 0 from terminate', async () => {
    await withHandle(
      { reply: (req) => (decodeStop(req).force ? encodeStop(PduType.STOPPMDA, { pid: 12 }) : encodeStop(PduType.STOPPMDA, { pid: 12, code: 9 })) },
      async (fd, server) => {
        const out: { status?: number } = {};
        await expect(pmdaRootProcessWait(fd, -1, out)).resolves.toBe(12);
        expect(out.status).toBe(9);
        await expect(pmdaRootProcessTerminate(fd, 12)).resolves.toBe(0);
        expect(server.requests.map((r) => [r.readInt32LE(16), r.readInt32LE(24)])).toEqual([
          [-1, 0],
          [12, 1],
        ]);
      },
    );
  });

  it('returns the STOPPMDA status, and -1 once the handle is shut down', async () => {
    await withHandle({ reply: () => encodeStop(PduType.STOPPMDA, { pid: 0, status: -22 }) }, async (fd) => {
      await expect(pmdaRootProcessTerminate(fd, 0)).resolves.toBe(-22);
      pmdaRootShutdown(fd);
      await expect(pmdaRootProcessWait(fd, -1, {})).resolves.toBe(-1);
    });
  });
});

describe('against the documented bytes (docs/pcp-root-protocol.md)', () => {
  /** A root PDU built field by field: header (type, length, status, version 2), then 32-bit ints and raw bytes. */
  function rootPdu(type: number, status: number, ints: number[] = [], tail: Buffer = Buffer.alloc(0)): Buffer {
    const out = Buffer.alloc(16 + 4 * ints.length);
    [type, out.length + tail.length, status, 2, ...ints].forEach((v, i) => out.writeInt32LE(v, i * 4));
    return Buffer.concat([out, tail]);
  }

  it('returns -EINVAL when the server closes before INFO (libpcp read 0 bytes, not 24)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'croot-t-hangup-'));
    const hangup = createServer((socket) => socket.end());
    await new Promise<void>((r) => hangup.listen(join(dir, 's'), r));
    try {
      await expect(pmdaRootConnect(join(dir, 's'), { timeoutMs: 2000 })).resolves.toBe(-22);
    } finally {
      await new Promise<void>((r) => hangup.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('returns -ETIMEDOUT for a reply that does not come, and -1 (a failed send) on the handle after', async () => {
    const server = await FakeRootServer.start({ reply: () => undefined });
    const fd = await pmdaRootConnect(server.path, { timeoutMs: 100 });
    try {
      await expect(pmdaRootContainerProcessID(fd, 'web1', 5)).resolves.toBe(-110);
      await expect(pmdaRootContainerProcessID(fd, 'web1', 5)).resolves.toBe(-1);
    } finally {
      pmdaRootShutdown(fd);
      await server.close();
    }
  });

  it('resolves 0 and leaves the buffer alone for a reply with no name, and never writes past the buffer', async () => {
    await withHandle(
      { reply: (req) => (req.readInt32LE(20) === 1 ? rootPdu(0x9002, 0, [77, 0]) : rootPdu(0x9002, 0, [77, 9], Buffer.from('web1-host'))) },
      async (fd) => {
        const buffer = Buffer.alloc(16, 0x58);
        await expect(pmdaRootContainerHostName(fd, 'a', 1, buffer)).resolves.toBe(0);
        expect(buffer.every((b) => b === 0x58)).toBe(true);
        // buflen larger than the buffer: the buffer's own size bounds the copy.
        const small = Buffer.alloc(9, 0x58);
        await expect(pmdaRootContainerHostName(fd, 'ab', 2, small, 64)).resolves.toBe(-7);
        expect(small.every((b) => b === 0x58)).toBe(true);
      },
    );
  });

  it('returns -E2BIG for a container reply whose length field cannot hold its namelen', async () => {
    await withHandle({ reply: () => rootPdu(0x9006, 0, [77, 50], Buffer.from('docker/abc')) }, async (fd) => {
      await expect(pmdaRootContainerCGroupName(fd, 'web1', 5, Buffer.alloc(64))).resolves.toBe(-7);
    });
  });

  it('checks a STARTPMDA reply in libpcp order: -ESRCH wrong type, its status, -EINVAL shorter than 104 bytes', async () => {
    const replies = [rootPdu(0x900a, 0, [1, 0, 0, 0]), rootPdu(0x9008, -13, [-1, 0, 0, 1, 0, 0]), rootPdu(0x9008, 0, [55, 0, 0, 1, 0, 0])];
    await withHandle({ reply: () => replies.shift() }, async (fd) => {
      for (const expected of [-3, -13, -22]) {
        const out: ProcessStartOut = {};
        await expect(pmdaRootProcessStart(fd, 1, 'agent', 5, '/bin/agent', 10, out)).resolves.toBe(expected);
        expect(out).toEqual({});
      }
    });
  });

  it('returns -ESRCH when the server hangs up on a STARTPMDA (PCP checks the type of the nothing it read)', async () => {
    await withHandle(
      {
        reply: (_req, socket) => {
          socket.end();
          return undefined;
        },
      },
      async (fd) => {
        await expect(pmdaRootProcessStart(fd, 1, 'agent', 5, '/bin/agent', 10, {})).resolves.toBe(-3);
      },
    );
  });

  it('checks a STOPPMDA reply: -ESRCH wrong type, -EINVAL shorter than 32 bytes', async () => {
    const replies = [rootPdu(0x9008, 0, [1, 0, 0, 0]), rootPdu(0x900a, 0, [1, 0])];
    await withHandle({ reply: () => replies.shift() }, async (fd) => {
      await expect(pmdaRootProcessWait(fd, -1, {})).resolves.toBe(-3);
      await expect(pmdaRootProcessTerminate(fd, 1)).resolves.toBe(-22);
    });
  });
});
