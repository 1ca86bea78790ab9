/**
 * The PCP client layer both root-socket APIs stand on (root-channel.ts), through
 * RootClient and the pmdaRoot* calls, on real unix sockets: a server that goes
 * away (the kernel's ECONNRESET and EPIPE, and what libpcp_pmda returns for
 * them), calls bounded by an AbortSignal, and what a failed call says.
 */
import { getEventListeners } from 'node:events';
import { constants } from 'node:os';
import { describeWith, probes } from '../../test/support/components.js';
import { FakeRootServer } from '../../test/support/fake-root-server.js';
import { fdTransport } from '../../test/support/fd-passing.js';
import { readContainer } from '../../test/support/root-pdu-bytes.js';
import { VanishingRootServer, afterEachSend } from '../../test/support/vanishing-root-server.js';
import { CrootError } from '../errors/croot-error.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import { pmdaRootConnect, pmdaRootContainerHostName, pmdaRootContainerProcessID, pmdaRootShutdown } from './pmda-root.js';
import { RootClient } from './root-client.js';
import { crootRejectionOf } from '../../test/support/outcomes.js';

const { ECONNRESET, EPIPE } = constants.errno;

/** A container reply field by field: type, length, status, version 2, pid, namelen, name. */
function containerReply(type: number, status: number, pid: number, name = ''): Buffer {
  const out = Buffer.alloc(24 + Buffer.byteLength(name));
  [type, out.length, status, 2, pid, Buffer.byteLength(name)].forEach((v, i) => out.writeInt32LE(v, i * 4));
  out.write(name, 24);
  return out;
}

describe('a server that closes with the request unread (ECONNRESET)', () => {
  let server: VanishingRootServer;
  beforeEach(async () => {
    server = await VanishingRootServer.start();
  });
  afterEach(async () => {
    await server.close();
  });

  it('fails the call with ERR_NOT_CONNECTED and the errno the kernel gave, and drops the connection', async () => {
    const client = await RootClient.connect(server.path, { transport: afterEachSend(nodeSocketTransport, () => server.vanish()) });
    expect(client.path).toBe(server.path);
    const err = await crootRejectionOf(client.hostname('web1'));
    expect(err).toMatchObject({ code: 'ERR_NOT_CONNECTED', errno: ECONNRESET });
    expect(client.connected).toBe(false);
  });

  it('gives -ECONNRESET from pmdaRoot*, as libpcp_pmda returns -errno of a failed recv', async () => {
    const fd = await pmdaRootConnect(server.path, { transport: afterEachSend(nodeSocketTransport, () => server.vanish()), timeoutMs: 5000 });
    try {
      expect(fd).toBeGreaterThanOrEqual(0);
      await expect(pmdaRootContainerProcessID(fd, 'web1', 5)).resolves.toBe(-ECONNRESET);
    } finally {
      pmdaRootShutdown(fd);
    }
  });
});

describeWith('croot native', probes.native, 'a server that closed before the request was written (EPIPE)', () => {
  it('fails the call with ERR_NOT_CONNECTED (EPIPE), and pmdaRoot* with -1, what send() returned to libpcp_pmda', async () => {
    const server = await VanishingRootServer.start({ closeAtOnce: true });
    try {
      const client = await RootClient.connect(server.path, { transport: fdTransport });
      await expect(crootRejectionOf(client.cgroupName('web1'))).resolves.toMatchObject({ code: 'ERR_NOT_CONNECTED', errno: EPIPE });
      expect(client.connected).toBe(false);
      const fd = await pmdaRootConnect(server.path, { transport: fdTransport });
      expect(fd).toBeGreaterThanOrEqual(0);
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, Buffer.alloc(64))).resolves.toBe(-1);
      // The handle's connection is closed: the next call fails at its send too.
      await expect(pmdaRootContainerHostName(fd, 'web1', 5, Buffer.alloc(64))).resolves.toBe(-1);
      pmdaRootShutdown(fd);
    } finally {
      await server.close();
    }
  });
});

