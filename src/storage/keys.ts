// Key layouts inside each bucket. Heights are u64 big-endian so byte order is height order.
// Keys are built as Buffers directly: the binding needs Buffers, and a batch of 10k+ keys
// should not pay for a second wrapper object per key.
import { hash } from "node:crypto";
import { concatBytes, u32be, u64be, utf8Bytes } from "../types/bytes.js";
import { Bucket } from "./buckets.js";

export function bucketKey(bucket: Bucket, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + key.length);
  out[0] = bucket;
  out.set(key, 1);
  return out;
}

export function heightKey(bucket: Bucket, height: bigint): Buffer {
  const out = Buffer.allocUnsafe(9);
  out[0] = bucket;
  out.writeBigUInt64BE(height, 1);
  return out;
}

export function metaKey(name: string): Buffer {
  return bucketKey(Bucket.meta, utf8Bytes(name));
}

export function readU64(bytes: Uint8Array, offset = 0): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset);
}

export function readU32(bytes: Uint8Array, offset = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset);
}

export function encodeTxLocation(height: bigint, index: number): Uint8Array {
  return concatBytes(u64be(height), u32be(index));
}

/**
 * txHash (src/types) computed with node:crypto: the same SHA-256 over the same body bytes,
 * about 4x faster than the pure-JS hash on a 5k-tx block (a test pins the equality).
 */
export function fastTxHash(body: Uint8Array): Buffer {
  return hash("sha256", body, "buffer");
}
