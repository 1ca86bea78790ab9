/**
 * PCP's own C client (libpcp_pmda) against croot's server: RootServer runs
 * in this process with the native module and the static engine, serving a
 * real process in its own UTS and PID namespaces (test/support/sandbox.ts).
 * The C library sends names with their NUL; croot's client sends them with
 * and without.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { pmdaRootConnect, pmdaRootContainerHostName, pmdaRootShutdown } from '../core/client/pmda-root.js';
import { processServiceModule } from '../core/process/process-service-module.js';
import { RootClient } from '../core/client/root-client.js';
import { RootServer } from '../core/server/root-server.js';
import { staticEngineModule } from '../engines/static/index.js';
import { nativeModule } from '../native/native-module.js';
import { nativeTransport } from '../native/native-transport.js';
import { describeWith, probes } from './support/components.js';
import { buildPcpCClient, connected, makeTempDir, runPcpCClient, type CClientResult } from './support/pcp-peer.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';
import { cgroupTruth } from './support/truth.js';
import { uniqueName } from './support/testbed.js';

function probe(): string | undefined {
  return probes.root() ?? probes.pcpClientLib() ?? probes.native();
}

describeWith('root, PCP’s libpcp_pmda and croot’s native module', probe, 'PCP’s C client against croot’s server', () => {
  const name = uniqueName();
  const hostname = `${name}-h`;
  let work: string;
  let cClient: string;
  let socketPath: string;
  let sleeper: Sandbox;
  let container: Container;
  let server: RootServer;

  beforeAll(async () => {
    work = makeTempDir('croot-interop-d-');
    cClient = buildPcpCClient(work);
    sleeper = await startSandbox(hostname);
    socketPath = join(work, 'pmcd', 'root.socket');
    container = createCrootContainer({
      config: { socketPath, allowUids: [0], staticContainers: [{ name, pid: sleeper.pid }], disabledEngines: [] },
      modules: [nativeModule, staticEngineModule],
    });
    container.loadSync(processServiceModule);
    container.bind(RootServer).toSelf().inSingletonScope();
    server = container.get(RootServer);
    await server.listen(socketPath);
  });

  afterAll(async () => {
    await server?.close();
    await sleeper?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('gives PCP’s C client the hostname, init pid and cgroup of a container, for names sent with their NUL', async () => {
    const [connect, host, pid, cgroup] = await runPcpCClient(cClient, socketPath, [`hostname:${name}`, `processid:${name}`, `cgroup:${name}`]);
    expect(connect).toMatchObject(connected());
    expect(host).toMatchObject({ sts: hostname.length, value: hostname });
    expect(pid?.sts).toBe(sleeper.pid);
    expect(cgroup?.sts).toBe(Buffer.byteLength(cgroup?.value ?? ''));
    expect(cgroup?.value).toBe(cgroupTruth(sleeper.pid));
  });

  it('answers a name that matches nothing with -12399 in the C client', async () => {
    const results = await runPcpCClient(cClient, socketPath, [`hostname:${name}-nosuch`, `processid:${name}-nosuch`, `cgroup:${name}-nosuch`, `processid:${name}`]);
    expect(results.slice(1).map((r) => r.sts)).toEqual([-12399, -12399, -12399, sleeper.pid]);
  });

  it.each([
    ['with the trailing NUL', true],
    ['without the trailing NUL', false],
  ])('gives croot’s own client the same answers for names sent %s', async (_what, trailingNul) => {
    const [, host, pid, cgroup] = await runPcpCClient(cClient, socketPath, [`hostname:${name}`, `processid:${name}`, `cgroup:${name}`]);
    const client = await RootClient.connect(socketPath, { transport: nativeTransport, trailingNul });
    try {
      expect(client.features).toBe(7);
      await expect(client.hostname(name)).resolves.toBe(host?.value);
      await expect(client.processId(name)).resolves.toBe(pid?.sts);
      await expect(client.cgroupName(name)).resolves.toBe(cgroup?.value);
      await expect(client.processId(`${name}-nosuch`)).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER', status: -12399 });
    } finally {
      client.close();
    }
  });

  it('returns the same numbers and buffers from croot’s pmdaRoot* API as from libpcp_pmda', async () => {
    const cases: [number, number][] = [
      [name.length + 1, 64],
      [name.length, 64],
      [name.length + 1, hostname.length],
      [name.length + 1, hostname.length + 1],
      [-1, 64],
      [4096, 64],
    ];
    const oracle = (await runPcpCClient(cClient, socketPath, cases.map(([n, b]) => `hostname-len:${n}:${b}:${name}`))).slice(1);
    const fd = await pmdaRootConnect(socketPath);
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      for (const [i, [namelen, buflen]] of cases.entries()) {
        const buffer = Buffer.alloc(4096, 'X');
        const sts = await pmdaRootContainerHostName(fd, name, namelen, buffer, buflen);
        expect([namelen, buflen, sts, buffer.subarray(0, 64).toString('latin1').replace(/\0.*$/s, '')]).toEqual([
          namelen,
          buflen,
          oracle[i]?.sts,
          oracle[i]?.raw,
        ]);
      }
    } finally {
      pmdaRootShutdown(fd);
    }
  });

  it('starts a pipe-IPC process for PCP’s C client, passes it both pipes, and reaps it with its status', async () => {
    const [, start] = await runPcpCClient(cClient, socketPath, ['start:2:echo:/bin/echo hello from crootd']);
    // The output came through the outfd the library received (it reads it to EOF).
    expect(start).toMatchObject({ sts: 0, output: 'hello from crootd\n' });
    const pid = start?.pid ?? -1;
    // The kernel's view of the two fds the library received: two different pipes.
    expect(start?.infdTarget).toMatch(/^pipe:\[\d+\]$/);
    expect(start?.outfdTarget).toMatch(/^pipe:\[\d+\]$/);
    expect(start?.infdTarget).not.toBe(start?.outfdTarget);
    // The child exits by itself; a wait for any child reports it, exit status 0, on some try.
    const reaped = await waitFor(pid);
    expect([reaped.sts, reaped.status]).toEqual([pid, 0]);
  });

  /** The command name the kernel shows for `pid` (also a zombie's); undefined once reaped. */
  function commOf(pid: number): string | undefined {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  /** `wait:-1` through PCP’s C client, one connection a try, until it reports `pid` (10 s at most). */
  async function waitFor(pid: number): Promise<CClientResult> {
    const seen: CClientResult[] = [];
    for (const deadline = Date.now() + 10000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const wait = (await runPcpCClient(cClient, socketPath, ['wait:-1']))[1];
      if (wait?.sts === pid) return wait;
      if (wait !== undefined) seen.push(wait);
    }
    throw new Error(`pid ${pid} was never reported by wait:-1 (state ${commOf(pid) ?? 'gone'}); saw ${JSON.stringify(seen.slice(-3))}`);
  }
});
