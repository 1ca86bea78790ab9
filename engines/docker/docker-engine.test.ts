import { execFileSync } from 'node:child_process';
import { settle } from '../../test/support/outcomes.js';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { rootCertificates } from 'node:tls';
import { join, resolve } from 'node:path';
import type { Container } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry } from '../../core/engine-registry.js';
import { CrootError } from '../../core/errors.js';
import { ContainerProcessIdResolver } from '../../core/resolvers.js';
import { dockerEndpointFrom, loadDockerTls, type DockerTls } from './docker-api-source.js';
import { DockerEngine } from './docker-engine.js';
import { dockerEngineModule } from './docker-engine-module.js';

const FIXTURES = resolve(__dirname, '../../test/fixtures/pcp-qa');

describe('dockerEndpointFrom', () => {
  it('uses /var/run/docker.sock without DOCKER_HOST or a docker context', () => {
    expect(dockerEndpointFrom({ DOCKER_CONFIG: '/nonexistent/croot-docker-config' })).toEqual({ options: { socketPath: '/var/run/docker.sock' }, label: '/var/run/docker.sock' });
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

describe('dockerEndpointFrom with TLS, as the docker CLI reads its environment', () => {
  const files = (dir: string) => ({ certPath: dir, caFile: `${dir}/ca.pem`, certFile: `${dir}/cert.pem`, keyFile: `${dir}/key.pem` });

  it('verifies with DOCKER_TLS_VERIFY, reading the files from DOCKER_CERT_PATH', () => {
    const endpoint = dockerEndpointFrom({ DOCKER_HOST: 'tcp://10.0.0.5', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/etc/croot/docker' });
    expect(endpoint).toEqual({
      options: { host: '10.0.0.5', port: '2376', protocol: 'https' },
      label: '10.0.0.5:2376',
      tls: { verify: true, ...files('/etc/croot/docker') },
    });
  });

  it('takes any non-empty DOCKER_TLS_VERIFY as on, even 0 (docker does)', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h:1', DOCKER_TLS_VERIFY: '0', DOCKER_CERT_PATH: '/c' }).tls).toEqual({ verify: true, ...files('/c') });
  });

  it('uses no TLS for DOCKER_CERT_PATH alone or an empty DOCKER_TLS_VERIFY', () => {
    for (const env of [{ DOCKER_CERT_PATH: '/c' }, { DOCKER_CERT_PATH: '/c', DOCKER_TLS_VERIFY: '' }]) {
      const endpoint = dockerEndpointFrom({ DOCKER_HOST: 'tcp://h', ...env });
      expect(endpoint.options).toEqual({ host: 'h', port: '2375', protocol: 'http' });
      expect(endpoint.tls).toBeUndefined();
    }
  });

  it('uses TLS without checking the daemon for DOCKER_TLS alone', () => {
    const endpoint = dockerEndpointFrom({ DOCKER_HOST: 'tcp://h', DOCKER_TLS: '1', DOCKER_CERT_PATH: '/c' });
    expect(endpoint.options).toEqual({ host: 'h', port: '2376', protocol: 'https' });
    expect(endpoint.tls).toEqual({ verify: false, ...files('/c') });
  });

  it('defaults the files to $DOCKER_CONFIG, else $HOME/.docker', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: '/cfg', HOME: '/home/u' }).tls?.certPath).toBe('/cfg');
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1', HOME: '/home/u' }).tls).toEqual({ verify: true, ...files('/home/u/.docker') });
  });

  it('verifies for an https:// DOCKER_HOST', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'https://h:2400', HOME: '/home/u' })).toMatchObject({
      options: { host: 'h', port: '2400', protocol: 'https' },
      tls: { verify: true, caFile: '/home/u/.docker/ca.pem' },
    });
  });

  it('ignores the TLS settings for a unix socket', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'unix:///run/docker.sock', DOCKER_TLS_VERIFY: '1' }).tls).toBeUndefined();
  });
});

