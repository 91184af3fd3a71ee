// Remembered signature verdicts for the consensus path (issue 14 "reuse verdicts in view change").
// A VIEW-CHANGE carries prepared certificates made of PREPARE signatures this node already
// verified as votes, a NEW-VIEW carries those VIEW-CHANGEs again, and a replica waiting for a
// NEW-VIEW repeats its VIEW-CHANGE every few ticks: without a cache each of them costs a full
// Ed25519 verification per signature, on the main thread, exactly when the cluster is busiest.
import { hash } from "node:crypto";
import { Lru } from "../crypto/lru.js";
import type { SignatureVerifier } from "../types/signing.js";

/** Messages above this size are verified without caching (hashing them would cost more). */
export const MAX_CACHED_MESSAGE_BYTES = 16 * 1024;

/**
 * Wraps a verifier: a (public key, message, signature) triple that verified once is not verified
 * again. Only successes are kept (a failure is the sender's, and re-checking it is rare); the key
 * is SHA-256 over the three length-delimited parts, so a hit means the very same bytes.
 */
export class VerdictCache implements SignatureVerifier {
  private readonly ok: Lru<string, true>;
  hits = 0;
  misses = 0;

  constructor(
    private readonly inner: SignatureVerifier,
    capacity = 16_384,
  ) {
    this.ok = new Lru(capacity);
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (message.length > MAX_CACHED_MESSAGE_BYTES) return this.inner.verify(publicKey, message, signature);
    const key = verdictKey(publicKey, message, signature);
    if (this.ok.get(key) !== undefined) {
      this.hits++;
      return true;
    }
    this.misses++;
    const good = this.inner.verify(publicKey, message, signature);
    if (good) this.ok.set(key, true);
    return good;
  }

  get size(): number {
    return this.ok.size;
  }
}

function verdictKey(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): string {
  const buf = Buffer.allocUnsafe(8 + publicKey.length + signature.length + message.length);
  let o = buf.writeUInt32BE(publicKey.length, 0);
  buf.set(publicKey, o);
  o += publicKey.length;
  o = buf.writeUInt32BE(signature.length, o);
  buf.set(signature, o);
  buf.set(message, o + signature.length);
  return hash("sha256", buf, "base64");
}
