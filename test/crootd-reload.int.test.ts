/**
 * crootd's SIGHUP: the containers declared in its config file are re-read
 * while it runs — a new one answers, a dropped one is not found, and a bad
 * file leaves the previous declaration in force.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RootClient } from '../core/root-client.js';
import { nodeSocketTransport } from '../core/node-socket-transport.js';
import { builtBinaries, retryUntil, startCrootd, type CrootdProcess } from './support/crootd-process.js';
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
});
