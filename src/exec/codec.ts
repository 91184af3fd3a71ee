// Compact binary encodings owned by execution: state values (account, pool, holding) and the
// byte reader/writer used to ship lanes to workers and results back (DESIGN §5: compact
// buffers, never cloned objects). Everything is big-endian and length-prefixed.

const U64_MAX = (1n << 64n) - 1n;
export const U128_MAX = (1n << 128n) - 1n;

export interface Account {
  nonce: bigint;
  balance: bigint;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// Writes x < 2^53 big-endian into out[end-8 .. end) without a DataView or BigInt shifts: the
// account codec runs twice per transfer, and allocation is what the hot path pays for.
export function putSmall(out: Uint8Array, end: number, x: number): void {
  let lo = x % 0x1_0000_0000;
  let hi = (x - lo) / 0x1_0000_0000;
  for (let i = end - 1; i >= end - 4; i--) {
    out[i] = lo & 255;
    lo >>>= 8;
  }
  for (let i = end - 5; i >= end - 8; i--) {
    out[i] = hi & 255;
    hi >>>= 8;
  }
}

export function getSmall(v: Uint8Array, start: number): number {
  const hi = ((v[start]! << 24) | (v[start + 1]! << 16) | (v[start + 2]! << 8) | v[start + 3]!) >>> 0;
  const lo = ((v[start + 4]! << 24) | (v[start + 5]! << 16) | (v[start + 6]! << 8) | v[start + 7]!) >>> 0;
  return hi * 0x1_0000_0000 + lo;
}

/**
 * Account value (execution layout 3): u64 nonce ‖ u128 balance ‖ the sender's
 * **recent-transactions record**: the hashes of the txs that consumed its last (at most
 * RECENT_TXS) nonces, newest first, so hash i consumed nonce − 1 − i. 24 + 32k bytes, k ≤ 4.
 * One value per sender (layout 2 kept the record under a key of its own: 3 writes per transfer).
 */
export const ACCOUNT_BYTES = 24;
/** How many consumed nonces an account remembers (the duplicate window). */
export const RECENT_TXS = 4;
const ACCOUNT_MAX = ACCOUNT_BYTES + 32 * RECENT_TXS;

/** A well-formed account value: 24 bytes plus 0..RECENT_TXS whole hashes. */
export function isAccountValue(v: Uint8Array): boolean {
  const n = v.length;
  return n >= ACCOUNT_BYTES && n <= ACCOUNT_MAX && (n & 31) === ACCOUNT_BYTES;
}

/** How many recent hashes a well-formed account value holds. */
const heldOf = (v: Uint8Array): number => (v.length - ACCOUNT_BYTES) >>> 5;

function putAccount(out: Uint8Array, a: Account): void {
  if (a.nonce <= SAFE && a.balance <= SAFE) {
    putSmall(out, 8, Number(a.nonce));
    putSmall(out, 24, Number(a.balance));
    return;
  }
  const dv = new DataView(out.buffer, out.byteOffset, ACCOUNT_BYTES);
  dv.setBigUint64(0, a.nonce);
  dv.setBigUint64(8, a.balance >> 64n);
  dv.setBigUint64(16, a.balance & U64_MAX);
}

/** An account value with no recent hashes (genesis, tests): 24 bytes. */
export function encodeAccount(a: Account): Uint8Array {
  const out = new Uint8Array(ACCOUNT_BYTES);
  putAccount(out, a);
  return out;
}

/**
 * `prev` (an account value, or null / malformed: none) with nonce and balance replaced and its
 * recent hashes kept: every write of an account that does not consume its nonce (a credit,
 * a program's debit, the fee collector).
 */
export function withAccount(prev: Uint8Array | null, a: Account): Uint8Array {
  const held = prev !== null && isAccountValue(prev) ? heldOf(prev) : 0;
  const out = new Uint8Array(ACCOUNT_BYTES + 32 * held);
  putAccount(out, a);
  for (let i = ACCOUNT_BYTES; i < out.length; i++) out[i] = prev![i]!;
  return out;
}

/**
 * The sender's account after `hash` consumed its nonce: `a` (nonce already + 1), then `hash`,
 * then at most RECENT_TXS − 1 of `prev`'s hashes. A new value (the generic path).
 */
export function consumedAccount(prev: Uint8Array | null, a: Account, hash: Uint8Array): Uint8Array {
  const keep = prev !== null && isAccountValue(prev) ? Math.min(heldOf(prev), RECENT_TXS - 1) : 0;
  const out = new Uint8Array(ACCOUNT_BYTES + 32 + 32 * keep);
  putAccount(out, a);
  writeConsumed(out, prev, keep, hash);
  return out;
}

/** The hash at 24, then `keep` of prev's hashes after it (at most 96 bytes: a loop). */
function writeConsumed(out: Uint8Array, prev: Uint8Array | null, keep: number, hash: Uint8Array): void {
  for (let i = 0; i < 32 * keep; i++) out[56 + i] = prev![24 + i]!;
  for (let i = 0; i < 32; i++) out[24 + i] = hash[i]!;
}

/**
 * True when the account value says `hash` consumed `nonce` (one of its last RECENT_TXS nonces):
 * the DUPLICATE test. `accountNonce` is the value's nonce (the next one to consume).
 */
export function recentlyConsumed(
  v: Uint8Array | null,
  accountNonce: bigint,
  nonce: bigint,
  hash: Uint8Array,
): boolean {
  if (v === null || !isAccountValue(v)) return false;
  const back = accountNonce - 1n - nonce;
  if (back < 0n || back >= BigInt(heldOf(v))) return false;
  const off = ACCOUNT_BYTES + 32 * Number(back);
  for (let i = 0; i < 32; i++) if (v[off + i] !== hash[i]) return false;
  return true;
}

/**
 * A state value the transfer hot path allocated (issue 13, round 4). Only the state it was
 * written to holds it past the write: a write set copies the bytes (the result's log), a lane
 * ships copies, and `ParallelExecutor.get` returns a copy. So the hot path may rewrite it in place
 * (`accountSmallInto`, `consumedSmallInto`) instead of allocating a value per write. Values of any
 * other origin (genesis, the store, a worker, the generic path) are never written in place.
 *
 * Every StateValue is a view of its own ACCOUNT_MAX-byte slot in a shared slab (round 7): a
 * record that grows by a hash gets a longer view of the same slot, not new memory. A value over
 * 64 bytes with a buffer of its own lives off the V8 heap (malloc, an ArrayBuffer object and its
 * extension, external-memory accounting): 1.8–2.8 µs of CPU per allocation measured against
 * 0.3 µs for a slab view, and the profile of 20 persisted blocks had 11 % of the main thread in
 * `new StateValue`. A slot is never reused, so a view never sees another account's bytes; a slab
 * is freed once no view of it is left (worst case, one live value keeps SLAB_SLOTS × 152 bytes).
 */
export class StateValue extends Uint8Array {}

const SLAB_SLOTS = 26;
const SLAB_BYTES = SLAB_SLOTS * ACCOUNT_MAX;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabNext = 0;

/** A StateValue of `length` bytes (≤ ACCOUNT_MAX) in a fresh zeroed slot. */
function newStateValue(length: number): StateValue {
  if (slabNext === SLAB_SLOTS) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabNext = 0;
  }
  return new StateValue(slab, ACCOUNT_MAX * slabNext++, length);
}

