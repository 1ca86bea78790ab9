/**
 * Who gets a connection slot when crootd is busy, so that an allowed client
 * cannot use its connections against the others: a cap in all, a smaller cap
 * per non-root uid, slots only root and pmcd may use, and when a cap is hit
 * the oldest idle connection that the newcomer may displace is dropped.
 * pmcd's own connections are never dropped.
 */
import type { ConnectionLimitOptions } from '../config/croot-config.js';

/** What the limits need to know of a live connection. */
export interface LimitedConnection {
  readonly uid: number;
  /** pmcd itself (crootd's parent under `--pmda`, or a process whose executable is pmcd). */
  readonly pmcd: boolean;
  /** Nothing queued or being answered. */
  idle(): boolean;
  /** When it last sent or was sent anything (ms, monotonic). */
  lastActivity(): number;
}

/** The outcome of a new connection: admitted (maybe displacing one), or refused and why. */
export type Admission<C> = { readonly admit: true; readonly evict?: C } | { readonly admit: false; readonly reason: string };

/**
 * Decides whether a newcomer is admitted given the live connections, and
 * which idle connection it displaces when a cap is hit.
 */
export function admit<C extends LimitedConnection>(
  newcomer: { readonly uid: number; readonly pmcd: boolean },
  live: Iterable<C>,
  limits: Required<ConnectionLimitOptions>,
): Admission<C> {
  const privileged = newcomer.uid === 0 || newcomer.pmcd;
  let total = 0;
  let sameUid = 0;
  let oldestSameUid: C | undefined;
  let oldestDisplaceable: C | undefined;
  for (const c of live) {
    total++;
    if (c.pmcd) continue;
    if (c.uid === newcomer.uid) {
      sameUid++;
      if (c.idle() && (oldestSameUid === undefined || c.lastActivity() < oldestSameUid.lastActivity())) oldestSameUid = c;
    }
    // Root's connections are displaced only by root or pmcd.
    if ((privileged || c.uid !== 0) && c.idle() && (oldestDisplaceable === undefined || c.lastActivity() < oldestDisplaceable.lastActivity())) {
      oldestDisplaceable = c;
    }
  }
  if (!privileged && sameUid >= limits.maxConnectionsPerUid) {
    return oldestSameUid !== undefined
      ? { admit: true, evict: oldestSameUid }
      : { admit: false, reason: `uid ${newcomer.uid} holds ${sameUid} busy connections (limit ${limits.maxConnectionsPerUid})` };
  }
  const cap = privileged ? limits.maxConnections : Math.max(0, limits.maxConnections - limits.reservedForRoot);
  if (total < cap) return { admit: true };
  return oldestDisplaceable !== undefined
    ? { admit: true, evict: oldestDisplaceable }
    : { admit: false, reason: `${total} connections, none idle that this client may displace (limit ${cap})` };
}
