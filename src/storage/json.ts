// JSON that round-trips bigint and byte arrays: {"$bigint":"12"} and {"$bytes":"hex"}. Used for
// the signing state file and stored evidence, whose records the consensus core owns.
import { fromHex, toHex } from "../types/bytes.js";

export function encodeJson(value: unknown, space?: number): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key: string, v: unknown) {
      // `this[key]` is the value before toJSON: Buffer.toJSON would otherwise hide it.
      const raw = this[key];
      if (typeof raw === "bigint") return { $bigint: raw.toString() };
      if (raw instanceof Uint8Array) return { $bytes: toHex(raw) };
      return v;
    },
    space,
  );
}

export function decodeJson<T = unknown>(text: string): T {
  return JSON.parse(text, (_key, v: unknown) => {
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1) {
        if (typeof o.$bigint === "string") return BigInt(o.$bigint);
        if (typeof o.$bytes === "string") return fromHex(o.$bytes);
      }
    }
    return v;
  }) as T;
}
