import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";

export type Hash = Uint8Array;
export const HASH_LENGTH = 32;

/** SHA-256, the one hash of the protocol. Pure JS so that the browser SDK shares it. */
export function sha256(data: Uint8Array): Hash {
  return nobleSha256(data);
}
