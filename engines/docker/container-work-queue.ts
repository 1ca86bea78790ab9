/**
 * Work on Docker's containers, one piece at a time per container and in the
 * order asked: while a piece runs, later requests for that container fold
 * into one more piece (a destroy wins over an inspect).
 */

/** Inspect a container again, or drop it (`destroy` event). */
export type ContainerWork = 'inspect' | 'destroy';

interface Slot {
  next: ContainerWork | undefined;
  done: Promise<void>;
}

export class ContainerWorkQueue {
  /** Containers whose work is running, and what to do after it. */
  private readonly busy = new Map<string, Slot>();

  /** `perform` does one piece; it resolves false when no more work should follow for that container. */
  constructor(private readonly perform: (id: string, work: ContainerWork) => Promise<boolean>) {}

  /** Runs `work` on `id` now, or folds it into what follows the piece running; resolves when the container's work is done. */
  enqueue(id: string, work: ContainerWork): Promise<void> {
    const running = this.busy.get(id);
    if (running !== undefined) {
      if (running.next !== 'destroy') running.next = work;
      return running.done;
    }
    const slot: Slot = { next: undefined, done: Promise.resolve() };
    this.busy.set(id, slot);
    slot.done = this.run(id, work, slot).finally(() => this.busy.delete(id));
    return slot.done;
  }

  private async run(id: string, first: ContainerWork, slot: Slot): Promise<void> {
    let work: ContainerWork | undefined = first;
    while (work !== undefined) {
      if (!(await this.perform(id, work))) return;
      work = slot.next;
      slot.next = undefined;
    }
  }
}
