// One pipeline stage: items processed one at a time, in the order they were pushed. A failure
// stops the stage for good (the node halts rather than skip a block).

export class OrderedStage<T> {
  private readonly queue: T[] = [];
  private running = false;
  private failed = false;
  private idleWait: Promise<void> = Promise.resolve();

  constructor(
    private readonly process: (item: T) => Promise<void>,
    private readonly onFailure: (err: unknown) => void,
  ) {}

  get depth(): number {
    return this.queue.length;
  }

  push(item: T): void {
    if (this.failed) return;
    this.queue.push(item);
    if (!this.running) this.idleWait = this.run();
  }

  /** Resolves once the item in progress (if any) is done; queued items are dropped. */
  async drainAndStop(): Promise<void> {
    this.failed = true;
    this.queue.length = 0;
    await this.idleWait;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.failed) await this.process(this.queue.shift()!);
    } catch (err: unknown) {
      this.failed = true;
      this.queue.length = 0;
      this.onFailure(err);
    } finally {
      this.running = false;
    }
  }
}