describe('loadDockerTls', () => {
  let dir: string;
  let n = 0;
  /** A fresh DOCKER_CERT_PATH holding `files`; a `null` content makes a directory there. */
  function certPath(content: Record<string, string | null>, verify = true): DockerTls {
    const path = join(dir, String(n++));
    mkdirSync(path);
    for (const [name, text] of Object.entries(content)) {
      if (text === null) mkdirSync(join(path, name));
      else writeFileSync(join(path, name), text);
    }
    return { verify, certPath: path, caFile: join(path, 'ca.pem'), certFile: join(path, 'cert.pem'), keyFile: join(path, 'key.pem') };
  }
  // A real certificate (one of Node's bundled EC roots) and a key of its type that is not its key.
  const realCa = rootCertificates.find((pem) => new X509Certificate(pem).publicKey.asymmetricKeyType === 'ec') as string;
  const namedCurve = new X509Certificate(realCa).publicKey.asymmetricKeyDetails?.namedCurve as string;
  const unrelatedKey = generateKeyPairSync('ec', { namedCurve }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-docker-tls-unit-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('rejects a missing ca.pem, naming it, whether verifying or not (docker refuses too)', async () => {
    for (const verify of [true, false]) {
      const tls = certPath({}, verify);
      await expect(loadDockerTls(tls)).rejects.toThrow(`TLS: cannot read the CA certificate ${tls.caFile} (ENOENT)`);
    }
  });

  it('rejects a ca.pem holding no certificate, naming it', async () => {
    const tls = certPath({ 'ca.pem': 'not a certificate\n' });
    await expect(loadDockerTls(tls)).rejects.toThrow(`TLS: ${tls.caFile} unusable`);
  });

  it('rejects a cert.pem it cannot read, naming it', async () => {
    const tls = certPath({ 'ca.pem': realCa, 'cert.pem': null, 'key.pem': unrelatedKey });
    await expect(loadDockerTls(tls)).rejects.toThrow(`TLS: cannot read the client certificate ${tls.certFile} (EISDIR)`);
  });

  it('rejects a key.pem that does not belong to cert.pem, naming both', async () => {
    const tls = certPath({ 'ca.pem': realCa, 'cert.pem': realCa, 'key.pem': unrelatedKey });
    await expect(loadDockerTls(tls)).rejects.toThrow(`TLS: ${tls.certFile} with ${tls.keyFile} unusable`);
  });

  it('sends no client certificate when cert.pem and key.pem are absent, and says which', async () => {
    const tls = certPath({ 'ca.pem': realCa });
    const material = await loadDockerTls(tls);
    expect(material.options).toEqual({ ca: Buffer.from(realCa) });
    expect(material.absent).toEqual([tls.certFile, tls.keyFile]);
    expect(material.agent).toBeUndefined();
  });

  it('sends no client certificate when only one of the pair is there (docker does the same)', async () => {
    const tls = certPath({ 'ca.pem': realCa, 'cert.pem': realCa });
    const material = await loadDockerTls(tls);
    expect(material.options).toEqual({ ca: Buffer.from(realCa) });
    expect(material.absent).toEqual([tls.keyFile]);
  });

  it('skips the daemon check through an agent only when not verifying', async () => {
    const material = await loadDockerTls(certPath({ 'ca.pem': realCa }, false));
    expect(material.agent).toBeInstanceOf(Agent);
    expect(material.agent?.options.rejectUnauthorized).toBe(false);
    material.agent?.destroy();
  });
});

describe('DockerEngine with TLS files it cannot read', () => {
  it('is unavailable and names the missing ca.pem, without throwing', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'croot-docker-tls-engine-'));
    const container = createCrootContainer({
      config: {
        env: {
          DOCKER_HOST: 'tcp://127.0.0.1:1',
          DOCKER_TLS_VERIFY: '1',
          DOCKER_CERT_PATH: scratch,
          PCP_DOCKER_DIR: join(scratch, 'no-docker-dir'),
        },
      },
      modules: [dockerEngineModule],
    });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    try {
      await registry.start();
      expect(await registry.containers()).toEqual([]);
      expect(registry.statuses()[0]).toMatchObject({
        engine: 'docker',
        available: false,
        reason: `no daemon at 127.0.0.1:1 (TLS: cannot read the CA certificate ${join(scratch, 'ca.pem')} (ENOENT)) and ${join(scratch, 'no-docker-dir')}/containers absent`,
      });
    } finally {
      await registry.stop();
      rmSync(scratch, { recursive: true, force: true });
    }
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
    await expect(settle(() => pids.resolveProcessId('desperate_turing'))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });

  it('never hands out a 2014 fixture\'s PID: that process is gone or was reused since', async () => {
    const c = await croot(join(scratch, 'var/lib/docker'));
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    for (const name of ['jolly_sinoussi', 'dreamy_elion']) {
      const error = await settle(() => pids.resolveProcessId(name)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(CrootError);
      expect(['ERR_NOT_RUNNING', 'ERR_PID_REUSED']).toContain((error as CrootError).code);
    }
  });
});
