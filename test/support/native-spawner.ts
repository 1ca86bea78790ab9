/**
 * The addon's ProcessSpawner for core's unit tests, which may not import
 * native/ themselves (dependency-cruiser's core-sees-hosts-through-tokens):
 * ProcessManager is tested on real children, the kernel's answers read from
 * /proc. Gate the tests that use it with `describeWith('croot native', probes.native, ...)`.
 */
import type { ProcessSpawner } from '../../core/host/host-services.js';
import { loadNative } from '../../native/load-native.js';
import { NativeProcessSpawner } from '../../native/native-process-spawner.js';

/** A spawner on the addon (loaded on first call): real fork/exec, waitpid, kill. */
export function nativeSpawner(): ProcessSpawner {
  return new NativeProcessSpawner(loadNative());
}
