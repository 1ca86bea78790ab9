/**
 * Properties of croot's real RootServer over a real unix socket (fast-check),
 * with the native module and a real namespace sandbox declared to the static
 * engine:
 * - any stream of valid requests, cut anywhere, gets one reply each, in
 *   order, carrying what the kernel says about the sandbox (hostname through
 *   nsenter, PID, cgroup from /proc and the cgroup filesystem);
 * - every malformed PDU gets an error reply with the status docs/errors.md
 *   names, or a reply and a close where the stream cannot be re-synchronised;
 *   the connection is usable after the others, and the server keeps serving
 *   and leaks no fd.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/registry/engine-registry.js';
import { MAX_PDU_SIZE, PduType, decodeContainer, encodeContainer } from '../core/protocol/root-pdus.js';
import { RootServer } from '../core/server/root-server.js';
import { staticEngineModule } from '../engines/static/index.js';
import { nativeModule } from '../native/index.js';
import { describeWith, probes } from './support/components.js';
import { RawRootClient } from './support/raw-root-client.js';
import { fdsOpenedSince, openFds, startSandbox, type Sandbox } from './support/sandbox.js';
import { cgroupTruth, errnoTruth, hostnameTruth } from './support/truth.js';

const { EINVAL, ENOTSUP, E2BIG } = constants.errno;
const ENOTUNIQ = errnoTruth('ENOTUNIQ');
const CONTAINER_REQUESTS = [PduType.HOSTNAME_REQ, PduType.PROCESSID_REQ, PduType.CGROUPNAME_REQ] as const;
const REQUESTS: readonly number[] = [...CONTAINER_REQUESTS, PduType.STARTPMDA_REQ, PduType.STOPPMDA_REQ];
/** Reply sizes by request type (pmdaroot.h's structs); anything else gets a bare 16-byte header. */
const REPLY_SIZE: Readonly<Record<number, number>> = {
  [PduType.HOSTNAME_REQ]: 24,
  [PduType.PROCESSID_REQ]: 24,
  [PduType.CGROUPNAME_REQ]: 24,
  [PduType.STARTPMDA_REQ]: 104,
  [PduType.STOPPMDA_REQ]: 32,
};

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

/** A request, and who it names: the sandbox (by name or id), nobody, or two containers at once. */
interface Asked {
  readonly type: (typeof CONTAINER_REQUESTS)[number];
  readonly ref: 'sandbox-name' | 'sandbox-id' | 'nobody' | 'two';
  readonly nobody: string;
  readonly pid: number;
  readonly trailingNul: boolean;
}

/** A malformed PDU and what the server must do with it. */
interface Malformed {
  readonly what: string;
  readonly bytes: Buffer;
  readonly replyType: number;
  readonly status: number;
  readonly closes: boolean;
}

function header(type: number, length: number, status: number, version: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeInt32LE(type, 0);
  b.writeInt32LE(length, 4);
  b.writeInt32LE(status, 8);
  b.writeInt32LE(version, 12);
  return b;
}

const replyTypeOf = (type: number): number => (REQUESTS.includes(type) ? type + 1 : type);

const malformed: fc.Arbitrary<Malformed> = fc.oneof(
  // A length field the stream cannot be re-synchronised after: below the header, or above the largest PDU.
  fc
    .record({
      type: fc.oneof(fc.constantFrom(...REQUESTS), int32),
      length: int32.filter((n) => n < 16 || n > MAX_PDU_SIZE),
      rest: fc.uint8Array({ minLength: 0, maxLength: 40 }),
    })
    .map(({ type, length, rest }) => ({
      what: `length ${length} for type 0x${(type >>> 0).toString(16)}`,
      bytes: Buffer.concat([header(type, length, 0, 2, 16), rest]),
      replyType: replyTypeOf(type),
      status: -EINVAL,
      closes: true,
    })),
  // A type the server does not serve, framed right.
  fc
    .record({ type: int32.filter((t) => !REQUESTS.includes(t)), body: fc.uint8Array({ maxLength: 60 }) })
    .map(({ type, body }) => {
      const b = header(type, 16 + body.length, 0, 2, 16 + body.length);
      b.set(body, 16);
      return { what: `type 0x${(type >>> 0).toString(16)}`, bytes: b, replyType: type, status: -ENOTSUP, closes: false };
    }),
  // A version other than 1 or 2.
  fc
    .record({ type: fc.constantFrom(...CONTAINER_REQUESTS), version: int32.filter((v) => v !== 1 && v !== 2) })
    .map(({ type, version }) => {
      const b = encodeContainer(type, 'sbx');
      b.writeInt32LE(version, 12);
      return { what: `version ${version}`, bytes: b, replyType: type + 1, status: -ENOTSUP, closes: false };
    }),
  // A name length that disagrees with the PDU: negative (-EINVAL), too long (-E2BIG), or just wrong (-EINVAL).
  fc
    .record({ type: fc.constantFrom(...CONTAINER_REQUESTS), name: fc.uint8Array({ maxLength: 50 }), namelen: int32 })
    .filter(({ name, namelen }) => namelen !== name.length)
    .map(({ type, name, namelen }) => {
      const b = encodeContainer(type, Buffer.from(name));
      b.writeInt32LE(namelen, 20);
      const status = namelen < 0 ? -EINVAL : namelen >= 4096 ? -E2BIG : -EINVAL;
      return { what: `namelen ${namelen} for ${name.length} bytes`, bytes: b, replyType: type + 1, status, closes: false };
    }),
);

