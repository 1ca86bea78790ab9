import { ContainerWorkQueue, type ContainerWork } from './container-work-queue.js';

/** A queue whose pieces of work the test finishes by hand, one `finish(result)` a piece, in the order they started. */
function queue(): { q: ContainerWorkQueue; done: string[]; running: string[]; finish: (id: string, more?: boolean) => void } {
  const done: string[] = [];
  const running: string[] = [];
  const pending = new Map<string, (more: boolean) => void>();
  const q = new ContainerWorkQueue(async (id: string, work: ContainerWork) => {
    expect(pending.has(id)).toBe(false);
    running.push(`${id} ${work}`);
    const more = await new Promise<boolean>((resolve) => pending.set(id, resolve));
    pending.delete(id);
    done.push(`${id} ${work}`);
    return more;
  });
  const finish = (id: string, more = true): void => {
    const resolve = pending.get(id);
    if (resolve === undefined) throw new Error(`no work running for ${id}`);
    resolve(more);
  };
  return { q, done, running, finish };
}

/** Lets every callback already due run, waiting on no timer. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ContainerWorkQueue', () => {
  it('runs one piece at a time per container, folding what is asked meanwhile into one more piece', async () => {
    const { q, done, running, finish } = queue();
    const first = q.enqueue('a', 'inspect');
    const folded = [q.enqueue('a', 'inspect'), q.enqueue('a', 'inspect')];
    let foldedDone = false;
    void Promise.all(folded).then(() => (foldedDone = true));
    await turn();
    expect(running).toEqual(['a inspect']);
    finish('a');
    await turn();
    expect(running).toEqual(['a inspect', 'a inspect']);
    // Each caller waits for the container's work, the piece folded in included.
    expect(foldedDone).toBe(false);
    finish('a');
    await Promise.all([first, ...folded]);
    expect(done).toEqual(['a inspect', 'a inspect']);
  });

  it('lets a destroy asked for meanwhile win over the inspects asked after it', async () => {
    const { q, done, finish } = queue();
    const all = [q.enqueue('a', 'inspect'), q.enqueue('a', 'inspect'), q.enqueue('a', 'destroy'), q.enqueue('a', 'inspect')];
    await turn();
    finish('a');
    await turn();
    finish('a');
    await Promise.all(all);
    expect(done).toEqual(['a inspect', 'a destroy']);
  });

  it('runs the work of different containers side by side', async () => {
    const { q, running, finish } = queue();
    const a = q.enqueue('a', 'inspect');
    const b = q.enqueue('b', 'destroy');
    await turn();
    expect(running).toEqual(['a inspect', 'b destroy']);
    finish('b');
    await b;
    finish('a');
    await a;
  });

  it('drops what was folded in when a piece says no more should follow', async () => {
    const { q, done, finish } = queue();
    const all = [q.enqueue('a', 'inspect'), q.enqueue('a', 'inspect')];
    await turn();
    finish('a', false);
    await Promise.all(all);
    expect(done).toEqual(['a inspect']);
  });

  it('starts afresh for a container whose work is over', async () => {
    const { q, done, finish } = queue();
    const first = q.enqueue('a', 'destroy');
    await turn();
    finish('a');
    await first;
    const again = q.enqueue('a', 'inspect');
    await turn();
    finish('a');
    await again;
    expect(done).toEqual(['a destroy', 'a inspect']);
  });
});
