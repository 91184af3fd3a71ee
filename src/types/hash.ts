import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";

export type Hash = Uint8Array;
export const HASH_LENGTH = 32;

let impl: (data: Uint8Array) => Hash = nobleSha256;

/** SHA-256, the one hash of the protocol. Pure JS by default, so that the browser SDK shares it. */
export function sha256(data: Uint8Array): Hash {
  return impl(data);
}

/**
 * Replaces the implementation with an equal, faster one (the node installs node:crypto's at
 * startup: block digests, txs roots and addresses on the hot path). Process-wide.
 */
export function useSha256(f: (data: Uint8Array) => Hash): void {
  impl = f;
}
