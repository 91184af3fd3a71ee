// Compact binary framing for verify batches crossing to a worker: one ArrayBuffer, transferred,
// never a cloned array of objects (cloning costs more than the verify it carries, DESIGN §5).
// Layout: u32 count, then per item: u32 messageLength, 32-byte public key, 64-byte signature, message.
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../types/block.js";

export interface VerifyItem {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

const FIXED = 4 + PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH;

/** Items must already have valid key and signature lengths (checked by the caller). */
export function encodeBatch(items: readonly VerifyItem[]): ArrayBuffer {
  let size = 4;
  for (const it of items) size += FIXED + it.message.length;
  const buf = new ArrayBuffer(size);
  const bytes = new Uint8Array(buf);
  const view = new DataView(buf);
  view.setUint32(0, items.length);
  let off = 4;
  for (const it of items) {
    view.setUint32(off, it.message.length);
    off += 4;
    bytes.set(it.publicKey, off);
    off += PUBLIC_KEY_LENGTH;
    bytes.set(it.signature, off);
    off += SIGNATURE_LENGTH;
    bytes.set(it.message, off);
    off += it.message.length;
  }
  return buf;
}

/** Views into `buf`, no copies. */
export function decodeBatch(buf: ArrayBuffer): VerifyItem[] {
  const view = new DataView(buf);
  const count = view.getUint32(0);
  const out: VerifyItem[] = new Array(count);
  let off = 4;
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(off);
    off += 4;
    const publicKey = new Uint8Array(buf, off, PUBLIC_KEY_LENGTH);
    off += PUBLIC_KEY_LENGTH;
    const signature = new Uint8Array(buf, off, SIGNATURE_LENGTH);
    off += SIGNATURE_LENGTH;
    const message = new Uint8Array(buf, off, len);
    off += len;
    out[i] = { publicKey, message, signature };
  }
  return out;
}
