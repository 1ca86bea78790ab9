/** Small helpers for asserting on things that settle over time or fail with a code. */
import { CrootError } from '../../core/errors/croot-error.js';

/**
 * How long `eventually` waits when not told: 10 s, or CROOT_TEST_EVENTUALLY_MS
 * when set. jest.stryker.config.js sets 2000 so that a mutant breaking what a
 * test waits for fails that test in 2 s instead of running into Stryker's
 * timeout (which costs a restarted test process); see docs/testing.md.
 */
export function defaultEventuallyMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.CROOT_TEST_EVENTUALLY_MS;
  if (text === undefined || text === '') return 10000;
  const ms = Number(text);
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new Error(`CROOT_TEST_EVENTUALLY_MS must be a positive number of ms, got ${JSON.stringify(text)}`);
  return ms;
}

/** Polls `probe` every 50 ms until it gives a value (not undefined), or fails after `ms` (default: defaultEventuallyMs()) with the last error. */
export async function eventually<T>(probe: () => Promise<T | undefined>, ms = defaultEventuallyMs()): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs `fn` and gives its outcome as a promise, whether it returns a value,
 * returns a promise, or throws at once (croot's lookups answer synchronously
 * when they can).
 */
export function settle<T>(fn: () => T | Promise<T>): Promise<T> {
  return Promise.resolve().then(fn);
}

/** `'resolved'`, or the CrootError code the promise (or call) failed with (anything else is named as such). */
export async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? settle(promise) : promise);
    return 'resolved';
  } catch (err) {
    return err instanceof CrootError ? err.code : `not a CrootError: ${String(err)}`;
  }
}

/** The CrootError `fn` throws at once; anything else it throws is rethrown, and not throwing fails. */
export function crootErrorOf(fn: () => unknown): CrootError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CrootError) return err;
    throw err;
  }
  throw new Error('expected a CrootError');
}

/** The CrootError `promise` rejects with; resolving, or rejecting with anything else, fails the test. */
export async function crootRejectionOf(promise: Promise<unknown>): Promise<CrootError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CrootError);
  return err as CrootError;
}