/**
 * A copy of `length` (≤ ACCOUNT_MAX) bytes of `src` from `from`, as a StateValue in a fresh slab
 * slot: how the account arena hands a value out (round 15). A plain copy of a value over 64 bytes
 * would be an off-heap buffer of its own (malloc; see above); nothing else holds the copy, so the
 * hot path may rewrite it in place like any StateValue.
 */
export function stateValueCopy(src: Uint8Array, from: number, length: number): StateValue {
  const out = newStateValue(length);
  for (let i = 0; i < length; i++) out[i] = src[from + i]!;
  return out;
}

/**
 * A StateValue that starts a slab slot, so a longer view of it stays in its slot. A copy made
 * by slice/subarray/map is a StateValue too (Symbol.species), with no slot behind it; overriding
 * species instead cost ~3 µs per persisted transfer (V8 leaves its fast path for typed arrays).
 */
function inSlot(v: StateValue): boolean {
  return v.buffer.byteLength === SLAB_BYTES && v.byteOffset % ACCOUNT_MAX === 0;
}

/**
 * withAccount for a nonce and balance that are safe integers (the transfer hot path), written
 * into `prev` when the hot path owns it (a StateValue), else a new StateValue. Call only where
 * `prev` is the current value about to be replaced, on a view without an overlay to revert, and
 * (as transferSmall checks) is null or a small account: the balance's high u64 is not written.
 */
