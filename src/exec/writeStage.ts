// The inline path's result stage (issue 13, round 6): WriteStage, a block's writes copied when
// made into one reused buffer as write-set log entries, then sorted (radix by 4-byte prefix),
// deduplicated and copied out in one pass into the write-set log and the state-root hash input
// (result.ts#buildResultFromStage hashes it and builds the result). Separate from result.ts
// because it is the hot path's byte-level buffer machinery, tuned and benchmarked on its own
// (bench/execStage.ts), while result.ts defines what a result and its state root are. It must
// produce exactly the bytes of result.ts#buildResultFromKeys (resultValues.test.ts holds them).
import { TAG_WRITE_SET } from "./result.js";

/** Buckets per digit of WriteStage.order's radix sort (11 bits; the third digit has 10). */
const RADIX = 2048;
const RADIX_MASK = RADIX - 1;

/** Buffer#copy, which takes any Uint8Array as its source (Node 20 makes a view of a range). */
const bufferCopy = Buffer.prototype.copy;

/**
 * A block's writes staged as write-set log entries (u16 keyLen ‖ key ‖ u8 present ‖ [u32 valueLen
 * ‖ value]) in one buffer, in write order, copied when written (issue 13, round 6). The inline
 * path writes each key and value while they are hot in the CPU cache; `buildResultFromStage` then
 * sorts and copies from this one buffer instead of reading ~20k keys and values scattered over the
 * state's heap (round 6 measured ~0.9 µs per written key for those cold reads). The copies are
 * snapshots: a value rewritten in place later is staged again by its next write (the last wins).
 * One stage serves one executor, reset per block (buildResultFromStage copies out of it).
 */
export class WriteStage {
  private buf: Buffer = Buffer.allocUnsafeSlow(1 << 16);
  /** Entry i starts at starts[i]. */
  private starts = new Uint32Array(1024);
  /** Entry i's first 4 key bytes, big-endian (its sort prefix; missing bytes are 0). */
  private heads = new Uint32Array(1024);
  /** Scratch of order(): the radix sort's second buffer, and the sorted entries' prefixes. */
  private sorting = new Uint32Array(0);
  private prefixes = new Uint32Array(0);
  /** Scratch of order(): the three 11-bit digits' counts, then their starts. */
  private readonly digits = new Int32Array(3 * RADIX);
  /** Scratch of write(): the state-root hash input. */
  private hashScratch: Buffer = Buffer.allocUnsafeSlow(0);
  private hashView = new DataView(this.hashScratch.buffer, 0, 0);
  /** A DataView over `buf` (word copies). */
  private bufView = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private off = 0;
  count = 0;
  /** False once a write did not fit the format (key ≥ 64 KiB, a char above 255, 2M writes). */
  ok = true;

  reset(): void {
    this.off = 0;
    this.count = 0;
    this.ok = true;
  }

  add(key: string, value: Uint8Array | null): void {
    if (value === null) this.addFrom(key, null, 0, 0);
    else this.addFrom(key, value, 0, value.length);
  }

  /** True when `n` more writes of keys under 64 KiB in single-byte chars will be staged. */
  room(n: number): boolean {
    return this.ok && this.count + n < 0x200000 - 1;
  }

