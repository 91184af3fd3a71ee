// The fake executor: answers deliveries with deterministic state roots (a hash chain over the
// delivered digests), after a random execution delay, strictly in height order. Honest
// replicas therefore agree on every root exactly when they agree on the blocks.
import { createHash } from "node:crypto";

export class FakeExecutor {
  /** Durable: the execution batch records executed height and root together. */
  executedHeight = 0n;
  stateRoot: Uint8Array = new Uint8Array(32);
  /** Volatile: blocks delivered but not yet executed. */
  private readonly queue: { height: bigint; digest: Uint8Array }[] = [];
  busy = false;

  enqueue(height: bigint, digest: Uint8Array): void {
    this.queue.push({ height, digest });
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Executes the next queued block; returns its height and root. */
  executeNext(): { height: bigint; stateRoot: Uint8Array } | null {
    const next = this.queue.shift();
    if (next === undefined) return null;
    if (next.height !== this.executedHeight + 1n) {
      throw new Error(`fake executor: height ${next.height} after ${this.executedHeight}`);
    }
    this.stateRoot = createHash("sha256").update(this.stateRoot).update(next.digest).digest();
    this.executedHeight = next.height;
    return { height: next.height, stateRoot: this.stateRoot };
  }

  /** A crash loses the volatile queue; executed height and root survive. */
  crash(): void {
    this.queue.length = 0;
    this.busy = false;
  }
}
