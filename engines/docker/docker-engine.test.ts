import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Container } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry } from '../../core/engine-registry.js';
import { CrootError } from '../../core/errors.js';
import { ContainerProcessIdResolver } from '../../core/resolvers.js';
import { dockerEndpointFrom } from './docker-api-source.js';
import { DockerEngine } from './docker-engine.js';
import { dockerEngineModule } from './docker-engine-module.js';

const FIXTURES = resolve(__dirname, '../../test/fixtures/pcp-qa');

describe('dockerEndpointFrom', () => {
  it('uses /var/run/docker.sock without DOCKER_HOST', () => {
    expect(dockerEndpointFrom({})).toEqual({ options: { socketPath: '/var/run/docker.sock' }, label: '/var/run/docker.sock' });
  });

  it('reads a unix:// DOCKER_HOST', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }).options).toEqual({ socketPath: '/run/user/1000/docker.sock' });
  });

  it('reads a tcp:// DOCKER_HOST, with the default port when there is none', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }).options).toEqual({ host: '10.0.0.5', port: '2375', protocol: 'http' });
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://dockerhost', DOCKER_TLS_VERIFY: '1' }).options).toEqual({
      host: 'dockerhost',
      port: '2376',
      protocol: 'https',
    });
  });
});

describe('DockerEngine without a daemon', () => {
  let scratch: string;
  const deadSocket = '/nonexistent/croot-docker.sock';
  const started: Container[] = [];

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'croot-docker-engine-'));
    execFileSync('tar', ['-xzf', join(FIXTURES, 'containers-docker-1.3.2-root-001.tgz'), '-C', scratch]);
  });
  afterAll(async () => {
    for (const c of started) await c.get<EngineRegistry>(EngineRegistry).stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function croot(dockerDir: string): Promise<Container> {
    const container = createCrootContainer({
      config: { env: { DOCKER_HOST: `unix://${deadSocket}`, PCP_DOCKER_DIR: dockerDir } },
      modules: [dockerEngineModule],
    });
    started.push(container);
    await container.get<EngineRegistry>(EngineRegistry).start();
    return container;
  }

  it('reads PCP_DOCKER_DIR and says why the daemon is not used', async () => {
    const c = await croot(join(scratch, 'var/lib/docker'));
    expect(c.get(DockerEngine).source).toBe('disk');
    expect(c.get<EngineRegistry>(EngineRegistry).statuses()).toEqual([
      expect.objectContaining({
        engine: 'docker',
        available: true,
        reason: `daemon at ${deadSocket} unreachable (ENOENT); reading ${join(scratch, 'var/lib/docker')}: 3 containers`,
      }),
    ]);
  });

  it('returns the same frozen array while nothing changed', async () => {
    const engine = (await croot(join(scratch, 'var/lib/docker'))).get(DockerEngine);
    const first = await engine.containers();
    expect(first).toHaveLength(3);
    expect(Object.isFrozen(first)).toBe(true);
    expect(await engine.containers()).toBe(first);
  });

  it('reports no source when neither the daemon nor the folder is there', async () => {
    const c = await croot(join(scratch, 'no-such-docker-dir'));
    expect(await c.get<EngineRegistry>(EngineRegistry).containers()).toEqual([]);
    expect(c.get<EngineRegistry>(EngineRegistry).statuses()[0]).toMatchObject({
      available: false,
      reason: `no daemon at ${deadSocket} (ENOENT) and ${join(scratch, 'no-such-docker-dir')}/containers absent`,
    });
  });

  it('resolves fixture containers by name through the core, refusing the stopped one', async () => {
    const c = await croot(join(scratch, 'var/lib/docker'));
    const registry = c.get<EngineRegistry>(EngineRegistry);
    expect((await registry.lookup('/dreamy_elion')).id).toBe('d2e89f8c107e1b7ae899603469cd524618897d52197fbbd6aaf961454202f23e');
    expect((await registry.lookup('252b')).names).toEqual(['desperate_turing']);
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    await expect(pids.resolveProcessId('desperate_turing')).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });

  it('never hands out a 2014 fixture\'s PID: that process is gone or was reused since', async () => {
    const c = await croot(join(scratch, 'var/lib/docker'));
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    for (const name of ['jolly_sinoussi', 'dreamy_elion']) {
      const error = await pids.resolveProcessId(name).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(CrootError);
      expect(['ERR_NOT_RUNNING', 'ERR_PID_REUSED']).toContain((error as CrootError).code);
    }
  });
});
