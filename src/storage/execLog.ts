// Execution layout 2 (issue 13): the binary values the execution batch writes. A block's write
// set is ONE value (the write-set log, folded into the per-key state bucket later, in the
// background); its receipts are ONE value, found through the commit batch's tx index. One
// RocksDB key costs ~4-8 µs of CPU in the binding, more than executing a transfer, so
// per-block values instead of per-transaction keys are what makes persistence cheap.
// Formats (big-endian):
//   write-set log: u32 count ‖ per entry: u16 keyLen ‖ key ‖ u8 present ‖ [u32 valueLen ‖ value]
//   receipts:      u32 count ‖ u32 offset[count + 1] (from the start of the value) ‖ entries;
//                  entry: txHash(32) ‖ u8 status ‖ u64 gasUsed ‖ str error ‖ u8 nEvents ‖
//                  per event: str kind ‖ u8 nAttrs ‖ per attribute: str key ‖ str value
//                  (str: u32 byteLength ‖ UTF-8)
//                  or, for a successful transfer's receipt (status OK, the transfer's gas, no
//                  error, one bank.transfer event from / to / amount, in that order, lower-case
//                  hex addresses, an amount of 1-64 ASCII digits; execution layout 3):
//                  txHash(32) ‖ u8 0xFE ‖ from(20) ‖ to(20) ‖ u8 amountLength ‖ amount digits
//                  (~80 bytes instead of ~200; decodes to the same Receipt)
import { GAS } from "../exec/fees.js";
import { TransferOk } from "../exec/programs.js";
import { type BlockOutcomes, toReceipt } from "../exec/result.js";
import type { StateWrite } from "../exec/types.js";
import { type Receipt, type TxEvent, TxStatus } from "../gen/parabft/v1/types_pb.js";
import { StorageError } from "./errors.js";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function encodeWriteSetLog(writeSet: readonly StateWrite[]): Buffer {
  let size = 4;
  for (const w of writeSet) size += 3 + w.key.length + (w.value === null ? 0 : 4 + w.value.length);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(writeSet.length, 0);
  let off = 4;
  for (const w of writeSet) {
    out[off] = w.key.length >>> 8;
    out[off + 1] = w.key.length & 255;
    out.set(w.key, off + 2);
    off += 2 + w.key.length;
    if (w.value === null) out[off++] = 0;
    else {
      out[off] = 1;
      out.writeUInt32BE(w.value.length, off + 1);
      out.set(w.value, off + 5);
      off += 5 + w.value.length;
    }
  }
  return out;
}

/** Entries are views into `buf` (no copy). */
export function decodeWriteSetLog(buf: Uint8Array, height: bigint): StateWrite[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const corrupt = () =>
    new StorageError("CORRUPT_RECORD", { bucket: "execLog", height }, `corrupt write-set log at ${height}`);
  if (b.length < 4) throw corrupt();
  const n = b.readUInt32BE(0);
  const out: StateWrite[] = new Array(n);
  let off = 4;
  for (let i = 0; i < n; i++) {
    if (off + 3 > b.length) throw corrupt();
    const kl = (b[off]! << 8) | b[off + 1]!;
    const key = new Uint8Array(b.buffer, b.byteOffset + off + 2, kl);
    off += 2 + kl;
    if (off >= b.length) throw corrupt();
    if (b[off] === 0) {
      out[i] = { key, value: null };
      off++;
    } else {
      const vl = b.readUInt32BE(off + 1);
      if (off + 5 + vl > b.length) throw corrupt();
      out[i] = { key, value: new Uint8Array(b.buffer, b.byteOffset + off + 5, vl) };
      off += 5 + vl;
    }
  }
  if (off !== b.length) throw corrupt();
  return out;
}

