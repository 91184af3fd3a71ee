// The sign bytes are the chain's wire contract: the builders (cached chain prefix, one buffer)
// must produce exactly the documented concatenation, whatever chain ids alternate.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { concatBytes, lengthPrefixed, toHex, u32be, u64be, utf8Bytes } from "../../../src/types/bytes.js";
import {
  checkpointSignBytes,
  commitSignBytes,
  envelopeSignBytes,
  prepareSignBytes,
} from "../../../src/types/signing.js";

const chain = (id: string) => lengthPrefixed(utf8Bytes(id));
const tag = (t: string) => utf8Bytes(`PARABFT/${t}\0`);

describe("sign bytes", () => {
  it("equal the documented concatenation for alternating chain ids and edge values", () => {
    const d = new Uint8Array(32).map((_, i) => i);
    const r = new Uint8Array(32).fill(0xee);
    const payload = new Uint8Array(300).map((_, i) => i & 0xff);
    const max = (1n << 64n) - 1n;
    for (const id of ["a", "parabft-local", "a", "ünïcode-chain", "", "parabft-local"]) {
      for (const [e, v, h] of [
        [0n, 0n, 1n],
        [3n, 7n, 123456789n],
        [max, max, max],
      ] as const) {
        assert.equal(
          toHex(prepareSignBytes(id, e, v, h, d)),
          toHex(concatBytes(tag("PREPARE/V1"), chain(id), u64be(e), u64be(v), u64be(h), d)),
        );
        assert.equal(
          toHex(commitSignBytes(id, e, v, h, d)),
          toHex(concatBytes(tag("COMMIT/V2"), chain(id), u64be(e), u64be(v), u64be(h), d)),
        );
        assert.equal(
          toHex(checkpointSignBytes(id, e, h, d, r)),
          toHex(concatBytes(tag("CHECKPOINT/V1"), chain(id), u64be(e), u64be(h), d, r)),
        );
        for (const sender of [0, 3, 0xffffffff]) {
          assert.equal(
            toHex(envelopeSignBytes(id, e, sender, payload)),
            toHex(
              concatBytes(tag("ENVELOPE/V1"), chain(id), u64be(e), u32be(sender), lengthPrefixed(payload)),
            ),
          );
        }
      }
    }
  });

  it("returns a fresh buffer each call (callers may keep or change it)", () => {
    const d = new Uint8Array(32);
    const a = prepareSignBytes("x", 0n, 0n, 1n, d);
    const b = prepareSignBytes("x", 0n, 0n, 1n, d);
    assert.notEqual(a.buffer, b.buffer);
    a[0] = 0;
    assert.equal(b[0], utf8Bytes("P")[0]);
  });
});
