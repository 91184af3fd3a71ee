// The execution contract (DESIGN §4, §5). The sequential reference executor defines the
// semantics; the parallel executor is a second implementation of the same interface.
import type { Block, Receipt, SignedTx, TxBody } from "../gen/parabft/v1/types_pb.js";
import type { Hash } from "../types/hash.js";

/** A committed block as execution sees it: signatures already verified by consensus. */
export interface ExecutableBlock {
  height: bigint;
  /** Block time after commit: max(previous block time, header timestamp). */
  timestampMs: bigint;
  /** Empty for a null block. */
  txs: readonly SignedTx[];
  /** txHash(tx) per tx when the caller already has them (consensus computed them for txsRoot). */
  txHashes?: readonly Hash[];
  /**
   * Per tx, its body as the caller already decoded it from exactly `txs[i].body` (the mempool
   * decoded and verified every tx it admitted) and the sender's address (addressOf(sender)):
   * execution then neither decodes nor hashes the key again (issue 13: decode once). undefined
   * entries (a tx that arrived by catch-up) are decoded here.
   */
  decoded?: readonly (PreDecodedTx | undefined)[];
}

/** A body decoded ahead of execution; see ExecutableBlock.decoded. */
export interface PreDecodedTx {
  body: TxBody;
  /** addressOf(body.sender). */
  address: Uint8Array;
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

/**
 * Persistence as execution needs it. src/storage's ChainDb implements it; src/exec never
 * imports storage. One execution batch per block, atomic.
 */
export interface ExecutionStore {
  writeExecutionBatch(result: ExecutionResult): Promise<void>;
  /** Persisted state value, undefined when absent. */
  getState(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** 0 when only genesis (or nothing) was executed. */
  getExecutedHeight(): Promise<bigint>;
  /** undefined before genesis was written. */
  getStateRoot(): Promise<Hash | undefined>;
}

/** Committed blocks, for recovery (re-execution from the executed to the committed height). */
export interface CommittedBlockSource {
  getCommittedHeight(): Promise<bigint>;
  /** `block` is null for a null block. */
  getBlock(height: bigint): Promise<{ block: Block | null; blockTimeMs: bigint } | undefined>;
}

/** An executor that can do a block's decode and state prefetch ahead of executing it. */
export interface PreparingExecutor<P = unknown> extends Executor {
  /** Safe to run for block h+1 while block h executes. */
  prepare(block: ExecutableBlock): Promise<P>;
  executePrepared(prepared: P): Promise<ExecutionResult>;
}
