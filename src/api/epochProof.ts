// GetEpochSetProof (DPoS light clients, issue 11): the proof of the validator set of epoch
// E ≥ 2, elected when the last block B(e) of epoch e = E − 2 executed. It is assembled from what
// the node keeps durably: the stable checkpoint certificate of B(e) (checkpoint bucket, signed by
// the set of epoch e) and B(e)'s write set with the state root before it (epochWriteSet bucket).
// The SDK's EpochSetChain (src/client/epochChain.ts) checks it; the node does not vouch for it.
import type { CheckpointCertificate } from "../gen/parabft/v1/consensus_pb.js";
import type { Hash } from "../types/hash.js";
import { ApiError, invalidArgument } from "./errors.js";

export interface EpochSetProofRecord {
  /** The epoch whose set this proves (e + 2). */
  epoch: bigint;
  checkpoint: CheckpointCertificate;
  previousRoot: Hash;
  /** B(e)'s write set, sorted by key; value null = deleted. */
  writeSet: { key: Uint8Array; value: Uint8Array | null }[];
}

/** What the proof is read from (src/storage's ChainDb has these). */
export interface EpochProofStore {
  getExecutedHeight(): Promise<bigint>;
  getCheckpoint(height: bigint): Promise<CheckpointCertificate | undefined>;
  getStableCheckpoint(): Promise<CheckpointCertificate | undefined>;
  getKeptWriteSet(
    height: bigint,
  ): Promise<{ previousRoot: Hash; writeSet: { key: Uint8Array; value: Uint8Array | null }[] } | undefined>;
}

/** The last height of epoch e. */
export function lastHeightOf(epoch: bigint, epochLength: number): bigint {
  return (epoch + 1n) * BigInt(epochLength) - 1n;
}

/**
 * The proof of the set of `epoch`. `epochLength` undefined: the chain runs without DPoS epochs.
 * Throws ApiError INVALID_ARGUMENT (epoch 0 or 1), NO_EPOCHS, EPOCH_NOT_FINAL (B(e) not yet
 * executed, or its checkpoint not yet stable here) or PROOF_UNAVAILABLE (this node passed B(e)
 * without keeping the proof, e.g. it synced past it from a snapshot: ask another node).
 */
export async function readEpochSetProof(
  store: EpochProofStore,
  epochLength: number | undefined,
  epoch: bigint,
): Promise<EpochSetProofRecord> {
  if (epoch < 2n) {
    throw invalidArgument("epoch", `${epoch} is a genesis epoch (see GetValidators); proofs start at 2`);
  }
  if (epochLength === undefined || epochLength <= 0) {
    throw new ApiError(
      "NO_EPOCHS",
      {},
      "this chain runs without DPoS epochs: the genesis set is the only set",
    );
  }
  const e = epoch - 2n;
  const boundary = lastHeightOf(e, epochLength);
  const executed = await store.getExecutedHeight();
  if (executed < boundary) {
    throw new ApiError(
      "EPOCH_NOT_FINAL",
      { field: "epoch" },
      `the set of epoch ${epoch} is elected at height ${boundary}; executed height is ${executed}`,
    );
  }
  const checkpoint = await store.getCheckpoint(boundary);
  if (checkpoint === undefined) {
    const stable = (await store.getStableCheckpoint())?.height ?? 0n;
    if (stable < boundary) {
      throw new ApiError(
        "EPOCH_NOT_FINAL",
        { field: "epoch" },
        `the checkpoint of height ${boundary} is not stable yet (stable: ${stable})`,
      );
    }
    throw new ApiError(
      "PROOF_UNAVAILABLE",
      {},
      `this node kept no checkpoint certificate for height ${boundary}; ask another node`,
    );
  }
  const kept = await store.getKeptWriteSet(boundary);
  if (kept === undefined) {
    throw new ApiError(
      "PROOF_UNAVAILABLE",
      {},
      `this node kept no write set for height ${boundary}; ask another node`,
    );
  }
  return { epoch, checkpoint, previousRoot: kept.previousRoot, writeSet: kept.writeSet };
}
