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
  /** A system call failed (errno in `cause`). */
  ERR_SYSTEM: PM_ERR_GENERIC,
  /** The native module could not be loaded. */
  ERR_NATIVE_LOAD: -Errno.ENOSYS,
  /** A configuration file or option that cannot be used. */
  ERR_CONFIG: -Errno.EINVAL,
  /** A status received from a peer, kept as is. */
  ERR_REMOTE: PM_ERR_GENERIC,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface CrootErrorOptions {
  /** PCP status to use instead of the code's default. */
  status?: number;
  cause?: unknown;
  /** Extra facts for logs and callers (e.g. the candidates of an ambiguous name). */
  details?: Record<string, unknown>;
}

export class CrootError extends Error {
  override readonly name = 'CrootError';
  readonly code: ErrorCode;
  /** Negative PCP status (a negative errno or a PM_ERR_* code). */
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: CrootErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? ErrorCodes[code];
    this.details = options.details ?? {};
  }

  /**
   * A CrootError without a stack trace, for outcomes that are answers rather
   * than faults (a name that matches nothing): recording the stack cost about
   * 20 µs of the ~85 µs crootd spent on such a request (docs/benchmarks.md),
   * and it would only ever point at the matcher.
   */
  static withoutStack(code: ErrorCode, message: string, options: CrootErrorOptions = {}): CrootError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new CrootError(code, message, options);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

export function isCrootError(err: unknown): err is CrootError {
  return err instanceof CrootError;
}

/** The PCP status to report for any thrown value. */
export function statusOf(err: unknown): number {
  if (err instanceof CrootError) return err.status;
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno === 'number' && errno !== 0) return -Math.abs(errno);
  return PM_ERR_GENERIC;
}
