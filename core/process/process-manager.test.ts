/**
 * ProcessManager's refusals: everything it checks before a process exists
 * (limits, quoting, ipctype, program lookup, who may start what under
 * pmcd.conf) and the pids it will not touch. No process is started here:
 * the spawner refuses every call, so a refusal that came too late fails the
 * test. ProcessManager with real children is in
 * process-manager.children.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrootError } from '../errors/croot-error.js';
import type { PeerCredentials, ProcessSpawner, ReapedProcess } from '../host/host-services.js';
import { StreamLogger } from '../logging/logger.js';
import { ProcessManager } from './process-manager.js';
import type { CrootConfig } from '../config/croot-config.js';

/** A spawner for tests where no process may be started, signalled or reaped. */
class NoProcesses implements ProcessSpawner {
  readonly calls: string[] = [];
  pipe(): [number, number] {
    return this.refuse('pipe');
  }
  spawn(): number {
    return this.refuse('spawn');
  }
  reap(): ReapedProcess {
    return this.refuse('reap');
  }
  kill(): void {
    this.refuse('kill');
  }
  private refuse(call: string): never {
    this.calls.push(call);
    throw new Error(`${call} called where no process may be touched`);
  }
}

function expectCrootError(err: unknown, code: string, status: number): void {
  expect(err).toBeInstanceOf(CrootError);
  expect(err).toMatchObject({ code, status });
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

const PCP_USER: PeerCredentials = { uid: 995, gid: 995, pid: 4242 };

describe('ProcessManager', () => {
  let dir: string;
  let spawner: NoProcesses;
  let lines: string[];

  function make(env: Record<string, string> = {}): ProcessManager {
    const config = { env: { PCP_PMCDCONF_PATH: join(dir, 'pmcd.conf'), ...env } } as unknown as CrootConfig;
    return new ProcessManager(spawner, new StreamLogger('debug', (line) => lines.push(line)), config, { reapIntervalMs: 10 });
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-pm-'));
    writeFileSync(
      join(dir, 'pmcd.conf'),
      [
        'linux\t60\tpipe\tbinary\t\t/var/lib/pcp/pmdas/linux/pmdalinux',
        'proc\t3\tpipe\tbinary\t\t/var/lib/pcp/pmdas/proc/pmdaproc -d 3',
        'sock\t9\tsocket\tinet 2345\t/usr/local/bin/pmdasock -p 2345',
        'pmcd\t2\tdso\tpmcd_init\t/var/lib/pcp/pmdas/pmcd/pmda_pmcd.so',
        '[access]',
        'allow "local:*" : all;',
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    spawner = new NoProcesses();
    lines = [];
  });

  describe('.start', () => {
    it.each([
      ['an empty label', '', '/bin/true', 'ERR_PROTOCOL', -22],
      ['a 64-byte label', 'l'.repeat(64), '/bin/true', 'ERR_TOO_LONG', -7],
      ['an empty command line', 'x', '', 'ERR_PROTOCOL', -22],
      ['a blank command line', 'x', '   ', 'ERR_PROTOCOL', -22],
      ['a 4096-byte command line', 'x', `/bin/true ${'a'.repeat(4086)}`, 'ERR_TOO_LONG', -7],
      ['an unterminated quote', 'x', '/bin/echo "a', 'ERR_PROTOCOL', -22],
      ['a relative path', 'x', 'bin/sh', 'ERR_PROTOCOL', -22],
      ['a program found nowhere', 'x', 'no-such-program-croot', 'ERR_SYSTEM', -2],
    ])('refuses %s before any process exists', async (_what, label, args, code, status) => {
      expectCrootError(await caught(make().start({ ipctype: 1, label, args }, undefined)), code, status);
      expect(spawner.calls).toEqual([]);
    });

    it('refuses an unknown ipctype with -EINVAL', async () => {
      expectCrootError(await caught(make().start({ ipctype: 3, label: 'x', args: '/bin/true' }, undefined)), 'ERR_PROTOCOL', -22);
      expect(spawner.calls).toEqual([]);
    });
  });

  describe('.start for a client other than root', () => {
    it.each([
      ['a program pmcd.conf does not name', 2, 'linux', '/bin/sh -c id'],
      ["a named agent's label with another command", 2, 'linux', '/var/lib/pcp/pmdas/proc/pmdaproc -d 3'],
      ["a named agent's command under another label", 2, 'kernel', '/var/lib/pcp/pmdas/linux/pmdalinux'],
      ['a named agent with an extra argument', 2, 'proc', '/var/lib/pcp/pmdas/proc/pmdaproc -d 3 -x'],
      ['a named agent with an argument missing', 2, 'proc', '/var/lib/pcp/pmdas/proc/pmdaproc -d'],
      ['a named agent with one argument changed', 2, 'proc', '/var/lib/pcp/pmdas/proc/pmdaproc -d 4'],
      ['a pipe agent asked for with socket IPC', 1, 'linux', '/var/lib/pcp/pmdas/linux/pmdalinux'],
      ['a socket agent asked for with pipe IPC', 2, 'sock', '/usr/local/bin/pmdasock -p 2345'],
      ['a dso agent', 2, 'pmcd', '/var/lib/pcp/pmdas/pmcd/pmda_pmcd.so'],
    ])('refuses %s with -EPERM', async (_what, ipctype, label, args) => {
      expectCrootError(await caught(make().start({ ipctype, label, args }, PCP_USER)), 'ERR_NOT_PERMITTED', -1);
      expect(spawner.calls).toEqual([]);
    });

    it('refuses everything with -EPERM when pmcd.conf cannot be read, saying so', async () => {
      const err = await caught(make({ PCP_PMCDCONF_PATH: join(dir, 'missing.conf') }).start({ ipctype: 2, label: 'linux', args: '/var/lib/pcp/pmdas/linux/pmdalinux' }, PCP_USER));
      expectCrootError(err, 'ERR_NOT_PERMITTED', -1);
      expect((err as Error).message).toContain(`cannot read ${join(dir, 'missing.conf')}: ENOENT`);
    });

    it('logs a refusal once per uid and command', async () => {
      const manager = make();
      for (let i = 0; i < 3; i++) await caught(manager.start({ ipctype: 2, label: 'evil', args: '/bin/sh -c id' }, PCP_USER));
      await caught(manager.start({ ipctype: 2, label: 'evil', args: '/bin/sh -c "id -u"' }, PCP_USER));
      await caught(manager.start({ ipctype: 2, label: 'evil', args: '/bin/sh -c id' }, { ...PCP_USER, uid: 1000 }));
      const refusals = lines.filter((l) => l.includes(' WARN refused to start an agent pmcd.conf does not name '));
      expect(refusals).toHaveLength(3);
      expect(refusals[0]).toMatch(/ uid=995 pid=4242 label=evil args="\/bin\/sh -c id" /);
    });
  });

  describe('.terminate and .wait', () => {
    it('refuse a pid this manager did not start with -ECHILD, and <= 0 for terminate with -EINVAL, touching nothing', async () => {
      const manager = make();
      expectCrootError(await caught(manager.terminate(process.pid, undefined)), 'ERR_NOT_CHILD', -10);
      expectCrootError(await caught(manager.terminate(-1, undefined)), 'ERR_NOT_CHILD', -22);
      expectCrootError(await caught(manager.terminate(0, undefined)), 'ERR_NOT_CHILD', -22);
      expectCrootError(await caught(manager.wait(1, undefined)), 'ERR_NOT_CHILD', -10);
      expect(await manager.wait(-1, undefined)).toEqual({ pid: -1, code: 0 });
      expect(spawner.calls).toEqual([]);
    });
  });
});
