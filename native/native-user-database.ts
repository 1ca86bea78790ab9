/**
 * The core's UserDatabase through the addon: getpwnam_r and getpwuid_r, the
 * same NSS lookups `getent passwd` makes (files, systemd, sssd, LDAP), with
 * no process spawned. The calls are synchronous and may wait on a remote
 * directory: croot makes them when it loads its config (start, SIGHUP), never
 * on a request path.
 */
import { inject, injectable } from 'inversify';
import { CrootError } from '../core/errors/croot-error.js';
import type { UserDatabase, UserEntry } from '../core/host/user-database.js';
import { CrootNative, type PasswdEntry } from './croot-native.js';
import { translateNativeError } from './native-host-services.js';

/** The largest uid NSS can answer for ((uid_t)-1 means "no user"). */
const MAX_UID = 4294967294;

@injectable()
export class NativeUserDatabase implements UserDatabase {
  constructor(@inject(CrootNative) private readonly native: CrootNative) {}

  async userByName(name: string): Promise<UserEntry | undefined> {
    // A NUL would cut the name C sees: "root\0x" must not be root.
    if (name === '' || name.includes('\0')) return undefined;
    const entry = this.call(`getpwnam_r ${JSON.stringify(name)}`, () => this.native.getUserByName(name));
    return entry?.name === name ? entry : undefined;
  }

  async userById(uid: number): Promise<UserEntry | undefined> {
    if (!Number.isSafeInteger(uid) || uid < 0 || uid > MAX_UID) return undefined;
    const entry = this.call(`getpwuid_r ${uid}`, () => this.native.getUserById(uid));
    return entry?.uid === uid ? entry : undefined;
  }

  private call(what: string, lookup: () => PasswdEntry | null): UserEntry | undefined {
    let entry: PasswdEntry | null;
    try {
      entry = lookup();
    } catch (err) {
      const translated = translateNativeError(err, what);
      // A failed lookup is the name service's failure, whatever its errno: never "no such user".
      throw translated.code === 'ERR_SYSTEM' ? translated : new CrootError('ERR_SYSTEM', translated.message, { cause: err, status: translated.status });
    }
    return entry === null ? undefined : { name: entry.name, uid: entry.uid, gid: entry.gid, home: entry.home, shell: entry.shell };
  }
}
