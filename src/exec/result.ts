// Turning a block's outcomes and writes into an ExecutionResult: the sorted write set, the
// receipts, and the state root (write-set hash chain, DESIGN §5). Shared by both executors so
// that "byte-identical" is a property of scheduling, not of two encoders. The inline path's
// staging buffer (WriteStage) lives in writeStage.ts; buildResultFromStage here finishes it.
import { hash as nodeHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type Receipt, ReceiptSchema, type TxEvent, TxEventSchema } from "../gen/parabft/v1/types_pb.js";
import { concatBytes, utf8Bytes } from "../types/bytes.js";
import type { Hash } from "../types/hash.js";
import { keyStr, strKey } from "./codec.js";
import type { TxOutcome } from "./programs.js";
import type { ExecutionResult, StateWrite } from "./types.js";
import type { WriteStage } from "./writeStage.js";

/** The write-set hash input's tag (writeSetHash; WriteStage.write builds the same input). */
export const TAG_WRITE_SET = utf8Bytes("PARABFT/WRITESET/V1\0");
const TAG_STATE_ROOT = utf8Bytes("PARABFT/STATEROOT/V1\0");

/** The state root before genesis. */
export const ZERO_ROOT: Hash = new Uint8Array(32);

const sha256 = (data: Uint8Array): Hash => new Uint8Array(nodeHash("sha256", data, "buffer"));

/**
 * H(TAG ‖ u32 count ‖ per entry: u32 keyLen ‖ key ‖ u8 present ‖ [u32 valueLen ‖ value]),
 * over entries sorted by key. Built in one buffer and hashed once: per-entry hash updates
 * cost more than the hashing itself.
 */
export function writeSetHash(writeSet: readonly StateWrite[]): Hash {
  let size = TAG_WRITE_SET.length + 4;
  for (const w of writeSet) size += 4 + w.key.length + 1 + (w.value === null ? 0 : 4 + w.value.length);
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  buf.set(TAG_WRITE_SET, 0);
  let off = TAG_WRITE_SET.length;
  dv.setUint32(off, writeSet.length);
  off += 4;
  for (const w of writeSet) {
    dv.setUint32(off, w.key.length);
    buf.set(w.key, off + 4);
    off += 4 + w.key.length;
    if (w.value === null) buf[off++] = 0;
    else {
      buf[off] = 1;
      dv.setUint32(off + 1, w.value.length);
      buf.set(w.value, off + 5);
      off += 5 + w.value.length;
    }
  }
  return sha256(buf);
}

/** stateRoot(h) = H(TAG ‖ stateRoot(h−1) ‖ writeSetHash(h)). */
export function nextStateRoot(previous: Hash, writeSet: readonly StateWrite[]): Hash {
  return sha256(concatBytes(TAG_STATE_ROOT, previous, writeSetHash(writeSet)));
}

/**
 * Each key's first 4 chars as a u32, times 2^21, plus its index (missing chars read as 0; ties are
 * settled by full comparison afterwards). Null when the set is too small to pay or too large for
 * 21 index bits, or a key is not a binary string (a char above 255): sort by comparison then.
 */
function packedPrefixes(keys: readonly string[]): Float64Array | null {
  const n = keys.length;
  if (n < 64 || n >= 1 << 21) return null;
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    const c0 = k.length > 0 ? k.charCodeAt(0) : 0;
    const c1 = k.length > 1 ? k.charCodeAt(1) : 0;
    const c2 = k.length > 2 ? k.charCodeAt(2) : 0;
    const c3 = k.length > 3 ? k.charCodeAt(3) : 0;
    if ((c0 | c1 | c2 | c3) > 255) return null;
    packed[i] = (c0 * 0x1000000 + ((c1 << 16) | (c2 << 8) | c3)) * 0x200000 + i;
  }
  return packed;
}

/**
 * Sorts binary-string keys (string order = byte order). A native numeric sort of
 * (first 4 chars as a u32) · 2^21 + index, then the rare runs sharing a 4-char prefix sorted by
 * full comparison: several times faster than Array#sort over strings for block-sized sets.
 */
