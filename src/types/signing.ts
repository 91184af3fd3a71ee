// The exact bytes every signature in ParaBFT covers, written down once and used by the
// node, the simulator and the client SDK alike. Changing any of these forks the chain.
import { concatBytes, lengthPrefixed, u32be, u64be, utf8Bytes } from "./bytes.js";

/**
 * Version 2: COMMITs sign their view and commit certificates carry it (DESIGN §2, revised
 * 2026-11-30). Version-1 peers, databases and signing states are refused, never read.
 */
export const PROTOCOL_VERSION = 2;

const TAG_TX = utf8Bytes("PARABFT/TX/V1\0");
const TAG_ENVELOPE = utf8Bytes("PARABFT/ENVELOPE/V1\0");
const TAG_PREPARE = utf8Bytes("PARABFT/PREPARE/V1\0");
const TAG_COMMIT = utf8Bytes("PARABFT/COMMIT/V2\0");
const TAG_CHECKPOINT = utf8Bytes("PARABFT/CHECKPOINT/V1\0");

const chain = (chainId: string) => lengthPrefixed(utf8Bytes(chainId));

/** A transaction signature covers the encoded TxBody bytes exactly as they travel. */
export function txSignBytes(body: Uint8Array): Uint8Array {
  return concatBytes(TAG_TX, body);
}

/** Non-vote peer messages: the envelope signature covers these bytes. */
export function envelopeSignBytes(chainId: string, epoch: bigint, sender: number, payload: Uint8Array) {
  return concatBytes(TAG_ENVELOPE, chain(chainId), u64be(epoch), u32be(sender), lengthPrefixed(payload));
}

export function prepareSignBytes(
  chainId: string,
  epoch: bigint,
  view: bigint,
  height: bigint,
  blockDigest: Uint8Array,
): Uint8Array {
  return concatBytes(TAG_PREPARE, chain(chainId), u64be(epoch), u64be(view), u64be(height), blockDigest);
}

/**
 * COMMIT signs `domain ‖ chainId ‖ epoch ‖ view ‖ height ‖ blockDigest`: the finality proof. A
 * commit certificate is a quorum of COMMITs of one view and carries that view; COMMITs of two
 * views never add up (DESIGN §2, docs/CONSENSUS.md).
 */
export function commitSignBytes(
  chainId: string,
  epoch: bigint,
  view: bigint,
  height: bigint,
  blockDigest: Uint8Array,
): Uint8Array {
  return concatBytes(TAG_COMMIT, chain(chainId), u64be(epoch), u64be(view), u64be(height), blockDigest);
}

export function checkpointSignBytes(
  chainId: string,
  epoch: bigint,
  height: bigint,
  chainHash: Uint8Array,
  stateRoot: Uint8Array,
): Uint8Array {
  return concatBytes(TAG_CHECKPOINT, chain(chainId), u64be(epoch), u64be(height), chainHash, stateRoot);
}

/**
 * A signature scheme as the protocol sees it. The node uses Ed25519 (src/crypto); the
 * simulator plugs in a cheap stand-in with the same shape.
 */
export interface SignatureVerifier {
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

export interface MessageSigner {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}
