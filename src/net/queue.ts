// A bounded FIFO over a ring buffer: per-peer outbound envelopes. PBFT tolerates loss and
// catch-up repairs gaps, so a full queue loses an envelope instead of growing.

export type DropPolicy = "oldest" | "newest";

export class BoundedQueue<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;
  private len = 0;

  constructor(
    readonly capacity: number,
    private readonly policy: DropPolicy,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError("capacity must be > 0");
    this.buf = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.len;
  }

  /** Adds `item`; returns the item lost to the bound (the oldest, or `item` itself), or undefined. */
  push(item: T): T | undefined {
    if (this.len < this.capacity) {
      this.buf[(this.head + this.len) % this.capacity] = item;
      this.len++;
      return undefined;
    }
    if (this.policy === "newest") return item;
    const lost = this.buf[this.head];
    this.buf[this.head] = item;
    this.head = (this.head + 1) % this.capacity;
    return lost;
  }

  /** The item shift() would return, left in place. */
  peek(): T | undefined {
    return this.len === 0 ? undefined : this.buf[this.head];
  }

  shift(): T | undefined {
    if (this.len === 0) return undefined;
    const item = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.len--;
    return item;
  }

  clear(): void {
    this.buf.fill(undefined);
    this.head = 0;
    this.len = 0;
  }
}