  /**
   * add() of the `vl` bytes of `value` from `from` (null: absent).
   */
  addFrom(key: string, value: Uint8Array | null, from: number, vl: number): void {
    if (!this.ok) return;
    const kl = key.length;
    const i = this.count;
    if (kl > 0xffff || i >= 0x200000 - 1) {
      this.ok = false;
      return;
    }
    const need = 2 + kl + 1 + (value === null ? 0 : 4 + vl);
    if (this.off + need > this.buf.length) this.grow(need);
    if (i === this.starts.length) this.growIndex(i);
    const buf = this.buf;
    let o = this.off;
    this.starts[i] = o;
    buf[o] = kl >>> 8;
    buf[o + 1] = kl & 255;
    o += 2;
    let bad = 0;
    for (let c = 0; c < kl; c++) {
      const b = key.charCodeAt(c);
      bad |= b;
      buf[o + c] = b;
    }
    if (bad > 255) {
      this.ok = false;
      return;
    }
    const c0 = kl > 0 ? buf[o]! : 0;
    const c1 = kl > 1 ? buf[o + 1]! : 0;
    const c2 = kl > 2 ? buf[o + 2]! : 0;
    const c3 = kl > 3 ? buf[o + 3]! : 0;
    this.heads[i] = (c0 << 24) | (c1 << 16) | (c2 << 8) | c3;
    o += kl;
    if (value === null) buf[o++] = 0;
    else {
      buf[o] = 1;
      buf[o + 1] = vl >>> 24;
      buf[o + 2] = (vl >>> 16) & 255;
      buf[o + 3] = (vl >>> 8) & 255;
      buf[o + 4] = vl & 255;
      o += 5;
      // A bare account (24 bytes): a loop beats a native set call; an account with its recent
      // record (56-152 bytes) is cheaper with set (round 8, 20k staged writes: 1.14-1.42 ->
      // 0.77-0.80 µs/tx of CPU).
      if (vl <= 32) for (let c = 0; c < vl; c++) buf[o + c] = value[from + c]!;
      else if (from === 0 && vl === value.length) buf.set(value, o);
      else bufferCopy.call(value, buf, o, from, from + vl);
      o += vl;
    }
    this.off = o;
    this.count = i + 1;
  }

  /**
   * add() of an account arena's slot at `at` in `src` (`view` over it): its 21-byte key and
   * its `vl`-byte value at `at` + 24 (arena.ts's slot layout), copied in 4-byte words, with no
   * key string (round 16: the transfer path stages both accounts this way). The caller checked
   * room().
   */
  addSlot(src: Uint8Array, view: DataView, at: number, vl: number): void {
    if (!this.ok) return;
    const i = this.count;
    const need = 2 + 21 + 5 + vl;
    if (this.off + need > this.buf.length) this.grow(need);
    if (i === this.starts.length) this.growIndex(i);
    const buf = this.buf;
    const bv = this.bufView;
    let o = this.off;
    this.starts[i] = o;
    bv.setUint16(o, 21);
    o += 2;
    // The key (21 bytes) and the slot's 3 bytes after it, overwritten by the value's header.
    for (let c = 0; c < 24; c += 4) bv.setInt32(o + c, view.getInt32(at + c, true), true);
    this.heads[i] = bv.getUint32(o);
    buf[o + 21] = 1;
    bv.setUint32(o + 22, vl);
    o += 26;
    const v = at + 24;
    let c = 0;
    for (; c + 8 <= vl; c += 8) {
      bv.setInt32(o + c, view.getInt32(v + c, true), true);
      bv.setInt32(o + c + 4, view.getInt32(v + c + 4, true), true);
    }
    for (; c < vl; c++) buf[o + c] = src[v + c]!;
    this.off = o + vl;
    this.count = i + 1;
  }

  private growIndex(i: number): void {
    const s = new Uint32Array(i * 2);
    s.set(this.starts);
    this.starts = s;
    const h = new Uint32Array(i * 2);
    h.set(this.heads);
    this.heads = h;
  }

  /** The keys of the entries staged so far, in write order (after a write the stage refused). */
  stagedKeys(): string[] {
    const out: string[] = new Array(this.count);
    const buf = this.buf;
    for (let i = 0; i < this.count; i++) {
      const s = this.starts[i]!;
      const kl = (buf[s]! << 8) | buf[s + 1]!;
      out[i] = buf.toString("latin1", s + 2, s + 2 + kl);
    }
    return out;
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < this.off + need) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
    this.bufView = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** Compares the keys of entries a and b (bytes), then their positions (a stable order). */
  private compare(a: number, b: number): number {
    const buf = this.buf;
    const sa = this.starts[a]!;
    const sb = this.starts[b]!;
    const la = (buf[sa]! << 8) | buf[sa + 1]!;
    const lb = (buf[sb]! << 8) | buf[sb + 1]!;
    const m = la < lb ? la : lb;
    for (let c = 0; c < m; c++) {
      const d = buf[sa + 2 + c]! - buf[sb + 2 + c]!;
      if (d !== 0) return d;
    }
    return la !== lb ? la - lb : a - b;
  }