describeWith('root and croot’s native module', () => probes.root() ?? probes.native(), 'RootServer over a real socket (properties)', () => {
  let dir: string;
  let sock: string;
  let sandbox: Sandbox;
  let container: Container;
  let server: RootServer;
  let truth: { hostname: string; pid: number; cgroup: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-srvprop-'));
    sock = join(dir, 'pmcd', 'root.socket');
    sandbox = await startSandbox();
    container = createCrootContainer({
      config: {
        allowUids: [0],
        staticContainers: [
          { name: 'sbx', id: 'ab12cd340000', pid: sandbox.pid },
          { name: 'twin', id: 'ab12ef560000', pid: sandbox.pid },
        ],
      },
      modules: [nativeModule, staticEngineModule],
    });
    container.bind(RootServer).toSelf().inSingletonScope();
    await container.get<EngineRegistry>(EngineRegistry).start();
    server = container.get(RootServer);
    await server.listen(sock);
    truth = { hostname: hostnameTruth(sandbox.pid), pid: sandbox.pid, cgroup: cgroupTruth(sandbox.pid) };
  });

  afterAll(async () => {
    await server?.close();
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const nameOf = (a: Asked): string =>
    a.ref === 'sandbox-name' ? 'sbx' : a.ref === 'sandbox-id' ? 'ab12cd340000' : a.ref === 'two' ? 'ab12' : a.nobody;

  /** The reply the kernel's facts call for: [type, status, pid, name]. */
  function expectedReply(a: Asked): [number, number, number, string] {
    if (a.ref === 'nobody') return [a.type + 1, -12399, a.pid, ''];
    if (a.ref === 'two') return [a.type + 1, -ENOTUNIQ, a.pid, ''];
    const name = a.type === PduType.HOSTNAME_REQ ? truth.hostname : a.type === PduType.CGROUPNAME_REQ ? truth.cgroup : '';
    return [a.type + 1, 0, truth.pid, name];
  }

  const asked: fc.Arbitrary<Asked> = fc.record({
    type: fc.constantFrom(...CONTAINER_REQUESTS),
    ref: fc.constantFrom('sandbox-name' as const, 'sandbox-id' as const, 'nobody' as const, 'two' as const),
    // No container's name, and not hex (so no id prefix either).
    nobody: fc.stringMatching(/^zz-[g-z0-9_.-]{0,30}$/),
    pid: fc.integer({ min: 1, max: 2 ** 22 }),
    trailingNul: fc.boolean(),
  });

  it('answers any stream of valid requests, cut anywhere, with one reply each in order, carrying the kernel’s facts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(asked, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), async (requests, cuts) => {
        const wire = Buffer.concat(requests.map((a) => encodeContainer(a.type, nameOf(a), { pid: a.pid, trailingNul: a.trailingNul })));
        const at = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((x, y) => x - y);
        const c = await RawRootClient.open(sock);
        try {
          let from = 0;
          for (const to of [...at, wire.length]) {
            await c.write(wire.subarray(from, to));
            await new Promise((r) => setImmediate(r));
            from = to;
          }
          for (const a of requests) {
            const reply = decodeContainer((await c.next()) as Buffer);
            expect([nameOf(a), reply.type, reply.status, reply.pid, reply.name]).toEqual([nameOf(a), ...expectedReply(a)]);
          }
        } finally {
          c.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('answers every malformed PDU with the documented error, closing only where the stream cannot be re-synchronised', async () => {
    const before = openFds();
    await fc.assert(
      fc.asyncProperty(malformed, async (bad) => {
        const c = await RawRootClient.open(sock);
        try {
          await c.write(bad.bytes);
          const reply = await c.next();
          expect([bad.what, reply?.length, reply?.readInt32LE(0), reply?.readInt32LE(8)]).toEqual([
            bad.what,
            REPLY_SIZE[bad.replyType - 1] ?? 16,
            bad.replyType,
            bad.status,
          ]);
          if (bad.closes) {
            expect([bad.what, await c.next()]).toEqual([bad.what, undefined]);
          } else {
            // The connection is still in step: the next request is answered as usual.
            await c.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
            expect([bad.what, decodeContainer((await c.next()) as Buffer).pid]).toEqual([bad.what, truth.pid]);
          }
        } finally {
          c.close();
        }
      }),
      { numRuns: 300 },
    );
    // Still serving, with every connection gone and no fd left behind.
    const c = await RawRootClient.open(sock);
    await c.write(encodeContainer(PduType.HOSTNAME_REQ, 'sbx'));
    expect(decodeContainer((await c.next()) as Buffer).name).toBe(truth.hostname);
    c.close();
    for (let i = 0; i < 50 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(server.connectionCount).toBe(0);
    expect(fdsOpenedSince(before)).toEqual([]);
  });
});
