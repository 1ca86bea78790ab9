/**
 * croot's server as the drop-in pmdaroot under PCP's real pmcd: with the
 * `root` line removed from pmcd.conf and croot listening on PCP's root
 * socket first, pmcd starts every pipe PMDA through croot (STARTPMDA, fds
 * passed back), and pmdalinux asks croot for container hostnames, Docker,
 * Podman and containerd alike. The machine is put back afterwards: pmcd.conf
 * restored byte for byte, pmcd (with PCP's own pmdaroot) restarted if it ran.
 *
 * The server runs in this test's process, built exactly as crootd builds it
 * (bin/default-modules.ts: the native module and every engine) plus the
 * process service.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Container } from 'inversify';
import { defaultModules } from '../bin/default-modules.js';
import { resolveUserUid } from '../core/config-file.js';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { ProcessSpawner } from '../core/host-services.js';
import { Logger, StreamLogger } from '../core/logger.js';
import { ProcessManager, ProcessManagerOptions, processServiceModule } from '../core/process-manager.js';
import { RootServer } from '../core/root-server.js';
import { NativeProcessSpawner } from '../native/native-process-spawner.js';
import { commandWorks, describeWith, run } from './support/components.js';
import { PMCD_CONF, ROOT_SOCKET, pidsOf, pminfo, systemPmdaroots, pminfoValues, startPmcd, takeOverFromPcp, withoutRootLine, type PcpTakeover } from './support/pmcd-dropin.js';

const pcpAndRoot = (): string | undefined =>
  process.getuid?.() !== 0
    ? 'needs root'
    : (commandWorks('test', ['-x', '/etc/init.d/pmcd']) ?? commandWorks('test', ['-x', '/var/lib/pcp/pmdas/linux/pmdalinux']) ?? commandWorks('which', ['pminfo']));

/** The pipe agents of a pmcd.conf: label -> command line. */
function pipeAgents(conf: string): Map<string, string> {
  const agents = new Map<string, string>();
  for (const line of conf.split('\n')) {
    const m = /^\s*(\S+)\s+\d+\s+pipe\s+binary\s+(.*\S)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith('#')) agents.set(m[1] as string, m[2] as string);
  }
  return agents;
}

/** The hostname seen inside `pid`'s UTS namespace, asked of the kernel directly. */
function hostnameOf(pid: number): string {
  return run('nsenter', ['-u', '-t', String(pid), 'hostname']);
}

/**
 * kernel.uname.nodename as pmdalinux reports it inside `container`. Retried
 * for a while: an engine may learn of a container a moment after it started.
 */
