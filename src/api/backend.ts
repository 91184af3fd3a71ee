// What the public API needs from the node. src/node implements it; tests use a fake. Every method
// may throw a ParabftError whose code is in the status table (src/api/errors.ts); anything else
// becomes INTERNAL with a generic message.
import type {
  Block,
  CommitCertificate,
  Receipt,
  SignedTx,
  ValidatorSet,
} from "../gen/parabft/v1/types_pb.js";
import type { Hash } from "../types/hash.js";
import type { EpochSetProofRecord } from "./epochProof.js";

export type NodeStateName = "syncing" | "validating" | "diverged" | "halted";

export interface NodeStatus {
  chainId: string;
  validatorIndex: number;
  state: NodeStateName;
  committedHeight: bigint;
  executedHeight: bigint;
  view: bigint;
  primary: number;
  epoch: bigint;
  stableCheckpoint: bigint;
  peersConnected: number;
  mempoolSize: number;
  stateRoot: Uint8Array;
}

/** A committed block as the API serves it. */
export interface BlockRecord {
  height: bigint;
  digest: Hash;
  /** null for a null block. */
  block: Block | null;
  certificate: CommitCertificate | null;
}

export interface TxRecord {
  tx: SignedTx;
  height: bigint;
  index: number;
}

export interface AccountRecord {
  balance: bigint;
  nonce: bigint;
  /** Executed height the answer reflects. */
  height: bigint;
}

export interface StateRecord {
  /** null when the key does not exist. */
  value: Uint8Array | null;
  height: bigint;
}

export type BlockRef = { height: bigint } | { digest: Hash };

/** One transaction's admission in a batch: its hash, or the error SubmitTx would have thrown. */
export type SubmitResult = { ok: true; hash: Hash } | { ok: false; error: unknown };

export interface ApiBackend {
  /**
   * Admits a transaction to the mempool (origin "api") and returns its hash. Throws a
   * MempoolError on rejection; DUPLICATE means it is already pending and the API treats it as
   * success, so resubmitting is idempotent. `peer` is the caller's address, for the mempool's
   * per-connection admission limit.
   */
  submitTx(tx: SignedTx, peer?: string): Promise<Hash>;
  /**
   * Admits many transactions (SubmitTxs), each on its own: one result per transaction in order,
   * a refusal as `{ ok: false, error }` (never thrown for one transaction's fault). Absent: the
   * API calls submitTx per transaction.
   */
  submitTxs?(txs: readonly SignedTx[], peer?: string): Promise<SubmitResult[]>;
  /**
   * Resolves with the commit height once `hash` is committed, immediately if it already is.
   * Rejects with code TIMEOUT after `timeoutMs`, and with CANCELLED when `signal` aborts.
   */
  waitCommitted(hash: Hash, timeoutMs: number, signal: AbortSignal): Promise<bigint>;
  /** Like waitCommitted, for execution: resolves with the receipt. */
  waitExecuted(hash: Hash, timeoutMs: number, signal: AbortSignal): Promise<Receipt>;
  getTx(hash: Hash): Promise<TxRecord | null>;
  getReceipt(hash: Hash): Promise<Receipt | null>;
  getBlock(ref: BlockRef): Promise<BlockRecord | null>;
  getAccount(address: Uint8Array): Promise<AccountRecord>;
  getState(key: Uint8Array): Promise<StateRecord>;
  getValidators(epoch: bigint): Promise<ValidatorSet | null>;
  /**
   * DPoS: the proof of the set of `epoch` (≥ 2) for light clients (readEpochSetProof). Absent:
   * the node has no epochs (the API answers NO_EPOCHS).
   */
  getEpochSetProof?(epoch: bigint): Promise<EpochSetProofRecord>;
  getStatus(): Promise<NodeStatus>;
  /** Highest committed height (0 before the first block). */
  committedHeight(): bigint;
  executedHeight(): bigint;
  /**
   * Calls `onBlock` for every block committed from now on, in height order. Returns the
   * unsubscribe function. The API replays older blocks itself through getBlock.
   */
  subscribeBlocks(onBlock: (block: BlockRecord) => void): () => void;
  /**
   * Calls `onExecuted` whenever the executed height rises (StreamBlocks with executed set).
   * Returns the unsubscribe function. Absent: such a stream carries the executed height only
   * with its blocks.
   */
  subscribeExecuted?(onExecuted: (height: bigint) => void): () => void;
  /** Readiness for the health service: true once caught up and validating. */
  isReady(): boolean;
  /** Optional push of readiness changes; without it the node calls ApiServer.setServing. */
  onReadyChange?(listener: (ready: boolean) => void): () => void;
}
