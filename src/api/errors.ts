// The one table from ParabftError codes to gRPC status codes. Handlers throw; only toServiceError
// turns an error into a status, so a code never maps two ways.
import { type ServiceError, status } from "@grpc/grpc-js";
import type { MempoolErrorCode } from "../mempool/errors.js";
import { ParabftError } from "../types/errors.js";

export type ApiErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  /** A wait (SubmitTxAndWait) ran out of time. */
  | "TIMEOUT"
  | "CANCELLED"
  /** Per-connection or per-address in-flight limit. */
  | "TOO_MANY_REQUESTS"
  /** StreamBlocks subscriptions: global or per-address cap reached. */
  | "TOO_MANY_STREAMS"
  /** A StreamBlocks subscriber stopped reading and its bounded buffer stayed full. */
  | "SLOW_CONSUMER"
  /** SubmitTxs: more transactions or bytes in one call than the server's bounds. */
  | "BATCH_TOO_LARGE"
  /** The node cannot answer reliably right now. */
  | "SYNCING"
  | "HALTED"
  | "DIVERGED"
  | "UNAVAILABLE"
  | "FAILED_PRECONDITION"
  /** GetEpochSetProof on a chain without DPoS epochs. */
  | "NO_EPOCHS"
  /** GetEpochSetProof: the set's election (or its checkpoint) is not final on this node yet. */
  | "EPOCH_NOT_FINAL"
  /** GetEpochSetProof: this node passed the boundary without keeping the proof; ask another. */
  | "PROOF_UNAVAILABLE";

/** An answer to the client, not a bug: no stack trace (see ParabftError.stackless). */
export class ApiError extends ParabftError<ApiErrorCode, { field?: string }> {
  static override readonly stackless = true;
}

const table: Record<ApiErrorCode | MempoolErrorCode, status> & Record<string, status | undefined> = {
  // API input and flow control
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  TIMEOUT: status.DEADLINE_EXCEEDED,
  CANCELLED: status.CANCELLED,
  TOO_MANY_REQUESTS: status.RESOURCE_EXHAUSTED,
  TOO_MANY_STREAMS: status.RESOURCE_EXHAUSTED,
  // Static bounds: the same batch fails the same way; split it.
  BATCH_TOO_LARGE: status.INVALID_ARGUMENT,
  SLOW_CONSUMER: status.RESOURCE_EXHAUSTED,
  SYNCING: status.UNAVAILABLE,
  HALTED: status.UNAVAILABLE,
  DIVERGED: status.UNAVAILABLE,
  UNAVAILABLE: status.UNAVAILABLE,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  NO_EPOCHS: status.FAILED_PRECONDITION,
  EPOCH_NOT_FINAL: status.NOT_FOUND,
  PROOF_UNAVAILABLE: status.UNAVAILABLE,
  // Mempool admission (src/mempool/errors.ts)
  CONNECTION_RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  MALFORMED: status.INVALID_ARGUMENT,
  TX_TOO_LARGE: status.INVALID_ARGUMENT,
  WRONG_CHAIN: status.INVALID_ARGUMENT,
  BAD_FEE: status.INVALID_ARGUMENT,
  FEE_TOO_LOW: status.INVALID_ARGUMENT,
  GAS_LIMIT_TOO_LOW: status.INVALID_ARGUMENT,
  AMOUNT_OUT_OF_RANGE: status.OUT_OF_RANGE,
  BAD_SIGNATURE: status.INVALID_ARGUMENT,
  // Per sender, after the signature: only the key holder can spend its budget. Both rate limits
  // are quota errors; the code in the details ("SENDER_RATE_LIMITED: ...") tells them apart.
  SENDER_RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  // Funding may change: the account may be created or credited.
  UNKNOWN_ACCOUNT: status.FAILED_PRECONDITION,
  INSUFFICIENT_FUNDS: status.FAILED_PRECONDITION,
  BAD_NONCE: status.INVALID_ARGUMENT,
  // The nonce may become acceptable once earlier transactions commit.
  NONCE_GAP: status.FAILED_PRECONDITION,
  // SubmitTx treats this as success (idempotent resubmit); elsewhere it is a conflict.
  DUPLICATE: status.ALREADY_EXISTS,
  MEMPOOL_FULL: status.RESOURCE_EXHAUSTED,
  // Backpressure: more than backlogSeconds of commits pending; retry after detail.retryAfterMs.
  OVERLOADED: status.RESOURCE_EXHAUSTED,
  MEMPOOL_STOPPED: status.UNAVAILABLE,
  // A follower (DPoS): the same submit to a validator of the current set succeeds.
  NOT_A_VALIDATOR: status.FAILED_PRECONDITION,
  // Lower layers the backend may surface (src/storage, src/crypto)
  DB_CLOSED: status.UNAVAILABLE,
  VERIFY_POOL_STOPPED: status.UNAVAILABLE,
};

/** The gRPC status for a ParabftError code; INTERNAL for codes the API does not know. */
export function statusForCode(code: string): status {
  return table[code] ?? status.INTERNAL;
}

export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (err instanceof ParabftError) {
    const code = statusForCode(err.code);
    if (code !== status.INTERNAL) return { code, details: `${err.code}: ${err.message}` };
  }
  // Internal details stay in the node's log, not in a client's hands.
  return { code: status.INTERNAL, details: "internal error" };
}

export function invalidArgument(field: string, message: string): ApiError {
  return new ApiError("INVALID_ARGUMENT", { field }, `${field}: ${message}`);
}

export function notFound(what: string): ApiError {
  return new ApiError("NOT_FOUND", {}, `${what} not found`);
}
