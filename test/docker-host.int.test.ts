/**
 * DOCKER_HOST as the docker CLI reads it. The installed CLI must still make
 * of each value what test/fixtures/docker-host/docker-cli-answers.json says
 * (the address `docker context inspect default` resolves, the one `docker
 * ps` dials, or its refusal): engines/docker/docker-endpoint.test.ts holds
 * croot to those answers, and here to the live CLI's. A value without a
 * scheme is a tcp address for docker, a bare path included (`/run/d.sock` is
 * tcp://localhost:2375/run/d.sock). End to end, a scheme-less DOCKER_HOST
 * reaches the real daemon through a tcp relay, for docker and for croot.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule, type Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions } from '../core/registry/engine-registry.js';
import { dockerEndpointFrom, dockerEngineModule, DockerEngine } from '../engines/docker/index.js';
import { commandWorks, describeWith, probes } from './support/components.js';
import { crootDials, dockerCliAnswers, dockerDials, tlsEnvironment, type DockerCliAnswer } from './support/docker-cli-answers.js';
import { dockerRun, removeDockerContainers, uniqueName, type TestContainer } from './support/testbed.js';

const cliEnv = (configDir: string, env: Record<string, string>) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: configDir, DOCKER_CONFIG: configDir, ...env });

/** The docker CLI with only `env` (and PATH) set, in a private, empty config folder; its exit status and output. */
function dockerCli(args: readonly string[], env: Record<string, string>, configDir: string): { ok: boolean; out: string } {
  const r = spawnSync('docker', args, { encoding: 'utf8', timeout: 30000, env: cliEnv(configDir, env) });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

/** dockerCli without blocking the event loop: for a daemon this process relays. */
function dockerCliAsync(args: readonly string[], env: Record<string, string>, configDir: string): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile('docker', args, { encoding: 'utf8', timeout: 30000, env: cliEnv(configDir, env) }, (err, stdout, stderr) =>
      resolve({ ok: err === null, out: `${stdout}${stderr}`.trim() }),
    );
  });
}

describeWith('the docker CLI', () => commandWorks('docker', ['--version']), 'DOCKER_HOST, read by croot as the docker CLI reads it', () => {
  const { answers } = dockerCliAnswers();
  let configDir: string;
  let certs: string;
  /** What the installed CLI makes of each captured value, in the fixture's terms. */
  let live: DockerCliAnswer[];

  beforeAll(() => {
    configDir = mkdtempSync(join(tmpdir(), 'croot-t-docker-host-'));
    certs = mkdtempSync(join(configDir, 'certs-'));
    // docker reads the files only to build its TLS settings; empty ones are enough to see the address.
    for (const file of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(certs, file), '');
    live = answers.map(({ value, tls }) => {
      const env = { DOCKER_HOST: value, ...(tls === true ? tlsEnvironment(certs) : {}) };
      const r = dockerCli(['context', 'inspect', 'default', '--format', '{{.Endpoints.docker.Host}}'], env, configDir);
      return { value, ...(tls === true ? { tls } : {}), ...(r.ok ? { resolves: r.out } : { refuses: r.out }) };
    });
  });
  afterAll(() => {
    rmSync(configDir, { recursive: true, force: true });
  });

  it('is the docker CLI the captured answers came from: it resolves and refuses each value as they say', () => {
    expect(live).toEqual(answers);
  });

  it('dials what the installed docker resolves, and refuses what it refuses', () => {
    const croot = live.map((a) => [a.value, a.tls ?? false, crootDials(dockerEndpointFrom({ DOCKER_HOST: a.value, DOCKER_CONFIG: configDir, ...(a.tls === true ? tlsEnvironment(certs) : {}) }))]);
    expect(croot).toEqual(live.map((a) => [a.value, a.tls ?? false, dockerDials(a)]));
  });

  it('fails, as docker does, to dial a port above 65535', () => {
    const version = dockerCli(['version', '--format', '{{.Server.Version}}'], { DOCKER_HOST: '127.0.0.1:99999' }, configDir);
    expect([version.ok, version.out]).toEqual([false, expect.stringContaining('address 99999: invalid port')]);
    expect(dockerEndpointFrom({ DOCKER_HOST: '127.0.0.1:99999' }).problem).toContain('127.0.0.1:99999: port 99999 is out of range');
  });

  it('refuses a docker context whose host has no scheme, as docker does before dialing anything', () => {
    for (const [name, host] of [['croot-bare', '127.0.0.1:1'], ['croot-path', '/var/run/docker.sock']] as const) {
      // `docker context create` refuses such a host, so the context is written as it stores one.
      const meta = join(configDir, 'contexts', 'meta', createHash('sha256').update(name).digest('hex'));
      mkdirSync(meta, { recursive: true });
      writeFileSync(join(meta, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }));
      const version = dockerCli(['version', '--format', '{{.Server.Version}}'], { DOCKER_CONTEXT: name }, configDir);
      expect([name, version.ok, version.out.includes('Cannot connect')]).toEqual([name, false, false]);
      expect(dockerEndpointFrom({ DOCKER_CONTEXT: name, DOCKER_CONFIG: configDir }).problem).toBe(
        `${host}: docker refuses a context host without a scheme (unable to parse docker host)`,
      );
    }
  });
});

