/**
 * A ProcessHandle without a pidfd: the PID and its start time, checked
 * against /proc/PID/stat on every isAlive(). The fallback where pidfds cannot
 * be used (no native module, a kernel without pidfd_open, the fd limit
 * reached). Weaker than a pidfd: a PID reused within the same clock tick
 * (1/100 s) as the first process's start would pass the check.
 */
import { readFileSync } from 'node:fs';
import { systemError } from '../errors/system-error.js';
import type { ProcessHandle } from './host-services.js';
import { parseStartTime } from './proc-files.js';

export interface ProcProcessHandleOptions {
  /** Where proc is mounted (default `/proc`). */
  readonly procRoot?: string;
  /** Called once, by the first close(). */
  readonly onClose?: () => void;
}

interface ProcStat {
  readonly state: string;
  readonly startTime: number;
}

/**
 * State and start time from /proc/PID/stat; undefined when the PID is gone.
 * Throws the read's own error when it failed for another reason (EMFILE...).
 */
function readProcStat(procRoot: string, pid: number): ProcStat | undefined {
  let text: string;
  try {
    // Synchronous on purpose: a proc file is made from kernel memory and never waits on a disk.
    text = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
  const startTime = parseStartTime(text);
  // comm may hold spaces and parentheses: the state is the first field after the last ')'.
  const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
  return startTime === undefined || state === '' ? undefined : { state, startTime };
}

function running(stat: ProcStat | undefined, startTime: number): boolean {
  // Z: a zombie has exited; X: dead, being reaped.
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
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
    let stat: ProcStat | undefined;
    try {
      stat = readProcStat(procRoot, pid);
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
      return running(readProcStat(this.procRoot, this.pid), this.startTime);
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
