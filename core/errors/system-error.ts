/**
 * The one translation of a system call's failure into a CrootError: Node's
 * errno errors (`code` 'ENOENT', `errno` -2, `syscall`) and the native
 * module's (`code` 'ENOENT', `errno` 2, `syscall`) alike. The errno and the
 * system call are kept as typed fields, the foreign error as `cause`, and
 * the status is -errno, so a C client sees what the system said.
 */
import { constants } from 'node:os';
import { CrootError, type ErrorCode } from './croot-error.js';

/** What a failed call was about, which decides what some errnos mean. */
export interface SystemErrorContext {
  /** The call was about one process: ENOENT and ESRCH mean it is not running (ERR_NOT_RUNNING). */
  readonly process?: boolean;
  /** The call was a connect: ENOENT and ECONNREFUSED mean nobody listens there (ERR_NOT_CONNECTED). */
  readonly connect?: boolean;
  /**
   * The call started or signalled a child (pipe, spawn, kill): whatever the
   * errno, ERR_SYSTEM with status -errno, the status pmdaroot answers.
   */
  readonly child?: boolean;
}

const ERRNO_BY_NAME = constants.errno as Readonly<Record<string, number | undefined>>;
/** errno → its first name (EAGAIN before EWOULDBLOCK, as errno.h lists them). */
const NAME_BY_ERRNO: ReadonlyMap<number, string> = new Map(
  Object.entries(ERRNO_BY_NAME)
    .reverse()
    .map(([name, errno]) => [errno as number, name]),
);

/** The errno (positive) a foreign error carries, by its `code` name first, else its `errno` number. */
export function errnoOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; errno?: unknown } | null;
  if (typeof e?.code === 'string') {
    const byName = ERRNO_BY_NAME[e.code];
    if (byName !== undefined) return byName;
  }
  return typeof e?.errno === 'number' && e.errno !== 0 ? Math.abs(e.errno) : undefined;
}

/**
 * The code an errno means in `context`, and whether the status is -errno
 * (true) or the code's own (false: ERR_NOT_PERMITTED -EPERM, ERR_NOT_RUNNING
 * -ESRCH, a broken connection's -ENOTCONN).
 */
function classify(name: string, context: SystemErrorContext): [ErrorCode, boolean] {
  if (context.child === true) return ['ERR_SYSTEM', true];
  switch (name) {
    case 'ENOENT':
    case 'ESRCH':
      if (context.process === true) return ['ERR_NOT_RUNNING', false];
      return name === 'ENOENT' && context.connect === true ? ['ERR_NOT_CONNECTED', true] : ['ERR_SYSTEM', true];
    case 'ECONNREFUSED':
      return [context.connect === true ? 'ERR_NOT_CONNECTED' : 'ERR_SYSTEM', true];
    case 'EPERM':
    case 'EACCES':
      return ['ERR_NOT_PERMITTED', false];
    case 'EPIPE':
    case 'ECONNRESET':
    case 'ENOTCONN':
      return ['ERR_NOT_CONNECTED', false];
    case 'ETIMEDOUT':
      return ['ERR_TIMEOUT', true];
    default:
      return ['ERR_SYSTEM', true];
  }
}

/**
 * `err` as a CrootError whose message starts with `what`. A CrootError is
 * returned as it is. An error with an errno gets the code that errno means
 * in `context` (EPERM/EACCES: ERR_NOT_PERMITTED; EPIPE/ECONNRESET/ENOTCONN:
 * ERR_NOT_CONNECTED; ETIMEDOUT: ERR_TIMEOUT; see SystemErrorContext; else
 * ERR_SYSTEM), the status -errno unless the code's own says more (see
 * classify), the errno and system call as fields, and the errno's name in
 * `details.code`. Anything else is ERR_SYSTEM with PCP's generic status.
 */
export function systemError(err: unknown, what: string, context: SystemErrorContext = {}): CrootError {
  if (CrootError.is(err)) return err;
  const e = err as { message?: unknown; syscall?: unknown; code?: unknown } | null;
  const message = `${what}: ${typeof e?.message === 'string' ? e.message : String(err)}`;
  const errno = errnoOf(err);
  if (errno === undefined) return new CrootError('ERR_SYSTEM', message, { cause: err });
  const name = typeof e?.code === 'string' && ERRNO_BY_NAME[e.code] === errno ? e.code : (NAME_BY_ERRNO.get(errno) ?? `errno ${errno}`);
  const [code, statusIsErrno] = classify(name, context);
  return new CrootError(code, message, {
    cause: err,
    errno,
    ...(typeof e?.syscall === 'string' ? { syscall: e.syscall } : {}),
    ...(statusIsErrno ? { status: -errno } : {}),
    details: { code: name },
  });
}
