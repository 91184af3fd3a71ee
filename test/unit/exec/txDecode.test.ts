// The hand-written transfer decoder must equal protobuf-es fromBinary whenever it answers, and
// must answer null (fall back) whenever fromBinary would fail or decode differently.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { fastDecodeTxBody } from "../../../src/exec/txDecode.js";
import { computeTx, kvPutTx, makeAccounts, swapTx, transferTx } from "../../../src/exec/workload.js";
import { TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";

const accts = makeAccounts(3, 11);

function reference(body: Uint8Array) {
  try {
    return fromBinary(TxBodySchema, body);
  } catch {
    return null;
  }
}

function check(body: Uint8Array): "fast" | "fallback" {
  const fast = fastDecodeTxBody(body);
  if (fast === null) return "fallback";
  const ref = reference(body);
  assert.ok(ref !== null, "fast path accepted a body fromBinary rejects");
  assert.deepEqual(fast, ref);
  return "fast";
}

describe("fast TxBody decoder", () => {
  it("decodes transfers exactly as fromBinary, and leaves other programs to it", () => {
    const t = transferTx(accts[0]!, 12_345_678_901n, accts[1]!.address, 10n ** 20n, 7n).body;
    assert.equal(check(t), "fast");
    assert.equal(check(toBinary(TxBodySchema, create(TxBodySchema, {}))), "fast");
    assert.equal(check(swapTx(accts[0]!, 1n, "p", true, 5n).body), "fallback");
    assert.equal(check(computeTx(accts[0]!, 1n, 5).body), "fallback");
    assert.equal(check(kvPutTx(accts[0]!, 1n, Uint8Array.of(1), Uint8Array.of(2)).body), "fallback");
    // A nonce beyond 2^49 takes the slow path, still decoded by fromBinary.
    assert.equal(check(transferTx(accts[0]!, 2n ** 60n, accts[1]!.address, 1n).body), "fallback");
  });

  it("never disagrees with fromBinary on mutated, truncated or extended bodies", () => {
    const base = transferTx(accts[0]!, 300n, accts[2]!.address, 999n, 1n).body;
    let fast = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.nat(base.length),
        fc.uint8Array({ maxLength: 6 }),
        (flips, cut, tail) => {
          const b = new Uint8Array([...base.subarray(0, cut), ...tail]);
          for (const [i, v] of flips) if (i < b.length) b[i] = v;
          if (check(b) === "fast") fast++;
        },
      ),
      { seed: 13, numRuns: 3000 },
    );
    assert.ok(fast > 50, `the fast path must be exercised (${fast})`);
  });
});
