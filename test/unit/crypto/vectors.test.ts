// Cross-implementation vectors pinning THE node rule (NodeVerifier) against noble strict
// (zip215: false, what the SDK uses), in the style of "Taming the many EdDSAs" (Chalkias et al.).
// Every vector is constructed here from fixed scalars, so the file needs no external data.
import assert from "node:assert/strict";
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { describe, it } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha512 } from "@noble/hashes/sha2.js";
import {
  isAcceptablePublicKey,
  NodeSigner,
  NodeVerifier,
  nobleVerifyStrict,
  publicKeyObject,
} from "../../../src/crypto/index.js";
import { keyPairFromSecret, nobleSign } from "../../../src/crypto/keys.js";
import { concatBytes, fromHex } from "../../../src/types/bytes.js";

type Point = InstanceType<typeof ed25519.Point>;
const P = ed25519.Point;
const B = P.BASE;
const L = P.Fn.ORDER;
const FIELD_P = 2n ** 255n - 19n;

const le32 = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  let v = n;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
};
const fromLe = (b: Uint8Array): bigint => {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
};
const mul = (p: Point, n: bigint): Point => (n % L === 0n ? P.ZERO : p.multiplyUnsafe(n % L));
/** The RFC 8032 challenge k = SHA-512(R ‖ A ‖ M) mod L. */
const challenge = (R: Uint8Array, A: Uint8Array, M: Uint8Array) => fromLe(sha512(concatBytes(R, A, M))) % L;
const sig = (R: Uint8Array, S: bigint) => concatBytes(R, le32(S));

