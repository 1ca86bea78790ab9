/**
 * Giving memory back once crootd's start-up work is done: the garbage of
 * loading thousands of containers, promoted into V8's old generation, the
 * new space grown while loading, and the buffers of reading thousands of
 * state files, freed but scattered over the malloc arenas of the threads
 * that read them.
 */
import type { CrootNative } from './croot-native.js';
import { loadNative } from './load-native.js';

/** malloc_trim(0): true when some memory was given back. */
export function releaseFreeMemory(native: CrootNative = loadNative()): boolean {
  return native.releaseFreeMemory();
}

/**
 * V8's low-memory collection (`Isolate::LowMemoryNotification`): full,
 * compacting collections until one frees nothing, new space shrunk, free
 * pages given back. A plain full collection (`gc()`) keeps the pages and the
 * grown new space; V8's memory reducer gives them back only after some
 * seconds of low allocation, spending a collection or two on it then.
 * Done at once, crootd's memory once started is what it keeps, and the
 * reducer later finds little to do. True when it ran.
 */
export function reduceHeap(native: CrootNative = loadNative()): boolean {
  return native.reduceHeap();
}
