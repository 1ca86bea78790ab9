/**
 * crootd's log stays bounded under a flood of bad requests: 100 000
 * malformed PDUs from a real client against the built crootd write a few
 * dozen lines, and the summaries still account for every one of them.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';

/** PDUs in host byte order (little-endian here, as the protocol's C structs). */
function pdu(type: number, length: number, version: number, words: readonly number[] = []): Buffer {
  const buf = Buffer.alloc(Math.max(16, 16 + words.length * 4));
  buf.writeInt32LE(type, 0);
  buf.writeInt32LE(length, 4);
  buf.writeInt32LE(0, 8);
  buf.writeInt32LE(version, 12);
  words.forEach((w, i) => buf.writeInt32LE(w, 16 + i * 4));
  return buf;
}

/** Framed by their length but wrong inside, so the connection goes on after each. */
const MALFORMED = [
  pdu(0x9100, 24, 2, [0, 0]), // unknown request type
  pdu(0x9001, 24, 2, [0, 100]), // HOSTNAME with namelen 100 in a 24-byte PDU
  pdu(0x9005, 24, 2, [0, -1]), // CGROUPNAME with a negative namelen
  pdu(0x9009, 28, 2, [1, 0, 0]), // STOPPMDA of 28 bytes instead of 32
];
/** A length shorter than the header: the server answers and closes. */
const UNFRAMEABLE = pdu(0x9001, 8, 2);

/** Sends `count` PDUs on one connection (the last one unframeable) and resolves when the server has closed it. */
function floodOnce(path: string, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const batch: Buffer[] = [];
    for (let i = 0; i < count - 1; i++) batch.push(MALFORMED[i % MALFORMED.length] as Buffer);
    batch.push(UNFRAMEABLE);
    socket.once('connect', () => socket.write(Buffer.concat(batch)));
    socket.on('data', () => undefined);
    socket.once('error', reject);
    socket.once('close', () => resolve());
  });
}

describeWith('root, the native module and the built binaries', () => probes.root() ?? probes.native() ?? builtBinaries(), "crootd's log under a flood of bad requests", () => {
  let dir: string;
  let crootd: CrootdProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-logflood-'));
    writeFileSync(join(dir, 'croot.json'), JSON.stringify({ disabledEngines: ['docker', 'podman', 'containerd', 'lxc'] }));
    crootd = await startCrootd({ socketPath: join(dir, 'root.socket'), logPath: join(dir, 'crootd.log'), args: ['--config', join(dir, 'croot.json'), '--no-pcp-user'] });
  });

  afterAll(async () => {
    await crootd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes at most a few dozen lines for 100 000 malformed PDUs, and its summaries count them all', async () => {
    const before = statSync(crootd?.logPath ?? '').size;
    const connections = 100;
    const perConnection = 1000;
    for (let c = 0; c < connections; c++) await floodOnce(crootd?.socketPath ?? '', perConnection);
    // crootd writes what it still counts when it stops.
    expect(await crootd?.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const flood = (crootd?.log() ?? '').slice(before).split('\n').filter((l) => / WARN /.test(l));
    const bytes = flood.reduce((sum, l) => sum + Buffer.byteLength(l) + 1, 0);
    // The bound: at most 60 lines a minute plus one summary per kind (docs/security.md), each cut short.
    expect(bytes).toBeLessThan(24 * 1024);
    expect(flood.length).toBeLessThan(80);
    // Every bad PDU is accounted for: written in full or counted in a summary.
    const counted = flood.map((l) => Number(/ ×(\d+) in the last \d+ s/.exec(l)?.[1] ?? 1)).reduce((a, b) => a + b, 0);
    expect(counted).toBeGreaterThanOrEqual(connections * perConnection);
  });
});