  /** True when entries a and b have the same key. */
  private sameKey(a: number, b: number): boolean {
    const buf = this.buf;
    const sa = this.starts[a]!;
    const sb = this.starts[b]!;
    if (buf[sa] !== buf[sb] || buf[sa + 1] !== buf[sb + 1]) return false;
    const kl = (buf[sa]! << 8) | buf[sa + 1]!;
    for (let c = 2; c < 2 + kl; c++) if (buf[sa + c] !== buf[sb + c]) return false;
    return true;
  }

  /**
   * The kept entries in key order, the last write of each key: sortKeyIndex over the staged
   * keys (packed numeric sort, equal prefixes by full comparison, then position). Entries whose
   * 4-byte prefixes differ have different keys, so only neighbours with equal prefixes are read
   * from the staging buffer (round 8: the run check and the dedupe read every neighbour's key
   * bytes, two cold reads per entry).
   */
  order(): Uint32Array {
    const n = this.count;
    const heads = this.heads;
    if (this.sorting.length < n) {
      this.sorting = new Uint32Array(heads.length);
      this.prefixes = new Uint32Array(heads.length);
    }
    // An LSD radix sort of the entries by prefix, three 11-bit digits (round 16: the packed
    // Float64Array sort was ~0.19 µs/tx). Stable, from position order: the same order as the
    // packed sort of prefix · 2^21 + position. A digit all entries share is skipped (an account
    // key's first byte is the same for all).
    const digits = this.digits;
    digits.fill(0);
    for (let i = 0; i < n; i++) {
      const h = heads[i]!;
      digits[h & RADIX_MASK]!++;
      digits[RADIX + ((h >>> 11) & RADIX_MASK)]!++;
      digits[2 * RADIX + (h >>> 22)]!++;
    }
    const out = new Uint32Array(n);
    let from: Uint32Array | null = null;
    let to = out;
    for (let d = 0; d < 3; d++) {
      const base = d * RADIX;
      const shift = 11 * d;
      let at = 0;
      let single = false;
      for (let b = 0; b < RADIX; b++) {
        const c = digits[base + b]!;
        if (c === n) single = true;
        digits[base + b] = at;
        at += c;
      }
      if (single) continue;
      if (from === null) {
        for (let i = 0; i < n; i++) to[digits[base + ((heads[i]! >>> shift) & RADIX_MASK)]!++] = i;
      } else {
        for (let i = 0; i < n; i++) {
          const e = from[i]!;
          to[digits[base + ((heads[e]! >>> shift) & RADIX_MASK)]!++] = e;
        }
      }
      from = to;
      to = to === out ? this.sorting : out;
    }
    if (from === null) for (let i = 0; i < n; i++) out[i] = i;
    else if (from !== out) out.set(from.subarray(0, n));
    const prefix = this.prefixes;
    for (let i = 0; i < n; i++) prefix[i] = heads[out[i]!]!;
    const cmp = (a: number, b: number) => this.compare(a, b);
    let i = 0;
    while (i < n) {
      const p = prefix[i]!;
      let j = i + 1;
      while (j < n && prefix[j] === p) j++;
      if (j - i > 1) out.subarray(i, j).sort(cmp);
      i = j;
    }
    // Keep the last of each run of equal keys (position order inside a run).
    let k = 0;
    for (let r = 0; r < n; r++) {
      const e = out[r]!;
      if (r + 1 < n && prefix[r + 1] === prefix[r] && this.sameKey(e, out[r + 1]!)) continue;
      out[k++] = e;
    }
    return out.subarray(0, k);
  }

