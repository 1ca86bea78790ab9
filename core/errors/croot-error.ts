/**
 * croot's one error class. Every failure that leaves croot is a CrootError
 * with a string `code` (stable, documented in docs/errors.md), the PCP status
 * number a C client would see (`status`, negative, renderable by pmErrStr) and
 * the foreign error it was translated from (`cause`).
 */

/** PCP's own error numbers: -(12345 + n). */
export const PM_ERR_GENERIC = -12345;
export const PM_ERR_IPC = -12366;
export const PM_ERR_NOCONTAINER = -12399;

/** Linux errno values croot sends as negative statuses. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  EMFILE: 24,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  EPROTO: 71,
  EBADMSG: 74,
  ENOTUNIQ: 76,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  ENOTSUP: 95,
  ECONNREFUSED: 111,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ESTALE: 116,
} as const;

/** Every code a CrootError can carry, with the PCP status it maps to. */
export const ErrorCodes = {
  /** No container of any engine matches the name. */
  ERR_NO_CONTAINER: PM_ERR_NOCONTAINER,
  /** A name or id prefix fits more than one container. */
  ERR_AMBIGUOUS_NAME: -Errno.ENOTUNIQ,
  /** The container exists but has no running init process. */
  ERR_NOT_RUNNING: -Errno.ESRCH,
  /** The recorded PID now belongs to another process (start time differs). */
  ERR_PID_REUSED: -Errno.ESTALE,
  /** No container matches yet, and an engine the name could belong to has not finished its first load. */
  ERR_ENGINE_LOADING: -Errno.EAGAIN,
  /** An empty or otherwise unusable container name. */
  ERR_INVALID_NAME: -Errno.EINVAL,
  /** Two engines registered with one id. */
  ERR_DUPLICATE_ENGINE: -Errno.EEXIST,
  /** A PDU that cannot be decoded. */
  ERR_PROTOCOL: PM_ERR_IPC,
  /** A length beyond the protocol's limits. */
  ERR_TOO_LONG: -Errno.E2BIG,
  /** A PDU version the receiver does not speak. */
  ERR_VERSION: -Errno.ENOTSUP,
  /** The peer sent a different PDU than the one expected. */
  ERR_UNEXPECTED_PDU: -Errno.ESRCH,
  /** The connection is closed or was never made. */
  ERR_NOT_CONNECTED: -Errno.ENOTCONN,
  /** The server refused the request because of who is asking. */
  ERR_NOT_PERMITTED: -Errno.EPERM,
  /** A feature the server does not offer (yet). */
  ERR_NOT_SUPPORTED: -Errno.ENOTSUP,
  /** A request to signal or reap a process this server did not start. */
  ERR_NOT_CHILD: -Errno.ECHILD,
  /** A call that waited too long. */
  ERR_TIMEOUT: -Errno.ETIMEDOUT,
  /** A call that was aborted through its AbortSignal. */
  ERR_ABORTED: -Errno.EINTR,
  /** A system call failed (`errno` and `syscall` say which). */
  ERR_SYSTEM: PM_ERR_GENERIC,
  /** The native module could not be loaded. */
  ERR_NATIVE_LOAD: -Errno.ENOSYS,
  /** A configuration file or option that cannot be used. */
  ERR_CONFIG: -Errno.EINVAL,
  /** A status received from a peer, kept as is. */
  ERR_REMOTE: PM_ERR_GENERIC,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/**
 * Codes that are answers, not faults (a name that fits nothing, a container
 * that is not running...): their errors are made without a stack trace,
 * which would only ever point at the code that gave the answer and costs as
 * much as the rest of such a request.
 */
const ANSWERS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_NO_CONTAINER',
  'ERR_AMBIGUOUS_NAME',
  'ERR_NOT_RUNNING',
  'ERR_PID_REUSED',
  'ERR_ENGINE_LOADING',
  'ERR_INVALID_NAME',
  'ERR_NOT_CHILD',
]);

/** Whether errors of `code` are answers (made without a stack trace) rather than faults. */
export function isAnswerCode(code: ErrorCode): boolean {
  return ANSWERS.has(code);
}

export interface CrootErrorOptions {
  /** PCP status to use instead of the code's default. */
  status?: number;
  cause?: unknown;
  /** The errno of the system call that failed (positive, as errno.h has it). */
  errno?: number;
  /** The system call that failed (`connect`, `setns`, `inotify_add_watch`...). */
  syscall?: string;
  /** Extra facts for logs and callers (e.g. the candidates of an ambiguous name). */
  details?: Record<string, unknown>;
}

/** The brand every CrootError carries, whichever copy of croot (or realm) made it. */
const BRAND = Symbol.for('croot/CrootError');

export class CrootError extends Error {
  override readonly name = 'CrootError';
  readonly code: ErrorCode;
  /** Negative PCP status (a negative errno or a PM_ERR_* code). */
  readonly status: number;
  /** The errno of the system call that failed, when one did. */
  readonly errno: number | undefined;
  /** The system call that failed, when one did. */
  readonly syscall: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: CrootErrorOptions = {}) {
    const limit = Error.stackTraceLimit;
    if (ANSWERS.has(code)) Error.stackTraceLimit = 0;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.code = code;
    this.status = options.status ?? ErrorCodes[code];
    this.errno = options.errno;
    this.syscall = options.syscall;
    this.details = options.details ?? {};
  }

  /**
   * Whether `err` is a CrootError, also one made by another copy of croot
   * (a plugin's) or in another realm (a vm context, Jest's sandbox), where
   * `instanceof` says no.
   */
  static is(err: unknown): err is CrootError {
    return typeof err === 'object' && err !== null && (err as { [BRAND]?: unknown })[BRAND] === true;
  }

  get [BRAND](): true {
    return true;
  }
}

/** Same as {@link CrootError.is}. */
export function isCrootError(err: unknown): err is CrootError {
  return CrootError.is(err);
}

/** The PCP status to report for any thrown value. */
export function statusOf(err: unknown): number {
  if (CrootError.is(err)) return err.status;
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno === 'number' && errno !== 0) return -Math.abs(errno);
  return PM_ERR_GENERIC;
}