export function sortKeys(keys: string[]): string[] {
  const n = keys.length;
  const packed = packedPrefixes(keys);
  if (packed === null) return keys.sort();
  packed.sort();
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = keys[packed[i]! % 0x200000]!;
  // Equal prefixes: sort each run by the whole key (a prefix run is short).
  let i = 0;
  while (i < n) {
    const p = Math.floor(packed[i]! / 0x200000);
    let j = i + 1;
    while (j < n && Math.floor(packed[j]! / 0x200000) === p) j++;
    if (j - i > 1) {
      const run = out.slice(i, j).sort();
      for (let r = 0; r < run.length; r++) out[i + r] = run[r]!;
    }
    i = j;
  }
  return out;
}

/**
 * The positions of `keys` in key order, equal keys by position (a stable sort): sortKeys'
 * packed numeric sort, keeping the index instead of the key.
 */
export function sortKeyIndex(keys: string[]): Uint32Array {
  const n = keys.length;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const byKey = (a: number, b: number): number => {
    const ka = keys[a]!;
    const kb = keys[b]!;
    return ka < kb ? -1 : ka > kb ? 1 : a - b;
  };
  const packed = packedPrefixes(keys);
  if (packed === null) return out.sort(byKey);
  packed.sort();
  for (let i = 0; i < n; i++) out[i] = packed[i]! % 0x200000;
  // Equal prefixes (repeated keys among them): sort each run by the whole key, then position.
  let i = 0;
  while (i < n) {
    const p = Math.floor(packed[i]! / 0x200000);
    let j = i + 1;
    while (j < n && Math.floor(packed[j]! / 0x200000) === p) j++;
    if (j - i > 1) out.subarray(i, j).sort(byKey);
    i = j;
  }
  return out;
}

/** The block's writes (binary-string keys, last value wins) as a write set sorted by key bytes. */
export function sortedWriteSet(writes: ReadonlyMap<string, Uint8Array | null>): StateWrite[] {
  // Binary-string order is byte order (one UTF-16 unit per byte), so string order is right.
  const keys = sortKeys([...writes.keys()]);
  const out: StateWrite[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    out[i] = { key: strKey(k), value: writes.get(k)! };
  }
  return out;
}

/**
 * Builds the receipt as a plain protobuf-es message literal: create() walks the schema per call,
 * which costs more than the transfer it describes. Every field is set, so it equals create().
 */
export function toReceipt(txHash: Uint8Array, height: bigint, index: number, o: TxOutcome): Receipt {
  const events: TxEvent[] = new Array(o.events.length);
  for (let i = 0; i < events.length; i++) {
    const e = o.events[i]!;
    const attributes: Record<string, string> = {};
    for (const [k, v] of e.attrs) attributes[k] = v;
    events[i] = { $typeName: "parabft.v1.TxEvent", kind: e.kind, attributes };
  }
  return {
    $typeName: "parabft.v1.Receipt",
    txHash,
    height,
    index,
    status: o.status,
    gasUsed: BigInt(o.gasUsed),
    error: o.error,
    events,
  };
}

/** The create()-based form of toReceipt, kept to test that both are the same message. */
export function toReceiptViaCreate(txHash: Uint8Array, height: bigint, index: number, o: TxOutcome): Receipt {
  return create(ReceiptSchema, {
    txHash,
    height,
    index,
    status: o.status,
    gasUsed: BigInt(o.gasUsed),
    error: o.error,
    events: o.events.map((e) =>
      create(TxEventSchema, { kind: e.kind, attributes: Object.fromEntries(e.attrs) }),
    ),
  });
}

/** The write-set log (storage's execution layout 2) of results built by buildResultFromKeys. */
const encodedLogs = new WeakMap<ExecutionResult, Uint8Array>();

/**
 * The block's write set already encoded as execution layout 2's write-set log
 * (u32 count ‖ per entry: u16 keyLen ‖ key ‖ u8 present ‖ [u32 valueLen ‖ value]), when the
 * executor built it in the same pass as the write set; undefined otherwise (encode it then).
 * Each result owns its log: the executor's eviction pins read it until the store holds the block
 * (parallel.ts WrittenKeys), so a pool that recycles logs must wait for that release too.
 */
export function writeSetLogOf(r: ExecutionResult): Uint8Array | undefined {
  return encodedLogs.get(r);
}

/** What a block's receipts are made of: per tx, its hash and outcome (block order). */
export interface BlockOutcomes {
  height: bigint;
  hashes: readonly Hash[];
  outcomes: readonly TxOutcome[];
}

const blockOutcomes = new WeakMap<ExecutionResult, BlockOutcomes>();

