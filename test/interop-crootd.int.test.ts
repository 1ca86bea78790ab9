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
import { ProcessSpawner } from '../core/host-services.js';
import { pmdaRootConnect, pmdaRootContainerHostName, pmdaRootShutdown } from '../core/pmda-root.js';
import { processServiceModule } from '../core/process-manager.js';
import { RootClient } from '../core/root-client.js';
import { RootServer } from '../core/root-server.js';
import { staticEngineModule } from '../engines/static/index.js';
import { nativeModule } from '../native/native-module.js';
import { nativeTransport } from '../native/native-transport.js';
import { describeWith, probes } from './support/components.js';
import { buildPcpCClient, makeTempDir, runPcpCClient } from './support/pcp-peer.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';
import { uniqueName } from './support/testbed.js';

function probe(): string | undefined {
  return probes.root() ?? probes.pcpClientLib() ?? probes.native();
}

/** Whether the native module offers a ProcessSpawner (needed for STARTPMDA). */
function processServicesAvailable(): boolean {
  try {
    return createCrootContainer({ modules: [nativeModule] }).isBound(ProcessSpawner);
  } catch {
    return false;
  }
}

describeWith('root, PCP’s libpcp_pmda and croot’s native module', probe, 'PCP’s C client against croot’s server', () => {
  const name = uniqueName();
  const hostname = `${name}-h`;
  const withProcesses = processServicesAvailable();
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
    if (withProcesses) container.loadSync(processServiceModule);
    container.bind(RootServer).toSelf().inSingletonScope();
    server = container.get(RootServer);
    await server.listen(socketPath);
  });

  afterAll(async () => {
    await server?.close();
    await sleeper?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  /** The cgroup paths of `pid` (v1 and v2 lines), without their leading `/`. */
  function cgroupPaths(pid: number): string[] {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1).replace(/^\//, ''));
  }

  it('gives PCP’s C client the hostname, init pid and cgroup of a container, for names sent with their NUL', async () => {
    const [connect, host, pid, cgroup] = await runPcpCClient(cClient, socketPath, [`hostname:${name}`, `processid:${name}`, `cgroup:${name}`]);
    expect(connect?.sts).toBeGreaterThanOrEqual(0);
    expect(host).toMatchObject({ sts: hostname.length, value: hostname });
    expect(pid?.sts).toBe(sleeper.pid);
    expect(cgroup?.sts).toBe(Buffer.byteLength(cgroup?.value ?? ''));
    expect(cgroupPaths(sleeper.pid)).toContain(cgroup?.value);
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

  (withProcesses ? it : it.skip)('starts a pipe-IPC process for PCP’s C client and passes it both pipes', async () => {
    const [, start, ...waits] = await runPcpCClient(cClient, socketPath, ['start:2:echo:/bin/echo hello from crootd', 'wait:-1', 'wait:-1', 'wait:-1']);
    expect(start).toMatchObject({ sts: 0, output: 'hello from crootd\n' });
    expect(start?.infd).toBeGreaterThanOrEqual(0);
    expect(start?.outfd).toBeGreaterThanOrEqual(0);
    expect(start?.pid).toBeGreaterThan(0);
    // The child may need a moment to exit; one of the waits (or a later one) reaps it.
    const reaped = waits.find((w) => w.sts === start?.pid);
    if (reaped !== undefined) expect(reaped.status).toBe(0);
    else {
      const later = await runPcpCClient(cClient, socketPath, ['wait:-1']);
      expect(later[1]?.sts).not.toBe(-1);
    }
  });
});
