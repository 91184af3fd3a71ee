// Transaction signing for the SDK. Pure JS (@noble/curves) so the SDK runs in browsers too;
// nodes verify with node:crypto, and the cross-implementation tests pin that both agree.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ed25519 } from "@noble/curves/ed25519.js";
import { type SignedTx, SignedTxSchema, type TxBody, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import { addressOf, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../types/block.js";
import { fromHex, toHex } from "../types/bytes.js";
import type { Hash } from "../types/hash.js";
import { sha256 } from "../types/hash.js";
import type { MessageSigner } from "../types/signing.js";
import { txSignBytes } from "../types/signing.js";
import { ClientError } from "./errors.js";

const SECRET_KEY_LENGTH = 32;

/** An Ed25519 key pair held by a client: signs transactions, knows its address. */
export class TxSigner implements MessageSigner {
  readonly publicKey: Uint8Array;
  readonly address: Uint8Array;
  readonly #secretKey: Uint8Array;

  constructor(secretKey: Uint8Array) {
    if (secretKey.length !== SECRET_KEY_LENGTH) {
      throw new ClientError(
        "BAD_KEY",
        {},
        `secret key must be ${SECRET_KEY_LENGTH} bytes, got ${secretKey.length}`,
      );
    }
    this.#secretKey = Uint8Array.from(secretKey);
    this.publicKey = ed25519.getPublicKey(this.#secretKey);
    this.address = addressOf(this.publicKey);
  }

  static generate(): TxSigner {
    return new TxSigner(ed25519.utils.randomSecretKey());
  }

  /** Deterministic key from a 32-byte seed: benchmarks and tests derive many senders cheaply. */
  static fromSeed(seed: Uint8Array): TxSigner {
    return new TxSigner(seed);
  }

  /**
   * From the key-file JSON shape `{ publicKey, secretKey, address }` (hex). Rejects a file whose
   * public key does not belong to its secret key, so a corrupted file never signs as someone else.
   */
  static fromKeyJson(json: unknown): TxSigner {
    const o = json as { secretKey?: unknown; publicKey?: unknown };
    if (typeof o?.secretKey !== "string") throw new ClientError("BAD_KEY", {}, "key file has no secretKey");
    let signer: TxSigner;
    try {
      signer = new TxSigner(fromHex(o.secretKey));
    } catch (err) {
      if (err instanceof ClientError) throw err;
      throw new ClientError("BAD_KEY", {}, "key file secretKey is not hex");
    }
    if (typeof o.publicKey === "string" && o.publicKey.toLowerCase() !== toHex(signer.publicKey)) {
      throw new ClientError("BAD_KEY", {}, "key file publicKey does not match its secretKey");
    }
    return signer;
  }

  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.#secretKey);
  }
}

/** A signed transaction ready to submit, with the identity everybody else computes for it. */
export interface PreparedTx {
  tx: SignedTx;
  /** sha256 of the signed body bytes: the transaction hash. */
  hash: Hash;
  /** The decoded body (for nonce bookkeeping and display). */
  body: TxBody;
}

/**
 * Encodes the body once and signs those exact bytes: the hash and signature must cover what
 * travels, never a re-encode (DESIGN §4).
 */
export function signTx(body: TxBody, signer: MessageSigner): PreparedTx {
  if (body.sender.length === 0) body.sender = signer.publicKey;
  if (body.sender.length !== PUBLIC_KEY_LENGTH) {
    throw new ClientError("BAD_TX", {}, `sender must be a ${PUBLIC_KEY_LENGTH}-byte public key`);
  }
  const bytes = toBinary(TxBodySchema, body);
  const signature = signer.sign(txSignBytes(bytes));
  return { tx: create(SignedTxSchema, { body: bytes, signature }), hash: sha256(bytes), body };
}

/** Decodes a SignedTx's body; throws BAD_TX on garbage. */
export function decodeTxBody(tx: SignedTx): TxBody {
  try {
    return fromBinary(TxBodySchema, tx.body);
  } catch {
    throw new ClientError("BAD_TX", {}, "transaction body does not decode");
  }
}

/**
 * Strict RFC 8032 verification of a transaction signature with noble (zip215: false), the
 * mode that agrees with the node rule; see the edge-case tests in test/unit/client.
 */
export function verifyTxSignature(tx: SignedTx): boolean {
  if (tx.signature.length !== SIGNATURE_LENGTH) return false;
  let body: TxBody;
  try {
    body = fromBinary(TxBodySchema, tx.body);
  } catch {
    return false;
  }
  return strictVerify(tx.signature, txSignBytes(tx.body), body.sender);
}

/** noble ed25519 in strict mode; never throws. */
export function strictVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_LENGTH || publicKey.length !== PUBLIC_KEY_LENGTH) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
