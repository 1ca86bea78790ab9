/**
 * croot's exit statuses, the same for every command, and the hint printed
 * under an error: what to try next.
 */
import { CrootError, Errno } from '../core/errors/croot-error.js';

export const ExitCode = {
  OK: 0,
  /** Anything not below: an I/O error, a protocol error, a bug. */
  FAILURE: 1,
  /** A wrong command line or config file. */
  USAGE: 2,
  /** No container matches the name. */
  NOT_FOUND: 3,
  /** The name fits several containers. */
  AMBIGUOUS: 4,
  /** The container exists but is not running (or its PID now belongs to another process). */
  NOT_RUNNING: 5,
  /** Permission denied: croot could not read what it needed, or the server refused this user. */
  PERMISSION: 6,
  /** The server at --socket could not be reached, or closed the connection before answering. */
  UNREACHABLE: 7,
  /** The server cannot answer this command (PCP's pmdaroot and list, show, engines, status). */
  UNSUPPORTED: 8,
  /** No engine is available: nothing could be listed or looked up. */
  NO_ENGINE: 9,
} as const;

/** The lines `croot --help` and croot(1) print about exit statuses. */
export const EXIT_CODE_TEXT: ReadonlyArray<readonly [number, string]> = [
  [ExitCode.OK, 'success'],
  [ExitCode.FAILURE, 'any other failure'],
  [ExitCode.USAGE, 'usage: unknown command or option, bad argument, bad config file'],
  [ExitCode.NOT_FOUND, 'no container matches the name'],
  [ExitCode.AMBIGUOUS, 'the name fits several containers'],
  [ExitCode.NOT_RUNNING, 'the container is not running'],
  [ExitCode.PERMISSION, 'permission denied (run as root, or ask crootd with --socket)'],
  [ExitCode.UNREACHABLE, 'the server could not be reached or refused the connection'],
  [ExitCode.UNSUPPORTED, 'the server cannot answer this command (PCP\'s pmdaroot cannot list)'],
  [ExitCode.NO_ENGINE, 'no engine is available'],
];

export function exitCodeHelp(): string {
  return ['', 'Exit status:', ...EXIT_CODE_TEXT.map(([code, text]) => `  ${String(code).padEnd(3)} ${text}`)].join('\n');
}

const PERMISSION_STATUSES = new Set([-Errno.EPERM, -Errno.EACCES]);

/** The exit status for an error croot reports. */
export function exitCodeOf(err: unknown): number {
  const e = err as { code?: unknown; exitCode?: unknown };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) {
    return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? ExitCode.OK : ExitCode.USAGE;
  }
  if (!CrootError.is(err)) return ExitCode.FAILURE;
  switch (err.code) {
    case 'ERR_NO_CONTAINER':
      return ExitCode.NOT_FOUND;
    case 'ERR_AMBIGUOUS_NAME':
      return ExitCode.AMBIGUOUS;
    case 'ERR_NOT_RUNNING':
    case 'ERR_PID_REUSED':
      return ExitCode.NOT_RUNNING;
    case 'ERR_NOT_PERMITTED':
      return ExitCode.PERMISSION;
    case 'ERR_CONFIG':
    case 'ERR_INVALID_NAME':
      return ExitCode.USAGE;
    case 'ERR_NOT_CONNECTED':
    case 'ERR_TIMEOUT':
      return ExitCode.UNREACHABLE;
    case 'ERR_NOT_SUPPORTED':
    case 'ERR_VERSION':
      return ExitCode.UNSUPPORTED;
    default:
      return PERMISSION_STATUSES.has(err.status) ? ExitCode.PERMISSION : ExitCode.FAILURE;
  }
}

/** What the user may try, for an error of a command run with (or without) --socket; undefined when nothing useful. */
export function hintFor(err: unknown, context: { socket?: string | undefined; uid: number }): string | undefined {
  if (!CrootError.is(err)) return undefined;
  const code = exitCodeOf(err);
  if (code === ExitCode.AMBIGUOUS) {
    return 'name one of them as ENGINE:NAME (e.g. docker:web) or by its full id';
  }
  if (code === ExitCode.PERMISSION) {
    return context.socket !== undefined
      ? `${context.socket} is for root and the users crootd allows: run as root, or have crootd started with --allow-user and a --socket-mode that lets you connect`
      : 'run as root, or use --socket PATH to ask a running crootd';
  }
  if (code === ExitCode.UNREACHABLE && context.socket !== undefined) {
    if (/closed the event stream/.test(err.message)) {
      return "crootd stopped, or dropped this subscriber because it did not read its events as fast as they came (crootd's log says which)";
    }
    const closed = /closed the connection/.test(err.message);
    if (closed && context.uid !== 0) return `crootd closes the connections of users it does not allow: uid ${context.uid} needs --allow-uid/--allow-user (or allowUsers in its config)`;
    return `is crootd (or pmcd's pmdaroot) listening on ${context.socket}? start it with: crootd --socket ${context.socket}`;
  }
  if (code === ExitCode.NOT_FOUND && context.socket === undefined) {
    return "croot list shows what croot sees; containers of a runtime croot does not know can be declared in the config file's containers";
  }
  return undefined;
}
