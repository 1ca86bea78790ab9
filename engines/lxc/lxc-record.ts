/** An LXC container's record: from the listing alone, or from what lxc-info said. */
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import type { LxcInfo } from './lxc-info-runner.js';

export const LXC_ENGINE_ID = 'lxc';

/** LXC states in which the init process exists (FROZEN is paused, which counts as running). */
const LIVE_STATES = new Set(['RUNNING', 'FREEZING', 'FROZEN', 'THAWED', 'STOPPING']);
const PAUSED_STATES = new Set(['FREEZING', 'FROZEN']);

/** A container listed but not asked about yet: its state is unknown, so it is not running. */
export function listedLxcRecord(name: string): ContainerRecord {
  return { engine: LXC_ENGINE_ID, id: name, names: [name], running: false, source: 'directory', pending: true };
}

/** A container as lxc-info described it: running while its state has an init process and lxc-info gave its PID. */
export function lxcRecordFrom(name: string, info: LxcInfo): ContainerRecord {
  const state = info.state;
  const running = state !== undefined && LIVE_STATES.has(state) && info.pid !== undefined && info.pid > 0;
  return {
    engine: LXC_ENGINE_ID,
    id: name,
    names: [name],
    running,
    paused: running && PAUSED_STATES.has(state),
    restarting: false,
    ...(running ? { pid: info.pid } : {}),
    ...(state !== undefined ? { state } : {}),
    source: 'lxc-info',
  };
}

/** Whether two records of one container say the same about it. */
export function sameLxcRecord(a: ContainerRecord, b: ContainerRecord): boolean {
  return a.running === b.running && a.paused === b.paused && a.pid === b.pid && a.state === b.state && a.source === b.source && a.pending === b.pending;
}
