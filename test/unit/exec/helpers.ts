// Test support for the executor: an in-memory ExecutionStore + CommittedBlockSource, and
// helpers to build committed blocks.
import { create } from "@bufbuild/protobuf";
import { hashBody } from "../../../src/exec/reference.js";
import type {
  CommittedBlockSource,
  ExecutableBlock,
  ExecutionResult,
  ExecutionStore,
} from "../../../src/exec/types.js";
import {
  type Block,
  BlockHeaderSchema,
  BlockSchema,
  type SignedTx,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { toHex } from "../../../src/types/bytes.js";
import type { Hash } from "../../../src/types/hash.js";

export class MemoryStore implements ExecutionStore, CommittedBlockSource {
  readonly state = new Map<string, Uint8Array>();
  readonly blocks = new Map<bigint, ExecutableBlock>();
  executed = 0n;
  root: Hash | undefined;
  committed = 0n;
  batches = 0;

  async writeExecutionBatch(r: ExecutionResult): Promise<void> {
    if (this.slowReads) for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
    for (const w of r.writeSet) {
      if (w.value === null) this.state.delete(toHex(w.key));
      else this.state.set(toHex(w.key), w.value);
    }
    this.executed = r.height;
    this.root = r.stateRoot;
    this.batches++;
  }
  /** Yield to the event loop on every read and write, so prefetches interleave with execution and persistence. */
  slowReads = false;
  async getState(key: Uint8Array) {
    if (this.slowReads) await new Promise((r) => setImmediate(r));
    return this.state.get(toHex(key));
  }
  async getExecutedHeight() {
    return this.executed;
  }
  async getStateRoot() {
    return this.root;
  }
  async getCommittedHeight() {
    return this.committed;
  }
  async getBlock(height: bigint) {
    const b = this.blocks.get(height);
    if (!b) return undefined;
    return { block: toProtoBlock(b), blockTimeMs: b.timestampMs };
  }
  commit(b: ExecutableBlock): void {
    this.blocks.set(b.height, b);
    this.committed = b.height;
  }
}

/** Block `height` (timestamp = height) of `txs`, with their hashes as the node hands them over. */
export function hashedBlock(height: bigint, txs: SignedTx[]): ExecutableBlock {
  return { height, timestampMs: height, txs, txHashes: txs.map((t) => hashBody(t.body)) };
}

export function toProtoBlock(b: { height: bigint; timestampMs: bigint; txs: readonly SignedTx[] }): Block {
  return create(BlockSchema, {
    header: create(BlockHeaderSchema, {
      chainId: "test",
      height: b.height,
      epoch: 0n,
      txsRoot: new Uint8Array(32),
      validatorsHash: new Uint8Array(32),
      proposer: 0,
      timestampMs: b.timestampMs,
    }),
    txs: [...b.txs],
  });
}

/** Polls until `cond` holds, failing after `ms` (bounded wait, no timing assertion). */
export async function waitFor(cond: () => boolean, ms = 20_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
