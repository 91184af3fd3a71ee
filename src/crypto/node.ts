// THE signature verification rule of every node (DESIGN §3): node:crypto (OpenSSL, RFC 8032),
// with KeyObjects cached per public key because importing a raw key costs as much as a verify.
// The verify pool workers run exactly this code; nothing else on a node verifies Ed25519.
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../types/block.js";
import { bytesEqual } from "../types/bytes.js";
import type { MessageSigner, SignatureVerifier } from "../types/signing.js";
import { keyPairFromSecret } from "./keys.js";
import { Lru } from "./lru.js";

// Fixed DER header that wraps a raw Ed25519 seed (RFC 8410 PKCS#8).
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

// y-coordinates (sign bit cleared) of the 8 small-order points: identity, order 2, 4 and 8.
const SMALL_ORDER_Y = new Set([
  "0100000000000000000000000000000000000000000000000000000000000000",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000000",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
]);

/**
 * Part of the node rule, on top of OpenSSL: a public key must be a canonical encoding (y < p)
 * of a point that is not of small order. OpenSSL alone accepts both, e.g. the identity key,
 * under which (R = identity, S = 0) "signs" every message; noble strict rejects both. Checked
 * once per key (the verdict is cached with the KeyObject).
 */
export function isAcceptablePublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) return false;
  const y = Uint8Array.from(publicKey);
  y[31] = y[31]! & 0x7f;
  // y >= p = 2^255 - 19: little-endian ed ff .. ff 7f and above.
  let nonCanonical = y[31] === 0x7f && y[0]! >= 0xed;
  for (let i = 1; nonCanonical && i < 31; i++) nonCanonical = y[i] === 0xff;
  if (nonCanonical) return false;
  return !SMALL_ORDER_Y.has(Buffer.from(y).toString("hex"));
}

/**
 * The KeyObject of a raw 32-byte Ed25519 public key, imported as a JWK (RFC 8037 OKP): the same
 * key as its SPKI DER encoding (test/unit/crypto/vectors.test.ts), ~10× cheaper to import on Node 20
 * (~12 µs against ~115 µs, more than a verify; OpenSSL 3 runs its generic DER decoder chain for
 * SPKI). Issue 14: with thousands of senders each verify thread imports every sender's key once,
 * and at 800 tx/s open loop the DER imports were as much sampled CPU as the verifies themselves
 * (bench/results/c25-notes.md).
 */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const x = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString("base64url");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
}

export function privateKeyObject(secretKey: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: "der", type: "pkcs8" });
}

export interface NodeVerifierOpts {
  /** Distinct public keys whose KeyObject stays cached (validators + active senders). */
  keyCacheSize?: number;
}

export class NodeVerifier implements SignatureVerifier {
  // Keyed by the latin1 string of the 32 raw bytes: cheap to build, exact.
  private readonly keys: Lru<string, KeyObject | null>;

  constructor(opts: NodeVerifierOpts = {}) {
    this.keys = new Lru(opts.keyCacheSize ?? 8192);
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false;
    const key = this.keyObject(publicKey);
    if (key === null) return false;
    try {
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  }

  /** Number of cached KeyObjects (for tests and metrics). */
  get cachedKeys(): number {
    return this.keys.size;
  }

  private keyObject(publicKey: Uint8Array): KeyObject | null {
    const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString("latin1");
    const hit = this.keys.get(id);
    if (hit !== undefined) return hit;
    let key: KeyObject | null = null;
    if (isAcceptablePublicKey(publicKey)) {
      try {
        key = publicKeyObject(publicKey);
      } catch {
        // A key OpenSSL cannot import can never verify: remember that too.
      }
    }
    this.keys.set(id, key);
    return key;
  }
}

/** Messages up to this size are remembered by NodeSigner (statuses are ~100 bytes, blocks never repeat). */
const MEMO_MAX_MESSAGE_BYTES = 512;

/** The node-side signer: a KeyObject built once from the seed; output equals noble's signature. */
export class NodeSigner implements MessageSigner {
  readonly publicKey: Uint8Array;
  private readonly key: KeyObject;

  constructor(secretKey: Uint8Array) {
    // Validates the length with a typed error before OpenSSL sees the bytes.
    this.publicKey = keyPairFromSecret(secretKey).publicKey;
    this.key = privateKeyObject(secretKey);
  }

  /**
   * The last small message signed and its signature. Ed25519 signatures are deterministic (RFC
   * 8032), so signing the same bytes again yields these very bytes: an idle validator's status,
   * sealed on every tick with the same report, costs one signature instead of one per tick.
   */
  private last: { message: Uint8Array; signature: Uint8Array } | null = null;

  sign(message: Uint8Array): Uint8Array {
    const last = this.last;
    if (last !== null && bytesEqual(last.message, message)) return last.signature.slice();
    const signature = new Uint8Array(sign(null, message, this.key));
    if (message.length <= MEMO_MAX_MESSAGE_BYTES)
      this.last = { message: message.slice(), signature: signature.slice() };
    return signature;
  }
}