class Writer {
  buf: Buffer;
  off = 0;
  /**
   * @param reuse a buffer of its own (never Node's shared pool) to encode into when it is big
   *   enough; with it every buffer this writer makes is of its own too, so the caller may keep
   *   and reuse the last one (ReceiptsScratch).
   */
  constructor(
    size: number,
    reuse?: Buffer | null,
    private readonly own = reuse !== undefined,
  ) {
    this.buf =
      reuse != null && reuse.length >= size
        ? reuse
        : own
          ? Buffer.allocUnsafeSlow(size)
          : Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const size = Math.max(this.buf.length * 2, this.off + n);
    const next = this.own ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
  str(s: string): void {
    // Every character takes at most 3 UTF-8 bytes.
    this.ensure(4 + 3 * s.length);
    const buf = this.buf;
    const at = this.off + 4;
    let written = -1;
    if (s.length <= 128) {
      // Short ASCII (hex, decimal amounts, event names): a loop beats a native call.
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === s.length) written = i;
    }
    if (written < 0) written = utf8.encodeInto(s, buf.subarray(at)).written;
    buf.writeUInt32BE(written, this.off);
    this.off = at + written;
  }
}

export function encodeReceipts(receipts: readonly Receipt[]): Buffer {
  const n = receipts.length;
  const w = receiptsWriter(n);
  const offsets = new Array<number>(n + 1);
  for (let i = 0; i < n; i++) {
    offsets[i] = w.off;
    writeReceipt(w, receipts[i]!);
  }
  return finishReceipts(w, offsets);
}

/**
 * The same value as encodeReceipts(receipts built from the outcomes), encoded straight from the
 * block's outcomes: a hot-path transfer (TransferOk) is written from its addresses and amount
 * (hex digits written byte by byte), with no Receipt, event or string built; any other outcome
 * goes through toReceipt.
 */
export function encodeBlockReceipts(b: BlockOutcomes, scratch?: ReceiptsScratch): Buffer {
  const n = b.outcomes.length;
  const w = receiptsWriter(n, scratch);
  const offsets = new Array<number>(n + 1);
  for (let i = 0; i < n; i++) {
    offsets[i] = w.off;
    const o = b.outcomes[i]!;
    const hash = b.hashes[i]!;
    if (o instanceof TransferOk && o.from.length === 20 && o.to.length === 20 && o.amount.length <= 64) {
      writeTransferOk(w, hash, o);
    } else writeReceipt(w, toReceipt(hash, b.height, i, o));
  }
  const value = finishReceipts(w, offsets);
  if (scratch !== undefined) scratch.buf = w.buf.length <= RECEIPTS_SCRATCH_MAX ? w.buf : null;
  return value;
}

/**
 * A buffer encodeBlockReceipts encodes into and keeps for the next call (round 11): a block's
 * receipts value (~1 MB for 10k transfers) in fresh memory cost a page fault per 4 KiB. The value
 * returned is a view of it, valid until the next call with the same scratch: ChainDb passes the
 * value to a batch, which copies it at once, and execution batches are written one at a time.
 */
export interface ReceiptsScratch {
  buf: Buffer | null;
}

/** Scratch buffers above this are dropped after use (a rare huge block keeps no memory). */
const RECEIPTS_SCRATCH_MAX = 16 << 20;

function receiptsWriter(n: number, scratch?: ReceiptsScratch): Writer {
  // A transfer's compact receipt takes ~80 bytes: start big enough that the buffer rarely grows.
  const w = new Writer(8 + 4 * n + 96 * n, scratch === undefined ? undefined : scratch.buf);
  w.buf.writeUInt32BE(n, 0);
  w.off = 4 + 4 * (n + 1);
  return w;
}

function finishReceipts(w: Writer, offsets: number[]): Buffer {
  const n = offsets.length - 1;
  offsets[n] = w.off;
  for (let i = 0; i <= n; i++) w.buf.writeUInt32BE(offsets[i]!, 4 + 4 * i);
  return w.buf.subarray(0, w.off);
}

/** The status byte of a compact transfer entry (no TxStatus value is this large). */
const COMPACT_TRANSFER = 0xfe;
const TRANSFER_GAS = BigInt(GAS.base + GAS.transfer);
const HEX40 = /^[0-9a-f]{40}$/;
const DIGITS = /^[0-9]{1,64}$/;