/** An order-8 point (generator of the 8-torsion subgroup). */
const T8 = P.fromBytes(fromHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"));
/** y = p + 1: a non-canonical encoding of the identity. */
const NON_CANONICAL_IDENTITY = le32(FIELD_P + 1n);

const node = new NodeVerifier();
const outcome = (A: Uint8Array, M: Uint8Array, S: Uint8Array) => ({
  node: node.verify(A, M, S),
  nobleStrict: nobleVerifyStrict(A, M, S),
});

/** First message m_i = [i] whose challenge satisfies `pred` (deterministic search). */
function findMessage(R: Uint8Array, A: Uint8Array, pred: (k: bigint) => boolean): Uint8Array {
  for (let i = 0; i < 1 << 16; i++) {
    const M = Uint8Array.of(i & 0xff, i >> 8);
    if (pred(challenge(R, A, M))) return M;
  }
  throw new Error("no message found");
}

describe("ed25519 rule: ordinary signatures", () => {
  const kp = keyPairFromSecret(new Uint8Array(32).fill(7));
  const msg = new TextEncoder().encode("transfer 10 to bob");

  it("a noble-signed message verifies under the node rule and noble strict", () => {
    const s = nobleSign(kp.secretKey, msg);
    assert.deepEqual(outcome(kp.publicKey, msg, s), { node: true, nobleStrict: true });
  });

  it("NodeSigner produces exactly noble's signature bytes (Ed25519 is deterministic)", () => {
    const signer = new NodeSigner(kp.secretKey);
    assert.deepEqual(signer.publicKey, kp.publicKey);
    for (const m of [new Uint8Array(0), msg, new Uint8Array(10_000).fill(3)]) {
      assert.deepEqual(signer.sign(m), nobleSign(kp.secretKey, m));
    }
  });

  it("NodeSigner signing the same bytes again (a repeated status) returns the same signature, and a caller cannot spoil it", () => {
    const signer = new NodeSigner(kp.secretKey);
    const m = Uint8Array.from(msg);
    const first = signer.sign(m);
    // The caller's buffer changes after signing: the remembered message must be a copy.
    m[0] = m[0]! ^ 1;
    assert.deepEqual(signer.sign(m), nobleSign(kp.secretKey, m), "changed bytes, fresh signature");
    m[0] = m[0]! ^ 1;
    const again = signer.sign(m);
    assert.deepEqual(again, first);
    again[0] = again[0]! ^ 1;
    assert.deepEqual(
      signer.sign(m),
      nobleSign(kp.secretKey, msg),
      "a returned signature is the caller's own copy",
    );
    assert.deepEqual(signer.sign(m), first);
  });

  it("a tampered message is rejected by both", () => {
    const s = nobleSign(kp.secretKey, msg);
    const m2 = Uint8Array.from(msg);
    m2[0] = m2[0]! ^ 1;
    assert.deepEqual(outcome(kp.publicKey, m2, s), { node: false, nobleStrict: false });
  });

  it("a tampered signature (R or S byte flipped) is rejected by both", () => {
    const s = nobleSign(kp.secretKey, msg);
    for (const i of [0, 31, 32, 63]) {
      const bad = Uint8Array.from(s);
      bad[i] = bad[i]! ^ 0x01;
      assert.deepEqual(outcome(kp.publicKey, msg, bad), { node: false, nobleStrict: false }, `byte ${i}`);
    }
  });

  it("wrong lengths return false without throwing", () => {
    const s = nobleSign(kp.secretKey, msg);
    assert.equal(node.verify(kp.publicKey.subarray(1), msg, s), false);
    assert.equal(node.verify(kp.publicKey, msg, s.subarray(1)), false);
    assert.equal(node.verify(concatBytes(kp.publicKey, Uint8Array.of(0)), msg, s), false);
    assert.equal(node.verify(new Uint8Array(0), msg, new Uint8Array(0)), false);
  });

  it("non-canonical S (S + L, and S with high bits set) is rejected by both", () => {
    const s = nobleSign(kp.secretKey, msg);
    const S = fromLe(s.subarray(32));
    const R = s.subarray(0, 32);
    assert.deepEqual(outcome(kp.publicKey, msg, sig(R, S + L)), { node: false, nobleStrict: false });
    assert.deepEqual(outcome(kp.publicKey, msg, sig(R, S + 8n * L)), { node: false, nobleStrict: false });
    assert.deepEqual(outcome(kp.publicKey, msg, sig(R, S + (1n << 255n))), {
      node: false,
      nobleStrict: false,
    });
  });
});

describe("ed25519 rule: small-order and non-canonical edge cases", () => {
  it("recognises all 8 small-order points (and their sign-flipped encodings) as unacceptable keys", () => {
    for (let i = 0n; i < 8n; i++) {
      const enc = (i === 0n ? P.ZERO : T8.multiplyUnsafe(i)).toBytes();
      assert.equal(isAcceptablePublicKey(enc), false, `[${i}]T8`);
      const flipped = Uint8Array.from(enc);
      flipped[31] = flipped[31]! ^ 0x80;
      assert.equal(isAcceptablePublicKey(flipped), false, `[${i}]T8 sign-flipped`);
    }
    assert.equal(isAcceptablePublicKey(keyPairFromSecret(new Uint8Array(32).fill(1)).publicKey), true);
  });

  it("identity key, identity R, S = 0 (valid for every message under OpenSSL alone): rejected by both", () => {
    const A = P.ZERO.toBytes();
    const R = P.ZERO.toBytes();
    for (const M of [Uint8Array.of(1), Uint8Array.of(2, 3)]) {
      assert.deepEqual(outcome(A, M, sig(R, 0n)), { node: false, nobleStrict: false });
    }
  });

  it("small-order key (order 8), prime-order R, k ≡ 0 mod 8 (cofactorless equation holds): rejected by both", () => {
    const A = T8.toBytes();
    const r = 12345n;
    const R = mul(B, r).toBytes();
    const M = findMessage(R, A, (k) => k % 8n === 0n);
    // Sanity: the cofactorless equation really holds, so only the key check rejects it.
    assert.ok(mul(B, r).equals(mul(B, r).add(mul(T8, challenge(R, A, M)))));
    assert.deepEqual(outcome(A, M, sig(R, r)), { node: false, nobleStrict: false });
  });

  it("small-order key, small-order R, S = 0: rejected by both", () => {
    const A = T8.toBytes();
    const R = T8.negate().toBytes();
    const M = findMessage(R, A, (k) => k % 8n === 1n); // R + kA = identity = [0]B
    assert.deepEqual(outcome(A, M, sig(R, 0n)), { node: false, nobleStrict: false });
  });

  it("non-canonical key encodings (y >= p, either sign): rejected by both", () => {
    let decodable = 0;
    for (let d = 0n; d < 19n; d++) {
      for (const sign of [0, 0x80]) {
        const A = le32(FIELD_P + d);
        A[31] = A[31]! | sign;
        let point: Point | undefined;
        try {
          point = P.fromBytes(A, true);
        } catch {
          point = undefined;
        }
        if (point) decodable++;
        const R = P.ZERO.toBytes();
        assert.deepEqual(outcome(A, Uint8Array.of(1), sig(R, 0n)), { node: false, nobleStrict: false });
        assert.equal(isAcceptablePublicKey(A), false);
      }
    }
    assert.ok(decodable > 0, "at least one non-canonical encoding decodes to a point");
  });

  it("honest key, non-canonical identity R, S = k·a (equation holds): rejected by both", () => {
    const a = 4242n;
    const A = mul(B, a).toBytes();
    const M = Uint8Array.of(9);
    const k = challenge(NON_CANONICAL_IDENTITY, A, M);
    assert.deepEqual(outcome(A, M, sig(NON_CANONICAL_IDENTITY, (k * a) % L)), {
      node: false,
      nobleStrict: false,
    });
  });

  it("honest key, small-order R = identity, S = k·a: accepted by both (only the key owner can make it)", () => {
    const a = 4242n;
    const A = mul(B, a).toBytes();
    const R = P.ZERO.toBytes();
    const M = Uint8Array.of(3);
    const k = challenge(R, A, M);
    assert.deepEqual(outcome(A, M, sig(R, (k * a) % L)), { node: true, nobleStrict: true });
  });

  it("DISAGREEMENT: honest key, mixed-order R = [r]B + T8: node (cofactorless) rejects, noble (cofactored) accepts", () => {
    const a = 987654321n;
    const A = mul(B, a).toBytes();
    const r = 555n;
    const R = mul(B, r).add(T8).toBytes();
    const M = Uint8Array.of(7);
    const k = challenge(R, A, M);
    assert.deepEqual(outcome(A, M, sig(R, (r + k * a) % L)), { node: false, nobleStrict: true });
  });

  it("mixed-order key A = [a]B + T8: both accept when k ≡ 0 mod 8; otherwise node rejects, noble accepts (DISAGREEMENT)", () => {
    const a = 31337n;
    const A = mul(B, a).add(T8).toBytes();
    const r = 777n;
    const R = mul(B, r).toBytes();
    const agree = findMessage(R, A, (k) => k % 8n === 0n);
    const disagree = findMessage(R, A, (k) => k % 8n !== 0n);
    const S = (M: Uint8Array) => (r + challenge(R, A, M) * a) % L;
    assert.deepEqual(outcome(A, agree, sig(R, S(agree))), { node: true, nobleStrict: true });
    assert.deepEqual(outcome(A, disagree, sig(R, S(disagree))), { node: false, nobleStrict: true });
  });
});

describe("ed25519 rule: the KeyObject import (JWK) is the SPKI DER key", () => {
  // RFC 8410 SPKI header of a raw Ed25519 public key: the import NodeVerifier used before issue 14.
  const SPKI_PREFIX = fromHex("302a300506032b6570032100");
  const spki = (A: Uint8Array) =>
    createPublicKey({ key: Buffer.from(concatBytes(SPKI_PREFIX, A)), format: "der", type: "spki" });
  const imported = (f: () => ReturnType<typeof createPublicKey>) => {
    try {
      return f();
    } catch {
      return null;
    }
  };

  it("for honest keys, mixed-order keys and 200 random (mostly off-curve) byte strings: same exported key, same verdicts", () => {
    const keys: Uint8Array[] = [
      mul(B, 987654321n).toBytes(),
      mul(B, 31337n).add(T8).toBytes(),
      ...Array.from({ length: 200 }, () => new Uint8Array(randomBytes(32))),
    ];
    const M = Uint8Array.of(1, 2, 3);
    let verified = 0;
    for (const A of keys) {
      const jwk = imported(() => publicKeyObject(A));
      const der = imported(() => spki(A));
      assert.equal(jwk === null, der === null, "both imports succeed or both fail");
      if (jwk === null || der === null) continue;
      assert.deepEqual(
        jwk.export({ format: "der", type: "spki" }),
        der.export({ format: "der", type: "spki" }),
      );
      // A signature from a key the test holds, under its own public key: both verify it.
      const { publicKey, secretKey } = keyPairFromSecret(A);
      const S = nobleSign(secretKey, M);
      const own = publicKeyObject(publicKey);
      assert.equal(verify(null, M, own, S), true);
      assert.equal(verify(null, M, spki(publicKey), S), true);
      // Under A (another key) both reject it.
      assert.equal(verify(null, M, jwk, S), verify(null, M, der, S));
      verified++;
    }
    assert.ok(verified >= 2);
  });

  it("a key imported from a subarray of a larger buffer is that key, not the buffer's start", () => {
    const { publicKey, secretKey } = keyPairFromSecret(new Uint8Array(32).fill(9));
    const big = new Uint8Array(64);
    big.set(publicKey, 16);
    const M = Uint8Array.of(4);
    assert.equal(verify(null, M, publicKeyObject(big.subarray(16, 48)), nobleSign(secretKey, M)), true);
    assert.equal(node.verify(big.subarray(16, 48), M, nobleSign(secretKey, M)), true);
  });
});
