// Equivocation evidence check: two vote signatures by one consensus key for the same
// (epoch, view, height, phase) over different digests (COMMITs are view-bound, so two COMMITs of
// different views are not equivocation). Pure; the sign bytes are the consensus
// layer's (src/types/signing.ts), so a change there is picked up here.
import { ed25519 } from "@noble/curves/ed25519.js";
import type { SubmitEvidence } from "../gen/parabft/v1/types_pb.js";
import { bytesEqual } from "../types/bytes.js";
import { commitSignBytes, prepareSignBytes } from "../types/signing.js";
import { stakingFail } from "./errors.js";
import { CONSENSUS_KEY_LENGTH } from "./types.js";

export type SignatureCheck = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;

/** Strict RFC 8032 (no ZIP-215 leniency), as everywhere else in ParaBFT. */
export const ed25519Check: SignatureCheck = (publicKey, message, signature) => {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
};

function signBytes(chainId: string, ev: SubmitEvidence, digest: Uint8Array): Uint8Array {
  // Both phases sign the view: two votes of one view and height for different digests conflict.
  return ev.phase === "prepare"
    ? prepareSignBytes(chainId, ev.epoch, ev.view, ev.height, digest)
    : commitSignBytes(chainId, ev.epoch, ev.view, ev.height, digest);
}

/** Throws BAD_EVIDENCE unless `ev` proves that its consensus key signed two conflicting votes. */
export function checkEvidence(chainId: string, ev: SubmitEvidence, check: SignatureCheck): void {
  if (ev.consensusKey.length !== CONSENSUS_KEY_LENGTH) stakingFail("BAD_EVIDENCE", "consensus key length");
  if (ev.phase !== "prepare" && ev.phase !== "commit")
    stakingFail("BAD_EVIDENCE", "phase must be prepare|commit");
  if (ev.digestA.length !== 32 || ev.digestB.length !== 32) stakingFail("BAD_EVIDENCE", "digest length");
  if (bytesEqual(ev.digestA, ev.digestB)) stakingFail("BAD_EVIDENCE", "digests do not conflict");
  if (ev.signatureA.length !== 64 || ev.signatureB.length !== 64)
    stakingFail("BAD_EVIDENCE", "signature length");
  if (!check(ev.consensusKey, signBytes(chainId, ev, ev.digestA), ev.signatureA)) {
    stakingFail("BAD_EVIDENCE", "first signature does not verify");
  }
  if (!check(ev.consensusKey, signBytes(chainId, ev, ev.digestB), ev.signatureB)) {
    stakingFail("BAD_EVIDENCE", "second signature does not verify");
  }
}
