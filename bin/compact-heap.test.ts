import { getHeapStatistics } from 'node:v8';
import { compactHeap } from './compact-heap.js';

describe('compactHeap', () => {
  it('collects old-generation garbage that V8 keeps until a full collection (the heap statistics V8 gives as truth)', () => {
    // Objects that survive two scavenges are promoted to the old generation; dropping them leaves garbage there.
    let kept: object[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
    for (let i = 0; i < 3; i++) Array.from({ length: 50_000 }, (_, j) => ({ j }));
    expect(kept.length).toBe(200_000);
    kept = undefined;
    const before = getHeapStatistics();
    expect(compactHeap()).toBe(true);
    const after = getHeapStatistics();
    // 200 000 small objects and strings are several megabytes.
    expect(before.used_heap_size - after.used_heap_size).toBeGreaterThan(4 * 1024 * 1024);
  });
});
