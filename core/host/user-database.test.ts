import { execFileSync } from 'node:child_process';
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

  it('fails with ERR_SYSTEM when the lookup cannot run at all', async () => {
    await expect(new GetentUserDatabase('/nonexistent/getent').userByName('root')).rejects.toMatchObject({ code: 'ERR_SYSTEM' });
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
  });
});
