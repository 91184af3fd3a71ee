// A bounded async FIFO: push waits while full (that wait IS the backpressure), pop waits
// while empty. close() wakes everyone: pops drain what is left, then return undefined.

export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private readonly popWaiters: ((v: T | undefined) => void)[] = [];
  private readonly pushWaiters: (() => void)[] = [];
  private closed = false;
  /** Highest depth ever observed: the bound is asserted against it. */
  maxDepth = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError("queue capacity must be >= 1");
  }

  get depth(): number {
    return this.items.length;
  }

  get isFull(): boolean {
    return this.items.length >= this.capacity;
  }

  /** Enqueues without waiting; false when full or closed. */
  tryPush(item: T): boolean {
    if (this.closed || this.isFull) return false;
    this.deliver(item);
    return true;
  }

  /** Resolves once the item is enqueued; `waited` tells whether the queue pushed back. */
  async push(item: T): Promise<{ waited: boolean }> {
    let waited = false;
    while (!this.closed && this.isFull) {
      waited = true;
      await new Promise<void>((r) => this.pushWaiters.push(r));
    }
    if (this.closed) throw new Error("queue closed");
    this.deliver(item);
    return { waited };
  }

  private deliver(item: T): void {
    const w = this.popWaiters.shift();
    if (w) {
      w(item);
      return;
    }
    this.items.push(item);
    if (this.items.length > this.maxDepth) this.maxDepth = this.items.length;
  }

  async pop(): Promise<T | undefined> {
    if (this.items.length > 0) {
      const item = this.items.shift()!;
      this.pushWaiters.shift()?.();
      return item;
    }
    if (this.closed) return undefined;
    return new Promise((r) => this.popWaiters.push(r));
  }

  close(): void {
    this.closed = true;
    for (const w of this.popWaiters.splice(0)) w(undefined);
    for (const w of this.pushWaiters.splice(0)) w();
  }
}
