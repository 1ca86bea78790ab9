/**
 * The Docker engine against a real dockerd (scripts/testbed-start.sh starts
 * one): every answer is compared with `docker inspect` and /proc.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { ContainerModule, type Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { CrootError } from '../core/errors.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from '../core/resolvers.js';
import { dockerEngineModule, DockerEngine, DockerEngineOptions } from '../engines/docker/index.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes } from './support/components.js';
import { codeOf, eventually } from './support/outcomes.js';
import { cgroupTruth } from './support/truth.js';
import { dockerInspect, dockerRun, removeDockerContainers, uniqueName, type TestContainer } from './support/testbed.js';

function startCroot(env: Record<string, string | undefined>, options?: DockerEngineOptions): Container {
  const modules = [dockerEngineModule];
  if (options !== undefined) {
    modules.push(new ContainerModule(({ bind }) => {
      bind<DockerEngineOptions>(DockerEngineOptions).toConstantValue(options);
    }));
  }
  return createCrootContainer({ config: { env }, modules });
}

/** A unix socket relaying to the real daemon's, which a test can open and cut. */
class DaemonRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(readonly path: string, private readonly target = '/var/run/docker.sock') {}

  async open(): Promise<void> {
    rmSync(this.path, { force: true });
    const server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.path, resolve));
  }

  /** Stops listening and cuts every relayed connection (the event stream with them). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
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
      const pair = mine.map((c) => {
        const other = byChar.get(c.id[0] as string);
        byChar.set(c.id[0] as string, c);
        return other === undefined ? undefined : ([other, c] as [TestContainer, TestContainer]);
      }).find((p) => p !== undefined);
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
    pids = croot.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    cgroups = croot.get<ContainerCGroupResolver>(ContainerCGroupResolver);
  });

  afterAll(async () => {
    await registry?.stop();
    removeDockerContainers(created);
  });

  it('uses the daemon\'s API and says so in its status', () => {
    expect(croot.get(DockerEngine).source).toBe('api');
    const status = registry.statuses().find((s) => s.engine === 'docker');
    expect(status?.available).toBe(true);
    expect(status?.reason).toMatch(/^daemon at \S+ \(API and events\): \d+ containers?$/);
  });

  it('answers every running container\'s PID as docker inspect does, by id, name, /name and unique prefix', async () => {
    for (const c of running) {
      const want = Number(dockerInspect(c.id, '{{.State.Pid}}'));
      expect(want).toBeGreaterThan(0);
      for (const ref of [c.id, c.name, `/${c.name}`, c.id.slice(0, 12), `docker:${c.name}`]) {
        expect([ref, await pids.resolveProcessId(ref)]).toEqual([ref, want]);
      }
    }
  });

  it('answers the cgroup /proc/PID/cgroup gives, ending with the container id', async () => {
    for (const c of running) {
      const answer = await cgroups.resolveCGroupName(c.name);
      expect(answer.pid).toBe(Number(dockerInspect(c.id, '{{.State.Pid}}')));
      expect(answer.value).toBe(cgroupTruth(answer.pid));
      expect(answer.value.endsWith(c.id)).toBe(true);
    }
  });

  it('resolves a name that equals another container\'s id prefix to the container with that name', async () => {
    expect(prefixNamed.name).toBe(db.id.slice(0, 6));
    expect((await registry.lookup(prefixNamed.name)).id).toBe(prefixNamed.id);
    expect(await pids.resolveProcessId(prefixNamed.name)).toBe(Number(dockerInspect(prefixNamed.id, '{{.State.Pid}}')));
    // One more character is no container's name: a unique prefix of db's id.
    expect((await registry.lookup(db.id.slice(0, 7))).id).toBe(db.id);
  });

  it('rejects a prefix two containers share, naming both', async () => {
    const prefix = twins[0].id[0] as string;
    expect(twins[1].id[0]).toBe(prefix);
    let error: unknown;
    try {
      await pids.resolveProcessId(prefix);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CrootError);
    expect((error as CrootError).code).toBe('ERR_AMBIGUOUS_NAME');
    expect((error as CrootError).message).toContain(twins[0].id);
    expect((error as CrootError).message).toContain(twins[1].id);
  });

  it('rejects a name that fits nothing, even one starting with a hex digit', async () => {
    const ref = `0${uniqueName('nosuch')}`;
    expect(await codeOf(() => pids.resolveProcessId(ref))).toBe('ERR_NO_CONTAINER');
  });

  it('knows a created-but-never-started container and says it is not running', async () => {
    const record = await registry.lookup(stopped.name);
    expect(record).toMatchObject({ engine: 'docker', id: stopped.id, names: [stopped.name], running: false, source: 'api' });
    expect(await codeOf(() => pids.resolveProcessId(stopped.name))).toBe('ERR_NOT_RUNNING');
  });

  it('records the hostname and a cgroup hint Docker configured', async () => {
    const record = await registry.lookup(web.name);
    expect(record.hostname).toBe(dockerInspect(web.id, '{{.Config.Hostname}}'));
    expect(record.cgroupHint?.endsWith(web.id)).toBe(true);
  });

  describe('following the event stream', () => {
    it('finds a container started after the engine started, without a restart', async () => {
      const late = dockerRun(uniqueName(), { hostname: 'late-host' }, created);
      const want = Number(dockerInspect(late.id, '{{.State.Pid}}'));
      expect(await eventually(async () => pids.resolveProcessId(late.name))).toBe(want);
    });

    it('forgets a removed container', async () => {
      const doomed = dockerRun(uniqueName(), {}, created);
      await eventually(async () => registry.lookup(doomed.name));
      removeDockerContainers([doomed.id]);
      expect(await eventually(async () => {
        const code = await codeOf(() => registry.lookup(doomed.name));
        return code === 'ERR_NO_CONTAINER' ? code : undefined;
      })).toBe('ERR_NO_CONTAINER');
    });

    it('answers to a renamed container\'s new name only', async () => {
      const before = dockerRun(uniqueName(), {}, created);
      await eventually(async () => registry.lookup(before.name));
      const after = uniqueName();
      created.push(after);
      execFileSync('docker', ['rename', before.name, after]);
      expect((await eventually(async () => registry.lookup(after))).id).toBe(before.id);
      expect(await codeOf(() => registry.lookup(before.name))).toBe('ERR_NO_CONTAINER');
    });

    it('sees a container stop', async () => {
      const stopping = dockerRun(uniqueName(), {}, created);
      await eventually(async () => pids.resolveProcessId(stopping.name));
      execFileSync('docker', ['kill', stopping.id], { stdio: 'ignore' });
      expect(await eventually(async () => {
        const record = await registry.lookup(stopping.name);
        return record.running ? undefined : record;
      })).toMatchObject({ running: false });
      expect(await codeOf(() => pids.resolveProcessId(stopping.name))).toBe('ERR_NOT_RUNNING');
    });
  });

  describe('without a daemon (DOCKER_HOST at a dead socket)', () => {
    let diskCroot: Container;
    let diskRegistry: EngineRegistry;
    const deadSocket = `/tmp/${uniqueName('croot-dead')}.sock`;

    beforeAll(async () => {
      diskCroot = startCroot({ ...process.env, DOCKER_HOST: `unix://${deadSocket}` });
      diskRegistry = diskCroot.get<EngineRegistry>(EngineRegistry);
      await diskRegistry.start();
    });
    afterAll(async () => {
      await diskRegistry?.stop();
    });

    it('reads the real /var/lib/docker and says why', () => {
      expect(diskCroot.get(DockerEngine).source).toBe('disk');
      const status = diskRegistry.statuses().find((s) => s.engine === 'docker');
      expect(status?.available).toBe(true);
      expect(status?.reason).toMatch(new RegExp(`^daemon at ${deadSocket} unreachable \\(ENOENT\\); reading /var/lib/docker: \\d+ containers?$`));
    });

    it('finds the same containers and PIDs as the daemon', async () => {
      const diskPids = diskCroot.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
      for (const c of running) {
        const record = await diskRegistry.lookup(c.name);
        expect(record).toMatchObject({ id: c.id, names: [c.name], running: true, source: 'disk' });
        expect(await diskPids.resolveProcessId(c.id.slice(0, 12))).toBe(Number(dockerInspect(c.id, '{{.State.Pid}}')));
      }
      expect(await codeOf(() => diskPids.resolveProcessId(stopped.name))).toBe('ERR_NOT_RUNNING');
      expect((await diskRegistry.lookup(prefixNamed.name)).id).toBe(prefixNamed.id);
    });

    it('answers the cgroup the kernel shows, as from the API', async () => {
      const diskCgroups = diskCroot.get<ContainerCGroupResolver>(ContainerCGroupResolver);
      for (const c of running) {
        const pid = Number(dockerInspect(c.id, '{{.State.Pid}}'));
        const answer = await diskCgroups.resolveCGroupName(c.name);
        expect([c.name, answer.pid, answer.value]).toEqual([c.name, pid, cgroupTruth(pid)]);
      }
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

    it('starts on the files, switches to the daemon once it answers, and back when its stream ends', async () => {
      relayCroot = startCroot({ ...process.env, DOCKER_HOST: `unix://${relay.path}` }, { retryMinMs: 100, retryMaxMs: 200 });
      relayRegistry = relayCroot.get<EngineRegistry>(EngineRegistry);
      await relayRegistry.start();
      const engine = relayCroot.get(DockerEngine);
      expect(engine.source).toBe('disk');
      expect((await relayRegistry.lookup(web.name)).source).toBe('disk');

      await relay.open();
      expect(await eventually(async () => (engine.source === 'api' ? engine.source : undefined))).toBe('api');
      expect(await eventually(async () => ((await relayRegistry.lookup(web.name)).source === 'api' ? 'api' : undefined))).toBe('api');
      // Events flow through the relay too.
      const late = dockerRun(uniqueName(), {}, created);
      expect((await eventually(async () => relayRegistry.lookup(late.name))).id).toBe(late.id);

      await relay.cut();
      expect(await eventually(async () => (engine.source === 'disk' ? engine.source : undefined))).toBe('disk');
      const reason = await eventually(async () => {
        const r = relayRegistry.statuses().find((s) => s.engine === 'docker')?.reason ?? '';
        return /unreachable/.test(r) ? r : undefined;
      });
      expect(reason).toMatch(/unreachable \((event stream (ended|closed|failed)|ENOENT|ECONNREFUSED)/);
      const latePid = Number(dockerInspect(late.id, '{{.State.Pid}}'));
      expect(
        await eventually(async () => ((await relayCroot.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(late.name)) === latePid ? latePid : undefined)),
      ).toBe(latePid);
    });
  });

  it('answers each container\'s hostname as docker inspect shows it (native module)', async () => {
    const withNative = createCrootContainer({ config: { env: process.env }, modules: [dockerEngineModule, nativeModule] });
    const reg = withNative.get<EngineRegistry>(EngineRegistry);
    await reg.start();
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