describeWith('docker', probes.docker, 'DOCKER_HOST without a scheme, against the real daemon', () => {
  const created: string[] = [];
  const registries: EngineRegistry[] = [];
  let root: string;
  let relay: Server;
  const relayed = new Set<Socket>();
  let port: number;
  let web: TestContainer;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'croot-t-docker-host-'));
    // A plain tcp port in front of the real daemon's socket.
    relay = createServer((client) => {
      const upstream = createConnection('/var/run/docker.sock');
      for (const s of [client, upstream]) {
        relayed.add(s);
        s.on('close', () => relayed.delete(s));
        s.on('error', () => s.destroy());
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    port = (relay.address() as AddressInfo).port;
    web = dockerRun(uniqueName(), {}, created);
  });

  afterAll(async () => {
    for (const r of registries) await r.stop();
    removeDockerContainers(created);
    for (const s of relayed) s.destroy();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    rmSync(root, { recursive: true, force: true });
  });

  async function croot(dockerHost: string): Promise<Container> {
    const c = createCrootContainer({
      config: { env: { DOCKER_HOST: dockerHost, DOCKER_CONFIG: root, PCP_DOCKER_DIR: join(root, 'no-docker-dir') } },
      modules: [
        dockerEngineModule,
        new ContainerModule(({ bind }) => {
          bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ firstLoadTimeoutMs: 120000 });
        }),
      ],
    });
    const registry = c.get<EngineRegistry>(EngineRegistry);
    registries.push(registry);
    await registry.start();
    await registry.ready();
    return c;
  }
  const dockerStatus = (c: Container) => c.get<EngineRegistry>(EngineRegistry).statuses().find((s) => s.engine === 'docker');

  it('reaches the daemon at host:port, finding the container docker ps finds there', async () => {
    const value = `127.0.0.1:${port}`;
    const ps = await dockerCliAsync(['ps', '-q', '--no-trunc', '--filter', `name=^${web.name}$`], { DOCKER_HOST: value }, root);
    expect(ps).toEqual({ ok: true, out: web.id });
    const c = await croot(value);
    expect(c.get(DockerEngine).source).toBe('api');
    expect(dockerStatus(c)?.reason).toMatch(new RegExp(`^daemon at 127\\.0\\.0\\.1:${port} \\(API and events\\)`));
    expect(c.get<EngineRegistry>(EngineRegistry).containers().map((x) => x.id)).toContain(web.id);
  });

  it('does not take a bare socket path as the socket: docker dials tcp://localhost:2375 with it, and croot says so', async () => {
    const value = '/var/run/docker.sock';
    const version = dockerCli(['version', '--format', '{{.Server.Version}}'], { DOCKER_HOST: value }, root);
    expect(version.ok).toBe(false);
    expect(version.out).toContain('tcp://localhost:2375/var/run/docker.sock');
    const c = await croot(value);
    expect(c.get(DockerEngine).source).toBe('disk');
    expect(c.get<EngineRegistry>(EngineRegistry).containers().map((x) => x.id)).not.toContain(web.id);
    expect(dockerStatus(c)).toMatchObject({
      available: false,
      reason: expect.stringContaining(`${value}: docker reads a DOCKER_HOST without a scheme as tcp://, here tcp://localhost:2375/var/run/docker.sock`),
    });
  });
});