/** from, to (hex) and amount of a receipt the compact transfer entry holds exactly, else null. */
function compactTransfer(r: Receipt): TxEvent["attributes"] | null {
  if (r.status !== TxStatus.OK || r.gasUsed !== TRANSFER_GAS || r.error !== "" || r.events.length !== 1) {
    return null;
  }
  const e = r.events[0]!;
  if (e.kind !== "bank.transfer") return null;
  const a = e.attributes;
  let i = 0;
  for (const k in a) {
    if (k !== (i === 0 ? "from" : i === 1 ? "to" : "amount")) return null;
    i++;
  }
  if (i !== 3 || !HEX40.test(a.from!) || !HEX40.test(a.to!) || !DIGITS.test(a.amount!)) return null;
  return a;
}

function writeReceipt(w: Writer, r: Receipt): void {
  const t = compactTransfer(r);
  if (t !== null) {
    writeCompactTransfer(w, r.txHash, Buffer.from(t.from!, "hex"), Buffer.from(t.to!, "hex"), t.amount!);
    return;
  }
  w.ensure(32 + 1 + 8);
  w.buf.set(r.txHash.subarray(0, 32), w.off);
  w.buf[w.off + 32] = r.status;
  w.buf.writeBigUInt64BE(r.gasUsed, w.off + 33);
  w.off += 41;
  w.str(r.error);
  w.ensure(1);
  w.buf[w.off++] = r.events.length;
  for (const e of r.events) {
    w.str(e.kind);
    // for-in over the record (no entries array per event); the count is patched in after.
    const attrs = e.attributes;
    w.ensure(1);
    const countAt = w.off++;
    let na = 0;
    for (const k in attrs) {
      w.str(k);
      w.str(attrs[k]!);
      na++;
    }
    w.buf[countAt] = na;
  }
}

function writeTransferOk(w: Writer, hash: Uint8Array, o: TransferOk): void {
  writeCompactTransfer(w, hash, o.from, o.to, o.amount);
}

/** The compact entry of a successful transfer (see the format above). */
function writeCompactTransfer(
  w: Writer,
  hash: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
  amount: string,
): void {
  w.ensure(74 + amount.length);
  const buf = w.buf;
  const at = w.off;
  // 20-32 bytes each: a loop beats Buffer#copy's call.
  for (let i = 0; i < 32; i++) buf[at + i] = hash[i]!;
  buf[at + 32] = COMPACT_TRANSFER;
  for (let i = 0; i < 20; i++) buf[at + 33 + i] = from[i]!;
  for (let i = 0; i < 20; i++) buf[at + 53 + i] = to[i]!;
  buf[at + 73] = amount.length;
  // A canonical decimal: ASCII digits.
  for (let i = 0; i < amount.length; i++) buf[at + 74 + i] = amount.charCodeAt(i);
  w.off = at + 74 + amount.length;
}

