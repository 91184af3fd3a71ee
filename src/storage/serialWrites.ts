// Writes that must land one at a time, in call order (a store's single writer: its cached height
// and order checks cannot race with a write still in flight).

/**
 * Runs each task once every task queued before it has settled. A failed task rejects its own
 * caller only: the tasks queued after it still run.
 */
export class SerialWrites {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.tail.then(task);
    this.tail = next.catch(() => {});
    return next;
  }

  /** Settles (never rejects) once every task queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