/**
 * The outcomes a result's receipts are built from, when the executor kept them (the parallel
 * executor): the store encodes its receipts value straight from them (storage/execLog.ts), and
 * `result.receipts` (Receipt messages) is only built if someone reads it.
 */
export function outcomesOf(r: ExecutionResult): BlockOutcomes | undefined {
  return blockOutcomes.get(r);
}

/**
 * Defines `name` on `obj` as an enumerable property computed on first read (then a plain data
 * property): results read like plain objects (deepEqual, spreading) but pay only for what is read.
 */
function lazyProperty<T>(obj: object, name: string, make: () => T): void {
  const settle = (value: T) =>
    Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
  Object.defineProperty(obj, name, {
    enumerable: true,
    configurable: true,
    get: () => {
      const v = make();
      settle(v);
      return v;
    },
    set: settle,
  });
}

/** The entries of a write-set log as StateWrites (views into the log). */
function writeSetFromLog(log: Uint8Array): StateWrite[] {
  const dv = new DataView(log.buffer, log.byteOffset, log.byteLength);
  const n = dv.getUint32(0);
  const out: StateWrite[] = new Array(n);
  let o = 4;
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint16(o);
    // Plain Uint8Array views (not Buffer subarrays): the write set's documented type.
    const key = new Uint8Array(log.buffer, log.byteOffset + o + 2, kl);
    o += 2 + kl;
    if (log[o] === 0) {
      out[i] = { key, value: null };
      o++;
    } else {
      const vl = dv.getUint32(o + 1);
      out[i] = { key, value: new Uint8Array(log.buffer, log.byteOffset + o + 5, vl) };
      o += 5 + vl;
    }
  }
  return out;
}

/**
 * The keys of a write-set log (writeSetLogOf), in log order, as binary strings (the cache's keys):
 * the inline path's eviction pins are built from the log only when eviction asks (round 13), so
 * a block keeps no array of the 20k key strings it wrote until the store holds it.
 */
export function writeSetLogKeys(log: Uint8Array): string[] {
  // Rare (eviction only): the one log walker serves, its value views dropped.
  return writeSetFromLog(log).map((w) => keyStr(w.key));
}

/**
 * buildResult from the keys a block wrote (in any order, repeats allowed) and a lookup of each
 * key's final value: the inline path writes through to its cache and keeps no map of its own.
 * One pass over the sorted keys fills the state-root hash input and the write-set log the store
 * persists. The write set (views into the log) is built only when read: the store persists the
 * log as is. Given the block's outcomes instead of receipts, the receipts are built only when
 * read too (see outcomesOf).
 */