/** Receipt `index` of a block's receipts value; undefined when out of range. */
export function decodeReceiptAt(buf: Uint8Array, height: bigint, index: number): Receipt | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const corrupt = () =>
    new StorageError("CORRUPT_RECORD", { bucket: "blockReceipts", height }, `corrupt receipts at ${height}`);
  if (b.length < 8) throw corrupt();
  const n = b.readUInt32BE(0);
  if (index < 0 || index >= n) return undefined;
  let off = b.readUInt32BE(4 + 4 * index);
  const end = b.readUInt32BE(8 + 4 * index);
  if (end > b.length || off + 41 > end) throw corrupt();
  const str = (): string => {
    const len = b.readUInt32BE(off);
    const s = fromUtf8.decode(b.subarray(off + 4, off + 4 + len));
    off += 4 + len;
    return s;
  };
  const txHash = new Uint8Array(b.subarray(off, off + 32));
  if (b[off + 32] === COMPACT_TRANSFER) {
    const len = b[off + 73]!;
    if (off + 74 > end || off + 74 + len !== end || len === 0) throw corrupt();
    const amount = b.toString("latin1", off + 74, end);
    if (!DIGITS.test(amount)) throw corrupt();
    const attributes = {
      from: b.toString("hex", off + 33, off + 53),
      to: b.toString("hex", off + 53, off + 73),
      amount,
    };
    const events: TxEvent[] = [{ $typeName: "parabft.v1.TxEvent", kind: "bank.transfer", attributes }];
    return {
      $typeName: "parabft.v1.Receipt",
      txHash,
      height,
      index,
      status: TxStatus.OK,
      gasUsed: TRANSFER_GAS,
      error: "",
      events,
    };
  }
  const status = b[off + 32] as TxStatus;
  const gasUsed = b.readBigUInt64BE(off + 33);
  off += 41;
  const error = str();
  const ne = b[off++]!;
  const events: TxEvent[] = new Array(ne);
  for (let e = 0; e < ne; e++) {
    const kind = str();
    const na = b[off++]!;
    const attributes: Record<string, string> = {};
    for (let a = 0; a < na; a++) {
      const k = str();
      attributes[k] = str();
    }
    events[e] = { $typeName: "parabft.v1.TxEvent", kind, attributes };
  }
  if (off !== end) throw corrupt();
  return { $typeName: "parabft.v1.Receipt", txHash, height, index, status, gasUsed, error, events };
}

/** The offset of every entry of a write-set log (validating it). */
export function logOffsets(log: Buffer, height: bigint): Uint32Array {
  const corrupt = () =>
    new StorageError("CORRUPT_RECORD", { bucket: "execLog", height }, `corrupt write-set log at ${height}`);
  if (log.length < 4) throw corrupt();
  const n = log.readUInt32BE(0);
  const out = new Uint32Array(n);
  let off = 4;
  for (let i = 0; i < n; i++) {
    if (off + 3 > log.length) throw corrupt();
    out[i] = off;
    off += 2 + ((log[off]! << 8) | log[off + 1]!);
    if (off >= log.length) throw corrupt();
    off += log[off] === 0 ? 1 : 5 + log.readUInt32BE(off + 1);
  }
  if (off !== log.length) throw corrupt();
  return out;
}

/** A key's hash for logLookup's filter: compute it once per key, pass it to each log's lookup. */
export function logKeyHash(key: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * Per log, a Bloom filter of its keys (16 bits and 3 probes per entry, ~0.5% false positives),
 * built on the first lookup. Until a fold, a state read visits every pending log, one per block
 * since the last fold (hundreds to thousands): a key no log holds (an unknown account's, e.g. the
 * spam of issue 10) cost a binary search in each, ~2-5 ms a read; the filter skips those logs.
 */
const filters = new WeakMap<Uint32Array, Uint32Array>();

function probes(h: number, mask: number, k: number): number {
  // Double hashing: the i-th probe is h1 + i·h2, h2 odd.
  const h2 = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0) | 1;
  return ((h + Math.imul(k, h2)) >>> 0) & mask;
}

function filterOf(log: Buffer, offsets: Uint32Array): Uint32Array {
  let f = filters.get(offsets);
  if (f) return f;
  let bits = 64;
  while (bits < offsets.length * 16) bits *= 2;
  f = new Uint32Array(bits / 32);
  const mask = bits - 1;
  for (let i = 0; i < offsets.length; i++) {
    const off = offsets[i]!;
    const kl = (log[off]! << 8) | log[off + 1]!;
    const h = logKeyHash(log.subarray(off + 2, off + 2 + kl));
    for (let k = 0; k < 3; k++) {
      const b = probes(h, mask, k);
      f[b >>> 5]! |= 1 << (b & 31);
    }
  }
  filters.set(offsets, f);
  return f;
}

/**
 * Binary search of a log (entries sorted by key): the value (a view), null when the log deletes
 * the key, undefined when the log does not hold it. `hash` is logKeyHash(key) (computed here when
 * not given): a log whose filter rules the key out is not searched.
 */
