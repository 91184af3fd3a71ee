// A compact tagged binary encoding of the plain values the consensus core records (objects,
// arrays, strings, numbers, bigints, booleans, null and byte arrays): what JSON with the
// {"$bigint"}/{"$bytes"} convention (json.ts) carries, without text, hex or a reviver. Used by
// the binary signing-state log (signingStateLog.ts). Object keys whose value is undefined are
// left out, as JSON.stringify does.
import { StorageError } from "./errors.js";

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_NUMBER = 4;
const T_BIGINT_POS = 5;
const T_BIGINT_NEG = 6;
const T_STRING = 7;
const T_BYTES = 8;
const T_ARRAY = 9;
const T_OBJECT = 10;
/** A bigint in [0, 2^53): 8 bytes, no text (heights, views, epochs). */
const T_BIGINT_U53 = 11;
const MAX_U53 = BigInt(Number.MAX_SAFE_INTEGER);

/** Appends encoded values to one growing buffer (a whole log frame is built in one). */
export class BinWriter {
  buf: Buffer;
  pos = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }

  /** A non-negative integer below 2^53, as two little-endian u32 words. */
  u53(v: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(v % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.pos + 4);
    this.pos += 8;
  }

  private str(s: string): void {
    const len = s.length;
    this.ensure(4 + len * 3);
    const buf = this.buf;
    const at = this.pos + 4;
    // Short ASCII (object keys, kinds): char codes in place, no native call.
    if (len <= 32) {
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[at + i] = c;
      }
      if (i === len) {
        buf.writeUInt32LE(len, this.pos);
        this.pos = at + len;
        return;
      }
    }
    const n = buf.write(s, at, "utf8");
    buf.writeUInt32LE(n, this.pos);
    this.pos = at + n;
  }

  value(v: unknown): void {
    switch (typeof v) {
      case "undefined":
        this.u8(T_UNDEFINED);
        return;
      case "boolean":
        this.u8(v ? T_TRUE : T_FALSE);
        return;
      case "number":
        this.ensure(9);
        this.buf[this.pos] = T_NUMBER;
        this.buf.writeDoubleLE(v, this.pos + 1);
        this.pos += 9;
        return;
      case "bigint":
        if (v >= 0n && v <= MAX_U53) {
          this.u8(T_BIGINT_U53);
          this.u53(Number(v));
          return;
        }
        this.u8(v < 0n ? T_BIGINT_NEG : T_BIGINT_POS);
        this.str((v < 0n ? -v : v).toString(16));
        return;
      case "string":
        this.u8(T_STRING);
        this.str(v);
        return;
      case "object": {
        if (v === null) {
          this.u8(T_NULL);
          return;
        }
        if (v instanceof Uint8Array) {
          this.ensure(5 + v.length);
          this.buf[this.pos] = T_BYTES;
          this.buf.writeUInt32LE(v.length, this.pos + 1);
          this.buf.set(v, this.pos + 5);
          this.pos += 5 + v.length;
          return;
        }
        if (Array.isArray(v)) {
          this.u8(T_ARRAY);
          this.u32(v.length);
          for (const item of v) this.value(item);
          return;
        }
        const o = v as Record<string, unknown>;
        this.u8(T_OBJECT);
        const countAt = this.pos;
        this.u32(0);
        let count = 0;
        for (const key in o) {
          if (!Object.hasOwn(o, key)) continue;
          const item = o[key];
          if (item === undefined) continue;
          this.str(key);
          this.value(item);
          count++;
        }
        this.buf.writeUInt32LE(count, countAt);
        return;
      }
      default:
        throw new TypeError(`binValue: cannot encode a ${typeof v}`);
    }
  }
}

/** Reads values written by BinWriter; throws SIGNING_STATE_CORRUPT on malformed input. */
export class BinReader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw bad(this.pos);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u53(): number {
    this.need(8);
    const v = this.buf.readUInt32LE(this.pos) + this.buf.readUInt32LE(this.pos + 4) * 0x1_0000_0000;
    this.pos += 8;
    return v;
  }

  private str(): string {
    const n = this.u32();
    this.need(n);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  value(depth = 0): unknown {
    if (depth > 64) throw bad(this.pos);
    const tag = this.u8();
    switch (tag) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_NUMBER: {
        this.need(8);
        const v = this.buf.readDoubleLE(this.pos);
        this.pos += 8;
        return v;
      }
      case T_BIGINT_POS:
      case T_BIGINT_NEG: {
        const hex = this.str();
        if (!/^[0-9a-f]+$/.test(hex)) throw bad(this.pos);
        const v = BigInt(`0x${hex}`);
        return tag === T_BIGINT_NEG ? -v : v;
      }
      case T_BIGINT_U53:
        return BigInt(this.u53());
      case T_STRING:
        return this.str();
      case T_BYTES: {
        const n = this.u32();
        this.need(n);
        // A copy: the log's read buffer is not kept alive by the records folded from it.
        const out = new Uint8Array(n);
        out.set(this.buf.subarray(this.pos, this.pos + n));
        this.pos += n;
        return out;
      }
      case T_ARRAY: {
        const n = this.u32();
        if (n > this.end - this.pos) throw bad(this.pos);
        const out: unknown[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case T_OBJECT: {
        const n = this.u32();
        if (n > this.end - this.pos) throw bad(this.pos);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const key = this.str();
          if (key === "__proto__") throw bad(this.pos);
          out[key] = this.value(depth + 1);
        }
        return out;
      }
      default:
        throw bad(this.pos - 1);
    }
  }
}

function bad(offset: number): StorageError {
  return new StorageError("SIGNING_STATE_CORRUPT", { offset }, `malformed binary value at byte ${offset}`);
}
