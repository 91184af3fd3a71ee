// Hand-rolled codecs for the two messages every peer envelope costs (issue 14): the Envelope
// itself and a vote's PeerMessage (PREPARE, COMMIT, CHECKPOINT: most of a height's traffic); and
// readers of one part of a larger message (a PRE-PREPARE's block, a block's i-th transaction).
// Encoders write exactly toBinary's bytes (fields in number order, proto3 defaults omitted).
// protobuf-es's reflective fromBinary builds them field by field through its schema; these read the
// few fields with its own BinaryReader and build the same plain objects. Only the exact shapes
// below are taken (each field at most once, with its declared wire type, nothing unknown, the
// whole input consumed); anything else returns undefined and the caller decodes with fromBinary,
// so every verdict and error stays fromBinary's. test/unit/types/fastWire.test.ts holds them
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

/** Block.txs (proto/parabft/v1/types.proto). */
const BLOCK_TXS_FIELD = 2;

/**
 * The bytes of the `index`-th SignedTx of an encoded Block (its `index`-th `txs` entry), read
 * without decoding the others: GetTx asks for one transaction of a stored block, and decoding a
 * whole 2,000-transaction block for it cost 0.4-1.9 ms of protobuf per call (bench/getTx.ts).
 * undefined when the block holds fewer transactions or the bytes are not a Block's wire format.
 */
