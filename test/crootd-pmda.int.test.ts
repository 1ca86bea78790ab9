/**
 * `crootd --pmda` without pmcd: the built crootd spawned with a pipe on its
 * stdin/stdout as pmcd would, on a private socket. It greets with
 * credentials only once its socket listens, speaks nothing but PDUs on
 * stdout, answers the root PMDA's requests, and when the pipe closes it
 * stops as on SIGTERM: socket removed, the agents it started killed and
 * reaped, exit status 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RootClient } from '../core/client/root-client.js';
import { MetricType, PduFramer, pdus, pmid, type Pdu } from '../pmda/index.js';
import { describeWith, probes } from './support/components.js';
import { CROOTD, builtBinaries, sleep } from './support/crootd-process.js';
import { processState } from './support/processes.js';

const ready = (): string | undefined => probes.root() ?? probes.native() ?? builtBinaries();

describeWith('root, the native module and a built crootd', ready, 'crootd --pmda on a pipe, as pmcd starts it', () => {
  let dir: string;
  let socketPath: string;
  let logPath: string;
  let crootd: ChildProcess;
  let exited: Promise<number | null>;
  const received: Pdu[] = [];
  let stdoutBytes = 0;
  let framingError: string | undefined;
  let socketAtGreeting: boolean | undefined;
  let sleeperPid = -1;

  const next = async (kind: Pdu['kind'], count: number): Promise<Pdu> => {
    for (let i = 0; i < 300 && received.filter((p) => p.kind === kind).length < count; i++) await sleep(50);
    const found = received.filter((p) => p.kind === kind)[count - 1];
    if (found === undefined) throw new Error(`no ${kind} PDU #${count} from crootd; log:\n${readFileSync(logPath, 'utf8')}`);
    return found;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-pmda-'));
    socketPath = join(dir, 'pmcd', 'root.socket');
    logPath = join(dir, 'crootd.log');
    crootd = spawn(process.execPath, [CROOTD, '--pmda', '--socket', socketPath, '--log-file', logPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    exited = new Promise((resolve) => crootd.once('exit', (code) => resolve(code)));
    const framer = new PduFramer();
    crootd.stdout?.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (socketAtGreeting === undefined) socketAtGreeting = existsSync(socketPath);
      try {
        received.push(...framer.push(chunk).map((p) => pdus.decodePdu(p)));
      } catch (err) {
        framingError = (err as Error).message;
      }
    });
  });

  afterAll(async () => {
    if (crootd.exitCode === null && crootd.signalCode === null) crootd.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends a version 2 credentials PDU first, once its socket listens', async () => {
    const creds = await next('creds', 1);
    expect(received[0]).toBe(creds);
    expect(creds).toMatchObject({ creds: [{ type: 1, version: 2, flags: 0 }], from: crootd.pid });
    expect(socketAtGreeting).toBe(true);
  });

  it('answers pmcd’s requests for the containers metrics', async () => {
    crootd.stdin?.write(pdus.encodeCreds({ from: 1, creds: [{ type: 1, version: 2, flags: 0 }] }));
    crootd.stdin?.write(pdus.encodeDescReq({ from: 0, pmid: pmid(1, 0, 0) }));
    expect(await next('desc', 1)).toMatchObject({ desc: { pmid: pmid(1, 0, 0), type: MetricType.STRING, indom: (1 << 22) >>> 0 } });
    crootd.stdin?.write(pdus.encodeFetch({ from: 0, ctxid: 0, pmids: [pmid(1, 0, 0), pmid(1, 2, 0), pmid(1, 0, 99)] }));
    const result = await next('result', 1);
    expect(result.kind === 'result' && result.vsets.map((v) => v.pmid)).toEqual([pmid(1, 0, 0), pmid(1, 2, 0), pmid(1, 0, 99)]);
  });

  it('serves the root socket meanwhile (STARTPMDA of an agent)', async () => {
    const client = await RootClient.connect(socketPath);
    try {
      const started = await client.processStart(1, 'sleeper', '/bin/sleep 100000');
      expect(readFileSync(`/proc/${started.pid}/comm`, 'utf8').trim()).toBe('sleep');
      sleeperPid = started.pid;
    } finally {
      client.close();
    }
  });

  it('writes nothing but PDUs on stdout', () => {
    expect(framingError).toBeUndefined();
    const total = received.reduce((n, p) => n + pdus.encodePdu(p).length, 0);
    expect(total).toBe(stdoutBytes);
  });

  it('stops when pmcd closes the pipe: exit 0, socket removed, its agents killed and reaped', async () => {
    crootd.stdin?.end();
    expect(await exited).toBe(0);
    expect(existsSync(socketPath)).toBe(false);
    expect(readFileSync(logPath, 'utf8')).toMatch(/ INFO stopping reason="?pmcd closed the PMDA pipe/);
    expect(sleeperPid).toBeGreaterThan(0);
    // Killed: a sleep 100000 left alone would still be there (reparented to init).
    expect(processState(sleeperPid)).toBeUndefined();
  });
});
