/**
 * The Docker engine over TLS with client certificates, as `DOCKER_TLS_VERIFY`
 * + `DOCKER_CERT_PATH` configure the docker CLI. A Node TLS server on
 * 127.0.0.1 stands in for dockerd's tcp port: it demands a client certificate
 * signed by the test CA and relays each accepted connection to the real
 * /var/run/docker.sock. Certificates are made with openssl for each run.
 * The test adds 40 containers of its own, so the daemon always has dozens
 * to list and inspect over TLS (issue 9, defect 7: without verification,
 * each request used to block the event loop in proportion to the
 * connections open, and containers went missing).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { ContainerModule, type Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type RegistryEvent } from '../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { dockerEngineModule, DockerEngine } from '../engines/docker/index.js';
import { commandWorks, describeWith, probes, run } from './support/components.js';
import { codeOf, eventually } from './support/outcomes.js';
import { dockerInspect, dockerRun, removeDockerContainers, uniqueName, type TestContainer } from './support/testbed.js';
import { makeTestPki } from './support/test-pki.js';

const execFileAsync = promisify(execFile);

/** Containers the test adds to the daemon, so it has dozens to list over TLS. */
const EXTRA_CONTAINERS = 40;

function dockerAndOpenssl(): string | undefined {
  return probes.docker() ?? commandWorks('openssl', ['version']);
}

/** A DOCKER_CERT_PATH: the CA the client trusts, and optionally a client certificate and key. */
function certDir(root: string, name: string, from: string, ca: string, client?: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  copyFileSync(join(from, `${ca}.pem`), join(dir, 'ca.pem'));
  if (client !== undefined) {
    copyFileSync(join(from, `${client}.pem`), join(dir, 'cert.pem'));
    copyFileSync(join(from, `${client}-key.pem`), join(dir, 'key.pem'));
  }
  return dir;
}

/** ready() waits for the engine's own first load, however slow a busy machine makes it. */
const slowMachine = new ContainerModule(({ bind }) => {
  bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ firstLoadTimeoutMs: 120000 });
});

