import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { asciiString, fromHex, toHex } from "../../../src/types/bytes.js";

/** The obvious definition toHex must equal. */
function reference(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

describe("toHex", () => {
  it("equals the reference on every byte value, empty input and long input", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.equal(toHex(all), reference(all));
    assert.equal(toHex(new Uint8Array(0)), "");
    const long = new Uint8Array(randomBytes(10_000));
    assert.equal(toHex(long), reference(long));
  });

  it("reads only the view it is given (subarray with an offset)", () => {
    const base = new Uint8Array(randomBytes(100));
    const view = base.subarray(17, 49);
    assert.equal(toHex(view), reference(view));
    assert.equal(toHex(view).length, 64);
  });

  it("round-trips with fromHex", () => {
    for (const n of [1, 20, 32, 64, 333]) {
      const b = new Uint8Array(randomBytes(n));
      assert.deepEqual(fromHex(toHex(b)), b);
    }
  });

  it("the fallback without TextDecoder builds the same string, across its chunks", () => {
    const b = new Uint8Array(randomBytes(6_000));
    const hex = reference(b);
    const codes = Uint8Array.from(hex, (c) => c.charCodeAt(0));
    assert.equal(asciiString(codes), hex);
    assert.equal(asciiString(new Uint8Array(0)), "");
  });
});
