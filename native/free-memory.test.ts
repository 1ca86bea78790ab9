import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { releaseFreeMemory } from './free-memory.js';
import { loadNative } from './load-native.js';

/** The process's anonymous resident memory in KiB, as the kernel counts it. */
function rssAnonKiB(): number {
  const line = /^RssAnon:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (line === null) throw new Error('no RssAnon in /proc/self/status');
  return Number(line[1]);
}

describe('releaseFreeMemory', () => {
  it('gives the system back the free pages between blocks malloc still holds (the kernel as truth)', () => {
    const native = loadNative();
    // 40 MiB in 64 KiB blocks (below malloc's mmap threshold: in an arena), written so the pages are resident.
    const blocks = Array.from({ length: 640 }, () => Buffer.allocUnsafeSlow(64 * 1024).fill(1));
    // Every other block kept: the freed ones are holes free() alone cannot give back.
    const kept = blocks.filter((_, i) => i % 2 === 1);
    blocks.length = 0;
    // The dropped Buffers' memory is freed when V8 collects them.
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    const before = rssAnonKiB();
    const released = releaseFreeMemory(native);
    const after = rssAnonKiB();
    expect(kept).toHaveLength(320);
    expect(released).toBe(true);
    // About 20 MiB was freed; most of it is given back.
    expect(before - after).toBeGreaterThan(8 * 1024);
  });
});
