/**
 * The users whose rootless podman stores croot reads, as NSS knows them
 * (files, sssd, LDAP...): `getent passwd`, spawned asynchronously with a time
 * limit, so a slow directory server delays nothing but this engine's own
 * look-up. Kept behind this one function so that it can be replaced by a
 * shared user database of croot's.
 */
import { execFile } from 'node:child_process';
import { CrootError } from '../../core/errors/croot-error.js';

/** One passwd entry (the fields croot uses). */
export interface PasswdUser {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
}

/** Parses passwd lines (`name:x:uid:gid:gecos:home:shell`), as `getent passwd` prints them. */
export function parsePasswd(text: string): PasswdUser[] {
  const out: PasswdUser[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const f = line.split(':');
    const name = f[0];
    const uidText = f[2];
    const home = f[5];
    if (!name || !home || uidText === undefined || !/^\d+$/.test(uidText)) continue;
    out.push({ name, uid: Number(uidText), home });
  }
  return out;
}

export interface NssUserOptions {
  /** The getent program (default `getent` from PATH). */
  readonly command?: string;
  /** Longest the look-up may take before it is killed (ms, default 5000). */
  readonly timeoutMs?: number;
  /** Ends the look-up early (engine stop). */
  readonly signal?: AbortSignal;
}

/** getent's exit status when some of the keys asked for are not found (it still prints the others). */
const SOME_KEYS_NOT_FOUND = 2;

/**
 * The users NSS lists (`getent passwd`), or, with `keys`, the users of
 * those names or uids (`getent passwd KEY...`: users that NSS does not
 * enumerate, as sssd does by default, are found this way). Unknown keys are
 * left out. Rejects with `ERR_TIMEOUT` when getent does not finish in time,
 * and `ERR_SYSTEM` when it cannot run or fails.
 */
export function nssUsers(keys: readonly string[] = [], options: NssUserOptions = {}): Promise<PasswdUser[]> {
  const command = options.command ?? 'getent';
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    execFile(
      command,
      ['passwd', ...keys],
      {
        encoding: 'utf8',
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        // A fixed environment: NSS is configured by /etc/nsswitch.conf, not by crootd's caller.
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      },
      (err, stdout) => {
        if (err === null) {
          resolve(parsePasswd(stdout));
          return;
        }
        const e = err as Error & { killed?: boolean; code?: unknown };
        if (e.code === SOME_KEYS_NOT_FOUND && keys.length > 0) {
          resolve(parsePasswd(stdout));
          return;
        }
        if (e.name === 'AbortError') {
          reject(new CrootError('ERR_ABORTED', `${command} passwd: aborted`, { cause: err }));
        } else if (e.killed === true) {
          reject(new CrootError('ERR_TIMEOUT', `${command} passwd gave no answer within ${timeoutMs} ms`, { cause: err }));
        } else {
          reject(new CrootError('ERR_SYSTEM', `${command} passwd failed: ${e.message.split('\n', 1)[0] ?? ''}`, { cause: err }));
        }
      },
    );
  });
}
