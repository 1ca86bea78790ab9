/**
 * Holding processes without pidfds: a handle remembers the PID's start time
 * and state when opened, and `isAlive()` reads /proc/PID/stat again. Used
 * when the native module (and so pidfd_open) is not there; exits are seen
 * only when asked, never announced.
 */
import type { ProcessAnchor, ProcessAnchorMode, ProcessHandle } from './host-services.js';
import { hasExited, readProcessStat } from './proc.js';

export class ProcProcessHandle implements ProcessHandle {
  readonly pidfd = undefined;
  private closed = false;

  constructor(
    readonly pid: number,
    private readonly startTime: number,
    private readonly procRoot: string,
  ) {}

  isAlive(): boolean {
    if (this.closed) return false;
    const stat = readProcessStat(this.procRoot, this.pid);
    return !hasExited(stat) && stat?.startTime === this.startTime;
  }

  close(): void {
    this.closed = true;
  }
}

/** Opens /proc-checked handles; `mode()` says why pidfds are not used. */
export class ProcProcessAnchor implements ProcessAnchor {
  constructor(
    private readonly procRoot: string,
    private readonly reason = 'the native module is not loaded',
  ) {}

  mode(): ProcessAnchorMode {
    return { kind: 'proc', reason: this.reason };
  }

  open(pid: number): ProcessHandle | undefined {
    const stat = readProcessStat(this.procRoot, pid);
    if (hasExited(stat) || stat === undefined) return undefined;
    return new ProcProcessHandle(pid, stat.startTime, this.procRoot);
  }
}
