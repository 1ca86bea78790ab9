/**
 * crootd's SIGHUP: the containers declared in its config file are re-read
 * while it runs — a new one answers, a dropped one is not found, and a bad
 * file leaves the previous declaration in force; who may connect changes at
 * once (a live connection of a uid dropped from the list is closed); the
 * log file is reopened at its path, as logrotate expects; a changed set of
 * engines is reported as waiting for a restart.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RootClient } from '../core/client/root-client.js';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { builtBinaries, retryUntil, runCommand, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { describeWith, probes } from './support/components.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

describeWith('root, the native module and the built binaries', () => probes.root() ?? probes.native() ?? builtBinaries(), 'crootd on SIGHUP', () => {
  let work: string;
  let configPath: string;
  let first: Sandbox;
  let second: Sandbox;
  let crootd: CrootdProcess | undefined;

  const declare = (containers: Array<{ name: string; pid: number }>): void =>
    writeFileSync(configPath, JSON.stringify({ containers }, null, 2));

  async function pidOf(name: string): Promise<number | string> {
    const client = await RootClient.connect(crootd?.socketPath, { transport: nodeSocketTransport });
    try {
      return await client.processId(name);
    } catch (err) {
      return (err as { code: string }).code;
    } finally {
      client.close();
    }
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'croot-t-reload-'));
    configPath = join(work, 'croot.json');
    first = await startSandbox();
    second = await startSandbox();
    declare([{ name: 'first', pid: first.pid }]);
    crootd = await startCrootd({ socketPath: join(work, 'root.socket'), logPath: join(work, 'crootd.log'), args: ['--config', configPath] });
  });

  afterAll(async () => {
    await crootd?.stop();
    await first?.stop();
    await second?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('answers for a container declared after start, and forgets a dropped one', async () => {
    expect(await pidOf('first')).toBe(first.pid);
    expect(await pidOf('second')).toBe('ERR_NO_CONTAINER');
    declare([{ name: 'second', pid: second.pid }]);
    crootd?.child.kill('SIGHUP');
    expect(await retryUntil(() => pidOf('second'), (v) => v === second.pid, 5000)).toBe(second.pid);
    expect(await pidOf('first')).toBe('ERR_NO_CONTAINER');
    expect(crootd?.log()).toMatch(/INFO SIGHUP: config re-read containers=second/);
  });

  it('keeps the previous declaration when the new file is invalid, and says why', async () => {
    writeFileSync(configPath, '{ "containers": [ { "name": "x" } ] }');
    crootd?.child.kill('SIGHUP');
    await retryUntil(async () => crootd?.log() ?? '', (log) => /SIGHUP: config not reloaded/.test(log), 5000);
    expect(crootd?.log()).toMatch(/ERROR SIGHUP: config not reloaded; keeping the previous one error=.*containers\[0\]/);
    expect(await pidOf('second')).toBe(second.pid);
    expect(crootd?.child.exitCode).toBeNull();
  });

  describe('who may connect, the log file and the socket', () => {
    const NOBODY = 65534;
    let dir: string;
    let cfg: string;
    let log: string;
    let served: CrootdProcess | undefined;
    /** Clients as uid 65534 still running (killed at the end). */
    const clients: Array<ReturnType<typeof spawn>> = [];

    /** A client as uid/gid 65534 that prints "info" once it has the 24-byte INFO and "closed" when the server closes it. */
    const CLIENT = [
      "const s = require('net').createConnection(process.argv[1]);",
      'let bytes = 0;',
      "s.on('data', (d) => { bytes += d.length; if (bytes >= 24) console.log('info'); });",
      "s.on('error', (e) => console.log('error ' + (e.code || e.message)));",
      "s.on('close', () => { console.log('closed bytes=' + bytes); process.exit(0); });",
    ].join('\n');

    /** Connects as 65534 and reports what happened within 3 s. */
    async function connectOnceAsNobody(): Promise<string> {
      const script = `${CLIENT}\ns.on('data', () => { if (bytes >= 24) s.destroy(); });\nsetTimeout(() => s.destroy(), 3000);`;
      const r = await runCommand('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', process.execPath, '-e', script, served?.socketPath ?? '']);
      return r.stdout.trim().split('\n').join(' ');
    }

    const writeConfig = (extra: Record<string, unknown>): void => writeFileSync(cfg, JSON.stringify({ containers: [{ name: 'first', pid: first.pid }], ...extra }));

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'croot-t-reload-uid-'));
      // Others may traverse it (crootd's own directory would be 0700), and the socket is 0777:
      // only crootd's SO_PEERCRED check stands between uid 65534 and the server.
      chmodSync(dir, 0o711);
      cfg = join(dir, 'croot.json');
      log = join(dir, 'crootd.log');
      writeConfig({ allowUids: [] });
      served = await startCrootd({ socketPath: join(dir, 'root.socket'), logPath: log, args: ['--config', cfg, '--no-pcp-user', '--socket-mode', '0777'] });
    });

    afterAll(async () => {
      for (const c of clients) c.kill('SIGKILL');
      await served?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    /** Sends SIGHUP and waits until the log, from here on, matches `expectLog`. */
    async function hup(expectLog: RegExp): Promise<void> {
      const before = served?.log().length ?? 0;
      served?.child.kill('SIGHUP');
      const text = await retryUntil(async () => (served?.log() ?? '').slice(before), (t) => expectLog.test(t), 5000);
      expect(text).toMatch(expectLog);
    }

    it('lets a uid in once SIGHUP adds it to allowUids, and closes its live connection once SIGHUP drops it', async () => {
      expect(await connectOnceAsNobody()).toBe('closed bytes=0');
      expect(served?.log()).toMatch(new RegExp(` WARN connection refused: uid not allowed uid=${NOBODY} `));

      writeConfig({ allowUids: [NOBODY] });
      await hup(/ INFO SIGHUP: allowed uids changed allowUids=0,65534 was=0 closed=0/);
      expect(await connectOnceAsNobody()).toBe('info closed bytes=24');

      // A client that stays connected...
      const client = spawn('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', process.execPath, '-e', CLIENT, served?.socketPath ?? ''], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      clients.push(client);
      let out = '';
      client.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      await retryUntil(async () => out, (o) => o.includes('info'), 5000);
      expect(out).toBe('info\n');
      // ...is closed when its uid is dropped, and a new one is refused.
      writeConfig({ allowUids: [] });
      await hup(/ INFO SIGHUP: allowed uids changed allowUids=0 was=0,65534 closed=1/);
      expect(await retryUntil(async () => out, (o) => o.includes('closed'), 5000)).toBe('info\nclosed bytes=24\n');
      expect(served?.log()).toMatch(new RegExp(` WARN connection closed: uid no longer allowed uid=${NOBODY} `));
      expect(await connectOnceAsNobody()).toBe('closed bytes=0');
    });

    it('reopens its log file at its path on SIGHUP, as logrotate expects, and holds no fd of the old one', async () => {
      renameSync(log, `${log}.1`);
      expect(existsSync(log)).toBe(false);
      served?.child.kill('SIGHUP');
      expect(await retryUntil(async () => served?.log() ?? '', (text) => /SIGHUP: config re-read/.test(text), 5000)).toMatch(/ INFO SIGHUP: config re-read containers=first/);
      // The rotated file got nothing after the rename.
      rmSync(`${log}.1`);
      const fds = readdirSync(`/proc/${served?.pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${served?.pid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      expect(fds.filter((target) => target.startsWith(log))).toEqual([log]);
      // And the server still answers, logging to the new file.
      expect(await pidOfAt(served?.socketPath ?? '', 'first')).toBe(first.pid);
    });

    it('reports engines disabled in the config as waiting for a restart, and keeps every engine meanwhile', async () => {
      writeConfig({ allowUids: [], disabledEngines: ['lxc'] });
      await hup(/ WARN SIGHUP: disabledEngines changed in the config; engines change only when crootd restarts disabledEngines=lxc/);
      // --socket on the command line wins over the config's socket: no warning for that.
      writeConfig({ allowUids: [], disabledEngines: ['lxc'], socket: join(dir, 'elsewhere.socket') });
      await hup(/ INFO SIGHUP: config re-read/);
      expect(served?.log()).not.toMatch(/SIGHUP: the socket changed/);
      expect(existsSync(join(dir, 'elsewhere.socket'))).toBe(false);
      expect(await pidOfAt(served?.socketPath ?? '', 'first')).toBe(first.pid);
    });
  });

  async function pidOfAt(socketPath: string, name: string): Promise<number> {
    const client = await RootClient.connect(socketPath, { transport: nodeSocketTransport });
    try {
      return await client.processId(name);
    } finally {
      client.close();
    }
  }
});