  /**
   * Copies the entries of `order` into the log and the state-root hash input, in one pass: each
   * entry from the stage into the log (kept until it is folded), then, while hot, from the log
   * into the hash input (a scratch buffer reused by every block, hashed at once and never kept:
   * see finishResult). Both copies are 4-byte words through DataViews. Round 17: the stage →
   * log copy was Node 20's `Buffer#copy`, which makes a Uint8Array view of the range and calls
   * into the runtime per entry: 13-18 % of the main thread's profile of execution alone
   * (`_copyActual`); in words, execAlt −0.17 µs CPU/tx (lower in 45 of 60 blocks). (Round 16's
   * one pass: execPairs exec 6.48 -> 4.81 µs CPU/tx with the arena's addSlot. Its word copies
   * from the stage into both outputs at once measured slower in execStage, and execStage still
   * rates any word copy from the stage slower than the native one: only the executor's runs
   * are the judge, bench/results/x25-notes.md.) No stage byte is read to size the log: entries
   * are contiguous, so a length is where the next entry starts.
   */
  write(order: Uint32Array): { log: Buffer; hashInput: Buffer } {
    const n = order.length;
    const buf = this.buf;
    const starts = this.starts;
    const count = this.count;
    const end = this.off;
    // Entries are contiguous in the stage: an entry's length is where the next one starts, so
    // nothing of the stage is read to size the log.
    let payload = 0;
    for (let i = 0; i < n; i++) {
      const e = order[i]!;
      payload += (e + 1 < count ? starts[e + 1]! : end) - starts[e]!;
    }
    // The log is kept until it is folded: its own ArrayBuffer, not zeroed (every byte written).
    const log = Buffer.allocUnsafeSlow(4 + payload);
    const lv = new DataView(log.buffer, log.byteOffset, log.byteLength);
    const hashLength = TAG_WRITE_SET.length + 4 + 2 * n + payload;
    if (this.hashScratch.length < hashLength) {
      this.hashScratch = Buffer.allocUnsafeSlow(hashLength * 2);
      this.hashView = new DataView(
        this.hashScratch.buffer,
        this.hashScratch.byteOffset,
        this.hashScratch.byteLength,
      );
    }
    const hashInput = this.hashScratch.subarray(0, hashLength);
    const hv = this.hashView;
    const bv = this.bufView;
    lv.setUint32(0, n);
    hashInput.set(TAG_WRITE_SET, 0);
    let h = TAG_WRITE_SET.length;
    hv.setUint32(h, n);
    h += 4;
    let o = 4;
    for (let i = 0; i < n; i++) {
      const e = order[i]!;
      const s = starts[e]!;
      const len = (e + 1 < count ? starts[e + 1]! : end) - s;
      // The hash input's key length is a u32: two zero bytes, then the log entry as staged.
      hv.setUint16(h, 0);
      h += 2;
      copyWords(buf, bv, s, log, lv, o, len);
      copyWords(log, lv, o, hashInput, hv, h, len);
      o += len;
      h += len;
    }
    return { log, hashInput };
  }
}

/**
 * Copies `len` bytes from src[s..] to dst[d..] in 4-byte words through the buffers' DataViews
 * (`sv`, `dv`), then the tail byte by byte: WriteStage.write's copies (round 17: Buffer#copy's
 * view and runtime call per entry cost more than the entries' bytes).
 */
function copyWords(
  src: Uint8Array,
  sv: DataView,
  s: number,
  dst: Uint8Array,
  dv: DataView,
  d: number,
  len: number,
): void {
  let c = 0;
  for (; c + 8 <= len; c += 8) {
    dv.setInt32(d + c, sv.getInt32(s + c, true), true);
    dv.setInt32(d + c + 4, sv.getInt32(s + c + 4, true), true);
  }
  for (; c < len; c++) dst[d + c] = src[s + c]!;
}
