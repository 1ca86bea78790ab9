/**
 * The static engine against real namespace sandboxes (unshare: own UTS, PID
 * and mount namespaces), through the registry and the core resolvers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { chooseCgroupPath, parseCgroupFile } from '../core/proc.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from '../core/resolvers.js';
import { staticEngineModule } from '../engines/static/index.js';
import { loadNative } from '../native/load-native.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes } from './support/components.js';

interface Sandbox {
  readonly unshare: ChildProcess;
  /** Host PID of the sandbox's init (the `sleep`, PID 1 inside). */
  readonly pid: number;
  readonly hostname: string;
  readonly exited: Promise<void>;
}

const rand = (): string => Math.random().toString(36).slice(2, 10);
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts `unshare --uts --pid --fork --mount-proc`, and finds the host PID of the `sleep` it forks. */
async function startSandbox(): Promise<Sandbox> {
  const hostname = `croot-sbx-${rand()}`;
  const unshare = spawn('unshare', ['--uts', '--pid', '--fork', '--mount-proc', 'sh', '-c', `hostname ${hostname} && exec sleep 100`], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => unshare.once('exit', () => resolve()));
  const parent = unshare.pid;
  if (parent === undefined) throw new Error('unshare did not start');
  for (let i = 0; i < 200; i++) {
    const children = readOr(`/proc/${parent}/task/${parent}/children`).trim();
    const pid = Number(children.split(' ')[0]);
    if (pid > 0 && readOr(`/proc/${pid}/comm`).trim() === 'sleep') return { unshare, pid, hostname, exited };
    if (unshare.exitCode !== null) break;
    await pause(25);
  }
  unshare.kill('SIGKILL');
  await exited;
  throw new Error('the sandbox did not come up (unshare failed?)');
}

async function stopSandbox(s: Sandbox): Promise<void> {
  if (s.unshare.exitCode === null && s.unshare.signalCode === null) {
    try {
      process.kill(s.pid, 'SIGKILL'); // init of a PID namespace: only SIGKILL reaches it from outside
    } catch {
      // already gone
    }
    await s.exited;
  }
}

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** The cgroup hierarchy core/proc.ts will read the answer from, so moving a process there changes the answer. */
function cgroupMount(): string {
  const self = parseCgroupFile(readFileSync('/proc/self/cgroup', 'utf8'));
  const unified = self.find((l) => l.hierarchy === 0 && l.controllers.length === 0);
  const unifiedMount = existsSync('/sys/fs/cgroup/unified/cgroup.procs') ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup';
  if (unified !== undefined && unified.path !== '/') return unifiedMount;
  if (existsSync('/sys/fs/cgroup/memory/cgroup.procs')) return '/sys/fs/cgroup/memory';
  return unifiedMount;
}