export function logLookup(
  p: { log: Buffer; offsets: Uint32Array },
  key: Uint8Array,
  hash = logKeyHash(key),
): Uint8Array | null | undefined {
  const { log, offsets } = p;
  if (offsets.length === 0) return undefined;
  const f = filterOf(log, offsets);
  const mask = f.length * 32 - 1;
  for (let k = 0; k < 3; k++) {
    const b = probes(hash, mask, k);
    if ((f[b >>> 5]! & (1 << (b & 31))) === 0) return undefined;
  }
  let lo = 0;
  let hi = offsets.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const off = offsets[mid]!;
    const kl = (log[off]! << 8) | log[off + 1]!;
    // Compared in place: a subarray per probe was most of a read's cost.
    const c = log.compare(key, 0, key.length, off + 2, off + 2 + kl);
    if (c === 0) {
      const at = off + 2 + kl;
      if (log[at] === 0) return null;
      const vl = log.readUInt32BE(at + 1);
      return new Uint8Array(log.buffer, log.byteOffset + at + 5, vl);
    }
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Byte order of the keys of two log entries (at their offsets): <0, 0 or >0. */
function compareLogKeys(a: Buffer, ao: number, b: Buffer, bo: number): number {
  const al = (a[ao]! << 8) | a[ao + 1]!;
  const bl = (b[bo]! << 8) | b[bo + 1]!;
  const n = al < bl ? al : bl;
  for (let i = 2; i < n + 2; i++) {
    const d = a[ao + i]! - b[bo + i]!;
    if (d !== 0) return d;
  }
  return al - bl;
}

/**
 * The entries a fold writes (issue 13, round 4): every key of the logs once, with the newest
 * log's entry (logs oldest first), in key order. `block[i]`, `entry[i]` for i < n name the
 * entry (log index, entry index). A k-way merge of the logs, which are sorted by key: no string
 * or Set entry per key (the previous fold built both for every entry, 2-4 µs per transaction).
 * null when a log is not strictly sorted (never written so; the caller then dedupes by Set).
 */
export function foldOrder(
  logs: readonly { log: Buffer; offsets: Uint32Array }[],
): { block: Uint32Array; entry: Uint32Array; n: number } | null {
  const k = logs.length;
  let total = 0;
  for (const l of logs) total += l.offsets.length;
  const block = new Uint32Array(total);
  const entry = new Uint32Array(total);
  const pos = new Uint32Array(k);
  // Each log's current key as 4 chunks of 6 bytes (numbers, bytes past the key's end read as 0)
  // and its length (keyChunks): compared as a tuple, they order keys of up to 24 bytes (account
  // keys are 21) without reading them again; key bytes are read only for two longer keys with
  // equal chunks. Round 12: the merge's compares were byte loops over equal keys (a key is in
  // ~20 of 100 logs) and equal prefix bytes. Slots k and k + 1: the last key taken, a next key.
  const chunk = new Float64Array(4 * (k + 2));
  const len = new Uint32Array(k + 2);
  const LAST = k;
  const NEXT = k + 1;
  // Where the key in slot i is (full compares of keys over 24 bytes).
  const at = (i: number, l: { log: Buffer; offsets: Uint32Array }, off: number) => {
    atLog[i] = l.log;
    atOff[i] = off;
  };
  const atLog: Buffer[] = new Array(k + 2);
  const atOff = new Uint32Array(k + 2);
  const load = (i: number, l: { log: Buffer; offsets: Uint32Array }, off: number) => {
    len[i] = keyChunks(l.log, off, chunk, 4 * i);
    at(i, l, off);
  };
  /** Key order of slots x and y (< 0, 0, > 0). */
  const cmp = (x: number, y: number): number => {
    const bx = 4 * x;
    const by = 4 * y;
    for (let c = 0; c < 4; c++) {
      const d = chunk[bx + c]! - chunk[by + c]!;
      if (d !== 0) return d;
    }
    const lx = len[x]!;
    const ly = len[y]!;
    // Equal first 24 bytes (zero-padded): a key of at most 24 bytes is a prefix of the other.
    if (lx <= KEY_CHUNK_BYTES || ly <= KEY_CHUNK_BYTES) return lx - ly;
    return compareLogKeys(atLog[x]!, atOff[x]!, atLog[y]!, atOff[y]!);
  };
  // A binary min-heap of log indices by (current key, newest log first).
  const heap = new Uint32Array(k);
  let size = 0;
  const less = (x: number, y: number): boolean => {
    const c = cmp(x, y);
    return c < 0 || (c === 0 && x > y);
  };
  const down = (from: number): void => {
    let i = from;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) return;
      const r = l + 1;
      const m = r < size && less(heap[r]!, heap[l]!) ? r : l;
      if (!less(heap[m]!, heap[i]!)) return;
      const t = heap[i]!;
      heap[i] = heap[m]!;
      heap[m] = t;
      i = m;
    }
  };
  for (let i = 0; i < k; i++) {
    const l = logs[i]!;
    if (l.offsets.length === 0) continue;
    load(i, l, l.offsets[0]!);
    heap[size++] = i;
  }
  for (let i = (size >> 1) - 1; i >= 0; i--) down(i);
  let n = 0;
  while (size > 0) {
    const b = heap[0]!;
    const lb = logs[b]!;
    const e = pos[b]!;
    // Equal keys pop newest first: an entry equal to the last one taken is older.
    if (n === 0 || cmp(b, LAST) !== 0) {
      block[n] = b;
      entry[n] = e;
      n++;
      copySlot(chunk, len, atLog, atOff, b, LAST);
    }
    if (e + 1 < lb.offsets.length) {
      load(NEXT, lb, lb.offsets[e + 1]!);
      if (cmp(NEXT, b) <= 0) return null;
      pos[b] = e + 1;
      copySlot(chunk, len, atLog, atOff, NEXT, b);
    } else heap[0] = heap[--size]!;
    down(0);
  }
  return { block, entry, n };
}

