import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { reduceHeap, releaseFreeMemory } from './free-memory.js';
import { loadNative } from './load-native.js';

/** The process's anonymous resident memory in KiB, as the kernel counts it. */
function rssAnonKiB(): number {
  const line = /^RssAnon:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (line === null) throw new Error('no RssAnon in /proc/self/status');
  return Number(line[1]);
}

describe('releaseFreeMemory', () => {
  it('gives the system back the free pages between blocks malloc still holds (the kernel as truth)', async () => {
    const native = loadNative();
    // 40 MiB in 64 KiB blocks (below malloc's mmap threshold: in an arena), written so the pages are resident.
    const blocks = Array.from({ length: 640 }, () => Buffer.allocUnsafeSlow(64 * 1024).fill(1));
    // Every other block kept: the freed ones are holes free() alone cannot give back.
    const kept = blocks.filter((_, i) => i % 2 === 1);
    blocks.length = 0;
    // The dropped Buffers' memory is freed when V8 collects them: by its array-buffer sweeper, which may
    // still be at work on another thread when gc() returns; V8's count of array-buffer memory says when it is done.
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    const keptBytes = 320 * 64 * 1024;
    for (let i = 0; i < 1000 && process.memoryUsage().arrayBuffers > keptBytes + 8 * 1024 * 1024; i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const before = rssAnonKiB();
    const released = releaseFreeMemory(native);
    const after = rssAnonKiB();
    expect(kept).toHaveLength(320);
    expect(released).toBe(true);
    // About 20 MiB was freed; most of it is given back.
    expect(before - after).toBeGreaterThan(8 * 1024);
  });
});

/** The bytes V8 has committed to its new space (where short-lived objects are made). */
function newSpaceSize(): number {
  const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  if (space === undefined) throw new Error('V8 reports no new_space');
  return space.space_size;
}

describe('reduceHeap', () => {
  it("collects the old generation's garbage and gives back the new space grown meanwhile, which a full collection keeps (V8's heap statistics as truth)", () => {
    const native = loadNative();
    // Objects that survive two scavenges are promoted to the old generation; dropping them leaves garbage there.
    let kept: object[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
    // Many short-lived objects: V8 grows its new space while they come (as while crootd loads thousands of containers).
    let made = 0;
    for (let r = 0; r < 40; r++) made += Array.from({ length: 100_000 }, (_, j) => ({ j })).length;
    expect(kept.length + made).toBe(4_200_000);
    kept = undefined;
    const before = getHeapStatistics();
    const grown = newSpaceSize();
    expect(reduceHeap(native)).toBe(true);
    const after = getHeapStatistics();
    // 200 000 small objects and strings are several megabytes.
    expect(before.used_heap_size - after.used_heap_size).toBeGreaterThan(4 * 1024 * 1024);
    // The new space shrinks back (a plain full collection, gc(), leaves it at its grown size).
    expect(newSpaceSize()).toBeLessThanOrEqual(grown / 2);
  });
});
