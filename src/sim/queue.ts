// Virtual time and the event queue. Events fire in (time, insertion sequence) order, so two
// events at the same virtual millisecond always run in the order they were scheduled.

export interface Scheduled<T> {
  at: number;
  seq: number;
  item: T;
}

/** Binary min-heap on (at, seq). */
export class EventQueue<T> {
  private heap: Scheduled<T>[] = [];
  private seq = 0;
  private nowMs = 0;

  get now(): number {
    return this.nowMs;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Schedules `item` `delayMs` after the current virtual time (never in the past). */
  schedule(delayMs: number, item: T): void {
    const at = this.nowMs + Math.max(0, Math.floor(delayMs));
    this.push({ at, seq: this.seq++, item });
  }

  scheduleAt(at: number, item: T): void {
    this.push({ at: Math.max(this.nowMs, Math.floor(at)), seq: this.seq++, item });
  }

  peekTime(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Removes the next event and advances the clock to its time. */
  pop(): Scheduled<T> | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.down(0);
    }
    this.nowMs = top.at;
    return top;
  }

  private push(e: Scheduled<T>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      swap(h, i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && less(h[l]!, h[m]!)) m = l;
      if (r < h.length && less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      swap(h, i, m);
      i = m;
    }
  }
}

function less<T>(a: Scheduled<T>, b: Scheduled<T>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function swap<T>(h: T[], i: number, j: number): void {
  const t = h[i]!;
  h[i] = h[j]!;
  h[j] = t;
}
