/**
 * The static engine against real namespace sandboxes (unshare: own UTS, PID
 * and mount namespaces), through the registry and the core resolvers.
 */
import { settle } from './support/outcomes.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/registry/engine-registry.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { staticEngineModule } from '../engines/static/index.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes } from './support/components.js';
import { cgroupTruth } from './support/truth.js';
import { startTimeOf } from './support/processes.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

const rand = (): string => Math.random().toString(36).slice(2, 10);
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The cgroup hierarchy the answer is read from (unified unless this process sits at its root), so moving a process there changes the answer. */
function cgroupMount(): string {
  const unified = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  const unifiedMount = existsSync('/sys/fs/cgroup/unified/cgroup.procs') ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup';
  if (unified !== undefined && unified !== '0::/') return unifiedMount;
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
    a = await startSandbox(`croot-sbx-${rand()}`);
    sandboxes.push(a);
    b = await startSandbox(`croot-sbx-${rand()}`);
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
    await Promise.all(sandboxes.map((s) => s.stop()));
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
    expect((await registry.lookup(byPid)).startTime).toBe(startTimeOf(a.pid));
  });

  it("answers the cgroup the kernel reports in the sandbox's /proc/PID/cgroup", async () => {
    const cgroups = container.get<ContainerCGroupResolver>(ContainerCGroupResolver);
    const answer = await cgroups.resolveCGroupName(byPid);
    expect(answer.pid).toBe(a.pid);
    expect(answer.value).toBe(cgroupName);
    expect(answer.value).toBe(cgroupTruth(a.pid));
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
    expect(answer.value).toBe(cgroupTruth(b.pid));
  });

  describeWith('the native module', probes.native, 'with the native module', () => {
    it("answers the hostname set inside the sandbox's UTS namespace", async () => {
      const hostnames = container.get<ContainerHostnameResolver>(ContainerHostnameResolver);
      const answer = await hostnames.resolveHostname(byPid);
      expect(answer.pid).toBe(a.pid);
      expect(answer.value).toBe(a.hostname);
      expect(answer.value).not.toBe(hostHostname());
    });
  });

  it('answers ERR_NOT_RUNNING once the sandbox is killed, at once and after the engine notices', async () => {
    const pids = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    const cgroups = container.get<ContainerCGroupResolver>(ContainerCGroupResolver);
    await a.stop();
    expect(existsSync(`/proc/${a.pid}`)).toBe(false);
    await expect(settle(() => pids.resolveProcessId(byPid))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });

    await pause(1100);
    expect(await registry.lookup(byPid)).toMatchObject({ liveness: 'exited' });
    await expect(settle(() => pids.resolveProcessId(byPid))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    await expect(settle(() => cgroups.resolveCGroupName(byPid))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    // The pidfile container now points at b, which still runs.
    expect(await pids.resolveProcessId(byPidfile)).toBe(b.pid);
  });
});