export function accountSmallInto(prev: Uint8Array | null, nonce: number, balance: number): Uint8Array {
  let out: Uint8Array;
  if (prev instanceof StateValue && isAccountValue(prev)) out = prev;
  else {
    const held = prev !== null && isAccountValue(prev) ? heldOf(prev) : 0;
    out = newStateValue(ACCOUNT_BYTES + 32 * held);
    for (let i = ACCOUNT_BYTES; i < out.length; i++) out[i] = prev![i]!;
  }
  putSmall(out, 8, nonce);
  putSmall(out, 24, balance);
  return out;
}

/**
 * consumedAccount for safe integers (the transfer hot path; `nonce` already + 1; `prev` a small
 * account, as accountSmallInto): a record the hot path owns is shifted and rewritten in its slot
 * (a longer view while it grows), anything else gives a new StateValue.
 */
export function consumedSmallInto(
  prev: Uint8Array,
  nonce: number,
  balance: number,
  hash: Uint8Array,
): Uint8Array {
  const keep = isAccountValue(prev) ? Math.min(heldOf(prev), RECENT_TXS - 1) : 0;
  let out: Uint8Array;
  const length = ACCOUNT_BYTES + 32 + 32 * keep;
  if (prev instanceof StateValue && isAccountValue(prev) && (length === prev.length || inSlot(prev))) {
    out = length === prev.length ? prev : new StateValue(prev.buffer, prev.byteOffset, length);
    // The same bytes: shift the kept hashes up by one (memmove order), then the new one first.
    out.copyWithin(56, 24, 24 + 32 * keep);
    for (let i = 0; i < 32; i++) out[24 + i] = hash[i]!;
  } else {
    out = newStateValue(length);
    writeConsumed(out, prev, keep, hash);
  }
  putSmall(out, 8, nonce);
  putSmall(out, 24, balance);
  return out;
}

/**
 * An account value whose nonce and balance are both below 2^53 (the case decodeAccount
 * decodes without BigInt shifts): read them with smallNonce / smallBalance.
 */
export function isSmallAccount(v: Uint8Array): boolean {
  if (!isAccountValue(v)) return false;
  const high = v[8]! | v[9]! | v[10]! | v[11]! | v[12]! | v[13]! | v[14]! | v[15]! | v[0]! | v[16]!;
  return high === 0 && v[1]! < 0x20 && v[17]! < 0x20;
}

export const smallNonce = (v: Uint8Array): number => getSmall(v, 0);
export const smallBalance = (v: Uint8Array): number => getSmall(v, 16);

/** A missing or malformed account reads as the empty account (nonce 0, balance 0). */
export function decodeAccount(v: Uint8Array | null): Account {
  if (v === null || !isAccountValue(v)) return { nonce: 0n, balance: 0n };
  // Top 11 bits of each u64 clear and the balance's high u64 zero: both fit a double exactly.
  const high = v[8]! | v[9]! | v[10]! | v[11]! | v[12]! | v[13]! | v[14]! | v[15]! | v[0]! | v[16]!;
  if (high === 0 && v[1]! < 0x20 && v[17]! < 0x20) {
    return { nonce: BigInt(getSmall(v, 0)), balance: BigInt(getSmall(v, 16)) };
  }
  const dv = new DataView(v.buffer, v.byteOffset, ACCOUNT_BYTES);
  return { nonce: dv.getBigUint64(0), balance: (dv.getBigUint64(8) << 64n) | dv.getBigUint64(16) };
}

export function encodeU128(x: bigint): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, x >> 64n);
  dv.setBigUint64(8, x & U64_MAX);
  return out;
}

export function decodeU128(v: Uint8Array | null): bigint {
  if (v === null || v.length !== 16) return 0n;
  const dv = new DataView(v.buffer, v.byteOffset, 16);
  return (dv.getBigUint64(0) << 64n) | dv.getBigUint64(8);
}

export interface Pool {
  reserveA: bigint;
  reserveB: bigint;
  feeBps: number;
}

/** pool value: u128 reserve A ‖ u128 reserve B ‖ u16 fee bps (34 bytes). */
export function encodePool(p: Pool): Uint8Array {
  const out = new Uint8Array(34);
  out.set(encodeU128(p.reserveA), 0);
  out.set(encodeU128(p.reserveB), 16);
  new DataView(out.buffer).setUint16(32, p.feeBps);
  return out;
}

