// The consensus path's verdict cache: the same signature is verified once, anything else anew.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeSigner, NodeVerifier } from "../../../src/crypto/index.js";
import { MAX_CACHED_MESSAGE_BYTES, VerdictCache } from "../../../src/node/verdictCache.js";
import type { SignatureVerifier } from "../../../src/types/signing.js";

class Counting implements SignatureVerifier {
  calls = 0;
  private readonly real = new NodeVerifier();
  verify(k: Uint8Array, m: Uint8Array, s: Uint8Array): boolean {
    this.calls++;
    return this.real.verify(k, m, s);
  }
}

const signer = new NodeSigner(new Uint8Array(32).fill(7));
const other = new NodeSigner(new Uint8Array(32).fill(8));

describe("VerdictCache", () => {
  it("verifies a (key, message, signature) once; a changed byte anywhere is verified again", () => {
    const inner = new Counting();
    const v = new VerdictCache(inner);
    const msg = Uint8Array.from([1, 2, 3, 4]);
    const sig = signer.sign(msg);
    assert.equal(v.verify(signer.publicKey, msg, sig), true);
    assert.equal(v.verify(signer.publicKey, Uint8Array.from(msg), Uint8Array.from(sig)), true);
    assert.equal(inner.calls, 1, "the second check of equal bytes is a hit");
    assert.equal(v.hits, 1);
    // Another message, signature or key: a real verification, and the right answer.
    assert.equal(v.verify(signer.publicKey, Uint8Array.from([1, 2, 3, 5]), sig), false);
    const badSig = Uint8Array.from(sig);
    badSig[0]! ^= 1;
    assert.equal(v.verify(signer.publicKey, msg, badSig), false);
    assert.equal(v.verify(other.publicKey, msg, sig), false);
    assert.equal(inner.calls, 4);
    // Failures are not remembered as successes, nor cached at all.
    assert.equal(v.verify(signer.publicKey, msg, badSig), false);
    assert.equal(inner.calls, 5);
    // Only the one success is held.
    assert.equal(v.size, 1);
  });

  it("does not cache large messages and evicts past capacity", () => {
    const inner = new Counting();
    const v = new VerdictCache(inner, 2);
    const big = new Uint8Array(MAX_CACHED_MESSAGE_BYTES + 1).fill(3);
    const bigSig = signer.sign(big);
    assert.equal(v.verify(signer.publicKey, big, bigSig), true);
    assert.equal(v.verify(signer.publicKey, big, bigSig), true);
    assert.equal(inner.calls, 2);
    const msgs = [1, 2, 3].map((i) => Uint8Array.of(i));
    for (const m of msgs) assert.equal(v.verify(signer.publicKey, m, signer.sign(m)), true);
    assert.equal(v.size, 2);
    inner.calls = 0;
    assert.equal(v.verify(signer.publicKey, msgs[0]!, signer.sign(msgs[0]!)), true);
    assert.equal(inner.calls, 1, "the oldest was evicted");
  });
});
