import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SOCKET_PATH, defaultConfig, defaultSocketPath } from './croot-config.js';

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'croot-t-config-'));
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('defaultSocketPath', () => {
  it('is $PCP_VAR_DIR/pmcd/root.socket, as PCP places its root socket', () => {
    expect(defaultSocketPath({ PCP_VAR_DIR: '/opt/pcp/var', PCP_CONF: join(work, 'absent') })).toBe('/opt/pcp/var/pmcd/root.socket');
    expect(defaultSocketPath({ PCP_VAR_DIR: '/opt/pcp/var//' })).toBe('/opt/pcp/var/pmcd/root.socket');
  });

  it('takes PCP_VAR_DIR from the pcp.conf PCP_CONF names when the environment has none', () => {
    const conf = join(work, 'pcp.conf');
    // A comment or a lower-case key after the setting changes nothing.
    writeFileSync(conf, ' PCP_VAR_DIR="/srv/pcp"\nPCP_LOG_DIR=/var/log/pcp\n# PCP_VAR_DIR=/commented\nX_PCP_VAR_DIR=/other\n');
    expect(defaultSocketPath({ PCP_CONF: conf })).toBe('/srv/pcp/pmcd/root.socket');
    writeFileSync(conf, 'PCP_VAR_DIR=/var/lib/pcp2\n');
    expect(defaultSocketPath({ PCP_CONF: conf })).toBe('/var/lib/pcp2/pmcd/root.socket');
  });

  it("is PCP's usual /var/lib/pcp/pmcd/root.socket when neither says where", () => {
    expect(DEFAULT_SOCKET_PATH).toBe('/var/lib/pcp/pmcd/root.socket');
    expect(defaultSocketPath({ PCP_CONF: join(work, 'absent') })).toBe('/var/lib/pcp/pmcd/root.socket');
    const conf = join(work, 'pcp.conf');
    writeFileSync(conf, 'PCP_LOG_DIR=/var/log/pcp\nPCP_VAR_DIR=\n');
    expect(defaultSocketPath({ PCP_CONF: conf })).toBe('/var/lib/pcp/pmcd/root.socket');
  });
});

describe('defaultConfig', () => {
  it("fills in pmdaroot's defaults: mode 0755, root only, /proc, no engine left out, no declared container", () => {
    const env = { PCP_VAR_DIR: '/opt/v' };
    expect(defaultConfig({ env })).toStrictEqual({
      socketPath: '/opt/v/pmcd/root.socket',
      socketMode: 0o755,
      allowUids: [0],
      procRoot: '/proc',
      disabledEngines: [],
      staticContainers: [],
      env,
    });
    expect(defaultConfig().env).toBe(process.env);
  });

  it('keeps what it is given', () => {
    const given = {
      socketPath: '/tmp/s',
      socketMode: 0o777,
      allowUids: [0, 5],
      procRoot: '/tmp/proc',
      disabledEngines: ['lxc'],
      staticContainers: [{ name: 'a', pid: 1 }],
      env: {},
      connectionLimits: { maxConnections: 3 },
    };
    expect(defaultConfig(given)).toStrictEqual(given);
  });
});
