import { Limiter } from './limiter.js';

/** A task's gate: the task runs until the test opens it. */
interface Gate {
  readonly opened: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open: () => open() };
}

/** Lets every callback already due run (promise jobs and the loop's pending I/O), waiting on no timer. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Tasks on `limiter` that record, as they themselves see it, when they start and how many run at once. */
function tasks(limiter: Limiter, count: number): { gates: Gate[]; started: number[]; most: () => number; results: Promise<number>[] } {
  const gates = Array.from({ length: count }, gate);
  const started: number[] = [];
  let running = 0;
  let most = 0;
  const results = gates.map((g, i) =>
    limiter.run(async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await g.opened;
      running--;
      return i;
    }),
  );
  return { gates, started, most: () => most, results };
}

describe('Limiter', () => {
  it('runs at most its limit of tasks at once, the others starting in the order asked as slots free', async () => {
    const { gates, started, most, results } = tasks(new Limiter(2), 5);
    await turn();
    expect(started).toEqual([0, 1]);
    gates[1]?.open();
    await results[1];
    await turn();
    expect(started).toEqual([0, 1, 2]);
    gates[0]?.open();
    await results[0];
    await turn();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const g of gates) g.open();
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(most()).toBe(2);
  });

  it('hands a failed task\'s error to its caller and its slot to the next task', async () => {
    const limiter = new Limiter(1);
    const failing = limiter.run(() => Promise.reject(new Error('inspect failed')));
    const next = tasks(limiter, 1);
    await expect(failing).rejects.toThrow('inspect failed');
    next.gates[0]?.open();
    expect(await next.results[0]).toBe(0);
  });

  it('gives its whole limit again once every task is done', async () => {
    const limiter = new Limiter(2);
    const first = tasks(limiter, 3);
    for (const g of first.gates) g.open();
    await Promise.all(first.results);
    const second = tasks(limiter, 3);
    await turn();
    expect(second.started).toEqual([0, 1]);
    for (const g of second.gates) g.open();
    await Promise.all(second.results);
    expect(second.most()).toBe(2);
  });
});
