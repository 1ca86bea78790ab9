import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerEndpointFrom } from './docker-endpoint.js';
import { dockerConfigDir, dockerContextFrom } from './docker-context.js';

/**
 * Config folders laid out as docker 28's `docker context create` writes them
 * (meta.json as it writes it; test/docker-context.int.test.ts checks the same
 * reading against the real CLI).
 */
describe('dockerContextFrom', () => {
  let root: string;
  let n = 0;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-docker-context-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  interface ContextSpec {
    readonly host?: string;
    readonly skip?: boolean;
    readonly tls?: readonly string[];
  }
  function configDir(current: string | undefined, contexts: Record<string, ContextSpec> = {}, configText?: string): string {
    const dir = join(root, String(n++));
    mkdirSync(dir);
    if (configText !== undefined) writeFileSync(join(dir, 'config.json'), configText);
    else if (current !== undefined) writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: {}, currentContext: current }, null, '\t'));
    for (const [name, spec] of Object.entries(contexts)) {
      const digest = createHash('sha256').update(name).digest('hex');
      const meta = join(dir, 'contexts', 'meta', digest);
      mkdirSync(meta, { recursive: true });
      const endpoints = spec.host === undefined ? {} : { docker: { Host: spec.host, SkipTLSVerify: spec.skip ?? false } };
      writeFileSync(join(meta, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: endpoints }));
      if (spec.tls !== undefined) {
        const tls = join(dir, 'contexts', 'tls', digest, 'docker');
        mkdirSync(tls, { recursive: true });
        for (const f of spec.tls) writeFileSync(join(tls, f), 'pem');
      }
    }
    return dir;
  }

  it('takes $DOCKER_CONFIG, else $HOME/.docker', () => {
    expect(dockerConfigDir({ DOCKER_CONFIG: '/cfg', HOME: '/home/u' })).toBe('/cfg');
    expect(dockerConfigDir({ HOME: '/home/u' })).toBe('/home/u/.docker');
  });

  it('selects no context without config.json, without currentContext, or for "default"', () => {
    expect(dockerContextFrom({ DOCKER_CONFIG: configDir(undefined) })).toEqual({ kind: 'none' });
    expect(dockerContextFrom({ DOCKER_CONFIG: configDir(undefined, {}, '{"auths":{}}') })).toEqual({ kind: 'none' });
    expect(dockerContextFrom({ DOCKER_CONFIG: configDir('default') })).toEqual({ kind: 'none' });
    expect(dockerContextFrom({ DOCKER_CONFIG: configDir('web', { web: { host: 'unix:///w.sock' } }), DOCKER_CONTEXT: 'default' })).toEqual({ kind: 'none' });
  });

  it('reads the current context, and DOCKER_CONTEXT over it', () => {
    const dir = configDir('a', { a: { host: 'unix:///a.sock' }, b: { host: 'tcp://10.0.0.2:2375' } });
    expect(dockerContextFrom({ DOCKER_CONFIG: dir })).toEqual({ kind: 'context', context: { name: 'a', host: 'unix:///a.sock', skipTlsVerify: false } });
    expect(dockerContextFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'b' })).toMatchObject({ kind: 'context', context: { name: 'b', host: 'tcp://10.0.0.2:2375' } });
  });

  it('gives way to DOCKER_HOST entirely', () => {
    const dir = configDir('a', { a: { host: 'unix:///a.sock' } });
    expect(dockerContextFrom({ DOCKER_CONFIG: dir, DOCKER_HOST: 'unix:///h.sock', DOCKER_CONTEXT: 'a' })).toEqual({ kind: 'none' });
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_HOST: 'unix:///h.sock' }).label).toBe('/h.sock');
  });

  it('takes a config.json holding null as naming no context (docker context show: default), and a blank Host as none', () => {
    expect(dockerContextFrom({ DOCKER_CONFIG: configDir(undefined, {}, 'null') })).toEqual({ kind: 'none' });
    expect(dockerContextFrom({ DOCKER_CONFIG: configDir('xy', { xy: { host: '   ' } }) })).toMatchObject({ kind: 'broken', name: 'xy', problem: expect.stringContaining('names no docker endpoint host') });
  });

  it('takes a DOCKER_CONFIG that is a file as holding no config, and a config.json it cannot read as broken', () => {
    const file = join(root, `file-${n++}`);
    writeFileSync(file, 'not a folder');
    expect(dockerContextFrom({ DOCKER_CONFIG: file })).toEqual({ kind: 'none' });
    const dir = configDir(undefined);
    mkdirSync(join(dir, 'config.json'));
    expect(dockerContextFrom({ DOCKER_CONFIG: dir })).toEqual({ kind: 'broken', name: '?', problem: `cannot read ${join(dir, 'config.json')}: EISDIR` });
  });

  it('says so when a context\'s meta.json cannot be read or parsed', () => {
    const dir = configDir('a', { a: { host: 'unix:///a.sock' } });
    const meta = join(dir, 'contexts', 'meta', createHash('sha256').update('a').digest('hex'), 'meta.json');
    rmSync(meta);
    mkdirSync(meta);
    expect(dockerContextFrom({ DOCKER_CONFIG: dir })).toEqual({ kind: 'broken', name: 'a', problem: `docker context "a": cannot read ${meta}: EISDIR` });
    rmSync(meta, { recursive: true });
    writeFileSync(meta, '{ "Endpoints": ');
    expect(dockerContextFrom({ DOCKER_CONFIG: dir })).toMatchObject({ kind: 'broken', name: 'a', problem: expect.stringMatching(/^docker context "a": cannot read .*meta\.json: .*JSON/) });
    writeFileSync(meta, 'null');
    expect(dockerContextFrom({ DOCKER_CONFIG: dir })).toMatchObject({ kind: 'broken', problem: `docker context "a": ${meta} names no docker endpoint host` });
  });

  it('skips the TLS check only for SkipTLSVerify true, and takes TLS files from a folder holding any one of them', () => {
    const dir = configDir('a', { a: { host: 'tcp://h:2376', tls: ['key.pem'] } });
    const meta = join(dir, 'contexts', 'meta', createHash('sha256').update('a').digest('hex'), 'meta.json');
    writeFileSync(meta, JSON.stringify({ Name: 'a', Endpoints: { docker: { Host: 'tcp://h:2376', SkipTLSVerify: 'true' } } }));
    const choice = dockerContextFrom({ DOCKER_CONFIG: dir });
    expect(choice).toMatchObject({ kind: 'context', context: { skipTlsVerify: false, tlsDir: expect.stringMatching(/\/contexts\/tls\/[0-9a-f]{64}\/docker$/) } });
    for (const file of ['ca.pem', 'cert.pem']) {
      const one = configDir('c1', { c1: { host: 'tcp://h:2376', tls: [file] } });
      expect([file, dockerContextFrom({ DOCKER_CONFIG: one })]).toMatchObject([file, { kind: 'context', context: { tlsDir: expect.stringMatching(/\/docker$/) } }]);
    }
    const none = configDir('b', { b: { host: 'tcp://h:2376', tls: [] } });
    expect(dockerContextFrom({ DOCKER_CONFIG: none })).toEqual({ kind: 'context', context: { name: 'b', host: 'tcp://h:2376', skipTlsVerify: false } });
  });

  it('takes $HOME/.docker from the system\'s home folder when HOME is unset or empty', () => {
    expect(dockerConfigDir({})).toBe(join(homedir(), '.docker'));
    expect(dockerConfigDir({ HOME: '', DOCKER_CONFIG: '' })).toBe(join(homedir(), '.docker'));
  });

  it('says what is wrong with a context it cannot use', () => {
    const dir = configDir('nohost', { nohost: {} });
    expect(dockerContextFrom({ DOCKER_CONFIG: dir })).toMatchObject({ kind: 'broken', name: 'nohost', problem: expect.stringContaining('names no docker endpoint host') });
    expect(dockerContextFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'ghost' })).toMatchObject({
      kind: 'broken',
      problem: expect.stringMatching(/^docker context "ghost": not found \(no .*\/contexts\/meta\/[0-9a-f]{64}\/meta\.json\)$/),
    });
    const bad = configDir(undefined, {}, '{ not json');
    expect(dockerContextFrom({ DOCKER_CONFIG: bad })).toMatchObject({ kind: 'broken', problem: expect.stringContaining('config.json is not valid JSON') });
  });

  it('turns a context into the endpoint dockerode uses, TLS from its own files', () => {
    const dir = configDir('secure', {
      secure: { host: 'tcp://10.0.0.5:2376', tls: ['ca.pem', 'cert.pem', 'key.pem'] },
      lax: { host: 'tcp://10.0.0.5:2376', skip: true, tls: ['cert.pem', 'key.pem'] },
      plain: { host: 'tcp://10.0.0.5' },
      local: { host: 'unix:///run/user/1000/docker.sock' },
    });
    const secure = dockerEndpointFrom({ DOCKER_CONFIG: dir });
    expect(secure.options).toEqual({ host: '10.0.0.5', port: '2376', protocol: 'https' });
    expect(secure.label).toBe('10.0.0.5:2376 (docker context "secure")');
    expect(secure.tls).toMatchObject({ verify: true, caFile: expect.stringMatching(/\/contexts\/tls\/[0-9a-f]{64}\/docker\/ca\.pem$/) });
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'lax' }).tls?.verify).toBe(false);
    const plain = dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'plain' });
    expect(plain.options).toEqual({ host: '10.0.0.5', port: '2375', protocol: 'http' });
    expect(plain.tls).toBeUndefined();
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'local' })).toEqual({
      options: { socketPath: '/run/user/1000/docker.sock' },
      label: '/run/user/1000/docker.sock (docker context "local")',
    });
  });

  it('says "context host" in what docker refuses of a context, refuses one without a scheme, and gives a TLS context without a port 2376', () => {
    const dir = configDir('odd', { odd: { host: 'unix://a://b' }, bare: { host: 'h:1' }, other: { host: 'foo://h' }, secure: { host: 'tcp://10.0.0.5', tls: ['ca.pem'] } });
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir })).toEqual({
      options: { socketPath: '/var/run/docker.sock' },
      label: 'unix://a://b (docker context "odd")',
      problem: 'unix://a://b: docker refuses this context host (invalid proto, expected unix: a://b)',
    });
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'bare' }).problem).toBe('h:1: docker refuses a context host without a scheme (unable to parse docker host)');
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'other' }).problem).toBe('foo://h: croot does not speak foo:// (it reaches docker over unix://, tcp://, http:// or https://)');
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'secure' }).options).toEqual({ host: '10.0.0.5', port: '2376', protocol: 'https' });
  });

  it('gives an endpoint that only carries the problem for a broken context or an ssh:// daemon', () => {
    const dir = configDir('remote', { remote: { host: 'ssh://me@far.example' } });
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir }).problem).toMatch(/^ssh:\/\/me@far\.example: an ssh:\/\/ daemon runs on another host/);
    expect(dockerEndpointFrom({ DOCKER_HOST: 'ssh://me@far.example' }).problem).toContain('another host');
    expect(dockerEndpointFrom({ DOCKER_HOST: 'npipe:////./pipe/docker_engine' }).problem).toContain('croot does not speak npipe://');
    expect(dockerEndpointFrom({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: 'ghost' })).toMatchObject({ label: 'docker context "ghost"', problem: expect.stringContaining('not found') });
  });
});
