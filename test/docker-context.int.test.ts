/**
 * The Docker engine follows the docker CLI's contexts: contexts are made and
 * selected by the real `docker context` commands in a private DOCKER_CONFIG,
 * and croot must pick the daemon `docker` itself would talk to. The context's
 * socket is a symlink to the real /var/run/docker.sock at a path of its own,
 * so the engine's status shows which path it used.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule, type Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions } from '../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { dockerContextFrom, dockerEngineModule, DockerEngine } from '../engines/docker/index.js';
import { describeWith, probes, run } from './support/components.js';
import { codeOf } from './support/outcomes.js';
import { dockerInspect, dockerRun, removeDockerContainers, uniqueName, type TestContainer } from './support/testbed.js';

/** ready() waits for the engine's own first load, however slow a busy machine makes it. */
const slowMachine = new ContainerModule(({ bind }) => {
  bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ firstLoadTimeoutMs: 120000 });
});

describeWith('docker', probes.docker, 'DockerEngine with docker contexts made by the docker CLI', () => {
  const created: string[] = [];
  const started: EngineRegistry[] = [];
  let root: string;
  let configDir: string;
  let emptyDockerDir: string;
  let socketLink: string;
  let web: TestContainer;
  const ctxName = uniqueName('croot-ctx');

  /** The docker CLI with our private config folder (and the environment given). */
  function docker(args: readonly string[], env: Record<string, string> = {}): string {
    return run('env', [`DOCKER_CONFIG=${configDir}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'docker', ...args]);
  }

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-docker-ctx-'));
    configDir = join(root, 'docker-config');
    emptyDockerDir = join(root, 'empty-docker-dir');
    mkdirSync(configDir);
    mkdirSync(emptyDockerDir);
    socketLink = join(root, 'docker.sock');
    symlinkSync('/var/run/docker.sock', socketLink);
    docker(['context', 'create', ctxName, '--docker', `host=unix://${socketLink}`]);
    docker(['context', 'create', `${ctxName}-gone`, '--docker', `host=unix://${join(root, 'no-daemon.sock')}`]);
    docker(['context', 'create', `${ctxName}-ssh`, '--docker', 'host=ssh://someone@elsewhere.example']);
    docker(['context', 'use', ctxName]);
    web = dockerRun(uniqueName(), {}, created);
  });

  afterAll(async () => {
    for (const r of started) await r.stop();
    removeDockerContainers(created);
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  async function croot(env: Record<string, string>): Promise<Container> {
    const container = createCrootContainer({
      config: { env: { DOCKER_CONFIG: configDir, PCP_DOCKER_DIR: emptyDockerDir, ...env } },
      modules: [dockerEngineModule, slowMachine],
    });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    started.push(registry);
    await registry.start();
    // No files to read: the first load is the API's, or the daemon given up on.
    await registry.ready();
    return container;
  }

  const dockerStatus = (c: Container) => c.get<EngineRegistry>(EngineRegistry).statuses().find((s) => s.engine === 'docker');

  it('picks the context the docker CLI shows, and its host', () => {
    for (const env of [{}, { DOCKER_CONTEXT: `${ctxName}-gone` }, { DOCKER_CONTEXT: 'default' }, { DOCKER_HOST: 'unix:///elsewhere.sock' }]) {
      const shown = docker(['context', 'show'], env);
      const choice = dockerContextFrom({ DOCKER_CONFIG: configDir, ...env });
      if (shown === 'default') {
        expect(choice.kind).toBe('none');
        continue;
      }
      expect(choice).toMatchObject({ kind: 'context', context: { name: shown } });
      const host = docker(['context', 'inspect', shown, '--format', '{{.Endpoints.docker.Host}}']);
      expect(choice.kind === 'context' && choice.context.host).toBe(host);
    }
  });

  it('uses the current context\'s socket and finds the containers docker ps finds through it', async () => {
    const c = await croot({});
    expect(c.get(DockerEngine).source).toBe('api');
    expect(dockerStatus(c)?.reason).toContain(`daemon at ${socketLink} (docker context "${ctxName}") (API and events)`);
    // The CLI, through the same context, sees the container too.
    expect(docker(['ps', '-q', '--no-trunc', '--filter', `name=^${web.name}$`])).toBe(web.id);
    const want = Number(dockerInspect(web.id, '{{.State.Pid}}'));
    expect(await c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(web.name)).toBe(want);
  });

  it('lets DOCKER_CONTEXT override the current context, as docker does', async () => {
    const c = await croot({ DOCKER_CONTEXT: `${ctxName}-gone` });
    expect(c.get(DockerEngine).source).toBe('disk');
    expect(dockerStatus(c)).toMatchObject({ available: false, reason: expect.stringContaining(join(root, 'no-daemon.sock')) });
    expect(await codeOf(() => c.get<EngineRegistry>(EngineRegistry).lookup(web.name))).toBe('ERR_NO_CONTAINER');
  });

  it('lets DOCKER_HOST win over any context, as docker does', async () => {
    const c = await croot({ DOCKER_HOST: 'unix:///var/run/docker.sock', DOCKER_CONTEXT: `${ctxName}-gone` });
    expect(dockerStatus(c)?.reason).toMatch(/^daemon at \/var\/run\/docker\.sock \(API and events\)/);
  });

  it('reports a context that does not exist, naming it, instead of guessing a daemon', async () => {
    const missing = `${ctxName}-missing`;
    // The CLI refuses it too.
    expect(() => docker(['ps'], { DOCKER_CONTEXT: missing })).toThrow(/not found/);
    const c = await croot({ DOCKER_CONTEXT: missing });
    expect(c.get(DockerEngine).source).toBe('disk');
    expect(dockerStatus(c)).toMatchObject({ available: false, reason: expect.stringContaining(`docker context "${missing}": not found`) });
  });

  it('refuses an ssh:// context: its containers\' processes are on another host', async () => {
    const c = await croot({ DOCKER_CONTEXT: `${ctxName}-ssh` });
    expect(c.get(DockerEngine).source).toBe('disk');
    expect(dockerStatus(c)?.reason).toContain('ssh://someone@elsewhere.example: an ssh:// daemon runs on another host');
  });
});
