// The stack floor's frame and request: fixed layouts, hand-coded, so that the floor pays no
// protobuf (the node's hot votes use hand-rolled codecs too: src/types/fastWire.ts).
//
// Frame: kind u8 | from u8 | height u64 BE | digest 32 | block length u32 BE | block |
// Ed25519 signature (64) over the header (everything before the block). A PRE-PREPARE binds its
// block by digest = SHA-256(block); votes carry none. A block is one request or more, back to back.
// Request: sender public key 32 | payload 88 | Ed25519 signature (64) over key and payload,
// 184 bytes, about a signed transfer's size.
import { FloorKind, type FloorMessage } from "./replica.js";

/** The client's unary call on replica 0 (raw bytes: requests in, their height out at commit). */
export const SUBMIT_PATH = "/floor.Api/Submit";

export const HEADER_BYTES = 46;
export const SIGNATURE_BYTES = 64;
export const REQUEST_SIGNED_BYTES = 120;
export const REQUEST_BYTES = REQUEST_SIGNED_BYTES + SIGNATURE_BYTES;

/** The frame without its signature, and where the signed part ends. */
export function encodeUnsigned(m: FloorMessage): Buffer {
  const req = m.request ?? new Uint8Array(0);
  const b = Buffer.allocUnsafe(HEADER_BYTES + req.length + SIGNATURE_BYTES);
  b[0] = m.kind;
  b[1] = m.from;
  b.writeBigUInt64BE(m.height, 2);
  b.set(m.digest, 10);
  b.writeUInt32BE(req.length, 42);
  b.set(req, HEADER_BYTES);
  return b;
}

/** Writes the signature into a frame from encodeUnsigned. */
export function setSignature(frame: Buffer, signature: Uint8Array): void {
  frame.set(signature, frame.length - SIGNATURE_BYTES);
}

export interface DecodedFrame {
  message: FloorMessage;
  /** The signed header bytes. */
  signed: Uint8Array;
  signature: Uint8Array;
}

/** A frame, or null when it is malformed (short, bad kind, lengths that disagree). */
export function decodeFrame(b: Uint8Array): DecodedFrame | null {
  if (b.length < HEADER_BYTES + SIGNATURE_BYTES) return null;
  const v = Buffer.from(b.buffer, b.byteOffset, b.length);
  const kind = v[0]!;
  if (kind !== FloorKind.PrePrepare && kind !== FloorKind.Prepare && kind !== FloorKind.Commit) return null;
  const len = v.readUInt32BE(42);
  if (v.length !== HEADER_BYTES + len + SIGNATURE_BYTES) return null;
  if ((kind === FloorKind.PrePrepare) !== len > 0) return null;
  const message: FloorMessage = {
    kind,
    from: v[1]!,
    height: v.readBigUInt64BE(2),
    digest: v.subarray(10, 42),
  };
  if (len > 0) message.request = v.subarray(HEADER_BYTES, HEADER_BYTES + len);
  return { message, signed: v.subarray(0, HEADER_BYTES), signature: v.subarray(HEADER_BYTES + len) };
}
