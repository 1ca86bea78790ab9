/** A ProcessAnchor that holds processes through a real one and counts how many it was asked to hold. */
import type { ProcessAnchor, ProcessAnchorMode, ProcessHandle } from '../../core/host/host-services.js';

export class CountingAnchor implements ProcessAnchor {
  /** Calls of open() so far. */
  opened = 0;
  constructor(private readonly real: ProcessAnchor) {}
  mode(): ProcessAnchorMode {
    return this.real.mode();
  }
  open(pid: number, onExit: () => void): ProcessHandle | undefined {
    this.opened++;
    return this.real.open(pid, onExit);
  }
}