export function blockTxBytesAt(block: Uint8Array, index: number): Uint8Array | undefined {
  try {
    const r = new BinaryReader(block);
    let seen = 0;
    while (r.pos < r.len) {
      const [f, w] = r.tag();
      if (f === BLOCK_TXS_FIELD && w === WireType.LengthDelimited) {
        const tx = r.bytes();
        if (seen === index) return tx;
        seen++;
      } else r.skip(w, f);
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** The fields of an Envelope to encode (an Envelope message, or the same fields). */
export interface EnvelopeFields {
  version: number;
  chainId: string;
  epoch: bigint;
  sender: number;
  payload: Uint8Array;
  signature: Uint8Array;
}

/** Bytes of a varint (uint32/uint64 as protobuf writes them). */
function varintSize(v: bigint | number): number {
  let n = 1;
  if (typeof v === "number") {
    while (v >= 128) {
      v = Math.floor(v / 128);
      n++;
    }
    return n;
  }
  while (v >= 128n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function putVarint(out: Uint8Array, pos: number, v: bigint | number): number {
  if (typeof v === "number") {
    while (v >= 128) {
      out[pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    out[pos++] = v;
    return pos;
  }
  if (v <= BigInt(Number.MAX_SAFE_INTEGER)) return putVarint(out, pos, Number(v));
  while (v >= 128n) {
    out[pos++] = Number(v & 127n) | 128;
    v >>= 7n;
  }
  out[pos++] = Number(v);
  return pos;
}

/** UTF-8 of the last chain id encoded (one chain per process, in practice). */
let lastChainId = "";
let lastChainIdBytes = new Uint8Array(0);
const utf8 = new TextEncoder();

/** toBinary(EnvelopeSchema, e), byte for byte (one allocation; fields in order, defaults omitted). */
export function encodeEnvelopeFast(e: EnvelopeFields): Uint8Array {
  if (e.chainId !== lastChainId) {
    lastChainIdBytes = utf8.encode(e.chainId);
    lastChainId = e.chainId;
  }
  const chain = lastChainIdBytes;
  checkU32(e.version);
  checkU32(e.sender);
  checkU64(e.epoch);
  const version = e.version;
  const sender = e.sender;
  let size = 0;
  if (version !== 0) size += 1 + varintSize(version);
  if (chain.length > 0) size += 1 + varintSize(chain.length) + chain.length;
  if (e.epoch !== 0n) size += 1 + varintSize(e.epoch);
  if (sender !== 0) size += 1 + varintSize(sender);
  if (e.payload.length > 0) size += 1 + varintSize(e.payload.length) + e.payload.length;
  if (e.signature.length > 0) size += 1 + varintSize(e.signature.length) + e.signature.length;
  const out = new Uint8Array(size);
  let pos = 0;
  if (version !== 0) {
    out[pos++] = (1 << 3) | WireType.Varint;
    pos = putVarint(out, pos, version);
  }
  if (chain.length > 0) {
    out[pos++] = (2 << 3) | WireType.LengthDelimited;
    pos = putVarint(out, pos, chain.length);
    out.set(chain, pos);
    pos += chain.length;
  }
  if (e.epoch !== 0n) {
    out[pos++] = (3 << 3) | WireType.Varint;
    pos = putVarint(out, pos, e.epoch);
  }
  if (sender !== 0) {
    out[pos++] = (4 << 3) | WireType.Varint;
    pos = putVarint(out, pos, sender);
  }
  pos = putBytes(out, pos, 5, e.payload);
  putBytes(out, pos, 6, e.signature);
  return out;
}

/**
 * toBinary(PeerMessageSchema, m), byte for byte, when `m` is a PREPARE, COMMIT or CHECKPOINT
 * without unknown fields; otherwise undefined (the caller uses toBinary).
 */
export function encodeVoteFast(m: PeerMessage): Uint8Array | undefined {
  const k = m.kind;
  if ((m as { $unknown?: unknown[] }).$unknown !== undefined) return undefined;
  if (k.case !== "prepare" && k.case !== "commit" && k.case !== "checkpoint") return undefined;
  if ((k.value as { $unknown?: unknown[] }).$unknown !== undefined) return undefined;
  // Prepare/Commit: 1 view, 2 height (varints), 3 digest, 4 signature; Checkpoint: 1 height, then 2-4 bytes.
  let field: number;
  let n1: bigint;
  let n2 = 0n;
  let b2: Uint8Array | undefined;
  let b3: Uint8Array;
  let b4: Uint8Array;
  if (k.case === "checkpoint") {
    field = CHECKPOINT_FIELD;
    n1 = k.value.height;
    b2 = k.value.chainHash;
    b3 = k.value.stateRoot;
    b4 = k.value.voteSignature;
  } else {
    field = k.case === "prepare" ? PREPARE_FIELD : COMMIT_FIELD;
    n1 = k.value.view;
    n2 = k.value.height;
    b3 = k.value.blockDigest;
    b4 = k.value.voteSignature;
  }
  checkU64(n1);
  checkU64(n2);
  const bytesSize = (b: Uint8Array | undefined) =>
    b === undefined || b.length === 0 ? 0 : 1 + varintSize(b.length) + b.length;
  const inner =
    (n1 !== 0n ? 1 + varintSize(n1) : 0) +
    (n2 !== 0n ? 1 + varintSize(n2) : 0) +
    bytesSize(b2) +
    bytesSize(b3) +
    bytesSize(b4);
  const out = new Uint8Array(1 + varintSize(inner) + inner);
  out[0] = (field << 3) | WireType.LengthDelimited;
  let pos = putVarint(out, 1, inner);
  if (n1 !== 0n) {
    out[pos++] = (1 << 3) | WireType.Varint;
    pos = putVarint(out, pos, n1);
  }
  if (n2 !== 0n) {
    out[pos++] = (2 << 3) | WireType.Varint;
    pos = putVarint(out, pos, n2);
  }
  pos = putBytes(out, pos, 2, b2);
  pos = putBytes(out, pos, 3, b3);
  putBytes(out, pos, 4, b4);
  return out;
}

function putBytes(out: Uint8Array, pos: number, no: number, b: Uint8Array | undefined): number {
  if (b === undefined || b.length === 0) return pos;
  out[pos++] = (no << 3) | WireType.LengthDelimited;
  pos = putVarint(out, pos, b.length);
  out.set(b, pos);
  return pos + b.length;
}

const MAX_U64 = (1n << 64n) - 1n;

/** toBinary refuses what is not a uint64 / uint32; so do these encoders. */
function checkU64(v: bigint): void {
  if (v < 0n || v > MAX_U64) throw new Error(`invalid uint64: ${v}`);
}
function checkU32(v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`invalid uint32: ${v}`);
}
