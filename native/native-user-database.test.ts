/**
 * NativeUserDatabase (NSS through the addon) against `getent passwd`, glibc's
 * own NSS tool: the same users by name and by uid, the same "no such user";
 * the one nativeModule binds, and the one croot's config loading uses.
 */
import { execFileSync } from 'node:child_process';
import 'reflect-metadata';
import { systemUsers } from '../bin/default-modules.js';
import { createCrootContainer } from '../core/create-container.js';
import { loadConfigFile } from '../core/config/config-file.js';
import { GetentUserDatabase, UserDatabase, type UserEntry } from '../core/host/user-database.js';
import { describeWith, probes } from '../test/support/components.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative } from './load-native.js';
import { nativeModule } from './native-module.js';
import { NativeUserDatabase } from './native-user-database.js';

/** `getent passwd [KEY]`, parsed: the truth. */
function getent(...keys: string[]): UserEntry[] {
  let out: string;
  try {
    out = execFileSync('getent', ['passwd', ...keys], { encoding: 'utf8' });
  } catch (err) {
    if ((err as { status?: number }).status === 2) return [];
    throw err;
  }
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [name, , uid, gid, , home, shell] = l.split(':') as string[];
      return { name: name as string, uid: Number(uid), gid: Number(gid), home: home as string, shell: shell as string };
    });
}

describeWith('the native module', probes.native, 'NativeUserDatabase', () => {
  const users = new NativeUserDatabase(loadNative());

  it('finds every user getent enumerates, by name and by uid, as getent does', async () => {
    const all = getent();
    expect(all.map((u) => u.name)).toContain('root');
    for (const entry of all) {
      expect(await users.userByName(entry.name)).toEqual(getent(entry.name)[0]);
      // Several names may share a uid: NSS answers the first, as getent does.
      expect(await users.userById(entry.uid)).toEqual(getent(String(entry.uid))[0]);
    }
  });

  it('answers undefined where getent knows no such user, and for names C would read differently', async () => {
    const name = `croot-t-nouser-${process.pid}`;
    expect(getent(name)).toEqual([]);
    expect(await users.userByName(name)).toBeUndefined();
    expect(await users.userByName('')).toBeUndefined();
    // A NUL would end the name at "root" for getpwnam_r.
    expect(await users.userByName('root\0x')).toBeUndefined();
    expect(getent('4294967000')).toEqual([]);
    expect(await users.userById(4294967000)).toBeUndefined();
    expect(await users.userById(-1)).toBeUndefined();
    expect(await users.userById(2 ** 32)).toBeUndefined();
  });

  it('is the UserDatabase nativeModule binds, and the one croot and crootd load their config with', () => {
    const bound = createCrootContainer({ modules: [nativeModule] }).get<UserDatabase>(UserDatabase);
    expect(bound).toBeInstanceOf(NativeUserDatabase);
    expect(systemUsers()).toBeInstanceOf(NativeUserDatabase);
    expect(new GetentUserDatabase()).not.toBeInstanceOf(NativeUserDatabase);
  });

  it('resolves a config file’s allowUsers to the uids getent gives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'croot-users-'));
    try {
      const names = getent()
        .slice(0, 5)
        .map((u) => u.name);
      const file = join(dir, 'croot.json');
      writeFileSync(file, JSON.stringify({ allowUsers: names }));
      const settings = await loadConfigFile(file, { users: systemUsers() });
      expect(settings.allowUids).toEqual(names.map((n) => getent(n)[0]?.uid));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
