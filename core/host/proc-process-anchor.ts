/**
 * Holding processes without pidfds: handles that check /proc/PID/stat (start
 * time and state) on every `isAlive()`. The registry's anchor when the native
 * module (and so pidfd_open) is not there; exits are seen only when asked,
 * never announced.
 */
import type { ProcessAnchor, ProcessAnchorMode, ProcessHandle } from './host-services.js';
import { ProcProcessHandle } from './proc-process-handle.js';

export class ProcProcessAnchor implements ProcessAnchor {
  constructor(
    private readonly procRoot: string,
    private readonly reason = 'the native module is not loaded',
  ) {}

  mode(): ProcessAnchorMode {
    return { kind: 'proc', reason: this.reason };
  }

  open(pid: number): ProcessHandle | undefined {
    const handle = ProcProcessHandle.open(pid, { procRoot: this.procRoot });
    if (handle !== undefined && !handle.isAlive()) {
      handle.close();
      return undefined;
    }
    return handle;
  }
}