/** Key bytes foldOrder compares as numbers (4 chunks of 6: each below 2^48, exact). */
const KEY_CHUNK_BYTES = 24;

/** Slot `to` of foldOrder's key slots becomes a copy of slot `from`. */
function copySlot(
  chunk: Float64Array,
  len: Uint32Array,
  atLog: Buffer[],
  atOff: Uint32Array,
  from: number,
  to: number,
): void {
  const f = 4 * from;
  const t = 4 * to;
  chunk[t] = chunk[f]!;
  chunk[t + 1] = chunk[f + 1]!;
  chunk[t + 2] = chunk[f + 2]!;
  chunk[t + 3] = chunk[f + 3]!;
  len[to] = len[from]!;
  atLog[to] = atLog[from]!;
  atOff[to] = atOff[from]!;
}

/**
 * The first 24 bytes of the log entry's key at `off` as 4 numbers of 6 bytes each, big-endian,
 * into out[at..at+3] (bytes past the key's end read as 0); returns the key's length. Compared in
 * order, then by length, the chunks order keys of up to 24 bytes as their bytes do.
 */
function keyChunks(log: Buffer, off: number, out: Float64Array, at: number): number {
  const kl = (log[off]! << 8) | log[off + 1]!;
  const s = off + 2;
  if (kl >= KEY_CHUNK_BYTES) {
    for (let c = 0; c < 4; c++) {
      const o = s + 6 * c;
      out[at + c] =
        ((log[o]! << 16) | (log[o + 1]! << 8) | log[o + 2]!) * 0x1000000 +
        ((log[o + 3]! << 16) | (log[o + 4]! << 8) | log[o + 5]!);
    }
    return kl;
  }
  for (let c = 0; c < 4; c++) {
    let p = 0;
    for (let i = 6 * c; i < 6 * c + 6; i++) p = p * 256 + (i < kl ? log[s + i]! : 0);
    out[at + c] = p;
  }
  return kl;
}
