/**
 * systemError against errors the kernel really gives (link(2) on a directory,
 * execve(2) of a file without the x bit, kill(2) past pid_max, connect(2)
 * to a file that is no socket), and against errors in the native module's
 * shape (positive errno) for what cannot be provoked here at will. The
 * expected errno numbers come from the kernel's errno headers.
 */
import { spawnSync } from 'node:child_process';
import { linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errnoTruth } from '../../test/support/truth.js';
import { CrootError, statusOf } from './croot-error.js';
import { errnoOf, systemError } from './system-error.js';

const E = (name: string): number => errnoTruth(name);
/** PCP's generic status, PM_ERR_GENERIC, as `pmerr -l` lists it. */
const PM_ERR_GENERIC = -12345;

function thrownBy(run: () => unknown): NodeJS.ErrnoException {
  try {
    run();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected a failure');
}

/** An error as croot's native module makes it: the errno's name, the errno positive, the system call. */
function nativeError(name: string, syscall: string): Error & { code: string; errno: number; syscall: string } {
  return Object.assign(new Error(`${syscall}: ${name}`), { code: name, errno: E(name), syscall });
}

/** The fields of a CrootError a caller or a C client sees. */
function seen(err: CrootError): { code: string; status: number; errno: number | undefined; syscall: string | undefined; name: unknown } {
  return { code: err.code, status: err.status, errno: err.errno, syscall: err.syscall, name: err.details.code };
}

describe('systemError with errors the kernel gives', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-system-error-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads EPERM (a hard link to a directory) as ERR_NOT_PERMITTED with -EPERM', () => {
    const err = systemError(thrownBy(() => linkSync(dir, join(dir, 'link'))), 'linking');
    expect(seen(err)).toEqual({ code: 'ERR_NOT_PERMITTED', status: -E('EPERM'), errno: E('EPERM'), syscall: 'link', name: 'EPERM' });
  });

  it('reads EACCES (executing a file without the x bit) as ERR_NOT_PERMITTED with -EPERM, keeping errno EACCES', () => {
    const file = join(dir, 'not-executable');
    writeFileSync(file, 'x', { mode: 0o644 });
    const cause = spawnSync(file).error;
    const err = systemError(cause, 'starting');
    expect(seen(err)).toEqual({ code: 'ERR_NOT_PERMITTED', status: -E('EPERM'), errno: E('EACCES'), syscall: `spawnSync ${file}`, name: 'EACCES' });
    expect(err.cause).toBe(cause);
  });

  it('reads ESRCH (kill past pid_max) as ERR_NOT_RUNNING about a process, as ERR_SYSTEM otherwise, with -ESRCH', () => {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const cause = thrownBy(() => process.kill(pidMax + 1, 0));
    expect(seen(systemError(cause, 'signalling', { process: true }))).toEqual({ code: 'ERR_NOT_RUNNING', status: -E('ESRCH'), errno: E('ESRCH'), syscall: 'kill', name: 'ESRCH' });
    expect(seen(systemError(cause, 'signalling'))).toEqual({ code: 'ERR_SYSTEM', status: -E('ESRCH'), errno: E('ESRCH'), syscall: 'kill', name: 'ESRCH' });
    expect(systemError(cause, 'connecting', { connect: true }).code).toBe('ERR_SYSTEM');
    expect(seen(systemError(cause, 'killing a child', { child: true, process: true }))).toMatchObject({ code: 'ERR_SYSTEM', status: -E('ESRCH') });
  });

  it('reads ECONNREFUSED (connect to a file that is no socket) as ERR_NOT_CONNECTED of a connect, ERR_SYSTEM otherwise, with -ECONNREFUSED', async () => {
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, '');
    const cause = await new Promise<NodeJS.ErrnoException>((resolve) => createConnection(file).once('error', resolve));
    const connect = { code: 'ERR_NOT_CONNECTED', status: -E('ECONNREFUSED'), errno: E('ECONNREFUSED'), syscall: 'connect', name: 'ECONNREFUSED' };
    expect(seen(systemError(cause, 'connecting', { connect: true }))).toEqual(connect);
    expect(seen(systemError(cause, 'connecting'))).toEqual({ ...connect, code: 'ERR_SYSTEM' });
    expect(seen(systemError(cause, 'connecting', { process: true }))).toEqual({ ...connect, code: 'ERR_SYSTEM' });
  });

  it('reads ENOENT about a process that is also a connect as ERR_NOT_RUNNING', () => {
    const cause = thrownBy(() => readFileSync(join(dir, 'missing')));
    expect(seen(systemError(cause, 'reading', { process: true, connect: true }))).toMatchObject({ code: 'ERR_NOT_RUNNING', status: -E('ESRCH'), errno: E('ENOENT') });
  });

  it('reads any other errno (EISDIR, reading a directory) as ERR_SYSTEM with -errno', () => {
    const err = systemError(thrownBy(() => readFileSync(dir)), 'reading');
    expect(seen(err)).toEqual({ code: 'ERR_SYSTEM', status: -E('EISDIR'), errno: E('EISDIR'), syscall: 'read', name: 'EISDIR' });
    expect(err.message).toMatch(/^reading: EISDIR/);
  });
});

