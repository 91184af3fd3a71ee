import { ParabftError } from "../types/errors.js";

/**
 * Why a transaction was not admitted. Listed in the order admission checks them, so a
 * transaction with several faults reports the first one.
 */
export type MempoolErrorCode =
  | "MALFORMED"
  | "TX_TOO_LARGE"
  | "WRONG_CHAIN"
  | "BAD_SIGNATURE"
  /** Stale: the sender's account (or a committed transaction) already used this nonce. */
  | "BAD_NONCE"
  /** Too far ahead of the sender's next nonce (more than maxNonceGap). */
  | "NONCE_GAP"
  /** Already pending under this hash. Resubmitting is idempotent: nothing changes. */
  | "DUPLICATE"
  | "MEMPOOL_FULL"
  | "MEMPOOL_STOPPED";

export interface MempoolErrorDetail {
  /** Hex transaction hash, when the body decoded far enough to have one. */
  hash?: string;
  /** For MEMPOOL_FULL: which limit; for BAD_NONCE: "stale" or "taken". */
  reason?: string;
  nonce?: string;
  expected?: string;
}

export class MempoolError extends ParabftError<MempoolErrorCode, MempoolErrorDetail> {}
