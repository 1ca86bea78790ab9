import { getEventListeners } from 'node:events';
import { CrootError } from './errors/croot-error.js';
import { ThrottledRefresh } from './throttled-refresh.js';

/** A run whose completion the test decides, counting how often it started. */
function controlledRun<T>(): {
  run: () => Promise<T>;
  starts: () => number;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
} {
  let starts = 0;
  let pending: { resolve: (v: T) => void; reject: (e: unknown) => void } | undefined;
  return {
    run: () => {
      starts++;
      return new Promise<T>((resolve, reject) => {
        pending = { resolve, reject };
      });
    },
    starts: () => starts,
    resolve: (value) => pending?.resolve(value),
    reject: (err) => pending?.reject(err),
  };
}

/** Lets pending promise callbacks run. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ThrottledRefresh', () => {
  let clock: number;
  const now = (): number => clock;
  beforeEach(() => {
    clock = 1_000_000;
  });

  describe('.get', () => {
    it('shares one run among callers that arrive while it is in flight', async () => {
      const c = controlledRun<string>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const a = t.get();
      const b = t.get();
      const d = t.get(new AbortController().signal);
      c.resolve('v1');
      await expect(Promise.all([a, b, d])).resolves.toEqual(['v1', 'v1', 'v1']);
      expect(c.starts()).toBe(1);
    });

    it('answers from the last run within the interval and runs again once it has passed', async () => {
      let n = 0;
      const t = new ThrottledRefresh(1000, async () => ++n, now);
      expect(await t.get()).toBe(1);
      clock += 999;
      expect(await t.get()).toBe(1);
      clock += 1;
      expect(await t.get()).toBe(2);
      expect(await t.get()).toBe(2);
    });

    it('counts the interval from the start of a run by default', async () => {
      const c = controlledRun<number>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const first = t.get();
      clock += 600; // the run takes 600 ms
      c.resolve(1);
      await first;
      clock += 400; // 1000 ms after the start, 400 after the end
      const second = t.get();
      expect(c.starts()).toBe(2);
      c.resolve(2);
      expect(await second).toBe(2);
    });

    it('counts the interval from the end of a run with measureFrom "finish"', async () => {
      const c = controlledRun<number>();
      const t = new ThrottledRefresh(1000, c.run, now, { measureFrom: 'finish' });
      const first = t.get();
      clock += 600;
      c.resolve(1);
      await first;
      clock += 400;
      expect(await t.get()).toBe(1);
      expect(c.starts()).toBe(1);
      clock += 600;
      const second = t.get();
      expect(c.starts()).toBe(2);
      c.resolve(2);
      expect(await second).toBe(2);
    });

    it('runs on every call with a zero interval', async () => {
      let n = 0;
      const t = new ThrottledRefresh(0, async () => ++n, now);
      expect([await t.get(), await t.get(), await t.get()]).toEqual([1, 2, 3]);
    });

    it('turns a run that throws synchronously into a rejection', async () => {
      const t = new ThrottledRefresh<number>(1000, () => {
        throw new Error('sync boom');
      }, now);
      await expect(t.get()).rejects.toThrow('sync boom');
    });
  });

  describe('failures', () => {
    it('hands a failed run\'s error to every caller sharing it, then runs again on the next call', async () => {
      const c = controlledRun<string>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const a = t.get();
      const b = t.get();
      const boom = new Error('boom');
      c.reject(boom);
      await expect(a).rejects.toBe(boom);
      await expect(b).rejects.toBe(boom);
      const again = t.get();
      expect(c.starts()).toBe(2);
      c.resolve('ok');
      expect(await again).toBe('ok');
    });

    it('does not count a failed run as a check: the call right after it runs again', async () => {
      const c = controlledRun<string>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const first = t.get();
      c.resolve('v1');
      await first;
      clock += 1000;
      const failing = t.get();
      c.reject(new Error('boom'));
      await expect(failing).rejects.toThrow('boom');
      const retry = t.get(); // same instant as the failed run's start
      expect(c.starts()).toBe(3);
      c.resolve('v2');
      expect(await retry).toBe('v2');
    });
  });

  describe('.invalidate', () => {
    it('makes the next call run although the interval has not passed', async () => {
      let n = 0;
      const t = new ThrottledRefresh(1000, async () => ++n, now);
      expect(await t.get()).toBe(1);
      t.invalidate();
      expect(await t.get()).toBe(2);
      expect(await t.get()).toBe(2);
    });

    it('during a run, makes the call after that run run again', async () => {
      const c = controlledRun<number>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const first = t.get();
      t.invalidate(); // a change the run in flight may have missed
      c.resolve(1);
      expect(await first).toBe(1);
      const second = t.get();
      expect(c.starts()).toBe(2);
      c.resolve(2);
      expect(await second).toBe(2);
      expect(await t.get()).toBe(2);
      expect(c.starts()).toBe(2);
    });
  });

  describe('abort', () => {
    it('refuses an already aborted caller with ERR_ABORTED without running', async () => {
      const c = controlledRun<number>();
      const t = new ThrottledRefresh(1000, c.run, now, { abortMessage: 'test lookup aborted' });
      const reason = new Error('gone');
      const err: unknown = await t.get(AbortSignal.abort(reason)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CrootError);
      expect(err).toMatchObject({ code: 'ERR_ABORTED', message: 'test lookup aborted', cause: reason });
      expect(c.starts()).toBe(0);
    });

    it('refuses an aborted caller even when a fresh answer is at hand', async () => {
      const t = new ThrottledRefresh(1000, async () => 1, now);
      await t.get();
      await expect(t.get(AbortSignal.abort())).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    });

    it('rejects only the caller whose signal fires, and the run goes on for the others', async () => {
      const c = controlledRun<string>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const ac = new AbortController();
      const aborted = t.get(ac.signal);
      const other = t.get();
      ac.abort();
      await expect(aborted).rejects.toMatchObject({ code: 'ERR_ABORTED' });
      c.resolve('done');
      expect(await other).toBe('done');
      expect(await t.get()).toBe('done');
      expect(c.starts()).toBe(1);
    });

    it('removes its abort listener once the run has answered', async () => {
      const c = controlledRun<string>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const ac = new AbortController();
      const pending = t.get(ac.signal);
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
      c.resolve('v');
      await pending;
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    });

    it('passes a failed run\'s error, not ERR_ABORTED, to a caller with a live signal', async () => {
      const c = controlledRun<string>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const ac = new AbortController();
      const pending = t.get(ac.signal);
      c.reject(new Error('boom'));
      await expect(pending).rejects.toThrow('boom');
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    });
  });

  describe('.settle', () => {
    it('resolves at once when nothing runs', async () => {
      const t = new ThrottledRefresh(1000, async () => 1, now);
      await expect(t.settle()).resolves.toBeUndefined();
    });

    it('waits for the run in flight and does not throw when it fails', async () => {
      const c = controlledRun<string>();
      const t = new ThrottledRefresh(1000, c.run, now);
      const caller = t.get().catch(() => 'caller saw the error');
      let settled = false;
      const settling = t.settle().then(() => {
        settled = true;
      });
      await tick();
      expect(settled).toBe(false);
      c.reject(new Error('boom'));
      await settling;
      expect(settled).toBe(true);
      expect(await caller).toBe('caller saw the error');
    });
  });
});
