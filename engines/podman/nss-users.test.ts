import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { codeOf, eventually } from '../../test/support/outcomes.js';
import { nssUsers, parsePasswd } from './nss-users.js';

describe('parsePasswd', () => {
  it('takes name, uid and home from each line and skips comments and broken lines', () => {
    const text = ['root:x:0:0:root:/root:/bin/bash', '# comment', 'broken', 'nohome:x:5:5::', 'baduid:x:abc:1::/h:/bin/sh', 'ann:x:1000:1000:Ann:/home/ann:/bin/sh', ''].join('\n');
    expect(parsePasswd(text)).toEqual([
      { name: 'root', uid: 0, home: '/root' },
      { name: 'ann', uid: 1000, home: '/home/ann' },
    ]);
  });

  it('skips a commented-out entry', () => {
    expect(parsePasswd(['#ann:x:1000:1000:Ann:/home/ann:/bin/sh', 'bob:x:1001:1001::/home/bob:/bin/sh'].join('\n'))).toEqual([{ name: 'bob', uid: 1001, home: '/home/bob' }]);
  });

  it('skips a line whose uid field is not a plain decimal number', () => {
    const text = ['neg:x:-5:5::/h:/bin/sh', 'suffix:x:12a:5::/h:/bin/sh', 'prefix:x:a12:5::/h:/bin/sh', 'ok:x:12:5::/h:/bin/sh'].join('\n');
    expect(parsePasswd(text)).toEqual([{ name: 'ok', uid: 12, home: '/h' }]);
  });
});

/** A process's command line, or '' once it is gone. */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

describe('nssUsers', () => {
  let tools: string;
  beforeEach(() => (tools = mkdtempSync(join(tmpdir(), 'croot-t-getent-'))));
  afterEach(() => {
    // A fake getent that outlived its test (one that ignores SIGTERM) is ended here, not left behind.
    const pidFile = join(tools, 'pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    if (pid > 0 && cmdline(pid).startsWith('sleep')) process.kill(pid, 'SIGKILL');
    rmSync(tools, { recursive: true, force: true });
  });

  /** A fake getent: `body` as a shell script that first writes its PID to `pid`. */
  function tool(body: string): string {
    const path = join(tools, 'getent');
    writeFileSync(path, `#!/bin/sh\necho $$ > ${join(tools, 'pid')}\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  }

  it('lists the users NSS enumerates, this process\'s own user among them as the C library gives it', async () => {
    const me = userInfo();
    const users = await nssUsers();
    expect(users).toContainEqual({ name: me.username, uid: me.uid, home: me.homedir });
  });

  it('looks users up by name and uid, leaving out the keys NSS does not know', async () => {
    const me = userInfo();
    const users = await nssUsers([String(me.uid), 'croot-t-no-such-user']);
    expect(users).toEqual([{ name: me.username, uid: me.uid, home: me.homedir }]);
  });

  it('kills a getent that does not answer in time and says so', async () => {
    const command = tool('exec sleep 1000');
    const failure = nssUsers([], { command, timeoutMs: 100 });
    expect(await codeOf(failure)).toBe('ERR_TIMEOUT');
    const pid = Number(readFileSync(join(tools, 'pid'), 'utf8'));
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('kills a getent that ignores SIGTERM (a look-up stuck in an NSS module) when it does not answer in time', async () => {
    const command = tool("trap '' TERM\nexec sleep 1000");
    const code = codeOf(nssUsers([], { command, timeoutMs: 100 }));
    const pidFile = join(tools, 'pid');
    await eventually(async () => (existsSync(pidFile) && !existsSync(`/proc/${readFileSync(pidFile, 'utf8').trim()}`) ? true : undefined));
    expect(await code).toBe('ERR_TIMEOUT');
  });

  it('ends the look-up when its signal is aborted', async () => {
    const command = tool('exec sleep 1000');
    const abort = new AbortController();
    const failure = nssUsers([], { command, signal: abort.signal });
    while (!existsSync(join(tools, 'pid'))) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    expect(await codeOf(failure)).toBe('ERR_ABORTED');
  });

  it('fails with ERR_SYSTEM when getent fails or cannot run', async () => {
    expect(await codeOf(nssUsers([], { command: tool('exit 3') }))).toBe('ERR_SYSTEM');
    expect(await codeOf(nssUsers([], { command: join(tools, 'missing') }))).toBe('ERR_SYSTEM');
  });

  it('fails with ERR_SYSTEM, not with what it printed, when a listing of every user ends with getent\'s "not found" status', async () => {
    // The status that means "some keys not found" for a look-up by key means a failed listing here: the users printed are not all.
    const command = tool('echo "root:x:0:0:root:/root:/bin/sh"\nexit 2');
    expect(await codeOf(nssUsers([], { command }))).toBe('ERR_SYSTEM');
  });

  /** The environment getent runs with, read from the kernel (/proc/PID/environ) while it waits. */
  async function environmentOfGetent(): Promise<Map<string, string>> {
    const command = tool('exec sleep 1000');
    const abort = new AbortController();
    const failure = codeOf(nssUsers([], { command, signal: abort.signal }));
    const pidFile = join(tools, 'pid');
    const pid = await eventually(async () => (existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() || undefined : undefined));
    // Once the script has exec'd its sleep, environ is what getent was given (while exec runs, cmdline reads empty).
    await eventually(async () => (cmdline(Number(pid)) === 'sleep\u00001000\u0000' ? true : undefined));
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    abort.abort();
    expect(await failure).toBe('ERR_ABORTED');
    return new Map(environ.split('\0').filter((v) => v !== '').map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]));
  }

  it('runs getent with this process\'s PATH and LC_ALL=C, and nothing else of its environment', async () => {
    process.env.CROOT_T_NSS = 'not for getent';
    try {
      const env = await environmentOfGetent();
      expect(env.get('PATH')).toBe(process.env.PATH);
      expect(env.get('LC_ALL')).toBe('C');
      expect(env.has('CROOT_T_NSS')).toBe(false);
      expect(env.has('HOME')).toBe(false);
    } finally {
      delete process.env.CROOT_T_NSS;
    }
  });

  it('gives getent the usual system PATH when this process has none', async () => {
    const path = process.env.PATH;
    delete process.env.PATH;
    try {
      expect((await environmentOfGetent()).get('PATH')).toBe('/usr/sbin:/usr/bin:/sbin:/bin');
    } finally {
      process.env.PATH = path;
    }
  });

  it('fails with ERR_SYSTEM, not with an empty answer, when a look-up by key fails otherwise than by keys not found', async () => {
    // getent(1): 1 is a missing argument or unknown database, 2 is "a key could not be found".
    const command = tool('echo "root:x:0:0:root:/root:/bin/sh"\nexit 1');
    expect(await codeOf(nssUsers(['root'], { command }))).toBe('ERR_SYSTEM');
  });
});
