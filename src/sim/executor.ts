// The fake executor: answers deliveries with deterministic state roots (a hash chain over the
// delivered digests), after a random execution delay, strictly in height order. Honest
// replicas therefore agree on every root exactly when they agree on the blocks. With epochs it
// also runs the real staking programs and epoch hook over the block's staking calls (the stand-in
// executor, src/sim/staking.ts); their results are folded into the root.
import { createHash } from "node:crypto";
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { EpochSnapshot } from "../staking/index.js";
import type { SimStakingState } from "./staking.js";

export interface Executed {
  height: bigint;
  stateRoot: Uint8Array;
  /** The set this block elected (it ended an epoch), with staking. */
  snapshot: EpochSnapshot | null;
  stakingCalls: number;
  stakingFailed: number;
}

export class FakeExecutor {
  /** Durable: the execution batch records executed height and root together. */
  executedHeight = 0n;
  stateRoot: Uint8Array = new Uint8Array(32);
  /** Volatile: blocks delivered but not yet executed. */
  private readonly queue: { height: bigint; digest: Uint8Array; txs: readonly SignedTx[] }[] = [];
  busy = false;

  /** `staking`: the durable staking state (updated with the executed height), or null. */
  constructor(readonly staking: SimStakingState | null = null) {}

  enqueue(height: bigint, digest: Uint8Array, txs: readonly SignedTx[] = []): void {
    this.queue.push({ height, digest, txs });
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Executes the next queued block; returns its height and root. */
  executeNext(): Executed | null {
    const next = this.queue.shift();
    if (next === undefined) return null;
    if (next.height !== this.executedHeight + 1n) {
      throw new Error(`fake executor: height ${next.height} after ${this.executedHeight}`);
    }
    const h = createHash("sha256").update(this.stateRoot).update(next.digest);
    const out = this.staking?.executeBlock(next.height, next.txs);
    if (out !== undefined && out.effects.length > 0) h.update(out.effects.join("\n"));
    this.stateRoot = h.digest();
    this.executedHeight = next.height;
    return {
      height: next.height,
      stateRoot: this.stateRoot,
      snapshot: out?.snapshot ?? null,
      stakingCalls: out?.calls ?? 0,
      stakingFailed: out?.failed ?? 0,
    };
  }

  /** A crash loses the volatile queue; executed height and root survive. */
  crash(): void {
    this.queue.length = 0;
    this.busy = false;
  }
}
