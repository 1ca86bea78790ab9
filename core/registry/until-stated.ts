/**
 * Waiting for an engine's word on a container it has listed but not yet
 * read (a record with `pending`): the registry's lookups use it so that such
 * a container is never answered as "not running" before its engine knows.
 */
import type { IndexChange, IndexedContainer } from './indexed-container.js';

/** What `untilStated` needs of the registry: its changes (health reports too, which it ignores). */
export interface ChangeSource {
  subscribe(listener: (event: IndexChange | { readonly kind: 'health' }) => void): () => void;
}

/**
 * Resolves at the next change the index reports for `container` (same
 * engine and id: updated or removed), or after `timeoutMs`, whichever comes
 * first; never rejects. The caller looks the container up again.
 */
export function untilStated(source: ChangeSource, container: IndexedContainer, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    const unsubscribe = source.subscribe((event) => {
      if (event.kind !== 'health' && event.container.engine === container.engine && event.container.id === container.id) done();
    });
  });
}