export function decodePool(v: Uint8Array | null): Pool | null {
  if (v === null || v.length !== 34) return null;
  return {
    reserveA: decodeU128(v.subarray(0, 16)),
    reserveB: decodeU128(v.subarray(16, 32)),
    feeBps: new DataView(v.buffer, v.byteOffset + 32, 2).getUint16(0),
  };
}

/** Lower-case hex, flat (a `+=` loop builds rope strings that are slow to serialise). */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

// State keys travel as "binary strings" (one char per byte, 0..255) inside the executor:
// they are cheap Map keys, and JS string order equals byte order, so sorting them sorts keys.
// Built in one call: a `+=` loop makes rope strings that cost far more to hash and collect.
export function keyStr(bytes: Uint8Array): string {
  if (bytes.length === 21) return keyStr21(bytes, bytes[0]!, 1);
  if (bytes.length <= 4096) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}

/**
 * The binary string of `first` then the 20 bytes of `b` from `at`: an account key (prefix and
 * address), the one key every transfer builds twice. One call with its 21 arguments: ~40 ns
 * against ~220 ns for `String.fromCharCode.apply` over a typed array (issue 13, round 10: it
 * converts the array-like first) and ~65 ns over a plain array; a flat one-byte string either way.
 */
export function keyStr21(b: Uint8Array, first: number, at: number): string {
  return String.fromCharCode(
    first,
    b[at]!,
    b[at + 1]!,
    b[at + 2]!,
    b[at + 3]!,
    b[at + 4]!,
    b[at + 5]!,
    b[at + 6]!,
    b[at + 7]!,
    b[at + 8]!,
    b[at + 9]!,
    b[at + 10]!,
    b[at + 11]!,
    b[at + 12]!,
    b[at + 13]!,
    b[at + 14]!,
    b[at + 15]!,
    b[at + 16]!,
    b[at + 17]!,
    b[at + 18]!,
    b[at + 19]!,
  );
}

export function strKey(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Growable big-endian writer producing one ArrayBuffer (transferable to a worker). */
export class ByteWriter {
  private buf: Uint8Array;
  private dv: DataView;
  private off = 0;

  constructor(initial = 1024) {
    this.buf = new Uint8Array(initial);
    this.dv = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.off));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.off++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    this.dv.setUint32(this.off, v);
    this.off += 4;
  }

  /** A non-negative safe integer (gas), as two u32 halves. */
  uint(v: number): void {
    this.u32(Math.floor(v / 2 ** 32));
    this.u32(v >>> 0);
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  /** A binary-string key (see keyStr). */
  key(s: string): void {
    this.u32(s.length);
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.off + i] = s.charCodeAt(i);
    this.off += s.length;
  }

  str(s: string): void {
    const max = s.length * 3;
    this.ensure(4 + max);
    const r = enc.encodeInto(s, this.buf.subarray(this.off + 4, this.off + 4 + max));
    this.dv.setUint32(this.off, r.written);
    this.off += 4 + r.written;
  }

  /** Optional value: flag byte then bytes. */
  optBytes(b: Uint8Array | null): void {
    if (b === null) this.u8(0);
    else {
      this.u8(1);
      this.bytes(b);
    }
  }

  /** The written bytes as an exactly-sized ArrayBuffer. */
  finish(): ArrayBuffer {
    return this.buf.buffer.slice(0, this.off) as ArrayBuffer;
  }
}

export class ByteReader {
  private readonly buf: Uint8Array;
  private readonly dv: DataView;
  private off = 0;

  constructor(buffer: ArrayBuffer) {
    this.buf = new Uint8Array(buffer);
    this.dv = new DataView(buffer);
  }

  u8(): number {
    return this.buf[this.off++]!;
  }

  u32(): number {
    const v = this.dv.getUint32(this.off);
    this.off += 4;
    return v;
  }

  uint(): number {
    const hi = this.u32();
    return hi * 2 ** 32 + this.u32();
  }

  /** A view into the buffer (no copy): valid as long as the buffer lives. */
  bytes(): Uint8Array {
    const n = this.u32();
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  raw(n: number): Uint8Array {
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  key(): string {
    const n = this.u32();
    const s = keyStr(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return s;
  }

  str(): string {
    const n = this.u32();
    const s = dec.decode(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return s;
  }

  optBytes(): Uint8Array | null {
    return this.u8() === 0 ? null : this.bytes();
  }

  get done(): boolean {
    return this.off >= this.buf.length;
  }
}