describeWith('docker and openssl', dockerAndOpenssl, 'DockerEngine over TLS with client certificates (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)', () => {
  const created: string[] = [];
  const started: EngineRegistry[] = [];
  const sockets = new Set<Socket>();
  /** Handshakes the server refused, with its reason. */
  const refused: string[] = [];
  /** Connections the server accepted (and relayed to dockerd). */
  let accepted = 0;
  let root: string;
  let emptyDockerDir: string;
  let server: Server;
  let port: number;
  let web: TestContainer;
  let extra: TestContainer[];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'croot-docker-tls-'));
    emptyDockerDir = join(root, 'empty-docker-dir');
    mkdirSync(emptyDockerDir);
    const pki = join(root, 'pki');
    mkdirSync(pki);
    makeTestPki(pki);

    const pem = (name: string) => readFileSync(join(pki, `${name}.pem`));
    server = createServer(
      { key: pem('server-key'), cert: pem('server'), ca: pem('ca'), requestCert: true, rejectUnauthorized: true },
      (client: TLSSocket) => {
        accepted += 1;
        const upstream = createConnection('/var/run/docker.sock');
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream);
        upstream.pipe(client);
      },
    );
    server.on('tlsClientError', (err: Error & { code?: string }) => refused.push(err.code ?? err.message));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;

    certDir(root, 'good', pki, 'ca', 'client');
    certDir(root, 'rogue', pki, 'ca', 'rogue');
    certDir(root, 'none', pki, 'ca');
    certDir(root, 'wrong-ca', pki, 'other-ca', 'client');

    web = dockerRun(uniqueName(), { hostname: 'tls-host' }, created);
    extra = Array.from({ length: EXTRA_CONTAINERS }, () => dockerRun(uniqueName(), { createOnly: true }, created));
  }, 180000);

  afterAll(async () => {
    for (const r of started) await r.stop();
    for (const s of sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    removeDockerContainers(created);
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  /** Every health reason the registry reported, in order. */
  const healthOf = new Map<Container, string[]>();

  /**
   * croot with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=certPath, unless
   * `tlsEnv` says otherwise; once its first load is done (with no files to
   * read, that is the API's complete load, or the daemon given up on).
   */
  async function croot(certPath: string, tlsEnv: Record<string, string | undefined> = { DOCKER_TLS_VERIFY: '1' }): Promise<Container> {
    const container = createCrootContainer({
      config: {
        env: {
          DOCKER_HOST: `tcp://127.0.0.1:${port}`,
          ...tlsEnv,
          DOCKER_CERT_PATH: certPath,
          PCP_DOCKER_DIR: emptyDockerDir,
        },
      },
      modules: [dockerEngineModule, slowMachine],
    });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    started.push(registry);
    const reasons: string[] = [];
    healthOf.set(container, reasons);
    registry.subscribe((e: RegistryEvent) => {
      if (e.kind === 'health') reasons.push(e.status.reason);
    });
    await registry.start();
    await registry.ready();
    return container;
  }

  /** Every container the test made is in the index, under its name. */
  function expectAllIndexed(c: Container): void {
    const registry = c.get<EngineRegistry>(EngineRegistry);
    const missing = [web, ...extra].filter((t) => {
      try {
        return (registry.lookup(t.name) as { id: string }).id !== t.id;
      } catch {
        return true;
      }
    });
    expect(missing.map((t) => t.name)).toEqual([]);
  }

  /** The first time the engine said it reads the API, its count already held the test's containers. */
  function expectNoShortLoad(c: Container): void {
    const first = (healthOf.get(c) ?? []).map((r) => /\(API and events\): (\d+) containers?$/.exec(r)).find((m) => m !== null);
    expect(Number(first?.[1])).toBeGreaterThanOrEqual(EXTRA_CONTAINERS + 1);
  }

  function dockerStatus(c: Container) {
    return c.get<EngineRegistry>(EngineRegistry).statuses().find((s) => s.engine === 'docker');
  }

  describe('with a client certificate the daemon\'s CA signed', () => {
    let c: Container;
    beforeAll(async () => {
      c = await croot(join(root, 'good'));
    });
    // Stopped here, so other tests' containers cause no more relayed connections.
    afterAll(async () => {
      await c?.get<EngineRegistry>(EngineRegistry).stop();
    });

    it('uses the daemon at 127.0.0.1:PORT through its API and says so', () => {
      expect(c.get(DockerEngine).source).toBe('api');
      expect(accepted).toBeGreaterThan(0);
      expect(dockerStatus(c)).toMatchObject({
        available: true,
        reason: expect.stringMatching(new RegExp(`^daemon at 127\\.0\\.0\\.1:${port} \\(API and events\\): \\d+ containers?$`)),
      });
    });

    it('has every container the daemon listed, the test\'s 40 included', () => {
      expectAllIndexed(c);
      expectNoShortLoad(c);
    });

    it('resolves a real container to the PID docker inspect gives', async () => {
      const want = Number(dockerInspect(web.id, '{{.State.Pid}}'));
      expect(want).toBeGreaterThan(0);
      const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
      expect(await pids.resolveProcessId(web.name)).toBe(want);
      expect(await pids.resolveProcessId(web.id)).toBe(want);
    });

    it('follows the event stream over TLS: a container started later is found', async () => {
      const late = dockerRun(uniqueName(), {}, created);
      const want = Number(dockerInspect(late.id, '{{.State.Pid}}'));
      const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
      expect(await eventually(async () => pids.resolveProcessId(late.name))).toBe(want);
    });
  });

  describe('as the docker CLI reads the environment', () => {
    it('with DOCKER_TLS alone, sends the client certificate but does not check the daemon\'s', async () => {
      // wrong-ca's ca.pem did not sign the server: only a check of the server would fail.
      const c = await croot(join(root, 'wrong-ca'), { DOCKER_TLS: '1' });
      try {
        expect(dockerStatus(c)?.reason).toMatch(new RegExp(`^daemon at 127\\.0\\.0\\.1:${port} \\(API and events\\)`));
        // Issue 9, defect 7: every container is there, none lost to a stalled event loop.
        expectAllIndexed(c);
        expectNoShortLoad(c);
        expect(await c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(web.name)).toBe(Number(dockerInspect(web.id, '{{.State.Pid}}')));
      } finally {
        await c.get<EngineRegistry>(EngineRegistry).stop();
      }
    });

    it('with DOCKER_CERT_PATH alone, speaks plain HTTP, which the TLS port refuses', async () => {
      const c = await croot(join(root, 'good'), {});
      expect(c.get(DockerEngine).endpoint.tls).toBeUndefined();
      expect(dockerStatus(c)?.available).toBe(false);
      expect(await codeOf(() => c.get<EngineRegistry>(EngineRegistry).lookup(web.name))).toBe('ERR_NO_CONTAINER');
    });
  });

  describe('through docker contexts the docker CLI made (its TLS files, its SkipTLSVerify)', () => {
    let configDir: string;
    const docker = (args: readonly string[]): string => run('env', [`DOCKER_CONFIG=${configDir}`, 'docker', ...args]);
    const tlsFiles = (dir: string, caDir = dir): string =>
      `ca=${join(root, caDir, 'ca.pem')},cert=${join(root, dir, 'cert.pem')},key=${join(root, dir, 'key.pem')}`;

    beforeAll(() => {
      configDir = join(root, 'docker-config');
      mkdirSync(configDir);
      docker(['context', 'create', 'croot-tls-good', '--docker', `host=tcp://127.0.0.1:${port},${tlsFiles('good')}`]);
      docker(['context', 'create', 'croot-tls-rogue', '--docker', `host=tcp://127.0.0.1:${port},${tlsFiles('rogue')}`]);
      docker(['context', 'create', 'croot-tls-skip', '--docker', `host=tcp://127.0.0.1:${port},${tlsFiles('good', 'wrong-ca')},skip-tls-verify=true`]);
    });

    async function crootIn(context: string): Promise<Container> {
      const container = createCrootContainer({
        config: { env: { DOCKER_CONFIG: configDir, DOCKER_CONTEXT: context, PCP_DOCKER_DIR: emptyDockerDir } },
        modules: [dockerEngineModule, slowMachine],
      });
      const registry = container.get<EngineRegistry>(EngineRegistry);
      started.push(registry);
      await registry.start();
      await registry.ready();
      return container;
    }
    /** `docker --context CONTEXT ps`, without blocking: the relay runs in this process. */
    const psThrough = async (context: string): Promise<string> => {
      const args = ['--context', context, 'ps', '-q', '--no-trunc', '--filter', `name=^${web.name}$`];
      const { stdout } = await execFileAsync('docker', args, { env: { ...process.env, DOCKER_CONFIG: configDir }, timeout: 30000 });
      return stdout.trim();
    };

    it('verifies the daemon with the context\'s files, and reaches it as docker --context does', async () => {
      expect(await psThrough('croot-tls-good')).toBe(web.id);
      const c = await crootIn('croot-tls-good');
      expect(c.get(DockerEngine).endpoint.tls).toMatchObject({ verify: true, certFile: expect.stringContaining(join(configDir, 'contexts', 'tls')) });
      expect(dockerStatus(c)?.reason).toMatch(new RegExp(`^daemon at 127\\.0\\.0\\.1:${port} \\(docker context "croot-tls-good"\\) \\(API and events\\)`));
      expect(await c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(web.name)).toBe(Number(dockerInspect(web.id, '{{.State.Pid}}')));
      await c.get<EngineRegistry>(EngineRegistry).stop();
    });

    it('is refused with a client certificate from another CA, as docker --context is', async () => {
      await expect(psThrough('croot-tls-rogue')).rejects.toThrow(/certificate|tls|handshake/i);
      const c = await crootIn('croot-tls-rogue');
      expect(dockerStatus(c)).toMatchObject({ available: false, reason: expect.stringMatching(/TLS with 127\.0\.0\.1:\d+ \(docker context "croot-tls-rogue"\) failed/) });
      expect(await codeOf(() => c.get<EngineRegistry>(EngineRegistry).lookup(web.name))).toBe('ERR_NO_CONTAINER');
    });

    it('does not check the daemon when the context says skip-tls-verify, as docker --context does not', async () => {
      expect(await psThrough('croot-tls-skip')).toBe(web.id);
      const c = await crootIn('croot-tls-skip');
      expect(c.get(DockerEngine).endpoint.tls?.verify).toBe(false);
      expectAllIndexed(c);
      expect(await c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(web.name)).toBe(Number(dockerInspect(web.id, '{{.State.Pid}}')));
      await c.get<EngineRegistry>(EngineRegistry).stop();
    });
  });

  describe('refused', () => {
    it('is unavailable when its client certificate comes from another CA, and finds nothing', async () => {
      const [before, acceptedBefore] = [refused.length, accepted];
      const c = await croot(join(root, 'rogue'));
      expect(c.get(DockerEngine).source).not.toBe('api');
      const status = dockerStatus(c);
      expect(status?.available).toBe(false);
      expect(status?.reason).toMatch(new RegExp(`^no daemon at 127\\.0\\.0\\.1:${port} \\(TLS with 127\\.0\\.0\\.1:${port} failed: \\S+; sent client certificate ${join(root, 'rogue', 'cert.pem')}\\)`));
      // The server saw the handshake and refused that certificate: nothing reached dockerd.
      expect(refused.length).toBeGreaterThan(before);
      expect(accepted).toBe(acceptedBefore);
      expect(await codeOf(() => c.get<EngineRegistry>(EngineRegistry).lookup(web.name))).toBe('ERR_NO_CONTAINER');
    });

    it('is unavailable without client certificate files, naming the missing ones', async () => {
      const [before, acceptedBefore] = [refused.length, accepted];
      const c = await croot(join(root, 'none'));
      const status = dockerStatus(c);
      expect(status?.available).toBe(false);
      expect(status?.reason).toContain(`sent no client certificate (${join(root, 'none', 'cert.pem')}, ${join(root, 'none', 'key.pem')} absent)`);
      expect(refused.length).toBeGreaterThan(before);
      expect(accepted).toBe(acceptedBefore);
      expect(await codeOf(() => c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(web.name))).toBe('ERR_NO_CONTAINER');
    });

    it('refuses a daemon whose certificate ca.pem did not sign, before sending a request', async () => {
      const acceptedBefore = accepted;
      const c = await croot(join(root, 'wrong-ca'));
      const status = dockerStatus(c);
      expect(status?.available).toBe(false);
      expect(status?.reason).toMatch(new RegExp(`TLS with 127\\.0\\.0\\.1:${port} failed: \\S+`));
      expect(accepted).toBe(acceptedBefore);
      expect(await codeOf(() => c.get<EngineRegistry>(EngineRegistry).lookup(web.name))).toBe('ERR_NO_CONTAINER');
    });

    it('is unavailable when DOCKER_CERT_PATH has no ca.pem, naming it', async () => {
      const empty = join(root, 'no-ca');
      mkdirSync(empty);
      const c = await croot(empty);
      expect(dockerStatus(c)).toMatchObject({
        available: false,
        reason: expect.stringContaining(`TLS: cannot read the CA certificate ${join(empty, 'ca.pem')} (ENOENT)`),
      });
    });
  });
});
