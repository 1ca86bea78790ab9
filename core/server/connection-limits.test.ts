/**
 * The admission policy of docs/security.md ("how many connections"), case by
 * case: a cap in all, a smaller cap per non-root uid, slots only root and
 * pmcd may take, the oldest idle connection the newcomer may displace
 * dropped when a cap is hit, pmcd's never. The server's tests drive the same
 * policy through real sockets; here every branch is pinned with plain rows.
 */
import { admit, type LimitedConnection } from './connection-limits.js';

interface Row extends LimitedConnection {
  readonly name: string;
}

function conn(name: string, uid: number, at: number, options: { busy?: boolean; pmcd?: boolean } = {}): Row {
  return { name, uid, pmcd: options.pmcd ?? false, idle: () => options.busy !== true, lastActivity: () => at };
}

const limits = { maxConnections: 4, maxConnectionsPerUid: 2, reservedForRoot: 1, idleTimeoutMs: 1000 };
const user = { uid: 1000, pmcd: false };
const root = { uid: 0, pmcd: false };
const pmcd = { uid: 999, pmcd: true };

function outcome(newcomer: { uid: number; pmcd: boolean }, live: Row[], l = limits): string {
  const a = admit(newcomer, live, l);
  if (!a.admit) return `refused: ${a.reason}`;
  return a.evict === undefined ? 'admitted' : `admitted, dropping ${a.evict.name}`;
}

describe('admit', () => {
  it('admits anyone below every cap', () => {
    expect(outcome(user, [])).toBe('admitted');
    expect(outcome(user, [conn('a', 1000, 1), conn('r', 0, 2)])).toBe('admitted');
    expect(outcome(root, [conn('a', 1000, 1), conn('b', 1000, 2), conn('c', 2000, 3)])).toBe('admitted');
  });

  it('caps a non-root uid: its own oldest idle connection is dropped, and with none idle it is refused', () => {
    expect(outcome(user, [conn('new', 1000, 5), conn('old', 1000, 3)])).toBe('admitted, dropping old');
    expect(outcome(user, [conn('old', 1000, 3), conn('new', 1000, 5)])).toBe('admitted, dropping old');
    expect(outcome(user, [conn('old', 1000, 3, { busy: true }), conn('new', 1000, 5)])).toBe('admitted, dropping new');
    // Idle alike as long: the one that connected first (the server lists connections in that order).
    expect(outcome(user, [conn('earlier', 1000, 4), conn('later', 1000, 4)])).toBe('admitted, dropping earlier');
    // Another uid's idle connection is not the one dropped for the uid cap.
    expect(outcome(user, [conn('other', 2000, 1), conn('a', 1000, 3, { busy: true }), conn('b', 1000, 5, { busy: true })])).toBe(
      'refused: uid 1000 holds 2 busy connections (limit 2)',
    );
  });

  it("does not count pmcd's connections against a uid's cap, nor apply that cap to root or pmcd", () => {
    const pmcds = [conn('p1', 1000, 1, { pmcd: true }), conn('p2', 1000, 2, { pmcd: true })];
    expect(outcome(user, pmcds)).toBe('admitted');
    const roots = [conn('r1', 0, 1, { busy: true }), conn('r2', 0, 2, { busy: true })];
    expect(outcome(root, roots)).toBe('admitted');
    expect(outcome(pmcd, [conn('q1', 999, 1, { busy: true }), conn('q2', 999, 2, { busy: true })])).toBe('admitted');
  });

  it('keeps reservedForRoot slots from non-root uids', () => {
    const three = [conn('a', 1000, 1, { busy: true }), conn('b', 2000, 2, { busy: true }), conn('c', 3000, 3, { busy: true })];
    expect(outcome({ uid: 4000, pmcd: false }, three)).toBe('refused: 3 connections, none idle that this client may displace (limit 3)');
    expect(outcome(root, three)).toBe('admitted');
    expect(outcome(pmcd, three)).toBe('admitted');
    // No negative cap when the reserve is larger than the whole.
    expect(outcome(user, [], { ...limits, maxConnections: 1, reservedForRoot: 5 })).toBe('refused: 0 connections, none idle that this client may displace (limit 0)');
  });

  it('at the total cap drops the oldest idle connection the newcomer may displace', () => {
    const full = [conn('a', 2000, 5), conn('b', 3000, 2), conn('c', 0, 1), conn('d', 4000, 7, { busy: true })];
    // A non-root newcomer never displaces root's, though root's is the oldest.
    expect(outcome({ uid: 5000, pmcd: false }, full)).toBe('admitted, dropping b');
    expect(outcome(root, full)).toBe('admitted, dropping c');
    expect(outcome(pmcd, full)).toBe('admitted, dropping c');
    expect(outcome(root, [conn('earlier', 2000, 4), conn('later', 3000, 4), conn('x', 4000, 9), conn('y', 5000, 9)])).toBe('admitted, dropping earlier');
    // pmcd's connections are never displaced, even idle and oldest.
    const withPmcd = [conn('p', 999, 0, { pmcd: true }), conn('a', 2000, 5), conn('b', 3000, 9), conn('d', 4000, 7, { busy: true })];
    expect(outcome(root, withPmcd)).toBe('admitted, dropping a');
  });

  it('refuses at the total cap when nothing it may displace is idle', () => {
    const busy = [conn('a', 2000, 1, { busy: true }), conn('b', 3000, 2, { busy: true }), conn('c', 0, 3), conn('d', 4000, 4, { busy: true })];
    expect(outcome({ uid: 5000, pmcd: false }, busy)).toBe('refused: 4 connections, none idle that this client may displace (limit 3)');
    expect(outcome(root, busy)).toBe('admitted, dropping c');
    const allBusy = busy.map((c) => conn(c.name, c.uid, 0, { busy: true }));
    expect(outcome(root, allBusy)).toBe('refused: 4 connections, none idle that this client may displace (limit 4)');
  });
});
