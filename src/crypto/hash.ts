// Native SHA-256 for node-side hot paths. Same function as src/types/hash.ts (which stays pure JS
// for the browser SDK), several times faster on small inputs.
import { hash } from "node:crypto";
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Hash } from "../types/hash.js";

export function nativeSha256(data: Uint8Array): Hash {
  return new Uint8Array(hash("sha256", data, "buffer"));
}

/** txHash (src/types/block.ts) computed natively: SHA-256 of the signed body bytes. */
export function nativeTxHash(tx: SignedTx): Hash {
  return nativeSha256(tx.body);
}
