// Transaction submits: SubmitTx's idempotent admission of one transaction, and SubmitTxs's of
// many in one call (issue 14: a unary call per transaction was ~32 % of a validator's main thread
// at saturation, bench/results/s16-ledger.txt). Both answer a transaction alike: admitted, or
// already known (pending, or committed with the same signature), or refused with its own code.
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import {
  type SubmitTxsResponse,
  SubmitTxsResponseSchema,
  type TxSubmitStatus,
  TxSubmitStatusSchema,
} from "../gen/parabft/v1/api_pb.js";
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import { txHash } from "../types/block.js";
import { bytesEqual } from "../types/bytes.js";
import { ParabftError } from "../types/errors.js";
import type { Hash } from "../types/hash.js";
import type { ApiBackend, SubmitResult } from "./backend.js";
import { ApiError, invalidArgument, toServiceError } from "./errors.js";

export interface SubmitBatchLimits {
  /** Transactions in one SubmitTxs call. */
  maxSubmitBatchTxs: number;
  /** Bytes (bodies + signatures) in one SubmitTxs call. */
  maxSubmitBatchBytes: number;
}

/**
 * Refuses a batch past its bounds before anything is admitted: INVALID_ARGUMENT
 * "BATCH_TOO_LARGE" (the client splits it; a resend of the same batch fails the same way), or
 * INVALID_ARGUMENT naming the first transaction without a body.
 */
export function checkBatch(txs: readonly SignedTx[], limits: SubmitBatchLimits): void {
  if (txs.length === 0) throw invalidArgument("txs", "required (at least one transaction)");
  if (txs.length > limits.maxSubmitBatchTxs) {
    throw new ApiError(
      "BATCH_TOO_LARGE",
      { field: "txs" },
      `${txs.length} transactions in one call, at most ${limits.maxSubmitBatchTxs}`,
    );
  }
  let bytes = 0;
  for (const tx of txs) bytes += tx.body.length + tx.signature.length;
  if (bytes > limits.maxSubmitBatchBytes) {
    throw new ApiError(
      "BATCH_TOO_LARGE",
      { field: "txs" },
      `${bytes} bytes of transactions in one call, at most ${limits.maxSubmitBatchBytes}`,
    );
  }
  for (let i = 0; i < txs.length; i++) {
    if (txs[i]!.body.length === 0) throw invalidArgument(`txs[${i}].body`, "required");
  }
}

/**
 * The answer to one transaction's admission: its hash when the backend admitted it, or when it
 * is already known (pending: DUPLICATE; a stale nonce whose exact transaction is in the chain).
 * Anything else stays the refusal. Retrying a submit is therefore safe.
 */
export async function idempotent(
  backend: ApiBackend,
  tx: SignedTx,
  res: SubmitResult,
): Promise<SubmitResult> {
  if (res.ok) return res;
  const err = res.error;
  if (!(err instanceof ParabftError)) return res;
  // Hashed only for the two codes that need it: a refused 16 KiB spam tx costs no hash here.
  if (err.code === "DUPLICATE") return { ok: true, hash: txHash(tx) };
  if (err.code === "BAD_NONCE") {
    const hash = txHash(tx);
    const committed = await backend.getTx(hash);
    if (committed && bytesEqual(committed.tx.signature, tx.signature)) return { ok: true, hash };
  }
  return res;
}

/** The backend's admission of one transaction, its refusal caught as a result. */
async function admit(backend: ApiBackend, tx: SignedTx, peer: string): Promise<SubmitResult> {
  try {
    return { ok: true, hash: await backend.submitTx(tx, peer) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** SubmitTx: one transaction; a refusal is thrown (the call's status). */
export async function submitOne(backend: ApiBackend, tx: SignedTx, peer: string): Promise<Hash> {
  const res = await idempotent(backend, tx, await admit(backend, tx, peer));
  if (res.ok) return res.hash;
  throw res.error;
}

/**
 * SubmitTxs: every transaction admitted on its own (one bad transaction never fails its
 * neighbours), with one verifier call for the batch when the backend has `submitTxs`. The
 * results are in request order; `record` sees each one (connection accountability).
 */
export async function submitMany(
  backend: ApiBackend,
  txs: readonly SignedTx[],
  peer: string,
  record: (err: unknown) => void,
): Promise<SubmitTxsResponse> {
  let raw: SubmitResult[];
  if (backend.submitTxs !== undefined) raw = await backend.submitTxs(txs, peer);
  else {
    // One after the other, as calls in a row would be (concurrent ones would all see the
    // backlog before any of them was admitted).
    raw = [];
    for (const tx of txs) raw.push(await admit(backend, tx, peer));
  }
  const statuses: TxSubmitStatus[] = new Array(txs.length);
  for (let i = 0; i < txs.length; i++) {
    const res = await idempotent(backend, txs[i]!, raw[i]!);
    record(res.ok ? null : res.error);
    statuses[i] = statusOf(res);
  }
  return create(SubmitTxsResponseSchema, { statuses });
}

/** A transaction's status, mapped by the one table (errors.ts) as SubmitTx's call status would be. */
function statusOf(res: SubmitResult): TxSubmitStatus {
  if (res.ok) return create(TxSubmitStatusSchema, { code: status.OK, txHash: res.hash });
  const se = toServiceError(res.error);
  const reason =
    res.error instanceof ParabftError && se.code !== status.INTERNAL ? res.error.code : "INTERNAL";
  return create(TxSubmitStatusSchema, { code: se.code, reason, message: se.details });
}