async function nodenameIn(container: string, expected: string, timeoutMs = 15000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = pminfoValues(await pminfo([`--container=${container}`, '-f', 'kernel.uname.nodename'])).get('') ?? '';
    if (value === expected || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describeWith('PCP (pmcd, pmdalinux) and root', pcpAndRoot, "crootd as the drop-in pmdaroot under PCP's real pmcd", () => {
  const tag = randomBytes(4).toString('hex');
  let dir: string;
  let logPath: string;
  let logFd: number | undefined;
  let logClosed = false;
  let originalConf: string;
  let takeover: PcpTakeover | undefined;
  let container: Container;
  let server: RootServer | undefined;
  let manager: ProcessManager | undefined;
  let registry: EngineRegistry | undefined;

  const log = (): string => readFileSync(logPath, 'utf8');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-dropin-'));
    logPath = join(dir, 'crootd.log');
    logFd = openSync(logPath, 'a');
    originalConf = readFileSync(PMCD_CONF, 'utf8');
    takeover = await takeOverFromPcp();

    const pcpUid = await resolveUserUid('pcp');
    const { modules, problems } = defaultModules();
    expect(problems).toEqual([]);
    container = createCrootContainer({
      config: { socketPath: ROOT_SOCKET, allowUids: pcpUid === undefined ? [0] : [0, pcpUid] },
      modules: [...modules, processServiceModule],
    });
    if (!container.isBound(ProcessSpawner)) container.bind<ProcessSpawner>(ProcessSpawner).to(NativeProcessSpawner).inSingletonScope();
    const fd = logFd;
    container.bind<Logger>(Logger).toConstantValue(new StreamLogger('debug', (line) => void (logClosed || writeSync(fd, line))));
    container.bind<ProcessManagerOptions>(ProcessManagerOptions).toConstantValue({ childStderrFd: fd });
    container.bind(RootServer).toSelf().inSingletonScope();
    registry = container.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    manager = container.get(ProcessManager);
    server = container.get(RootServer);
    await server.listen(ROOT_SOCKET);
    await startPmcd();
    // pmcd is up once it answers; its agents a moment later.
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      try {
        const status = pminfoValues(await pminfo(['-f', 'pmcd.agent.status']));
        if (status.size > 0 && [...status.values()].every((v) => v === '0')) break;
      } catch {
        // not answering yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 120000);

  afterAll(async () => {
    const stopCroot = async (): Promise<void> => {
      await manager?.shutdown();
      await server?.close();
      await registry?.stop();
    };
    let problem: unknown;
    try {
      // pmcd stops first (its agents with it, while croot still answers), then croot, then PCP comes back.
      if (takeover) await takeover.giveBack(stopCroot);
      else await stopCroot();
    } catch (err) {
      problem = err;
    }
    logClosed = true;
    if (logFd !== undefined) closeSync(logFd);
    if (process.env.CROOT_KEEP_DROPIN_LOG === undefined) rmSync(dir, { recursive: true, force: true });
    if (problem !== undefined) throw problem;
  }, 120000);

  it('runs with the root line removed and PCP’s own pmdaroot not running', () => {
    expect(readFileSync(PMCD_CONF, 'utf8')).toBe(withoutRootLine(originalConf));
    expect(systemPmdaroots()).toEqual([]);
    expect(pidsOf('pmcd').length).toBeGreaterThan(0);
  });

  it('starts every pipe PMDA of pmcd.conf through crootd, each running as its child', () => {
    const agents = pipeAgents(readFileSync(PMCD_CONF, 'utf8'));
    expect(agents.size).toBeGreaterThan(0);
    const text = log();
    const running = new Set(manager?.runningPids ?? []);
    for (const [label, args] of agents) {
      const m = new RegExp(`INFO started process label=${label} pid=(\\d+)`).exec(text);
      expect({ label, started: m !== null }).toEqual({ label, started: true });
      const pid = Number(m?.[1]);
      expect(running.has(pid)).toBe(true);
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')).toBe(args);
      // As PCP's pmdaroot would: run as root.
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+0\s/m);
    }
  });

  it('has every agent connected (pmcd.agent.status all 0)', async () => {
    const status = pminfoValues(await pminfo(['-f', 'pmcd.agent.status']));
    expect(status.size).toBeGreaterThan(0);
    expect(Object.fromEntries(status)).toEqual(Object.fromEntries([...status.keys()].map((k) => [k, '0'])));
    expect(status.has('linux')).toBe(true);
  });

  it("answers kernel.uname.nodename with the host's hostname", async () => {
    expect(pminfoValues(await pminfo(['-f', 'kernel.uname.nodename'])).get('')).toBe(run('hostname', []));
  });

  describeWith('docker', () => commandWorks('docker', ['info', '--format', '{{.ID}}']), 'a Docker container', () => {
    const name = `croot-t-dropin-d-${tag}`;
    afterAll(() => void commandWorks('docker', ['rm', '-f', name]));
    it('answers pminfo --container=NAME with the container’s hostname', async () => {
      run('docker', ['run', '-d', '--name', name, '--hostname', `${name}-h`, 'croot-test:latest', 'sleep', '100000']);
      const pid = Number(run('docker', ['inspect', '--format', '{{.State.Pid}}', name]));
      expect(hostnameOf(pid)).toBe(`${name}-h`);
      expect(await nodenameIn(name, `${name}-h`)).toBe(`${name}-h`);
    });
  });

  describeWith('podman', () => commandWorks('podman', ['info', '--format', '{{.Host.Arch}}']), 'a Podman container', () => {
    const name = `croot-t-dropin-p-${tag}`;
    afterAll(() => void commandWorks('podman', ['rm', '-f', name]));
    it('answers pminfo --container=NAME with the container’s hostname', async () => {
      run('podman', ['run', '-d', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--name', name, '--hostname', `${name}-h`, 'localhost/croot-test:latest', 'sleep', '100000']);
      const pid = Number(run('podman', ['inspect', '--format', '{{.State.Pid}}', name]));
      expect(hostnameOf(pid)).toBe(`${name}-h`);
      expect(await nodenameIn(name, `${name}-h`)).toBe(`${name}-h`);
    });
  });

  describeWith('containerd', () => commandWorks('ctr', ['version']), 'a containerd container (which PCP alone cannot name)', () => {
    const id = `croot-t-dropin-c-${tag}`;
    afterAll(() => {
      commandWorks('ctr', ['task', 'kill', '-s', 'SIGKILL', id]);
      for (let i = 0; i < 50 && commandWorks('ctr', ['task', 'delete', id]) !== undefined; i++) execFileSync('sleep', ['0.1']);
      commandWorks('ctr', ['container', 'delete', id]);
    });
    it('answers pminfo --container=default/ID with the container’s hostname', async () => {
      // ctr has no --hostname: the container names its own UTS namespace.
      run('ctr', ['run', '-d', '--privileged', 'docker.io/library/croot-test:latest', id, 'sh', '-c', `hostname ${id}-h && exec sleep 100000`]);
      const pid = Number(/^\S+\s+(\d+)/m.exec(run('ctr', ['task', 'ls']).split('\n').find((l) => l.startsWith(`${id} `)) ?? '')?.[1]);
      const deadline = Date.now() + 10000;
      while (hostnameOf(pid) !== `${id}-h` && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(hostnameOf(pid)).toBe(`${id}-h`);
      expect(await nodenameIn(`default/${id}`, `${id}-h`)).toBe(`${id}-h`);
    });
  });
});
