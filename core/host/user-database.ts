/**
 * Users as the system's name service knows them (NSS: /etc/passwd, LDAP,
 * sssd...), not as one file says. The core's implementation asks
 * `getent passwd`, which goes through NSS as every libc program does; the
 * native module may bind one that calls getpwnam_r/getpwuid_r directly.
 */
import { execFile } from 'node:child_process';
import { CrootError } from '../errors/croot-error.js';

/** One passwd entry. */
export interface UserEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

export const UserDatabase = Symbol.for('croot/UserDatabase');
export interface UserDatabase {
  /**
   * The user called `name`, or undefined when the name service knows no
   * such user. Throws a CrootError (ERR_SYSTEM) when the lookup itself
   * fails. May wait on the name service (a network directory): never call
   * it on a request path.
   */
  userByName(name: string): Promise<UserEntry | undefined>;
  /** The user with `uid`, or undefined; throws as `userByName`. */
  userById(uid: number): Promise<UserEntry | undefined>;
}

/** Parses one passwd line (`name:x:uid:gid:gecos:home:shell`); undefined when it is not one. */
export function parsePasswdLine(line: string): UserEntry | undefined {
  const fields = line.split(':');
  if (fields.length < 7) return undefined;
  const [name, , uidText, gidText, , home, shell] = fields as [string, string, string, string, string, string, string];
  if (name === '' || !/^\d+$/.test(uidText) || !/^\d+$/.test(gidText)) return undefined;
  const uid = Number(uidText);
  const gid = Number(gidText);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) return undefined;
  return { name, uid, gid, home, shell };
}

/** `getent passwd KEY`: the system's name service, as every libc program sees it. */
export class GetentUserDatabase implements UserDatabase {
  constructor(
    private readonly command = 'getent',
    private readonly timeoutMs = 10000,
  ) {}

  async userByName(name: string): Promise<UserEntry | undefined> {
    // getent takes a numeric key as a uid, and one starting with '-' as an option.
    if (name === '' || name.startsWith('-') || /^\d+$/.test(name) || name.includes(':') || name.includes('\n')) return undefined;
    const entry = await this.lookup(name);
    return entry?.name === name ? entry : undefined;
  }

  async userById(uid: number): Promise<UserEntry | undefined> {
    if (!Number.isSafeInteger(uid) || uid < 0) return undefined;
    const entry = await this.lookup(String(uid));
    return entry?.uid === uid ? entry : undefined;
  }

  private lookup(key: string): Promise<UserEntry | undefined> {
    return new Promise((resolve, reject) => {
      execFile(this.command, ['passwd', key], { encoding: 'utf8', timeout: this.timeoutMs }, (err, stdout, stderr) => {
        // getent's status 2: no such key.
        if (err !== null && (err as { code?: unknown }).code === 2) return resolve(undefined);
        if (err !== null) {
          const why = stderr.trim() || err.message;
          return reject(new CrootError('ERR_SYSTEM', `${this.command} passwd ${key}: ${why}`, { cause: err }));
        }
        resolve(parsePasswdLine(stdout.split('\n')[0] ?? ''));
      });
    });
  }
}
