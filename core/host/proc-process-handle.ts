/**
 * A ProcessHandle without a pidfd: the PID and its start time, checked
 * against /proc/PID/stat on every isAlive(). The fallback where pidfds cannot
 * be used (no native module, a kernel without pidfd_open, the fd limit
 * reached). Weaker than a pidfd: a PID reused within the same clock tick
 * (1/100 s) as the first process's start would pass the check.
 */
import { systemError } from '../errors/system-error.js';
import type { ProcessHandle } from './host-services.js';
import { hasExited, readProcessStatOrThrow, type ProcessStat } from './proc-files.js';

export interface ProcProcessHandleOptions {
  /** Where proc is mounted (default `/proc`). */
  readonly procRoot?: string;
  /** Called once, by the first close(). */
  readonly onClose?: () => void;
}

/** Whether `stat` shows the process that started at `startTime`, not exited. */
function running(stat: ProcessStat | undefined, startTime: number): boolean {
  return stat !== undefined && stat.startTime === startTime && !hasExited(stat);
}

export class ProcProcessHandle implements ProcessHandle {
  readonly pidfd: number | undefined = undefined;
  private closed = false;

  private constructor(
    readonly pid: number,
    /** The process's start time (clock ticks after boot), read at open. */
    readonly startTime: number,
    private readonly procRoot: string,
    private readonly onClose: (() => void) | undefined,
  ) {}

  /**
   * A handle on `pid` as /proc shows it now; undefined when there is no such
   * process. A zombie gets a handle that is not alive. Synchronous: one small
   * proc read. Throws the read's error as a CrootError (EMFILE: ERR_SYSTEM,
   * status -EMFILE) when /proc cannot be read: "no such process" would be a
   * wrong answer then.
   */
  static open(pid: number, options: ProcProcessHandleOptions = {}): ProcProcessHandle | undefined {
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const procRoot = options.procRoot ?? '/proc';
    let stat: ProcessStat | undefined;
    try {
      stat = readProcessStatOrThrow(procRoot, pid);
    } catch (err) {
      throw systemError(err, `reading ${procRoot}/${pid}/stat`);
    }
    if (stat === undefined) return undefined;
    return new ProcProcessHandle(pid, stat.startTime, procRoot, options.onClose);
  }

  /**
   * True while /proc/PID/stat shows the same start time and a state other
   * than Z or X. False after close(), and when /proc cannot be read: never
   * alive for a process it cannot vouch for.
   */
  isAlive(): boolean {
    if (this.closed) return false;
    try {
      return running(readProcessStatOrThrow(this.procRoot, this.pid), this.startTime);
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
  }
}
