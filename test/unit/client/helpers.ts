// Shared fixtures for the client tests: deterministic keys and a node:crypto verifier
// implementing the node rule (DESIGN §3) without depending on src/crypto.
import { createPublicKey, verify } from "node:crypto";
import { TxSigner } from "../../../src/client/index.js";
import { NodeVerifier } from "../../../src/crypto/node.js";

const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

const nodeRule = new NodeVerifier();

/** THE node rule (src/crypto NodeVerifier: key checks, then OpenSSL). */
export function nodeVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  return nodeRule.verify(publicKey, message, signature);
}

/** Bare OpenSSL through node:crypto, without the node rule's key checks; never throws. */
export function opensslVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    const key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]),
      format: "der",
      type: "spki",
    });
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

export function seededSigner(i: number): TxSigner {
  const seed = new Uint8Array(32);
  seed[0] = 0xa5;
  new DataView(seed.buffer).setUint32(28, i);
  return TxSigner.fromSeed(seed);
}
