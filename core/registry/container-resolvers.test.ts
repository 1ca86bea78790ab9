import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { crootErrorOf } from '../../test/support/outcomes.js';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { Container, ContainerModule } from 'inversify';
import { settle } from '../../test/support/outcomes.js';
import { statFields } from '../../test/support/processes.js';
import { cgroupTruth, errnoTruth } from '../../test/support/truth.js';
import { startUtsSleeper } from '../../test/support/uts-sleeper.js';
import { coreModule } from '../create-container.js';
import { defaultConfig } from '../config/croot-config.js';
import { CrootError } from '../errors/croot-error.js';
import { NamespaceHostnameReader, type ProcessHandle } from '../host/host-services.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from './container-resolvers.js';
import { EngineContribution, type ContainerRecord, type ContainerSink } from './engine-contribution.js';
import { EngineRegistry, type RegistryEvent } from './engine-registry.js';

/**
 * Reads a process's hostname in its UTS namespace with nsenter(1): the
 * kernel's answer without croot's native module (which core may not load).
 * Records what it was asked with, so a test sees the held process was used.
 */
class NsenterHostnameReader implements NamespaceHostnameReader {
  readonly asked: (number | ProcessHandle)[] = [];
  readHostnameNow(target: number | ProcessHandle): string {
    this.asked.push(target);
    return execFileSync('nsenter', ['-u', '-t', String(pidOf(target)), 'hostname'], { encoding: 'utf8' }).trim();
  }
  async readHostname(target: number | ProcessHandle, signal?: AbortSignal): Promise<string> {
    this.asked.push(target);
    const { stdout } = await promisify(execFile)('nsenter', ['-u', '-t', String(pidOf(target)), 'hostname'], { encoding: 'utf8', ...(signal && { signal }) });
    return stdout.trim();
  }
}

function pidOf(target: number | ProcessHandle): number {
  return typeof target === 'number' ? target : target.pid;
}

/** An engine that pushes what the test gives it; `undefined` means it has not loaded yet. */
class ListEngine implements EngineContribution {
  sink: ContainerSink | undefined;
  constructor(
    readonly id: string,
    private readonly initial: readonly ContainerRecord[] | undefined,
  ) {}
  start(sink: ContainerSink): void {
    this.sink = sink;
    if (this.initial !== undefined) sink.replaceAll(this.initial);
  }
  async stop(): Promise<void> {}
}

interface World {
  registry: EngineRegistry;
  pids: ContainerProcessIdResolver;
  hostnames: ContainerHostnameResolver;
  cgroups: ContainerCGroupResolver;
}

function world(engine: ListEngine, reader?: NamespaceHostnameReader): World {
  const c = new Container();
  c.loadSync(
    coreModule(defaultConfig({ env: {} })),
    new ContainerModule(({ bind }) => {
      bind(EngineContribution).toConstantValue(engine);
      if (reader !== undefined) bind(NamespaceHostnameReader).toConstantValue(reader);
    }),
  );
  return {
    registry: c.get<EngineRegistry>(EngineRegistry),
    pids: c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver),
    hostnames: c.get<ContainerHostnameResolver>(ContainerHostnameResolver),
    cgroups: c.get<ContainerCGroupResolver>(ContainerCGroupResolver),
  };
}

const children: ChildProcess[] = [];
function sleeper(): ChildProcess {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  children.push(child);
  return child;
}
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Kills `child` and waits until Node has reaped it: the kernel has no process with its PID left (until reused). */
async function killed(child: ChildProcess): Promise<number> {
  const pid = child.pid as number;
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  expect(statFields(pid)).toBeUndefined();
  return pid;
}

const errorOf = crootErrorOf;

const ESRCH = errnoTruth('ESRCH');
const ESTALE = errnoTruth('ESTALE');

const running = (id: string, pid: number, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  engine: 'static',
  id,
  names: [id],
  running: true,
  pid,
  ...extra,
});