describe('systemError with errors in the native module’s shape', () => {
  it.each([
    ['EPIPE', 'ERR_NOT_CONNECTED', 'ENOTCONN'],
    ['ECONNRESET', 'ERR_NOT_CONNECTED', 'ENOTCONN'],
    ['ENOTCONN', 'ERR_NOT_CONNECTED', 'ENOTCONN'],
    ['EACCES', 'ERR_NOT_PERMITTED', 'EPERM'],
  ])('reads %s as %s with the code’s own status, -%s', (name, code, statusName) => {
    expect(seen(systemError(nativeError(name, 'sendmsg'), 'sending'))).toEqual({ code, status: -E(statusName), errno: E(name), syscall: 'sendmsg', name });
  });

  it('reads ETIMEDOUT as ERR_TIMEOUT with -ETIMEDOUT', () => {
    expect(seen(systemError(nativeError('ETIMEDOUT', 'connect'), 'connecting'))).toEqual({ code: 'ERR_TIMEOUT', status: -E('ETIMEDOUT'), errno: E('ETIMEDOUT'), syscall: 'connect', name: 'ETIMEDOUT' });
  });

  it.each(['EPERM', 'EACCES', 'EPIPE', 'ENOENT', 'ECONNREFUSED', 'ETIMEDOUT', 'EAGAIN'])('reads %s of a child-process call as ERR_SYSTEM with -errno', (name) => {
    expect(seen(systemError(nativeError(name, 'pipe2'), 'starting', { child: true }))).toEqual({ code: 'ERR_SYSTEM', status: -E(name), errno: E(name), syscall: 'pipe2', name });
  });

  it('names an errno that comes without its name by the first name errno.h gives it', () => {
    expect(seen(systemError({ errno: E('EAGAIN'), message: 'try again' }, 'reading'))).toEqual({ code: 'ERR_SYSTEM', status: -E('EAGAIN'), errno: E('EAGAIN'), syscall: undefined, name: 'EAGAIN' });
    expect(seen(systemError({ errno: -E('EACCES'), message: 'denied' }, 'reading'))).toMatchObject({ code: 'ERR_NOT_PERMITTED', errno: E('EACCES'), name: 'EACCES' });
    expect(seen(systemError({ errno: 4000 }, 'reading'))).toEqual({ code: 'ERR_SYSTEM', status: -4000, errno: 4000, syscall: undefined, name: 'errno 4000' });
  });

  it('takes the errno of a code that is no errno name from its number', () => {
    expect(seen(systemError({ code: 'ERR_SOMETHING', errno: -E('ENOENT'), syscall: 'open' }, 'opening', { process: true }))).toEqual({
      code: 'ERR_NOT_RUNNING',
      status: -E('ESRCH'),
      errno: E('ENOENT'),
      syscall: 'open',
      name: 'ENOENT',
    });
  });

  it('keeps the name the error gives when errno.h has two for its number', () => {
    expect(seen(systemError({ code: 'EWOULDBLOCK', errno: -E('EAGAIN') }, 'reading'))).toMatchObject({ errno: E('EAGAIN'), name: 'EWOULDBLOCK' });
  });

  it('trusts the errno name over a number that disagrees with it', () => {
    expect(seen(systemError({ code: 'EPIPE', errno: E('ENOENT') }, 'writing'))).toMatchObject({ code: 'ERR_NOT_CONNECTED', errno: E('EPIPE'), name: 'EPIPE' });
  });

  it('makes ERR_SYSTEM with PCP’s generic status of what carries no errno, and keeps a syscall only when it is text', () => {
    for (const err of [{ errno: 0 }, { code: 'ENOTANERRNO' }, { errno: '2' }, null, undefined, 'boom', 7]) {
      expect([err, seen(systemError(err, 'doing'))]).toEqual([err, { code: 'ERR_SYSTEM', status: PM_ERR_GENERIC, errno: undefined, syscall: undefined, name: undefined }]);
    }
    expect(systemError('boom', 'doing').message).toBe('doing: boom');
    const odd = new Error('odd');
    expect(systemError(odd, 'doing').cause).toBe(odd);
    expect(systemError({ errno: 2, syscall: 7 }, 'doing').syscall).toBeUndefined();
  });
});

describe('errnoOf', () => {
  it('gives the errno of an error by its name, else by its number, positive', () => {
    expect(errnoOf({ code: 'ENOENT', errno: -E('ENOENT') })).toBe(E('ENOENT'));
    expect(errnoOf({ code: 'ESRCH' })).toBe(E('ESRCH'));
    expect(errnoOf({ code: 'ERR_X', errno: -E('EPIPE') })).toBe(E('EPIPE'));
    expect(errnoOf({ code: 7, errno: E('EPIPE') })).toBe(E('EPIPE'));
    expect(errnoOf({ errno: 0 })).toBeUndefined();
    expect(errnoOf({ code: 'ENOTANERRNO' })).toBeUndefined();
    expect(errnoOf(null)).toBeUndefined();
  });
});

describe('statusOf', () => {
  it('answers a CrootError’s status, -errno of an errno error, else PCP’s generic status', () => {
    expect(statusOf(new CrootError('ERR_NO_CONTAINER', 'no', { status: -E('EIO') }))).toBe(-E('EIO'));
    expect(statusOf(thrownBy(() => readFileSync('/proc/self/no-such-file')))).toBe(-E('ENOENT'));
    expect(statusOf({ errno: E('EBADF') })).toBe(-E('EBADF'));
    for (const err of [{ errno: 0 }, { errno: '2' }, new Error('plain'), null, undefined]) expect([err, statusOf(err)]).toEqual([err, PM_ERR_GENERIC]);
  });
});
