import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { toJson } from "../../../src/cli/output.js";

describe("CLI JSON output", () => {
  it("prints bytes as hex whether they are Uint8Array or Buffer (grpc-js returns Buffers), and bigint as decimal", () => {
    const out = JSON.parse(
      toJson({
        root: Buffer.from([0xab, 0x01]),
        raw: Uint8Array.of(255),
        height: 12n,
        nested: { d: Buffer.from([9]) },
      }),
    );
    assert.deepEqual(out, { root: "ab01", raw: "ff", height: "12", nested: { d: "09" } });
  });
});
