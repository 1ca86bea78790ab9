import { ReadScheduler } from './read-scheduler.js';

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}


/** An observer of the event loop's turns: one count per check phase, until stopped. */
function loopTurns(): { readonly turns: number; stop(): void } {
  let turns = 0;
  let observing = true;
  const observe = (): void => {
    turns++;
    if (observing) setImmediate(observe);
  };
  setImmediate(observe);
  return {
    get turns() {
      return turns;
    },
    stop: () => {
      observing = false;
    },
  };
}

describe('ReadScheduler', () => {
  it('runs a key\'s task once more after the running one when asked during it, however often', async () => {
    const s = new ReadScheduler(4, () => undefined);
    const first = gate();
    const runs: string[] = [];
    const done = s.coalesce('k', async () => {
      runs.push('first');
      await first.promise;
    });
    await Promise.resolve();
    await Promise.resolve();
    for (const n of [1, 2, 3]) void s.coalesce('k', async () => void runs.push(`again ${n}`));
    first.open();
    await done;
    expect(runs).toEqual(['first', 'again 3']);
  });

  it('runs different keys side by side', async () => {
    const s = new ReadScheduler(4, () => undefined);
    const a = gate();
    const order: string[] = [];
    const first = s.coalesce('a', async () => {
      await a.promise;
      order.push('a');
    });
    await s.coalesce('b', async () => void order.push('b'));
    a.open();
    await first;
    expect(order).toEqual(['b', 'a']);
  });

  it('runs queued work in order, in slices, with turns of the event loop between them, and says when all has run', async () => {
    const s = new ReadScheduler(2, () => undefined);
    const loop = loopTurns();
    const seen: { n: number; turn: number }[] = [];
    for (let n = 0; n < 20; n++) {
      s.enqueue(() => {
        seen.push({ n, turn: loop.turns });
        // Each piece of work takes at least 1 ms, so a 2 ms slice holds at most 3 of them.
        const until = performance.now() + 1;
        while (performance.now() < until);
      });
    }
    await s.idle();
    loop.stop();
    expect(seen.map((x) => x.n)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(new Set(seen.map((x) => x.turn)).size).toBeGreaterThanOrEqual(7);
  });

  it('hands what queued work throws to onError and runs the rest', async () => {
    const errors: unknown[] = [];
    const s = new ReadScheduler(4, (err) => errors.push(err));
    const ran: number[] = [];
    s.enqueue(() => ran.push(1));
    s.enqueue(() => {
      throw new Error('bad file');
    });
    s.enqueue(() => ran.push(3));
    await s.idle();
    expect(ran).toEqual([1, 3]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['bad file']);
  });

  it('hands a failed task\'s error to onError and stays usable', async () => {
    const errors: unknown[] = [];
    const s = new ReadScheduler(4, (err) => errors.push(err));
    await s.coalesce('k', async () => {
      throw new Error('boom');
    });
    let ran = false;
    await s.coalesce('k', async () => void (ran = true));
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
    expect(ran).toBe(true);
  });

  it('runs as much queued work in one slice as its time allows', async () => {
    // A slice far longer than 50 small pieces of work take: all of them run in one turn of the event loop.
    const s = new ReadScheduler(10_000, () => undefined);
    const loop = loopTurns();
    const seen: number[] = [];
    for (let n = 0; n < 50; n++) s.enqueue(() => void seen.push(loop.turns));
    await s.idle();
    loop.stop();
    expect(seen).toHaveLength(50);
    expect(new Set(seen).size).toBe(1);
  });

  it('says at once that it is idle when nothing is queued, and again after each batch of work, however often', async () => {
    const s = new ReadScheduler(4, () => undefined);
    let idle = false;
    void s.idle().then(() => (idle = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).toBe(true);
    const ran: string[] = [];
    for (const batch of ['a', 'b', 'c']) {
      s.enqueue(() => ran.push(`${batch}1`));
      // Work queued by work runs too, before the scheduler is idle.
      s.enqueue(() => s.enqueue(() => ran.push(`${batch}3`)));
      s.enqueue(() => ran.push(`${batch}2`));
      await s.idle();
    }
    expect(ran).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'b3', 'c1', 'c2', 'c3']);
  });

  it('resolves the promise of a caller who asked during a run once the run after it is done', async () => {
    const s = new ReadScheduler(4, () => undefined);
    const first = gate();
    const runs: string[] = [];
    void s.coalesce('k', async () => {
      await first.promise;
      runs.push('first');
    });
    await Promise.resolve();
    await Promise.resolve();
    const again = s.coalesce('k', async () => void runs.push('again'));
    first.open();
    await again;
    expect(runs).toEqual(['first', 'again']);
  });
});
