// The account arena (issue 13, round 15): account values held inline, each beside its key, in one
// byte buffer, found through an open-addressing Int32Array table probed by a seeded hash of the
// address's first 8 bytes. A transfer's two account lookups and value touches are then ~2 cache
// misses per account (a table entry, then the slot's first line) instead of a cold Map bucket,
// entry, key string, StateValue object and its bytes; and the ~100k account values are no longer
// heap objects the major GC marks.
//
// The arena owns the bytes it holds: `copyOut` copies a value out for every caller but the hot
// path, which reads and rewrites a slot's bytes in place (transfer.transferArena). The order of
// slots is insertion order (what eviction drops first); table positions depend on a per-process
// random seed (so an adversary cannot grind addresses onto one probe chain) and never affect
// results.
import { randomBytes } from "node:crypto";
import { StateKeyPrefix } from "../types/stateKeys.js";
import { isAccountValue, stateValueCopy } from "./codec.js";

/** An account key: the prefix byte, then a 20-byte address (binary string, one char per byte). */
export const ACCOUNT_KEY_CHARS = 21;
/** Bytes per slot: key (21) ‖ value length (1) ‖ live flag (1) ‖ pad (1) ‖ value (≤ 152). */
export const SLOT_BYTES = 176;
/** Where a slot's value starts, from the slot's start (the nonce and balance share its first line). */
export const VALUE_AT = 24;
const LENGTH_AT = 21;
const LIVE_AT = 22;
/** The largest value a slot holds: a full account (24 + 4 × 32). */
export const VALUE_MAX = SLOT_BYTES - VALUE_AT;

const ACCOUNT_CHAR = StateKeyPrefix.account;
const EMPTY = 0;
const DELETED = -1;

const seedWords = new Int32Array(randomBytes(8).buffer);
const SEED_A = seedWords[0]! | 1;
const SEED_B = seedWords[1]! | 1;

/** True for an account key (21 chars, the account prefix first). */
export function isAccountKey(key: string): boolean {
  return key.length === ACCOUNT_KEY_CHARS && key.charCodeAt(0) === ACCOUNT_CHAR;
}

/** True for an account key's bytes (21, the account prefix first): findAddress(key, 1) looks it up. */
export function isAccountKeyBytes(key: Uint8Array): boolean {
  return key.length === ACCOUNT_KEY_CHARS && key[0] === ACCOUNT_CHAR;
}

/** Whether the arena holds `value` under `key`: an account key and a well-formed account value. */
export function arenaAccepts(key: string, value: Uint8Array | null): value is Uint8Array {
  return value !== null && isAccountKey(key) && isAccountValue(value);
}

/** The probe start's hash of an address's first 8 bytes (two little-endian words), seeded. */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ SEED_A, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ b, SEED_B);
  h = Math.imul(h ^ (h >>> 13), 0x85ebca6b);
  return h ^ (h >>> 16);
}

/** mix of an address's first 8 bytes at a[from..] (from 0: address bytes; 1: an account key's). */
function hashAddress(a: Uint8Array, from: number): number {
  return mix(
    a[from]! | (a[from + 1]! << 8) | (a[from + 2]! << 16) | (a[from + 3]! << 24),
    a[from + 4]! | (a[from + 5]! << 8) | (a[from + 6]! << 16) | (a[from + 7]! << 24),
  );
}

/** mix of a key's address (key chars 1..8). */
function hashKey(key: string): number {
  const a =
    key.charCodeAt(1) | (key.charCodeAt(2) << 8) | (key.charCodeAt(3) << 16) | (key.charCodeAt(4) << 24);
  const b =
    key.charCodeAt(5) | (key.charCodeAt(6) << 8) | (key.charCodeAt(7) << 16) | (key.charCodeAt(8) << 24);
  return mix(a, b);
}

/** hashKey of the key stored at `at` in `bytes`. */
function hashAt(bytes: Uint8Array, at: number): number {
  const a = bytes[at + 1]! | (bytes[at + 2]! << 8) | (bytes[at + 3]! << 16) | (bytes[at + 4]! << 24);
  const b = bytes[at + 5]! | (bytes[at + 6]! << 8) | (bytes[at + 7]! << 16) | (bytes[at + 8]! << 24);
  return mix(a, b);
}

