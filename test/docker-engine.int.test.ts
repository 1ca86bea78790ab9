/**
 * The Docker engine against a real dockerd (scripts/testbed-start.sh starts
 * one): every answer is compared with `docker inspect` and /proc, and every
 * change the test makes to a real container (create, start, pause, restart,
 * stop, rename, remove) must reach the registry's index on its own.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { ContainerModule, type Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer, type IndexChange, type RegistryEvent } from '../core/registry/engine-registry.js';
import { CrootError } from '../core/errors/croot-error.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { dockerEngineModule, DockerEngine, DockerEngineOptions } from '../engines/docker/index.js';
import { staticEngineModule } from '../engines/static/index.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes } from './support/components.js';
import { DaemonRelay } from './support/docker-relay.js';
import { codeOf, eventually, settle } from './support/outcomes.js';
import { bootTimeTruth, cgroupTruth, clockTicksTruth, startTimeFromStatFile } from './support/truth.js';
import { dockerInspect, dockerRun, removeDockerContainers, uniqueName, type TestContainer } from './support/testbed.js';

function startCroot(env: Record<string, string | undefined>, options?: DockerEngineOptions, extra: ContainerModule[] = []): Container {
  const modules = [dockerEngineModule, ...extra];
  modules.push(
    new ContainerModule(({ bind }) => {
      if (options !== undefined) bind<DockerEngineOptions>(DockerEngineOptions).toConstantValue(options);
      // The safety net stays out of the way: what is asserted here must come from the change signals.
      // ready() waits for the engine's own first load, however slow a busy machine makes it.
      bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 3600000, firstLoadTimeoutMs: 120000 });
    }),
  );
  return createCrootContainer({ config: { env }, modules });
}

/** The kernel's start time of a process (field 22 of /proc/PID/stat, read by test code). */
function kernelStart(pid: number): number {
  return startTimeFromStatFile(`/proc/${pid}/stat`);
}

const inspectPid = (c: TestContainer): number => Number(dockerInspect(c.id, '{{.State.Pid}}'));
const dockerStatus = (registry: EngineRegistry) => registry.statuses().find((s) => s.engine === 'docker');

/** Waits until the engine reads the daemon's API (the files come first). */
async function onApi(c: Container): Promise<void> {
  await eventually(async () => (c.get(DockerEngine).source === 'api' ? true : undefined), 30000);
}

