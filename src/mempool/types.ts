// The mempool's public vocabulary: options and their defaults, the modules it is given, and what
// it hands out (PoolTx, admission and reap results). The pool itself (admission, eviction,
// reaping, the proposal/commit lifecycle) and its internal records are mempool.ts.
import type { SignedTx, TxBody } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import type { RateLimit } from "../net/rateLimit.js";
import type { LimitParams } from "../params/index.js";
import type { Hash } from "../types/hash.js";
import type { AccountLookup } from "./admission.js";
import type { MempoolError } from "./errors.js";

/** Where a transaction came from: the node gossips only what it admitted from its own API. */
export type TxOrigin = "api" | "peer" | "local";

/**
 * Verifies each transaction's signature over txSignBytes(body) with the body's sender key;
 * `hashes[i]` is txHash(txs[i]) and `senders[i]` its body's sender, passed so the verifier need
 * neither hash nor parse again. The node passes
 * `(txs, hashes, senders) => verifyPool.verifyTxs(txs, hashes, senders)` (src/crypto).
 */
export type TxVerifier = (
  txs: readonly SignedTx[],
  hashes: readonly Hash[],
  /** TxBody.sender of each tx, decoded from these very bytes at admission (saves a re-parse). */
  senders: readonly Uint8Array[],
) => Promise<boolean[]>;

/** The sender's next nonce in the latest executed state (0 for an unknown account). */
export type NonceLookup = (address: Uint8Array) => bigint | Promise<bigint>;

export interface MempoolOpts {
  chainId: string;
  maxTxs: number;
  maxBytes: number;
  /** Pending transactions per sender. */
  maxPerSender: number;
  /** Largest encoded SignedTx (params.limits.maxTxBytes). */
  maxTxBytes: number;
  /**
   * Gapped nonces: accept up to maxNonceGap past the sender's pending nonce (its next executable
   * nonce after the contiguous run already pending). A contiguous run may grow to maxPerSender.
   */
  maxNonceGap: number;
  /** A gapped transaction (not executable: an earlier nonce is missing) is dropped this long after
   *  its admission if the gap has not filled. 0 or absent: never. */
  gappedTtlMs?: number;
  /** Admissions from the API per sender address (after the signature check). null: unlimited. */
  senderRate?: RateLimit | null;
  /** Admissions from the API per connection (peer address). null: unlimited. */
  connectionRate?: RateLimit | null;
  /**
   * Senders whose committed-but-not-yet-executed nonces are remembered (state lags commits,
   * so without this a resubmitted committed transaction would look fresh).
   */
  maxCommittedFloors?: number;
  /**
   * Senders with nothing pending whose account the pool keeps, projected through their commits
   * (mempool.ts `idle`), so their next transaction costs no storage read. Default 65,536. 0: no
   * projections at all (a sender's account is read again after each of its commits).
   */
  maxIdleAccounts?: number;
  /**
   * Backpressure (OVERLOADED): API submissions are refused while the pool holds more than this
   * many seconds of commits at the commit rate of the last `commitRateWindowMs`. 0 or absent: off.
   */
  backlogSeconds?: number;
  /**
   * The backlog that is always allowed (start-up, light load, a stalled view). Small: below
   * minBacklog / backlogSeconds tx/s of commits this floor, not the rate, bounds the queue, and a
   * deep queue at a low rate is seconds of finality and blocks whose heights outlast the view timer
   * (issue 14's overload run: 1,000 held blocks of 200+ txs, 2-s finality and 4-6 view changes per
   * minute where 256 held 116-tx blocks, 1.2 s and none).
   */
  minBacklog?: number;
  /** How far back the commit rate looks (default 3000 ms). */
  commitRateWindowMs?: number;
  /**
   * OVERLOADED also while the pool is at least half its backlog limit and an API admission in
   * progress has waited longer than this for its account read and signature (default
   * 250 ms × backlogSeconds): refused at once instead of answered late.
   */
  admissionBudgetMs?: number;
}

export const mempoolDefaults = {
  maxTxs: 100_000,
  maxBytes: 64 * 1024 * 1024,
  maxPerSender: 1_000,
  maxNonceGap: 16,
  gappedTtlMs: 30_000,
  senderRate: { perSecond: 1_000, burst: 2_000 },
  connectionRate: { perSecond: 20_000, burst: 40_000 },
  backlogSeconds: 1,
  minBacklog: 256,
  commitRateWindowMs: 3_000,
} as const;

export function mempoolOptsFromParams(
  chainId: string,
  limits: LimitParams,
  sizing: Partial<Omit<MempoolOpts, "chainId" | "maxTxBytes">> = {},
): MempoolOpts {
  return { chainId, maxTxBytes: limits.maxTxBytes, ...mempoolDefaults, ...sizing };
}

export interface MempoolMetrics {
  admitted(origin: TxOrigin, count: number): void;
  rejected(code: string): void;
  /** Current pool size, after each change. */
  size(txs: number, bytes: number): void;
}

export interface MempoolModules {
  verifyTxs: TxVerifier;
  /** txHash; the node injects a native implementation (src/types' is pure JS). */
  hashTx?: (tx: SignedTx) => Hash;
  /**
   * The sender's account in executed state (null: none). Paid admission: the sender must exist
   * and its balance cover maxFee + value of its pending transactions. The node reads RocksDB.
   */
  account?: AccountLookup;
  /**
   * Nonce-only lookup, for tools and tests that model no balances: every sender counts as an
   * existing, funded account. Ignored when `account` is given; one of the two is required.
   */
  nextNonce?: NonceLookup;
  /** Wall clock in ms (rate limits, gapped TTL); Date.now by default. */
  now?: () => number;
  log: Logger;
  metrics?: MempoolMetrics | null;
}

/** A decoded transaction as the pool holds it. */
export interface PoolTx {
  readonly tx: SignedTx;
  readonly body: TxBody;
  readonly hash: Hash;
  readonly hashHex: string;
  readonly sender: Uint8Array;
  /** addressOf(sender), and its hex: the account the nonce belongs to. */
  readonly address: Uint8Array;
  readonly senderKey: string;
  readonly nonce: bigint;
  /** Encoded SignedTx size: what it adds to a block. */
  readonly bytes: number;
  /** Gas price offered. */
  readonly price: bigint;
  /** maxFee + value: what it may take from the sender's balance. */
  readonly cost: bigint;
}

export interface AddResult {
  hash: Hash;
  hashHex: string;
}

/** Where an admission came from, for the per-connection limit. */
export interface AddContext {
  /** The API caller's peer address (grpc-js call.getPeer()). */
  peer?: string;
}

/** One entry per input of addBatch, in input order. */
export type BatchResult = { ok: true; hash: Hash; hashHex: string } | { ok: false; error: MempoolError };

export interface ReapResult {
  txs: SignedTx[];
  hashes: Hash[];
  bytes: number;
}

/**
 * Called once per transaction when it is admitted and executable, or later, when the gap before
 * it fills. Gapped transactions are not announced (the node gossips only what it announces).
 */
export type AdmittedListener = (txs: readonly PoolTx[], origin: TxOrigin) => void;
