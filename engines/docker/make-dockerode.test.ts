/**
 * makeDockerode against the real dockerd: on its unix socket, and through a
 * TCP port the test relays to that socket, whatever the process's own
 * DOCKER_HOST says. The truth is `docker version`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWith, probes } from '../../test/support/components.js';
import { makeDockerode } from './make-dockerode.js';

const SOCKET = '/var/run/docker.sock';

describeWith('docker', probes.docker, 'makeDockerode', () => {
  const saved = { host: process.env.DOCKER_HOST, certPath: process.env.DOCKER_CERT_PATH };
  let serverVersion: string;
  let emptyCertPath: string;

  beforeAll(() => {
    serverVersion = execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' }).trim();
    emptyCertPath = mkdtempSync(join(tmpdir(), 'croot-t-no-certs-'));
  });
  afterEach(() => {
    for (const [key, value] of [['DOCKER_HOST', saved.host], ['DOCKER_CERT_PATH', saved.certPath]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
  afterAll(() => rmSync(emptyCertPath, { recursive: true, force: true }));

  it('talks to the socket it is given, whatever DOCKER_HOST says, and leaves DOCKER_HOST as it was', async () => {
    // docker-modem would read this tcp:// daemon's cert.pem from DOCKER_CERT_PATH, which holds none.
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:9';
    process.env.DOCKER_CERT_PATH = emptyCertPath;
    const docker = makeDockerode({ socketPath: SOCKET }, undefined);
    expect(process.env.DOCKER_HOST).toBe('tcp://127.0.0.1:9');
    expect((await docker.version()).Version).toBe(serverVersion);
  });

  it('sets no DOCKER_HOST where there was none', () => {
    delete process.env.DOCKER_HOST;
    makeDockerode({ socketPath: SOCKET }, undefined);
    expect('DOCKER_HOST' in process.env).toBe(false);
  });

  it('talks to a tcp:// daemon at the host and port it is given, not at the socket', async () => {
    // dockerd's own socket behind a TCP port of the test's.
    const held = new Set<Socket>();
    const relay: Server = createServer((client) => {
      const daemon = connect(SOCKET);
      for (const s of [client, daemon]) {
        held.add(s);
        s.on('error', () => undefined);
        s.on('close', () => held.delete(s));
      }
      client.pipe(daemon).pipe(client);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      process.env.DOCKER_HOST = `unix://${join(emptyCertPath, 'no.sock')}`;
      const { port } = relay.address() as AddressInfo;
      const docker = makeDockerode({ host: '127.0.0.1', port: String(port) }, undefined);
      expect((await docker.version()).Version).toBe(serverVersion);
      expect(held.size).toBeGreaterThan(0);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });
});