describeWith('docker', probes.docker, 'DockerEngine against a real dockerd', () => {
  const created: string[] = [];
  let croot: Container;
  let registry: EngineRegistry;
  let pids: ContainerProcessIdResolver;
  let cgroups: ContainerCGroupResolver;
  let web: TestContainer;
  let db: TestContainer;
  let prefixNamed: TestContainer;
  let stopped: TestContainer;
  let twins: [TestContainer, TestContainer];
  let running: TestContainer[];

  beforeAll(async () => {
    web = dockerRun(uniqueName(), { hostname: 'web-host' }, created);
    db = dockerRun(uniqueName(), { hostname: 'db-host' }, created);
    // A container whose NAME is a prefix of db's id: the name must win.
    prefixNamed = dockerRun(db.id.slice(0, 6), { hostname: 'prefix-host' }, created);
    stopped = dockerRun(uniqueName(), { createOnly: true }, created);
    // Make containers until two of ours share a first hex digit.
    const mine = [web, db, prefixNamed, stopped];
    for (;;) {
      const byChar = new Map<string, TestContainer>();
      const pair = mine
        .map((c) => {
          const other = byChar.get(c.id[0] as string);
          byChar.set(c.id[0] as string, c);
          return other === undefined ? undefined : ([other, c] as [TestContainer, TestContainer]);
        })
        .find((p) => p !== undefined);
      if (pair !== undefined) {
        twins = pair;
        break;
      }
      mine.push(dockerRun(uniqueName(), { createOnly: true }, created));
    }
    running = [web, db, prefixNamed];

    croot = startCroot(process.env);
    registry = croot.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    await registry.ready();
    await onApi(croot);
    pids = croot.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    cgroups = croot.get<ContainerCGroupResolver>(ContainerCGroupResolver);
  });

  afterAll(async () => {
    await registry?.stop();
    removeDockerContainers(created);
  });

  it('uses the daemon\'s API and says so in its status', () => {
    expect(dockerStatus(registry)).toMatchObject({
      available: true,
      reason: expect.stringMatching(/^daemon at \S+ \(API and events\): \d+ containers?$/),
    });
  });

  it('answers every running container\'s PID as docker inspect does, by id, name, /name and unique prefix', async () => {
    for (const c of running) {
      const want = inspectPid(c);
      expect(want).toBeGreaterThan(0);
      for (const ref of [c.id, c.name, `/${c.name}`, c.id.slice(0, 12), `docker:${c.name}`, `docker.${c.name}`]) {
        expect([ref, await settle(() => pids.resolveProcessId(ref))]).toEqual([ref, want]);
      }
    }
  });

  it('holds each running container\'s init process with the start time the kernel gives it, which StartedAt names within its tolerance', async () => {
    for (const c of running) {
      const found = (await registry.lookup(c.name)) as IndexedContainer;
      const pid = inspectPid(c);
      expect(found).toMatchObject({ liveness: 'running', pid, startTime: kernelStart(pid) });
      // Docker's StartedAt (its clock's time) as clock ticks since boot, and a tolerance that takes in the kernel's start.
      const startedAt = Date.parse(dockerInspect(c.id, '{{.State.StartedAt}}'));
      expect(found.pidStartTime).toBe(Math.round((startedAt / 1000 - bootTimeTruth()) * clockTicksTruth()));
      expect(Math.abs((found.pidStartTime as number) - kernelStart(pid))).toBeLessThanOrEqual(found.pidStartTolerance as number);
    }
  });

  it('records Docker\'s own word for each container\'s state', async () => {
    for (const c of [...running, stopped]) {
      expect([c.name, (await registry.lookup(c.name)).state]).toEqual([c.name, dockerInspect(c.id, '{{.State.Status}}')]);
    }
  });

  it('answers the cgroup /proc/PID/cgroup gives, ending with the container id', async () => {
    for (const c of running) {
      const answer = await settle(() => cgroups.resolveCGroupName(c.name));
      expect(answer.pid).toBe(inspectPid(c));
      expect(answer.value).toBe(cgroupTruth(answer.pid));
      expect(answer.value.endsWith(c.id)).toBe(true);
    }
  });

  it('resolves a name that equals another container\'s id prefix to the container with that name', async () => {
    expect(prefixNamed.name).toBe(db.id.slice(0, 6));
    expect((await registry.lookup(prefixNamed.name)).id).toBe(prefixNamed.id);
    expect(await settle(() => pids.resolveProcessId(prefixNamed.name))).toBe(inspectPid(prefixNamed));
    // One more character is no container's name: a unique prefix of db's id.
    expect((await registry.lookup(db.id.slice(0, 7))).id).toBe(db.id);
  });

  it('rejects a prefix two containers share, naming both', async () => {
    const prefix = twins[0].id[0] as string;
    expect(twins[1].id[0]).toBe(prefix);
    const error = await settle(() => pids.resolveProcessId(prefix)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(CrootError);
    expect((error as CrootError).code).toBe('ERR_AMBIGUOUS_NAME');
    expect((error as CrootError).message).toContain(twins[0].id);
    expect((error as CrootError).message).toContain(twins[1].id);
  });

  it('rejects a name that fits nothing, even one starting with a hex digit', async () => {
    expect(await codeOf(() => pids.resolveProcessId(`0${uniqueName('nosuch')}`))).toBe('ERR_NO_CONTAINER');
  });

  it('knows a created-but-never-started container and says it is not running', async () => {
    expect(await registry.lookup(stopped.name)).toMatchObject({ engine: 'docker', id: stopped.id, names: [stopped.name], running: false, source: 'api' });
    expect(await codeOf(() => pids.resolveProcessId(stopped.name))).toBe('ERR_NOT_RUNNING');
  });

  it('records the hostname and a cgroup hint Docker configured', async () => {
    const record = await registry.lookup(web.name);
    expect(record.hostname).toBe(dockerInspect(web.id, '{{.Config.Hostname}}'));
    expect(record.cgroupHint?.endsWith(web.id)).toBe(true);
  });

  describe('following the event stream through a container\'s life', () => {
    const name = uniqueName();
    let renamed: string;
    let id: string;
    const events: IndexChange[] = [];
    let unsubscribe: () => void;

    beforeAll(() => {
      unsubscribe = registry.subscribe((e: RegistryEvent) => {
        if (e.kind !== 'health') events.push(e);
      });
    });
    afterAll(() => unsubscribe());

    /** The index's entry once `test` holds for it. */
    const indexed = (ref: string, test: (c: IndexedContainer) => boolean) =>
      eventually(async () => {
        const found = (await registry.lookup(ref)) as IndexedContainer;
        return test(found) ? found : undefined;
      });

    it('create: the container is added, not running', async () => {
      id = dockerRun(name, { createOnly: true }, created).id;
      const found = await indexed(name, () => true);
      expect(found).toMatchObject({ id, running: false, state: dockerInspect(id, '{{.State.Status}}'), source: 'api' });
      expect(events.find((e) => e.container.id === id)?.kind).toBe('added');
    });

    it('start: it runs, with the PID docker inspect gives', async () => {
      execFileSync('docker', ['start', name], { stdio: 'ignore' });
      const found = await indexed(name, (c) => c.liveness === 'running');
      const pid = Number(dockerInspect(id, '{{.State.Pid}}'));
      expect(found).toMatchObject({ pid, startTime: kernelStart(pid), state: 'running' });
      expect(await settle(() => pids.resolveProcessId(name))).toBe(pid);
    });

    it('pause and unpause: the state follows, the PID stays', async () => {
      const pid = Number(dockerInspect(id, '{{.State.Pid}}'));
      execFileSync('docker', ['pause', name], { stdio: 'ignore' });
      expect(await indexed(name, (c) => c.state === 'paused')).toMatchObject({ paused: true, pid, state: dockerInspect(id, '{{.State.Status}}') });
      execFileSync('docker', ['unpause', name], { stdio: 'ignore' });
      expect(await indexed(name, (c) => c.state === 'running')).toMatchObject({ paused: false, pid, liveness: 'running' });
    });

    it('restart: the new init process is held, the old one forgotten', async () => {
      const before = Number(dockerInspect(id, '{{.State.Pid}}'));
      execFileSync('docker', ['restart', '-t', '0', name], { stdio: 'ignore' });
      const after = Number(dockerInspect(id, '{{.State.Pid}}'));
      expect(after).not.toBe(before);
      expect(await indexed(name, (c) => c.pid === after && c.liveness === 'running')).toMatchObject({ startTime: kernelStart(after) });
      expect(await settle(() => pids.resolveProcessId(name))).toBe(after);
    });

    it('stop: it is no longer running, and its PID is not answered', async () => {
      execFileSync('docker', ['stop', '-t', '0', name], { stdio: 'ignore' });
      expect(await indexed(name, (c) => !c.running)).toMatchObject({ state: dockerInspect(id, '{{.State.Status}}') });
      expect(await codeOf(() => pids.resolveProcessId(name))).toBe('ERR_NOT_RUNNING');
    });

    it('rename: it answers to its new name only', async () => {
      renamed = uniqueName();
      created.push(renamed);
      execFileSync('docker', ['rename', name, renamed]);
      expect((await indexed(renamed, () => true)).id).toBe(id);
      expect(await codeOf(() => registry.lookup(name))).toBe('ERR_NO_CONTAINER');
    });

    it('remove: it leaves the index', async () => {
      removeDockerContainers([id]);
      await eventually(async () => events.find((e) => e.kind === 'removed' && e.container.id === id));
      expect(await codeOf(() => registry.lookup(renamed))).toBe('ERR_NO_CONTAINER');
      expect(await codeOf(() => registry.lookup(id))).toBe('ERR_NO_CONTAINER');
    });
  });

  describe('without a daemon (DOCKER_HOST at a dead socket), reading /var/lib/docker', () => {
    let diskCroot: Container;
    let diskRegistry: EngineRegistry;
    const deadSocket = `/tmp/${uniqueName('croot-dead')}.sock`;

    beforeAll(async () => {
      // With the native module, as crootd runs: the files are watched through its inotify DirectoryWatcher.
      diskCroot = startCroot({ ...process.env, DOCKER_HOST: `unix://${deadSocket}` }, undefined, [nativeModule]);
      diskRegistry = diskCroot.get<EngineRegistry>(EngineRegistry);
      await diskRegistry.start();
      await diskRegistry.ready();
    });
    afterAll(async () => {
      await diskRegistry?.stop();
    });

    it('reads the real /var/lib/docker and says why', () => {
      expect(diskCroot.get(DockerEngine).source).toBe('disk');
      expect(dockerStatus(diskRegistry)).toMatchObject({
        available: true,
        reason: expect.stringMatching(new RegExp(`^daemon at ${deadSocket} unreachable \\(ENOENT\\); reading /var/lib/docker: \\d+ containers?$`)),
      });
    });

    it('finds the same containers, PIDs and states as the daemon gives', async () => {
      const diskPids = diskCroot.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
      for (const c of running) {
        expect(await diskRegistry.lookup(c.name)).toMatchObject({ id: c.id, names: [c.name], running: true, state: 'running', source: 'disk' });
        expect(await settle(() => diskPids.resolveProcessId(c.id.slice(0, 12)))).toBe(inspectPid(c));
      }
      expect(await diskRegistry.lookup(stopped.name)).toMatchObject({ state: dockerInspect(stopped.id, '{{.State.Status}}') });
      expect(await codeOf(() => diskPids.resolveProcessId(stopped.name))).toBe('ERR_NOT_RUNNING');
      expect((await diskRegistry.lookup(prefixNamed.name)).id).toBe(prefixNamed.id);
    });

    it('answers the same cgroups as from the API', async () => {
      const diskCgroups = diskCroot.get<ContainerCGroupResolver>(ContainerCGroupResolver);
      for (const c of running) {
        expect((await settle(() => diskCgroups.resolveCGroupName(c.name))).value).toBe(cgroupTruth(inspectPid(c)));
      }
    });

    it('follows the files the daemon writes: a container started, stopped and removed', async () => {
      const late = dockerRun(uniqueName(), {}, created);
      const pid = inspectPid(late);
      const found = await eventually(async () => {
        const c = (await diskRegistry.lookup(late.name)) as IndexedContainer;
        return c.liveness === 'running' ? c : undefined;
      });
      expect(found).toMatchObject({ id: late.id, pid, startTime: kernelStart(pid), source: 'disk' });
      execFileSync('docker', ['stop', '-t', '0', late.id], { stdio: 'ignore' });
      expect(
        await eventually(async () => {
          const c = await diskRegistry.lookup(late.name);
          return c.running ? undefined : c;
        }),
      ).toMatchObject({ state: dockerInspect(late.id, '{{.State.Status}}') });
      removeDockerContainers([late.id]);
      expect(
        await eventually(async () => {
          const code = await codeOf(() => diskRegistry.lookup(late.name));
          return code === 'ERR_NO_CONTAINER' ? code : undefined;
        }),
      ).toBe('ERR_NO_CONTAINER');
    });
  });

  describe('when the daemon appears and goes away', () => {
    const relay = new DaemonRelay(`/tmp/${uniqueName('croot-relay')}.sock`);
    let relayCroot: Container;
    let relayRegistry: EngineRegistry;
    afterAll(async () => {
      await relayRegistry?.stop();
      await relay.cut();
    });

    it('starts on the files, switches to the daemon once its socket appears, and back when its stream ends', async () => {
      relayCroot = startCroot({ ...process.env, DOCKER_HOST: `unix://${relay.path}` }, { retryMinMs: 100, retryMaxMs: 200 }, [nativeModule]);
      relayRegistry = relayCroot.get<EngineRegistry>(EngineRegistry);
      await relayRegistry.start();
      await relayRegistry.ready();
      const engine = relayCroot.get(DockerEngine);
      expect(engine.source).toBe('disk');
      expect((await relayRegistry.lookup(web.name)).source).toBe('disk');

      await relay.open();
      await onApi(relayCroot);
      expect(await eventually(async () => ((await relayRegistry.lookup(web.name)).source === 'api' ? 'api' : undefined))).toBe('api');
      // Events flow through the relay too.
      const late = dockerRun(uniqueName(), {}, created);
      expect((await eventually(async () => relayRegistry.lookup(late.name))).id).toBe(late.id);

      await relay.cut();
      expect(await eventually(async () => (engine.source === 'disk' ? engine.source : undefined))).toBe('disk');
      const reason = await eventually(async () => {
        const r = dockerStatus(relayRegistry)?.reason ?? '';
        return /unreachable/.test(r) ? r : undefined;
      });
      expect(reason).toMatch(/unreachable \((event stream (ended|closed|failed)|ENOENT|ECONNREFUSED)/);
      const latePid = inspectPid(late);
      const pidsThere = relayCroot.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
      expect(await eventually(async () => ((await settle(() => pidsThere.resolveProcessId(late.name))) === latePid ? latePid : undefined))).toBe(latePid);
      expect((await relayRegistry.lookup(late.name)).source).toBe('disk');
    });
  });

  describe('with an event stream that misses every change', () => {
    const relay = new DaemonRelay(`/tmp/${uniqueName('croot-mute')}.sock`, true);
    let muteCroot: Container;
    let muteRegistry: EngineRegistry;
    beforeAll(async () => {
      await relay.open();
      muteCroot = startCroot({ ...process.env, DOCKER_HOST: `unix://${relay.path}` });
      muteRegistry = muteCroot.get<EngineRegistry>(EngineRegistry);
      await muteRegistry.start();
      await muteRegistry.ready();
      await onApi(muteCroot);
    });
    afterAll(async () => {
      await muteRegistry?.stop();
      await relay.cut();
    });

    it('finds at the safety net\'s re-check a container created, one stopped and one removed, and only then', async () => {
      const fresh = dockerRun(uniqueName(), {}, created);
      const stopping = dockerRun(uniqueName(), {}, created);
      const doomed = dockerRun(uniqueName(), { createOnly: true }, created);
      const engine = muteCroot.get(DockerEngine);
      // Known from the first listing only if it ran before: make sure they are, then change them unseen.
      await engine.recheck();
      expect((await muteRegistry.lookup(stopping.name)).running).toBe(true);
      expect((await muteRegistry.lookup(doomed.name)).id).toBe(doomed.id);
      const late = dockerRun(uniqueName(), {}, created);
      execFileSync('docker', ['stop', '-t', '0', stopping.id], { stdio: 'ignore' });
      removeDockerContainers([doomed.id]);
      // Nothing told the engine.
      expect(await codeOf(() => muteRegistry.lookup(late.name))).toBe('ERR_NO_CONTAINER');
      expect((await muteRegistry.lookup(stopping.name)).running).toBe(true);
      await engine.recheck();
      expect(await muteRegistry.lookup(late.name)).toMatchObject({ id: late.id, pid: inspectPid(late), state: 'running', liveness: 'running' });
      expect(await muteRegistry.lookup(stopping.name)).toMatchObject({ running: false, state: dockerInspect(stopping.id, '{{.State.Status}}') });
      expect(await codeOf(() => muteRegistry.lookup(doomed.name))).toBe('ERR_NO_CONTAINER');
      expect((await muteRegistry.lookup(fresh.name)).pid).toBe(inspectPid(fresh));
    });
  });

  describe('with a daemon that accepts and never answers', () => {
    const silentPath = `/tmp/${uniqueName('croot-silent')}.sock`;
    const held = new Set<Socket>();
    let silent: Server;
    let sleeper: ChildProcess;

    beforeAll(async () => {
      silent = createServer((s) => {
        held.add(s);
        s.resume();
        s.on('close', () => held.delete(s));
      });
      await new Promise<void>((resolve) => silent.listen(silentPath, resolve));
      sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' });
    });
    afterAll(async () => {
      sleeper?.kill('SIGKILL');
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
      rmSync(silentPath, { force: true });
    });

    it('delays no request: a static container and the files\' containers are answered while the ping waits', async () => {
      const boxName = uniqueName('box');
      const c = createCrootContainer({
        config: { env: { ...process.env, DOCKER_HOST: `unix://${silentPath}` }, staticContainers: [{ name: boxName, pid: sleeper.pid as number }] },
        modules: [
          dockerEngineModule,
          staticEngineModule,
          new ContainerModule(({ bind }) => {
            bind<DockerEngineOptions>(DockerEngineOptions).toConstantValue({ probeTimeoutMs: 3600000 });
          }),
        ],
      });
      const reg = c.get<EngineRegistry>(EngineRegistry);
      try {
        await reg.start();
        await reg.ready();
        // The daemon holds croot's ping, unanswered.
        expect(held.size).toBe(1);
        expect(dockerStatus(reg)?.reason).toMatch(new RegExp(`^daemon at ${silentPath} not answered yet; reading /var/lib/docker: \\d+ containers?$`));
        const localPids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
        // Answered at once (no promise): neither waits for the daemon.
        expect(localPids.resolveProcessId(boxName)).toBe(sleeper.pid);
        expect(localPids.resolveProcessId(web.name)).toBe(inspectPid(web));
      } finally {
        await reg.stop();
      }
    });
  });

  it('reaches the daemon its config names, whatever DOCKER_HOST the process itself has (docker-modem reads it)', async () => {
    const saved = { host: process.env.DOCKER_HOST, certs: process.env.DOCKER_CERT_PATH };
    // A tcp:// daemon with TLS files that do not exist, in crootd's own environment only.
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:9';
    process.env.DOCKER_CERT_PATH = `/nonexistent/${uniqueName('certs')}`;
    const c = startCroot({ DOCKER_HOST: 'unix:///var/run/docker.sock', PCP_DOCKER_DIR: `/nonexistent/${uniqueName('docker')}` });
    const reg = c.get<EngineRegistry>(EngineRegistry);
    try {
      await reg.start();
      await reg.ready();
      expect(dockerStatus(reg)?.reason).toMatch(/^daemon at \/var\/run\/docker\.sock \(API and events\)/);
      expect(await settle(() => c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(web.name))).toBe(inspectPid(web));
      expect([process.env.DOCKER_HOST, process.env.DOCKER_CERT_PATH]).toEqual(['tcp://127.0.0.1:9', expect.stringContaining('/nonexistent/')]);
    } finally {
      await reg.stop();
      for (const [key, value] of [['DOCKER_HOST', saved.host], ['DOCKER_CERT_PATH', saved.certs]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('answers each container\'s hostname as docker inspect shows it (native module)', async () => {
    const withNative = createCrootContainer({ config: { env: process.env }, modules: [dockerEngineModule, nativeModule] });
    const reg = withNative.get<EngineRegistry>(EngineRegistry);
    await reg.start();
    await reg.ready();
    try {
      const hostnames = withNative.get<ContainerHostnameResolver>(ContainerHostnameResolver);
      for (const c of running) {
        expect((await hostnames.resolveHostname(c.name)).value).toBe(dockerInspect(c.id, '{{.Config.Hostname}}'));
      }
    } finally {
      await reg.stop();
    }
  });
});