describe('calls bounded by an AbortSignal', () => {
  it('rejects a call in flight with ERR_ABORTED whose cause is the reason given to abort()', async () => {
    const controller = new AbortController();
    const reason = new Error('the user gave up');
    const server = await FakeRootServer.start({
      reply: () => {
        controller.abort(reason);
        return undefined;
      },
    });
    try {
      const client = await RootClient.connect(server.path);
      const err = await crootRejectionOf(client.hostname('web1', { signal: controller.signal }));
      expect(err.code).toBe('ERR_ABORTED');
      expect(err.cause).toBe(reason);
      // The reply may still come: the connection cannot be used again.
      expect(client.connected).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('leaves no listener on a signal once its calls are answered, refused or timed out', async () => {
    const server = await FakeRootServer.start({
      reply: (req) => {
        const { type, name } = readContainer(req);
        if (name.startsWith('slow')) return undefined;
        return name.startsWith('nosuch') ? containerReply(type + 1, -12399, 0) : containerReply(type + 1, 0, 4242, 'web1-host');
      },
    });
    const signal = new AbortController().signal;
    try {
      const client = await RootClient.connect(server.path);
      await expect(client.hostname('web1', { signal })).resolves.toBe('web1-host');
      await expect(crootRejectionOf(client.hostname('nosuch', { signal }))).resolves.toMatchObject({ code: 'ERR_NO_CONTAINER' });
      await expect(client.processId('web1', { signal })).resolves.toBe(4242);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      await expect(crootRejectionOf(client.hostname('slow', { signal, timeoutMs: 50 }))).resolves.toMatchObject({ code: 'ERR_TIMEOUT' });
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      client.close();
    } finally {
      await server.close();
    }
  });
});

describe('what a failed call says', () => {
  it.each<[string, (c: RootClient) => Promise<unknown>]>([
    ['hostname of "nosuch"', (c) => c.hostname('nosuch')],
    ['process id of "nosuch"', (c) => c.processId('nosuch')],
    ['cgroup name of "nosuch"', (c) => c.cgroupName('nosuch')],
  ])('names the request: %s', async (what, call) => {
    const server = await FakeRootServer.start({ reply: (req) => containerReply(req.readInt32LE(0) + 1, -12399, 0) });
    try {
      const client = await RootClient.connect(server.path);
      await expect(crootRejectionOf(call(client))).resolves.toMatchObject({ message: `${what}: Container not found (-12399)` });
      client.close();
    } finally {
      await server.close();
    }
  });

  it('says where the candidates of an ambiguous name are named, and only for that status', async () => {
    const server = await FakeRootServer.start({ reply: (req) => containerReply(req.readInt32LE(0) + 1, readContainer(req).name.startsWith('web') ? -76 : -3, 0) });
    try {
      const client = await RootClient.connect(server.path);
      const ambiguous = await crootRejectionOf(client.hostname('web'));
      expect(ambiguous).toMatchObject({ code: 'ERR_AMBIGUOUS_NAME', status: -76 });
      expect(ambiguous.message).toContain('the server log names them');
      const gone = await crootRejectionOf(client.hostname('db'));
      expect(gone).toMatchObject({ code: 'ERR_NOT_RUNNING', status: -3 });
      expect(gone.message).not.toContain('the server log');
      client.close();
    } finally {
      await server.close();
    }
  });

  it('names the socket of a server that hangs up', async () => {
    const server = await FakeRootServer.start({
      reply: (_req, socket) => {
        socket.end();
        return undefined;
      },
    });
    try {
      const client = await RootClient.connect(server.path);
      await expect(crootRejectionOf(client.processId('web1'))).resolves.toMatchObject({ code: 'ERR_NOT_CONNECTED', message: `${server.path} closed the connection` });
    } finally {
      await server.close();
    }
  });
});
