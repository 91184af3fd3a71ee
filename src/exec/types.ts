// The execution contract (DESIGN §4, §5). The sequential reference executor defines the
// semantics; the parallel executor is a second implementation of the same interface.
import type { Receipt, SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Hash } from "../types/hash.js";

/** A committed block as execution sees it: signatures already verified by consensus. */
export interface ExecutableBlock {
  height: bigint;
  /** Block time after commit: max(previous block time, header timestamp). */
  timestampMs: bigint;
  /** Empty for a null block. */
  txs: readonly SignedTx[];
}

/** One state change. `value === null` deletes the key. */
export interface StateWrite {
  key: Uint8Array;
  value: Uint8Array | null;
}

export interface ExecutionResult {
  height: bigint;
  /** Sorted by key (byte order), one entry per key. */
  writeSet: StateWrite[];
  receipts: Receipt[];
  /** H(previous root, H(sorted write set)): the write-set hash chain. */
  stateRoot: Hash;
}

/** Read access to state as of the last executed block. */
export interface StateReader {
  get(key: Uint8Array): Uint8Array | undefined;
}

export interface Executor {
  /** Executes one block on top of the executor's current state and advances it. */
  executeBlock(block: ExecutableBlock): Promise<ExecutionResult>;
  readonly stateRoot: Hash;
  readonly executedHeight: bigint;
}
