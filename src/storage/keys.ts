// Key layouts inside each bucket. Heights are u64 big-endian so byte order is height order.
import { concatBytes, u32be, u64be, utf8Bytes } from "../types/bytes.js";
import { Bucket } from "./buckets.js";

export function bucketKey(bucket: Bucket, ...parts: Uint8Array[]): Uint8Array {
  return concatBytes(Uint8Array.of(bucket), ...parts);
}

export function heightKey(bucket: Bucket, height: bigint): Uint8Array {
  return bucketKey(bucket, u64be(height));
}

export function metaKey(name: string): Uint8Array {
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
