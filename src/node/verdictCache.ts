// Remembered signature verdicts for the consensus path (issue 14 "reuse verdicts in view change").
// A VIEW-CHANGE carries prepared certificates made of PREPARE signatures this node already
// verified as votes, a NEW-VIEW carries those VIEW-CHANGEs again, and a replica waiting for a
// NEW-VIEW repeats its VIEW-CHANGE every few ticks: without a cache each of them costs a full
// Ed25519 verification per signature, on the main thread, exactly when the cluster is busiest.
import { Lru } from "../crypto/lru.js";
import { bytesEqual } from "../types/bytes.js";
import type { SignatureVerifier } from "../types/signing.js";

/**
 * Messages above this size are verified without caching: votes and the certificates built from
 * them sign ~100 bytes; a block-carrying envelope is never seen twice.
 */
export const MAX_CACHED_MESSAGE_BYTES = 1024;

/**
 * Wraps a verifier: a (public key, message, signature) triple that verified once is not verified
 * again. Only successes are kept (a failure is the sender's, and re-checking it is rare). Keyed by
 * the signature bytes; a hit also compares the key and the message byte for byte, so it means the
 * very same triple, and a miss costs no hashing.
 */
export class VerdictCache implements SignatureVerifier {
  private readonly ok: Lru<string, { publicKey: Uint8Array; message: Uint8Array }>;
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
    const key = Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString("latin1");
    const seen = this.ok.get(key);
    if (seen !== undefined && bytesEqual(seen.publicKey, publicKey) && bytesEqual(seen.message, message)) {
      this.hits++;
      return true;
    }
    this.misses++;
    const good = this.inner.verify(publicKey, message, signature);
    // Copies: the arguments may be views into a larger received buffer.
    if (good) this.ok.set(key, { publicKey: publicKey.slice(), message: message.slice() });
    return good;
  }

  get size(): number {
    return this.ok.size;
  }
}
