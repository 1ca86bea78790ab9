import { setImmediate as nextTurn } from 'node:timers/promises';
import { ProcProcessAnchor } from '../host/proc-process-anchor.js';
import { ContainerIndex } from './container-index.js';
import type { ContainerRecord } from './engine-contribution.js';
import type { IndexChange, IndexedContainer } from './indexed-container.js';
import { untilStated, type ChangeSource } from './until-stated.js';

type SourceEvent = IndexChange | { readonly kind: 'health' };

/** A real index whose changes go to the listeners of a ChangeSource, as the registry passes them on. */
function indexWithSource(): { index: ContainerIndex; source: ChangeSource; listeners: Set<(event: SourceEvent) => void> } {
  const listeners = new Set<(event: SourceEvent) => void>();
  const index = new ContainerIndex(new ProcProcessAnchor('/proc'), '/proc', (change) => {
    for (const listener of [...listeners]) listener(change);
  });
  const source: ChangeSource = {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return { index, source, listeners };
}

const lxc = (id: string, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({ engine: 'lxc', id, names: [id], running: false, ...extra });

/** The timers Node holds open (a leaked one keeps crootd from exiting until it fires). */
const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

describe(untilStated, () => {
  it('waits for a change of that very container, not of another id, another engine’s namesake or an engine’s health', async () => {
    const { index, source, listeners } = indexWithSource();
    index.upsert('lxc', lxc('vm1', { pending: true }));
    index.upsert('lxc', lxc('vm2', { pending: true }));
    index.upsert('docker', { ...lxc('vm1', { pending: true }), engine: 'docker' });
    const pending = index.withId('vm1').find((c) => c.engine === 'lxc') as IndexedContainer;
    let stated = false;
    const waiting = untilStated(source, pending, 60000).then(() => {
      stated = true;
    });
    index.upsert('lxc', lxc('vm2', { state: 'STOPPED' }));
    index.upsert('docker', { ...lxc('vm1', { state: 'STOPPED' }), engine: 'docker' });
    for (const listener of [...listeners]) listener({ kind: 'health' });
    await nextTurn();
    expect(stated).toBe(false);
    index.upsert('lxc', lxc('vm1', { state: 'STOPPED' }));
    await waiting;
    expect(stated).toBe(true);
  });

  it('ends its wait when the container is removed', async () => {
    const { index, source } = indexWithSource();
    index.upsert('lxc', lxc('vm1', { pending: true }));
    const waiting = untilStated(source, index.withId('vm1')[0] as IndexedContainer, 60000);
    index.remove('lxc', 'vm1');
    await expect(waiting).resolves.toBeUndefined();
  });

  it('leaves neither its listener nor its timer behind once the change came', async () => {
    const { index, source, listeners } = indexWithSource();
    index.upsert('lxc', lxc('vm1', { pending: true }));
    const before = timers();
    const waiting = untilStated(source, index.withId('vm1')[0] as IndexedContainer, 60000);
    expect([listeners.size, timers()]).toEqual([1, before + 1]);
    index.upsert('lxc', lxc('vm1', { state: 'RUNNING' }));
    await waiting;
    expect([listeners.size, timers()]).toEqual([0, before]);
  });

  it('gives up after the time it is given when no word comes, and stops listening', async () => {
    const { index, source, listeners } = indexWithSource();
    index.upsert('lxc', lxc('vm1', { pending: true }));
    await expect(untilStated(source, index.withId('vm1')[0] as IndexedContainer, 10)).resolves.toBeUndefined();
    expect(listeners.size).toBe(0);
    expect(index.withId('vm1')[0]?.record.pending).toBe(true);
  });
});
