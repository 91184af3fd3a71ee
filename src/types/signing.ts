// The exact bytes every signature in ParaBFT covers, written down once and used by the
// node, the simulator and the client SDK alike. Changing any of these forks the chain.
import { concatBytes, lengthPrefixed, utf8Bytes } from "./bytes.js";

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

/**
 * `tag ‖ u32be(len(chainId)) ‖ chainId`, the fixed start of every signed message but a tx's.
 * Remembered for the last chain id per tag (a node signs and verifies for one chain), so the
 * per-vote sign bytes are one allocation and a few writes (issue 14: ~2 % of a validator's main
 * thread went to re-encoding the chain id and concatenating parts on every vote).
 */
class ChainPrefix {
  private chainId: string | undefined = undefined;
  private bytes: Uint8Array = new Uint8Array(0);
  constructor(private readonly tag: Uint8Array) {}

  get(chainId: string): Uint8Array {
    if (chainId !== this.chainId) {
      this.bytes = concatBytes(this.tag, lengthPrefixed(utf8Bytes(chainId)));
      this.chainId = chainId;
    }
    return this.bytes;
  }
}

const PREFIX_ENVELOPE = new ChainPrefix(TAG_ENVELOPE);
const PREFIX_PREPARE = new ChainPrefix(TAG_PREPARE);
const PREFIX_COMMIT = new ChainPrefix(TAG_COMMIT);
const PREFIX_CHECKPOINT = new ChainPrefix(TAG_CHECKPOINT);

/** `prefix ‖ u64be(a) ‖ u64be(b) ‖ u64be(c) ‖ tail`; `c` null = two numbers only. */
function build(prefix: Uint8Array, a: bigint, b: bigint, c: bigint | null, tail: Uint8Array): Uint8Array {
  const n = c === null ? 16 : 24;
  const out = new Uint8Array(prefix.length + n + tail.length);
  out.set(prefix, 0);
  const dv = new DataView(out.buffer);
  let off = prefix.length;
  dv.setBigUint64(off, a);
  dv.setBigUint64(off + 8, b);
  if (c !== null) dv.setBigUint64(off + 16, c);
  off += n;
  out.set(tail, off);
  return out;
}

/** A transaction signature covers the encoded TxBody bytes exactly as they travel. */
export function txSignBytes(body: Uint8Array): Uint8Array {
  return concatBytes(TAG_TX, body);
}

/** Non-vote peer messages: the envelope signature covers these bytes. */
export function envelopeSignBytes(chainId: string, epoch: bigint, sender: number, payload: Uint8Array) {
  // TAG ‖ chain ‖ u64be(epoch) ‖ u32be(sender) ‖ u32be(len(payload)) ‖ payload
  const prefix = PREFIX_ENVELOPE.get(chainId);
  const out = new Uint8Array(prefix.length + 16 + payload.length);
  out.set(prefix, 0);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(prefix.length, epoch);
  dv.setUint32(prefix.length + 8, sender >>> 0);
  dv.setUint32(prefix.length + 12, payload.length);
  out.set(payload, prefix.length + 16);
  return out;
}

export function prepareSignBytes(
  chainId: string,
  epoch: bigint,
  view: bigint,
  height: bigint,
  blockDigest: Uint8Array,
): Uint8Array {
  // TAG ‖ chain ‖ u64be(epoch) ‖ u64be(view) ‖ u64be(height) ‖ blockDigest
  return build(PREFIX_PREPARE.get(chainId), epoch, view, height, blockDigest);
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
  return build(PREFIX_COMMIT.get(chainId), epoch, view, height, blockDigest);
}

export function checkpointSignBytes(
  chainId: string,
  epoch: bigint,
  height: bigint,
  chainHash: Uint8Array,
  stateRoot: Uint8Array,
): Uint8Array {
  // TAG ‖ chain ‖ u64be(epoch) ‖ u64be(height) ‖ chainHash ‖ stateRoot
  return build(PREFIX_CHECKPOINT.get(chainId), epoch, height, null, concatBytes(chainHash, stateRoot));
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