export class AccountArena {
  /** The slots; replaced (grown, compacted): read it after any insert, never keep it across one. */
  bytes: Uint8Array;
  /** A DataView over `bytes`, replaced with it (the write stage copies slots in words). */
  view: DataView;
  /** Slot index + 1, EMPTY, or DELETED (a removed entry the probe passes over). */
  private table: Int32Array;
  private mask: number;
  /** Live entries. */
  count = 0;
  /** Slots handed out (live and removed) since the last rebuild. */
  private used = 0;
  /** DELETED table entries. */
  private deleted = 0;
  /** What probeStart and touchProbe read, kept so the prefetch's reads are not dead code. */
  touched = 0;

  constructor(initialSlots = 1024) {
    let cap = 16;
    while (cap < initialSlots) cap *= 2;
    this.bytes = new Uint8Array(cap * SLOT_BYTES);
    this.view = new DataView(this.bytes.buffer);
    this.table = new Int32Array(cap * 2);
    this.mask = cap * 2 - 1;
  }

  /** Slots the buffer holds before it grows. */
  get capacity(): number {
    return this.bytes.length / SLOT_BYTES;
  }

  /** Table entries (a power of two, at least twice the live and removed entries). */
  get tableSize(): number {
    return this.table.length;
  }

  /** The slot holding `key` (an account key), or -1. */
  find(key: string): number {
    const i = this.entryOf(key);
    return i < 0 ? -1 : this.table[i]! - 1;
  }

