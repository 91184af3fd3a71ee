// Hand-rolled decoders for the two messages every peer envelope costs (issue 14): the Envelope
// itself and a vote's PeerMessage (PREPARE, COMMIT, CHECKPOINT: most of a height's traffic).
// protobuf-es's reflective fromBinary builds them field by field through its schema; these read the
// few fields with its own BinaryReader and build the same plain objects. Only the exact shapes
// below are taken (each field at most once, with its declared wire type, nothing unknown, the
// whole input consumed); anything else returns undefined and the caller decodes with fromBinary,
// so every verdict and error stays fromBinary's. test/unit/types/fastDecode.test.ts holds them
// equal (deepStrictEqual) on valid, odd and broken inputs.
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { Checkpoint, Commit, Envelope, PeerMessage, Prepare } from "../gen/parabft/v1/consensus_pb.js";

const EMPTY: Uint8Array<ArrayBuffer> = new Uint8Array(0);

/** The Envelope of `bytes`, as fromBinary(EnvelopeSchema, bytes) would build it, or undefined. */
export function decodeEnvelopeFast(bytes: Uint8Array): Envelope | undefined {
  try {
    const r = new BinaryReader(bytes);
    let version = 0;
    let chainId = "";
    let epoch = 0n;
    let sender = 0;
    let payload = EMPTY;
    let signature = EMPTY;
    let seen = 0;
    while (r.pos < r.len) {
      const [no, wt] = r.tag();
      const bit = 1 << no;
      if (no > 6 || (seen & bit) !== 0) return undefined;
      seen |= bit;
      if (no === 1 || no === 3 || no === 4) {
        if (wt !== WireType.Varint) return undefined;
        if (no === 1) version = r.uint32();
        else if (no === 3) epoch = r.uint64() as bigint;
        else sender = r.uint32();
      } else {
        if (wt !== WireType.LengthDelimited) return undefined;
        if (no === 2) chainId = r.string(true);
        else if (no === 5) payload = r.bytes() as Uint8Array<ArrayBuffer>;
        else signature = r.bytes() as Uint8Array<ArrayBuffer>;
      }
    }
    if (r.pos !== r.len) return undefined;
    return { $typeName: "parabft.v1.Envelope", version, chainId, epoch, sender, payload, signature };
  } catch {
    return undefined;
  }
}

/** PeerMessage oneof field numbers of the votes (proto/parabft/v1/consensus.proto). */
const PREPARE_FIELD = 2;
const COMMIT_FIELD = 3;
const CHECKPOINT_FIELD = 4;

/**
 * The PeerMessage of `payload` when it is exactly one PREPARE, COMMIT or CHECKPOINT, as
 * fromBinary(PeerMessageSchema, payload) would build it; otherwise undefined.
 */
export function decodeVoteFast(payload: Uint8Array): PeerMessage | undefined {
  try {
    const r = new BinaryReader(payload);
    const [no, wt] = r.tag();
    if (wt !== WireType.LengthDelimited) return undefined;
    if (no !== PREPARE_FIELD && no !== COMMIT_FIELD && no !== CHECKPOINT_FIELD) return undefined;
    const inner = r.bytes();
    if (r.pos !== r.len) return undefined; // a second field (merge, or a later oneof member wins)
    const v = new BinaryReader(inner);
    let a = 0n; // view (prepare/commit) or height (checkpoint)
    let b = 0n; // height (prepare/commit)
    let c = EMPTY; // blockDigest or chainHash
    let d = EMPTY; // stateRoot (checkpoint)
    let sig = EMPTY;
    let seen = 0;
    const checkpoint = no === CHECKPOINT_FIELD;
    while (v.pos < v.len) {
      const [f, w] = v.tag();
      const bit = 1 << f;
      if (f > 4 || (seen & bit) !== 0) return undefined;
      seen |= bit;
      // Varints: prepare/commit 1 and 2, checkpoint 1; the rest are bytes.
      const varint = f === 1 || (f === 2 && !checkpoint);
      if (w !== (varint ? WireType.Varint : WireType.LengthDelimited)) return undefined;
      if (f === 1) a = v.uint64() as bigint;
      else if (f === 2) {
        if (checkpoint) c = v.bytes() as Uint8Array<ArrayBuffer>;
        else b = v.uint64() as bigint;
      } else if (f === 3) {
        if (checkpoint) d = v.bytes() as Uint8Array<ArrayBuffer>;
        else c = v.bytes() as Uint8Array<ArrayBuffer>;
      } else sig = v.bytes() as Uint8Array<ArrayBuffer>;
    }
    if (v.pos !== v.len) return undefined;
    if (checkpoint) {
      const value: Checkpoint = {
        $typeName: "parabft.v1.Checkpoint",
        height: a,
        chainHash: c,
        stateRoot: d,
        voteSignature: sig,
      };
      return { $typeName: "parabft.v1.PeerMessage", kind: { case: "checkpoint", value } };
    }
    if (no === PREPARE_FIELD) {
      const value: Prepare = {
        $typeName: "parabft.v1.Prepare",
        view: a,
        height: b,
        blockDigest: c,
        voteSignature: sig,
      };
      return { $typeName: "parabft.v1.PeerMessage", kind: { case: "prepare", value } };
    }
    const value: Commit = {
      $typeName: "parabft.v1.Commit",
      view: a,
      height: b,
      blockDigest: c,
      voteSignature: sig,
    };
    return { $typeName: "parabft.v1.PeerMessage", kind: { case: "commit", value } };
  } catch {
    return undefined;
  }
}

/** PeerMessage field of `pre_prepare`, and PrePrepare's `block` field. */
const PRE_PREPARE_FIELD = 1;
const PRE_PREPARE_BLOCK_FIELD = 4;

/**
 * The encoded Block inside a PRE-PREPARE payload (PrePrepare.block's bytes as received), when the
 * payload is exactly one PrePrepare whose fields each appear at most once; otherwise undefined.
 * fromBinary decodes these very bytes into the message's block, so they decode back to it.
 */
export function prePrepareBlockBytes(payload: Uint8Array): Uint8Array | undefined {
  try {
    const r = new BinaryReader(payload);
    const [no, wt] = r.tag();
    if (no !== PRE_PREPARE_FIELD || wt !== WireType.LengthDelimited) return undefined;
    const inner = r.bytes();
    if (r.pos !== r.len) return undefined;
    const v = new BinaryReader(inner);
    let block: Uint8Array | undefined;
    let seen = 0;
    while (v.pos < v.len) {
      const [f, w] = v.tag();
      const bit = 1 << f;
      if (f > 4 || (seen & bit) !== 0) return undefined;
      seen |= bit;
      if (w !== (f <= 2 ? WireType.Varint : WireType.LengthDelimited)) return undefined;
      if (f === PRE_PREPARE_BLOCK_FIELD) block = v.bytes();
      else v.skip(w, f);
    }
    return block;
  } catch {
    return undefined;
  }
}