describeWith('root', probes.root, 'StaticEngine with real namespace sandboxes', () => {
  const tag = rand();
  const byPid = `croot-t-pid-${tag}`;
  const byPidfile = `croot-t-pidfile-${tag}`;
  const cgroupName = `croot-t-${tag}`;
  const sandboxes: Sandbox[] = [];
  let cgroupDir: string | undefined;
  let work: string;
  let pidfile: string;
  let container: Container;
  let registry: EngineRegistry;
  let a: Sandbox;
  let b: Sandbox;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'croot-t-static-'));
    a = await startSandbox();
    sandboxes.push(a);
    b = await startSandbox();
    sandboxes.push(b);

    cgroupDir = join(cgroupMount(), cgroupName);
    mkdirSync(cgroupDir);
    writeFileSync(join(cgroupDir, 'cgroup.procs'), String(a.pid));

    pidfile = join(work, 'sandbox.pid');
    writeFileSync(pidfile, `${a.pid}\n`);
    container = createCrootContainer({
      config: {
        staticContainers: [
          { name: byPid, aliases: [a.hostname], pid: a.pid },
          { name: byPidfile, pidfile },
        ],
      },
      // The native module loads its addon lazily: only the hostname test below needs it.
      modules: [staticEngineModule, nativeModule],
    });
    registry = container.get<EngineRegistry>(EngineRegistry);
    await registry.start();
  });

  afterAll(async () => {
    await registry?.stop();
    await Promise.all(sandboxes.map(stopSandbox));
    if (cgroupDir !== undefined && existsSync(cgroupDir)) {
      // A cgroup can be removed once its last process is reaped; the kernel may lag a moment.
      for (let i = 0; i < 40; i++) {
        try {
          rmdirSync(cgroupDir);
          break;
        } catch {
          await pause(50);
        }
      }
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('finds the sandbox init as PID 1 of its own namespace (a sanity check of the sandbox itself)', () => {
    const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${a.pid}/status`, 'utf8'))?.[1]?.split(/\s+/);
    expect(nspid).toEqual([String(a.pid), '1']);
  });

  it('answers the host PID of a sandbox declared by pid, by name and by alias', async () => {
    const pids = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    expect(await pids.resolveProcessId(byPid)).toBe(a.pid);
    expect(await pids.resolveProcessId(`static:${a.hostname}`)).toBe(a.pid);
    expect((await registry.lookup(byPid)).pidStartTime).toBe(Number(readFileSync(`/proc/${a.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19]));
  });

  it("answers the cgroup the kernel reports in the sandbox's /proc/PID/cgroup", async () => {
    const cgroups = container.get<ContainerCGroupResolver>(ContainerCGroupResolver);
    const answer = await cgroups.resolveCGroupName(byPid);
    expect(answer.pid).toBe(a.pid);
    expect(answer.value).toBe(cgroupName);
    expect(answer.value).toBe(chooseCgroupPath(parseCgroupFile(readFileSync(`/proc/${a.pid}/cgroup`, 'utf8'))));
  });

  it('follows a pidfile rewritten to a different process', async () => {
    const pids = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    const cgroups = container.get<ContainerCGroupResolver>(ContainerCGroupResolver);
    expect(await pids.resolveProcessId(byPidfile)).toBe(a.pid);
    expect((await cgroups.resolveCGroupName(byPidfile)).value).toBe(cgroupName);

    writeFileSync(pidfile, `${b.pid}\n`);
    await pause(1100); // the engine looks at the pidfile at most once a second
    expect(await pids.resolveProcessId(byPidfile)).toBe(b.pid);
    const answer = await cgroups.resolveCGroupName(byPidfile);
    expect(answer.pid).toBe(b.pid);
    expect(answer.value).toBe(chooseCgroupPath(parseCgroupFile(readFileSync(`/proc/${b.pid}/cgroup`, 'utf8'))));
  });

  describeWith(
    'the native module',
    () => {
      loadNative();
      return undefined;
    },
    'with the native module',
    () => {
      it("answers the hostname set inside the sandbox's UTS namespace", async () => {
        const hostnames = container.get<ContainerHostnameResolver>(ContainerHostnameResolver);
        const answer = await hostnames.resolveHostname(byPid);
        expect(answer.pid).toBe(a.pid);
        expect(answer.value).toBe(a.hostname);
        expect(answer.value).not.toBe(hostHostname());
      });
    },
  );

  it('answers ERR_NOT_RUNNING once the sandbox is killed, at once and after the engine notices', async () => {
    const pids = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    const cgroups = container.get<ContainerCGroupResolver>(ContainerCGroupResolver);
    await stopSandbox(a);
    expect(existsSync(`/proc/${a.pid}`)).toBe(false);
    await expect(pids.resolveProcessId(byPid)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });

    await pause(1100);
    expect(await registry.lookup(byPid)).toMatchObject({ running: false });
    await expect(pids.resolveProcessId(byPid)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    await expect(cgroups.resolveCGroupName(byPid)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    // The pidfile container now points at b, which still runs.
    expect(await pids.resolveProcessId(byPidfile)).toBe(b.pid);
  });
});
