import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetentUserDatabase, parsePasswdLine } from './user-database.js';

/** id(1)'s view of a user (its own NSS lookup): the truth. */
function idOf(user: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

describe('GetentUserDatabase', () => {
  const users = new GetentUserDatabase();
  const known = ['root', 'pcp', 'croot-rootless', 'nobody'].filter((u) => idOf(u) !== undefined);

  it('finds by name the uid and gid id(1) gives, for every user on this host it is asked about', async () => {
    expect(known).toContain('root');
    for (const name of known) {
      const entry = await users.userByName(name);
      expect([name, entry?.uid, entry?.gid]).toEqual([name, idOf(name)?.uid, idOf(name)?.gid]);
    }
  });

  it('finds by uid the same user it finds by name', async () => {
    for (const name of known) {
      const uid = idOf(name)?.uid as number;
      expect((await users.userById(uid))?.uid).toBe(uid);
    }
    expect((await users.userById(0))?.name).toBe('root');
  });

  it('gives undefined for a name the name service does not know, for a prefix, and for a number as a name', async () => {
    expect(idOf('croot-t-no-such-user')).toBeUndefined();
    expect(await users.userByName('croot-t-no-such-user')).toBeUndefined();
    expect(await users.userByName('roo')).toBeUndefined();
    // getent would take "0" as a uid and answer root: a name is never a number.
    expect(await users.userByName('0')).toBeUndefined();
    expect(await users.userByName('--help')).toBeUndefined();
  });

  it('fails with ERR_SYSTEM when the lookup cannot run at all, saying why and keeping the cause', async () => {
    const failure = new GetentUserDatabase('/nonexistent/getent').userByName('root');
    await expect(failure).rejects.toMatchObject({ code: 'ERR_SYSTEM', message: expect.stringMatching(/^\/nonexistent\/getent passwd root: .*ENOENT/), cause: expect.objectContaining({ code: 'ENOENT' }) });
  });

  it('asks the name service for a name that merely starts or ends with digits', async () => {
    // Asking fails here (no such getent): the failure shows the name was asked.
    const never = new GetentUserDatabase('/nonexistent/getent');
    for (const name of ['1user', 'user1']) await expect(never.userByName(name)).rejects.toMatchObject({ code: 'ERR_SYSTEM' });
  });

  it('answers undefined without asking the name service for what no passwd entry can be', async () => {
    // Asking at all would fail: this getent does not exist.
    const never = new GetentUserDatabase('/nonexistent/getent');
    for (const name of ['', 'a:b', 'a\nb', '-x', '42']) expect(await never.userByName(name)).toBeUndefined();
    for (const uid of [-1, 1.5, 2 ** 53]) expect(await never.userById(uid)).toBeUndefined();
  });

  describe('with a getent that fails', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'croot-t-getent-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    function getent(name: string, body: string): string {
      const path = join(dir, name);
      writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return path;
    }

    it("reports getent's own complaint, and takes its status 2 as no such user", async () => {
      const broken = new GetentUserDatabase(getent('broken', 'echo "nss: backend down" >&2; exit 1'));
      await expect(broken.userByName('root')).rejects.toMatchObject({ code: 'ERR_SYSTEM', message: expect.stringMatching(/: nss: backend down$/) });
      expect(await new GetentUserDatabase(getent('none', 'exit 2')).userById(0)).toBeUndefined();
    });

    it('gives up with ERR_SYSTEM on a lookup that does not end in time', async () => {
      const hung = new GetentUserDatabase(getent('hung', 'exec sleep 30'), 50);
      await expect(hung.userByName('root')).rejects.toMatchObject({ code: 'ERR_SYSTEM' });
    });

    it('takes only an entry for the very name or uid asked', async () => {
      // A name service answering with another entry than the one asked for.
      const other = new GetentUserDatabase(getent('other', 'echo "daemon:x:1:1::/:/bin/sh"'));
      expect(await other.userByName('root')).toBeUndefined();
      expect(await other.userById(0)).toBeUndefined();
      expect(await other.userById(1)).toMatchObject({ name: 'daemon', uid: 1 });
    });
  });
});

describe('parsePasswdLine', () => {
  it('reads the seven fields of a passwd line', () => {
    expect(parsePasswdLine('pcp:x:995:995:Performance Co-Pilot:/var/lib/pcp:/usr/sbin/nologin')).toEqual({
      name: 'pcp',
      uid: 995,
      gid: 995,
      home: '/var/lib/pcp',
      shell: '/usr/sbin/nologin',
    });
  });

  it('refuses lines that are not passwd entries', () => {
    expect(parsePasswdLine('broken-line')).toBeUndefined();
    expect(parsePasswdLine('a:x:1x:0::/:/bin/sh')).toBeUndefined();
    expect(parsePasswdLine(':x:1:0::/:/bin/sh')).toBeUndefined();
    expect(parsePasswdLine('a:x:1:0::/')).toBeUndefined();
    expect(parsePasswdLine('a:x:1:g::/:/bin/sh')).toBeUndefined();
    expect(parsePasswdLine(`a:x:${'9'.repeat(20)}:0::/:/bin/sh`)).toBeUndefined();
    expect(parsePasswdLine(`a:x:0:${'9'.repeat(20)}::/:/bin/sh`)).toBeUndefined();
    // passwd(5): uid and gid are decimal numbers, nothing else Number() would take.
    for (const [uid, gid] of [['0x10', '0'], ['+1', '0'], [' 1', '0'], ['1e3', '0'], ['1', '0x10'], ['1', '+1'], ['1', ' 1'], ['1', '1e3']]) {
      expect([uid, gid, parsePasswdLine(`a:x:${uid}:${gid}::/:/bin/sh`)]).toEqual([uid, gid, undefined]);
    }
  });
});
