import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { inspect } from 'node:util';
import { crootDials, dockerCliAnswers, dockerDials, tlsEnvironment } from '../../test/support/docker-cli-answers.js';
import { eventually } from '../../test/support/outcomes.js';
import { dockerEndpointFrom, type DockerTls } from './docker-endpoint.js';
import { loadDockerTls } from './docker-tls.js';

describe('dockerEndpointFrom', () => {
  it('uses /var/run/docker.sock without DOCKER_HOST or a docker context', () => {
    expect(dockerEndpointFrom({ DOCKER_CONFIG: '/nonexistent/croot-docker-config' })).toEqual({ options: { socketPath: '/var/run/docker.sock' }, label: '/var/run/docker.sock' });
  });

  it('reads a unix:// DOCKER_HOST', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }).options).toEqual({ socketPath: '/run/user/1000/docker.sock' });
  });

  // Every form of DOCKER_HOST, and the default port with TLS, is checked against the docker CLI in test/docker-host.int.test.ts.
  it('reads a tcp:// DOCKER_HOST', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }).options).toEqual({ host: '10.0.0.5', port: '2375', protocol: 'http' });
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://dockerhost:2376', DOCKER_TLS_VERIFY: '1' }).options).toEqual({
      host: 'dockerhost',
      port: '2376',
      protocol: 'https',
    });
  });
});

describe('dockerEndpointFrom, the forms of DOCKER_HOST', () => {
  it('takes unix:// with no path as the default socket, and ignores blanks around DOCKER_HOST', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'unix://' })).toEqual({ options: { socketPath: '/var/run/docker.sock' }, label: '/var/run/docker.sock' });
    expect(dockerEndpointFrom({ DOCKER_HOST: '  unix:///run/d.sock \n' })).toEqual({ options: { socketPath: '/run/d.sock' }, label: '/run/d.sock' });
  });

  it('takes a blank DOCKER_HOST as unset', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: '   ', DOCKER_CONFIG: '/nonexistent/croot-docker-config' }).options).toEqual({ socketPath: '/var/run/docker.sock' });
  });

  it('reads http://, a bracketed IPv6 address and a trailing slash, labelling host:port', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'http://10.0.0.5:2375/' })).toEqual({ options: { host: '10.0.0.5', port: '2375', protocol: 'http' }, label: '10.0.0.5:2375' });
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://[::1]:2380' }).options).toEqual({ host: '::1', port: '2380', protocol: 'http' });
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h' }).label).toBe('h:2375');
  });

  it('refuses a scheme it does not speak, and ssh:// in any case, saying why', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'fd://' })).toEqual({ options: { socketPath: '/var/run/docker.sock' }, label: 'fd://', problem: 'fd://: croot does not speak fd:// (it reaches docker over unix://, tcp://, http:// or https://)' });
    expect(dockerEndpointFrom({ DOCKER_HOST: 'SSH://me@far' }).problem).toBe('SSH://me@far: an ssh:// daemon runs on another host, and croot answers only for containers whose processes are on this one');
  });

  it('takes an empty DOCKER_CERT_PATH as unset', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '', DOCKER_CONFIG: '/cfg' }).tls?.caFile).toBe('/cfg/ca.pem');
  });
});

describe('dockerEndpointFrom, against what the docker CLI makes of each DOCKER_HOST', () => {
  const { docker, answers } = dockerCliAnswers();
  const endpointFor = (answer: (typeof answers)[number]) =>
    dockerEndpointFrom({ DOCKER_HOST: answer.value, DOCKER_CONFIG: '/nonexistent/croot-docker-config', ...(answer.tls === true ? tlsEnvironment('/c') : {}) });

  it(`dials the address docker ${docker} resolves, and refuses what it refuses`, () => {
    expect(answers.map((a) => [a.value, a.tls ?? false, crootDials(endpointFor(a))])).toEqual(answers.map((a) => [a.value, a.tls ?? false, dockerDials(a)]));
  });

  it('names the value in each refusal, and docker\'s own address for a path without a scheme', () => {
    for (const a of answers) {
      const problem = endpointFor(a).problem;
      if (problem !== undefined) expect(problem.startsWith(`${a.value}: `)).toBe(true);
      // A value without a scheme that docker resolves to an address with an API path.
      if (!a.value.includes('://') && /^tcp:\/\/[^/]*\/./.test(a.resolves ?? '')) {
        expect(problem).toContain(`here ${a.resolves},`);
      }
    }
  });

  it('gives a tcp daemon TLS when the environment asks for it, on the port docker dials', () => {
    for (const a of answers.filter((x) => x.tls === true)) expect(endpointFor(a).options.protocol).toBe('https');
  });
});

