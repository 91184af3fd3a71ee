import { ParabftError } from "../types/errors.js";

/**
 * Why a transaction was not admitted. Listed in the order admission checks them, so a
 * transaction with several faults reports the first one.
 */
export type MempoolErrorCode =
  /** Per-connection admission rate (API submits from one peer address) exceeded. */
  | "CONNECTION_RATE_LIMITED"
  | "MALFORMED"
  | "TX_TOO_LARGE"
  | "WRONG_CHAIN"
  /** TxBody.fee is not a decimal u128 gas price. */
  | "BAD_FEE"
  /** Gas price below MIN_GAS_PRICE (src/exec/fees.ts). */
  | "FEE_TOO_LOW"
  /** Gas limit zero or below gasOf(call). */
  | "GAS_LIMIT_TOO_LOW"
  /** An amount, or gas limit × price + value, above u128. */
  | "AMOUNT_OUT_OF_RANGE"
  /**
   * The sender has no account in executed state: only funded accounts may submit. Checked before
   * the signature, with the parts of NONCE_GAP and INSUFFICIENT_FUNDS the account alone decides.
   */
  | "UNKNOWN_ACCOUNT"
  | "BAD_SIGNATURE"
  /** Per-sender admission rate exceeded (checked after the signature, so no one else can spend it). */
  | "SENDER_RATE_LIMITED"
  /** Stale: the sender's account (or a committed transaction) already used this nonce. */
  | "BAD_NONCE"
  /** Too far ahead of the sender's next nonce (more than maxNonceGap). */
  | "NONCE_GAP"
  /** Already pending under this hash. Resubmitting is idempotent: nothing changes. */
  | "DUPLICATE"
  /** The balance does not cover maxFee + value of this and the sender's other pending txs. */
  | "INSUFFICIENT_FUNDS"
  | "MEMPOOL_FULL"
  /**
   * Backpressure: the pool already holds more than `backlogSeconds` of commits at the recent
   * commit rate (at least `minBacklog` transactions). Refused before any signature check, and only
   * for API submissions; detail.retryAfterMs says when the backlog should have drained.
   */
  | "OVERLOADED"
  | "MEMPOOL_STOPPED"
  /**
   * DPoS: this node is not in the current epoch's validator set (a candidate still catching up,
   * a validator voted out or jailed). It follows the chain and serves reads, but its pool is never
   * gossiped or proposed from, so a submit here would wait forever: submit to a validator.
   */
  | "NOT_A_VALIDATOR";

export interface MempoolErrorDetail {
  /** Hex transaction hash, when the body decoded far enough to have one. */
  hash?: string;
  /** For MEMPOOL_FULL: which limit; for BAD_NONCE: "stale" or "taken"; else the field at fault. */
  reason?: string;
  nonce?: string;
  expected?: string;
  /** For OVERLOADED: when to retry (ms), the time the pool's backlog needs to commit. */
  retryAfterMs?: number;
}

/** A refusal is an answer to the client, not a bug: no stack trace (see ParabftError.stackless). */
export class MempoolError extends ParabftError<MempoolErrorCode, MempoolErrorDetail> {
  static override readonly stackless = true;
}