export function buildResultFromKeys(
  height: bigint,
  previousRoot: Hash,
  written: string[],
  value: ((key: string) => Uint8Array | null) | (Uint8Array | null)[],
  receipts: Receipt[] | BlockOutcomes,
): ExecutionResult {
  let sorted: string[];
  let values: (Uint8Array | null)[];
  let n: number;
  if (Array.isArray(value)) {
    // The value written at each position of `written` (the inline path records both): the last
    // write of a key wins, and no state lookup is needed per key (issue 13, round 4).
    const order = sortKeyIndex(written);
    const m = order.length;
    sorted = new Array(m);
    values = new Array(m);
    n = 0;
    for (let i = 0; i < m; i++) {
      const at = order[i]!;
      const k = written[at]!;
      // Equal keys are ordered by position: a later one replaces the entry just taken.
      if (n > 0 && k === sorted[n - 1]) values[n - 1] = value[at]!;
      else {
        sorted[n] = k;
        values[n] = value[at]!;
        n++;
      }
    }
    sorted.length = n;
    values.length = n;
  } else {
    sorted = sortKeys(written);
    n = 0;
    for (let i = 0; i < sorted.length; i++) {
      const k = sorted[i]!;
      if (n === 0 || k !== sorted[n - 1]) sorted[n++] = k;
    }
    sorted.length = n;
    values = new Array(n);
    for (let i = 0; i < n; i++) values[i] = value(sorted[i]!);
  }
  let payload = 0;
  for (let i = 0; i < n; i++) {
    const k = sorted[i]!;
    if (k.length > 0xffff) {
      const list = Array.isArray(receipts) ? receipts : receiptsOf(receipts);
      return buildResultSlow(height, previousRoot, sorted, values, list);
    }
    const v = values[i]!;
    payload += k.length + 1 + (v === null ? 0 : 4 + v.length);
  }
  // Own ArrayBuffers (never the shared pool: the log is kept until it is folded), not zeroed:
  // every byte is written below.
  const log = Buffer.allocUnsafeSlow(4 + 2 * n + payload);
  const hashInput = Buffer.allocUnsafeSlow(TAG_WRITE_SET.length + 4 + 4 * n + payload);
  const ldv = new DataView(log.buffer, log.byteOffset, log.byteLength);
  const hdv = new DataView(hashInput.buffer, hashInput.byteOffset, hashInput.byteLength);
  ldv.setUint32(0, n);
  hashInput.set(TAG_WRITE_SET, 0);
  let h = TAG_WRITE_SET.length;
  hdv.setUint32(h, n);
  h += 4;
  let o = 4;
  for (let i = 0; i < n; i++) {
    const k = sorted[i]!;
    const kl = k.length;
    ldv.setUint16(o, kl);
    hdv.setUint32(h, kl);
    o += 2;
    h += 4;
    // Binary strings (one char per byte); state keys are ~21 bytes: a loop beats a native write.
    for (let c = 0; c < kl; c++) {
      const b = k.charCodeAt(c);
      log[o + c] = b;
      hashInput[h + c] = b;
    }
    o += kl;
    h += kl;
    const v = values[i]!;
    if (v === null) {
      log[o++] = 0;
      hashInput[h++] = 0;
    } else {
      const vl = v.length;
      log[o] = 1;
      hashInput[h] = 1;
      ldv.setUint32(o + 1, vl);
      hdv.setUint32(h + 1, vl);
      o += 5;
      h += 5;
      // Accounts (24 bytes) and recent records (40-136): a loop beats two native set calls.
      if (vl <= 136) {
        for (let c = 0; c < vl; c++) {
          const b = v[c]!;
          log[o + c] = b;
          hashInput[h + c] = b;
        }
      } else {
        log.set(v, o);
        hashInput.set(v, h);
      }
      o += vl;
      h += vl;
    }
  }
  return finishResult(height, previousRoot, log, hashInput, receipts);
}

/** The result of a log and its state-root hash input (hashed here, never kept: it may be a scratch buffer). */
function finishResult(
  height: bigint,
  previousRoot: Hash,
  log: Uint8Array,
  hashInput: Uint8Array,
  receipts: Receipt[] | BlockOutcomes,
): ExecutionResult {
  const stateRoot = sha256(concatBytes(TAG_STATE_ROOT, previousRoot, sha256(hashInput)));
  const result = { height, stateRoot } as ExecutionResult;
  lazyProperty(result, "writeSet", () => writeSetFromLog(log));
  if (Array.isArray(receipts)) result.receipts = receipts;
  else {
    lazyProperty(result, "receipts", () => receiptsOf(receipts));
    blockOutcomes.set(result, receipts);
  }
  encodedLogs.set(result, log);
  return result;
}

/**
 * buildResultFromKeys over a WriteStage (the inline path since round 6): the same log, write set
 * and state root as given the writes' keys and values (test/unit/exec/resultValues.test.ts).
 */
export function buildResultFromStage(
  height: bigint,
  previousRoot: Hash,
  stage: WriteStage,
  receipts: Receipt[] | BlockOutcomes,
): ExecutionResult {
  const { log, hashInput } = stage.write(stage.order());
  return finishResult(height, previousRoot, log, hashInput, receipts);
}

function receiptsOf(b: BlockOutcomes): Receipt[] {
  const n = b.outcomes.length;
  const out: Receipt[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = toReceipt(b.hashes[i]!, b.height, i, b.outcomes[i]!);
  return out;
}

/** Keys too long for the log's u16 length (none exist today): the generic path. */
function buildResultSlow(
  height: bigint,
  previousRoot: Hash,
  keys: string[],
  values: (Uint8Array | null)[],
  receipts: Receipt[],
): ExecutionResult {
  const writeSet = keys.map((k, i) => ({ key: strKey(k), value: values[i]! }));
  return { height, writeSet, receipts, stateRoot: nextStateRoot(previousRoot, writeSet) };
}

export function buildResult(
  height: bigint,
  previousRoot: Hash,
  writes: ReadonlyMap<string, Uint8Array | null>,
  receipts: Receipt[],
): ExecutionResult {
  const writeSet = sortedWriteSet(writes);
  return { height, writeSet, receipts, stateRoot: nextStateRoot(previousRoot, writeSet) };
}