  /**
   * The slot of the account at the 20-byte address `a[from..from+20)`, or -1: find() without a
   * key string (round 16: the transfer path looks both accounts up by the bytes it was given; a
   * declared account key's address is at `from` 1).
   */
  findAddress(a: Uint8Array, from: number): number {
    const table = this.table;
    const bytes = this.bytes;
    const mask = this.mask;
    const h = hashAddress(a, from);
    const last = ACCOUNT_KEY_CHARS - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = table[i]!;
      if (e === EMPTY) return -1;
      if (e === DELETED) continue;
      const at = (e - 1) * SLOT_BYTES + 1;
      let c = 0;
      while (c < last && bytes[at + c] === a[from + c]) c++;
      if (c === last) return e - 1;
    }
  }

  /**
   * The first pass of a prefetch (runFused, round 17): the table position where findAddress's
   * probe for the address at `a[from..from+20)` starts, after reading that entry so its line is
   * on its way. It compares nothing and follows nothing, so a pass of these over a group's
   * accounts has every table miss in flight at once; `touchProbe` then reads the slots.
   */
  probeStart(a: Uint8Array, from: number): number {
    const i = hashAddress(a, from) & this.mask;
    this.touched ^= this.table[i]!;
    return i;
  }

  /**
   * The second pass of a prefetch: reads the slot the table entry at `i` (a probeStart) points at,
   * the bytes a transfer reads first (the key, nonce and balance: up to VALUE_AT + 24, which may
   * straddle two lines). Returns that slot, or -1 for an empty or removed entry. It is the
   * looked-up account's slot unless another key took that table position first (the probe then
   * goes on in findAddress): only lines are warmed, so a wrong guess costs time, never a result.
   */
  touchProbe(i: number): number {
    const e = this.table[i]!;
    if (e <= 0) return -1;
    const at = (e - 1) * SLOT_BYTES;
    this.touched ^= this.bytes[at]! ^ this.bytes[at + VALUE_AT + 23]!;
    return e - 1;
  }

  /** The table entry pointing at `key`'s slot, or -1 (the probe passes over removed entries). */
  private entryOf(key: string): number {
    const table = this.table;
    const bytes = this.bytes;
    const mask = this.mask;
    for (let i = hashKey(key) & mask; ; i = (i + 1) & mask) {
      const e = table[i]!;
      if (e === EMPTY) return -1;
      if (e === DELETED) continue;
      const at = (e - 1) * SLOT_BYTES;
      let c = 1;
      while (c < ACCOUNT_KEY_CHARS && bytes[at + c] === key.charCodeAt(c)) c++;
      if (c === ACCOUNT_KEY_CHARS) return i;
    }
  }

  /** Byte offset of slot `s`'s value in `bytes`. */
  valueAt(s: number): number {
    return s * SLOT_BYTES + VALUE_AT;
  }

  /** Length of slot `s`'s value. */
  lengthOf(s: number): number {
    return this.bytes[s * SLOT_BYTES + LENGTH_AT]!;
  }

  /** Sets slot `s`'s value length (the hot path, after rewriting its bytes in place). */
  setLength(s: number, length: number): void {
    this.bytes[s * SLOT_BYTES + LENGTH_AT] = length;
  }

  /**
   * A copy of slot `s`'s value (the arena's bytes never leave it): a StateValue in a slab slot,
   * not a buffer of its own (a value over 64 bytes would be malloc'ed: 2 accounts, half the
   * transfers to oneself, went 9.2 -> 12.9 us/tx with slice()).
   */
  copyOut(s: number): Uint8Array {
    return stateValueCopy(this.bytes, s * SLOT_BYTES + VALUE_AT, this.bytes[s * SLOT_BYTES + LENGTH_AT]!);
  }

  /** The key of slot `s` (eviction, iteration). */
  keyOf(s: number): string {
    const at = s * SLOT_BYTES;
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + at, ACCOUNT_KEY_CHARS).toString("latin1");
  }

  /**
   * Stores `value` (an account value of at most VALUE_MAX bytes: arenaAccepts) under `key` (an
   * account key), copying its bytes. Returns true when the key was new.
   */
  put(key: string, value: Uint8Array): boolean {
    const found = this.find(key);
    if (found >= 0) {
      this.write(found, value);
      return false;
    }
    if (this.used === this.capacity) this.growSlots();
    if ((this.count + this.deleted + 1) * 2 > this.table.length) this.rebuildTable();
    const s = this.used++;
    const at = s * SLOT_BYTES;
    const bytes = this.bytes;
    for (let c = 0; c < ACCOUNT_KEY_CHARS; c++) bytes[at + c] = key.charCodeAt(c);
    bytes[at + LIVE_AT] = 1;
    this.write(s, value);
    this.link(hashKey(key), s);
    this.count++;
    return true;
  }

  /** Drops `key`; true when it was held. Its slot stays unused until the next rebuild. */
  remove(key: string): boolean {
    const i = this.entryOf(key);
    if (i < 0) return false;
    this.bytes[(this.table[i]! - 1) * SLOT_BYTES + LIVE_AT] = 0;
    this.table[i] = DELETED;
    this.deleted++;
    this.count--;
    return true;
  }

  /** Live slots in insertion order (the order eviction drops them in). */
  *slots(): IterableIterator<number> {
    for (let s = 0; s < this.used; s++) if (this.bytes[s * SLOT_BYTES + LIVE_AT] === 1) yield s;
  }

  /**
   * Keeps only the live slots `keep` says yes to, in their order, and rebuilds the table:
   * eviction. Returns how many entries were dropped.
   */
  retain(keep: (s: number) => boolean): number {
    const before = this.count;
    const old = this.bytes;
    const kept: number[] = [];
    for (const s of this.slots()) if (keep(s)) kept.push(s);
    let cap = 16;
    while (cap < kept.length * 2) cap *= 2;
    const bytes = new Uint8Array(Math.max(cap, this.capacity / 2) * SLOT_BYTES);
    for (let j = 0; j < kept.length; j++) {
      const from = kept[j]! * SLOT_BYTES;
      bytes.set(old.subarray(from, from + SLOT_BYTES), j * SLOT_BYTES);
    }
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
    this.used = kept.length;
    this.count = kept.length;
    this.rebuildTable();
    return before - this.count;
  }

  private write(s: number, value: Uint8Array): void {
    const at = s * SLOT_BYTES;
    const n = value.length;
    this.bytes[at + LENGTH_AT] = n;
    const v = at + VALUE_AT;
    const bytes = this.bytes;
    for (let c = 0; c < n; c++) bytes[v + c] = value[c]!;
  }

  /** Enters slot `s` (its key's hash `h`, not in the table) at the first free table entry. */
  private link(h: number, s: number): void {
    const table = this.table;
    const mask = this.mask;
    let i = h & mask;
    while (table[i]! > 0) i = (i + 1) & mask;
    if (table[i] === DELETED) this.deleted--;
    table[i] = s + 1;
  }

  private growSlots(): void {
    // Removed slots are reclaimed first when they are a quarter of the buffer or more.
    if (this.used - this.count >= this.used / 4) {
      this.retain(() => true);
      if (this.used < this.capacity) return;
    }
    const next = new Uint8Array(this.bytes.length * 2);
    next.set(this.bytes);
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  /** A table at least 4 × the live entries (so ≤ 1/4 full after, ≤ 1/2 before the next). */
  private rebuildTable(): void {
    let size = 32;
    while (size < (this.count + 1) * 4) size *= 2;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    this.deleted = 0;
    for (let s = 0; s < this.used; s++) {
      if (this.bytes[s * SLOT_BYTES + LIVE_AT] !== 1) continue;
      this.link(hashAt(this.bytes, s * SLOT_BYTES), s);
    }
  }
}