describe('DefaultContainerResolver', () => {
  it('answers a running container with its init PID and the cgroup the kernel gives that process', async () => {
    const child = sleeper();
    const pid = child.pid as number;
    const record = running('sbx', pid);
    const w = world(new ListEngine('static', [record]));
    await w.registry.start();
    expect(w.pids.resolveProcessId('sbx')).toBe(pid);
    expect(w.pids.resolveProcess?.('sbx')).toEqual({ pid, value: pid, container: record, holder: expect.objectContaining({ pid }) });
    // With the handle that holds that very process (what a reply may be given again on).
    expect(w.cgroups.resolveCGroupName('static:sbx')).toEqual({ pid, value: cgroupTruth(pid), container: record, holder: expect.objectContaining({ pid }) });
    expect(w.cgroups.resolveCGroupNameOfProcess(pid)).toBe(cgroupTruth(pid));
    await w.registry.stop();
  });

  it('says a container whose init process has exited is not running, and marks it exited in the index at once', async () => {
    const child = sleeper();
    const w = world(new ListEngine('static', [running('sbx', child.pid as number)]));
    const events: string[] = [];
    w.registry.subscribe((e: RegistryEvent) => {
      if (e.kind !== 'health') events.push(`${e.kind} ${e.container.id} ${e.container.liveness}`);
    });
    await w.registry.start();
    expect(w.pids.resolveProcessId('sbx')).toBe(child.pid);
    const pid = await killed(child);
    // No pidfd here: only the request's own check can see the exit.
    expect(events).toEqual(['added sbx running']);
    for (const ask of [() => w.pids.resolveProcessId('sbx'), () => w.cgroups.resolveCGroupName('sbx')]) {
      const err = errorOf(ask);
      expect([err.code, err.status, err.details]).toEqual(['ERR_NOT_RUNNING', -ESRCH, { engine: 'static', id: 'sbx', pid }]);
      expect(err.message).toBe(`container static:sbx is not running (its init process ${pid} has exited)`);
    }
    expect(events).toEqual(['added sbx running', 'updated sbx exited']);
    expect(w.registry.containers().map((c) => [c.id, c.liveness, c.handle])).toEqual([['sbx', 'exited', undefined]]);
    await w.registry.stop();
  });

  it('says a container is not running when its engine says so, naming it by its id when it has no name', async () => {
    const w = world(new ListEngine('static', [{ engine: 'static', id: 'jail', names: [], running: false }, running('gone', 0)]));
    await w.registry.start();
    const err = errorOf(() => w.pids.resolveProcessId('jail'));
    expect([err.code, err.status, err.details, err.message]).toEqual(['ERR_NOT_RUNNING', -ESRCH, { engine: 'static', id: 'jail' }, 'container static:jail is not running']);
    // "Running" with no PID the kernel could hold is not running either.
    expect(errorOf(() => w.pids.resolveProcessId('gone')).message).toBe('container static:gone is not running');
    await w.registry.stop();
  });

  it('says a container is gone when its init PID belongs to a process that started at another time than the engine recorded', async () => {
    const child = sleeper();
    const pid = child.pid as number;
    const kernelStart = Number(statFields(pid)?.[19]);
    const w = world(new ListEngine('static', [running('old', pid, { pidStartTime: kernelStart - 1 }), running('same', pid, { pidStartTime: kernelStart })]));
    await w.registry.start();
    const err = errorOf(() => w.pids.resolveProcessId('old'));
    expect([err.code, err.status, err.details]).toEqual(['ERR_PID_REUSED', -ESTALE, { engine: 'static', id: 'old', pid }]);
    expect(err.message).toBe(`container static:old is gone: PID ${pid} now belongs to another process`);
    expect(errorOf(() => w.cgroups.resolveCGroupName('old')).code).toBe('ERR_PID_REUSED');
    // The start time the kernel gives is the same process: answered.
    expect(w.pids.resolveProcessId('same')).toBe(pid);
    await w.registry.stop();
  });

  it('says a process asked by PID is gone once it has exited', async () => {
    const child = sleeper();
    const pid = await killed(child);
    const w = world(new ListEngine('static', []));
    const err = errorOf(() => w.cgroups.resolveCGroupNameOfProcess(pid));
    expect([err.code, err.status, err.details]).toEqual(['ERR_NOT_RUNNING', -ESRCH, { pid }]);
  });

  it('waits for the engine\'s first load, then answers or refuses as it would at once', async () => {
    const child = sleeper();
    const pid = child.pid as number;
    const engine = new ListEngine('static', undefined);
    const w = world(engine, new NsenterHostnameReader());
    await w.registry.start();
    const pidAnswer = w.pids.resolveProcessId('sbx');
    const cgroupAnswer = w.cgroups.resolveCGroupName('sbx');
    const hostnameAnswer = w.hostnames.resolveHostname('sbx');
    const stopped = w.pids.resolveProcessId('static:jail');
    for (const answer of [pidAnswer, cgroupAnswer, hostnameAnswer, stopped]) expect(answer).toBeInstanceOf(Promise);
    const record = running('sbx', pid);
    engine.sink?.replaceAll([record, { engine: 'static', id: 'jail', names: ['jail'], running: false }]);
    await expect(pidAnswer).resolves.toBe(pid);
    await expect(cgroupAnswer).resolves.toEqual({ pid, value: cgroupTruth(pid), container: record, holder: expect.objectContaining({ pid }) });
    await expect(hostnameAnswer).resolves.toEqual({ pid, value: execFileSync('hostname', { encoding: 'utf8' }).trim(), container: record, holder: expect.objectContaining({ pid }) });
    await expect(stopped).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    await w.registry.stop();
  });

  describe('hostnames', () => {
    it('reads the hostname inside the container\'s UTS namespace through the held init process, at once or, with a signal, as a promise', async () => {
      const { child, pid } = await startUtsSleeper('croot-t-inside');
      children.push(child);
      const record = running('sbx', pid);
      const reader = new NsenterHostnameReader();
      const w = world(new ListEngine('static', [record]), reader);
      await w.registry.start();
      expect(w.hostnames.resolveHostname('sbx')).toEqual({ pid, value: 'croot-t-inside', container: record, holder: expect.objectContaining({ pid }) });
      const [held] = w.registry.containers();
      expect(reader.asked).toEqual([held?.handle]);
      const withSignal = w.hostnames.resolveHostname('sbx', new AbortController().signal);
      expect(withSignal).toBeInstanceOf(Promise);
      await expect(withSignal).resolves.toEqual({ pid, value: 'croot-t-inside', container: record });
      // By host PID (PCP's namelen 0 request): the same namespace, asked by the PID itself.
      expect(w.hostnames.resolveHostnameOfProcess(pid)).toBe('croot-t-inside');
      const byPid = w.hostnames.resolveHostnameOfProcess(pid, new AbortController().signal);
      expect(byPid).toBeInstanceOf(Promise);
      await expect(byPid).resolves.toBe('croot-t-inside');
      expect(reader.asked.slice(2)).toEqual([pid, pid]);
      await w.registry.stop();
    });

    it('refuses a hostname of a container that is not running before asking the namespace', async () => {
      const reader = new NsenterHostnameReader();
      const w = world(new ListEngine('static', [{ engine: 'static', id: 'jail', names: ['jail'], running: false }]), reader);
      await w.registry.start();
      expect(errorOf(() => w.hostnames.resolveHostname('jail')).code).toBe('ERR_NOT_RUNNING');
      expect(reader.asked).toEqual([]);
      await w.registry.stop();
    });

    it('refuses with ERR_NATIVE_LOAD when nothing can enter a namespace', async () => {
      const w = world(new ListEngine('static', [running('self', process.pid)]));
      await w.registry.start();
      const asks: (() => unknown)[] = [() => w.hostnames.resolveHostname('self'), () => w.hostnames.resolveHostnameOfProcess(process.pid)];
      for (const ask of asks) {
        await expect(settle(ask)).rejects.toMatchObject({ code: 'ERR_NATIVE_LOAD', status: -errnoTruth('ENOSYS') });
      }
      await w.registry.stop();
    });
  });
});