describe('dockerEndpointFrom with TLS, as the docker CLI reads its environment', () => {
  const files = (dir: string) => ({ certPath: dir, caFile: `${dir}/ca.pem`, certFile: `${dir}/cert.pem`, keyFile: `${dir}/key.pem` });

  it('verifies with DOCKER_TLS_VERIFY, reading the files from DOCKER_CERT_PATH', () => {
    const endpoint = dockerEndpointFrom({ DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/etc/croot/docker' });
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
    const endpoint = dockerEndpointFrom({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS: '1', DOCKER_CERT_PATH: '/c' });
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

  it('puts ca.pem alone in the agent when cert.pem and key.pem are absent, and says which', async () => {
    const tls = certPath({ 'ca.pem': realCa });
    const material = await loadDockerTls(tls);
    expect(material.agent.options.ca).toEqual(Buffer.from(realCa));
    expect([material.agent.options.cert, material.agent.options.key]).toEqual([undefined, undefined]);
    expect(material.absent).toEqual([tls.certFile, tls.keyFile]);
    material.agent.destroy();
  });

  it('sends no client certificate when only one of the pair is there (docker does the same)', async () => {
    const tls = certPath({ 'ca.pem': realCa, 'cert.pem': realCa });
    const material = await loadDockerTls(tls);
    expect(material.agent.options.cert).toBeUndefined();
    expect(material.absent).toEqual([tls.keyFile]);
    material.agent.destroy();
  });

  it('rejects a key.pem it cannot read, naming it', async () => {
    const tls = certPath({ 'ca.pem': realCa, 'cert.pem': realCa, 'key.pem': null });
    await expect(loadDockerTls(tls)).rejects.toThrow(`TLS: cannot read the client key ${tls.keyFile} (EISDIR)`);
  });

  it('sends no client key either when cert.pem alone is absent', async () => {
    const tls = certPath({ 'ca.pem': realCa, 'key.pem': unrelatedKey });
    const material = await loadDockerTls(tls);
    expect([material.agent.options.cert, material.agent.options.key]).toEqual([undefined, undefined]);
    expect(material.absent).toEqual([tls.certFile]);
    material.agent.destroy();
  });

  it('checks the daemon\'s certificate exactly when verifying', async () => {
    for (const verify of [true, false]) {
      const material = await loadDockerTls(certPath({ 'ca.pem': realCa }, verify));
      expect([verify, material.agent.options.rejectUnauthorized]).toEqual([verify, verify]);
      material.agent.destroy();
    }
  });

  /**
   * docker-modem runs util.inspect(options, { showHidden: true, depth: null })
   * on every request's options, agent included (issue 9, defect 7). A plain
   * agent holding connections dumps every socket's TLS state; ours must not.
   */
  it('inspects as one short line while it holds connections, where a plain agent dumps them all', async () => {
    // Accepts and never answers: each connection stays in the agent mid-handshake.
    const held: Socket[] = [];
    const server = createServer((s) => held.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const material = await loadDockerTls(certPath({ 'ca.pem': realCa }, false));
    const plain = new Agent({ rejectUnauthorized: false });
    const requests = [material.agent, plain].flatMap((agent) =>
      Array.from({ length: 4 }, () => {
        const req = request({ host: '127.0.0.1', port, path: '/_ping', agent });
        req.on('error', () => undefined);
        req.end();
        return req;
      }),
    );
    try {
      await eventually(async () => (held.length === 8 ? true : undefined));
      const dump = (agent: Agent) => inspect({ path: '/containers/json', agent }, { showHidden: true, depth: null });
      expect(dump(material.agent).length).toBeLessThan(200);
      expect(dump(material.agent)).toContain('DockerTlsAgent');
      expect(dump(plain).length).toBeGreaterThan(10000);
    } finally {
      for (const req of requests) req.destroy();
      for (const s of held) s.destroy();
      material.agent.destroy();
      plain.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('dockerEndpointFrom, what a refusal says', () => {
  it('says how docker reads a path without a scheme, and how to name the socket it may have meant', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: '/var/run/docker.sock' }).problem).toBe(
      '/var/run/docker.sock: docker reads a DOCKER_HOST without a scheme as tcp://, here tcp://localhost:2375/var/run/docker.sock, and croot takes no API path after host:port; a socket is unix:///var/run/docker.sock',
    );
    expect(dockerEndpointFrom({ DOCKER_HOST: './d.sock' }).problem).toMatch(/; a socket is unix:\/\/\.\/d\.sock$/);
    // Neither a path nor a scheme: no socket is suggested.
    expect(dockerEndpointFrom({ DOCKER_HOST: 'h:1/v1' }).problem).toBe(
      'h:1/v1: docker reads a DOCKER_HOST without a scheme as tcp://, here tcp://h:1/v1, and croot takes no API path after host:port',
    );
    // With a scheme: what docker would do with the path.
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h:1/v1' }).problem).toBe('tcp://h:1/v1: docker would send every request under /v1, and croot takes no API path after host:port');
  });

  it('refuses a port past 65535 and takes 65535', () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h:65536' }).problem).toBe('tcp://h:65536: port 65536 is out of range (docker fails to dial it: invalid port)');
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h:65535' })).toEqual({ options: { host: 'h', port: '65535', protocol: 'http' }, label: 'h:65535' });
  });

  it("says docker refuses what docker refuses, naming DOCKER_HOST", () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'foo://h' }).problem).toBe('foo://h: docker refuses this DOCKER_HOST (invalid bind address format)');
    expect(dockerEndpointFrom({ DOCKER_HOST: 'unix://a://b' }).problem).toBe('unix://a://b: docker refuses this DOCKER_HOST (invalid proto, expected unix: a://b)');
  });

  it("gives http:// 2375 and https:// 2376 when no port is written (croot's forms), and tcp:// docker's 2375 even with TLS", () => {
    expect(dockerEndpointFrom({ DOCKER_HOST: 'http://h' }).options).toEqual({ host: 'h', port: '2375', protocol: 'http' });
    expect(dockerEndpointFrom({ DOCKER_HOST: 'https://h', DOCKER_CONFIG: '/nonexistent/croot-docker-config' }).options).toEqual({ host: 'h', port: '2376', protocol: 'https' });
    expect(dockerEndpointFrom({ DOCKER_HOST: 'tcp://h', ...tlsEnvironment('/c') }).options).toEqual({ host: 'h', port: '2375', protocol: 'https' });
  });
});
