// The status a replica broadcasts on every tick: an unchanged report is the same sealed message
// (not encoded and signed again); any change in it is sealed afresh.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Action } from "../../../src/consensus/pbft/types.js";
import { StatusReportSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { bytesEqual } from "../../../src/types/bytes.js";
import { Cluster, sentOf, testSigner } from "./harness.js";

function statusOf(actions: Action[]) {
  const s = sentOf(actions, "status");
  assert.equal(s.length, 1, "one status per tick");
  return s[0]!;
}

describe("status on tick", () => {
  it("reuses the sealed status while the report is unchanged and seals a changed one", () => {
    let signs = 0;
    const c = new Cluster(4, {
      perNode: (i) => {
        if (i !== 1) return {};
        const s = testSigner(1);
        return {
          signer: {
            publicKey: s.publicKey,
            sign: (m) => {
              signs++;
              return s.sign(m);
            },
          },
        };
      },
    });
    const first = statusOf(c.step(1, { kind: "tick" }).actions);
    const second = statusOf(c.step(1, { kind: "tick" }).actions);
    assert.equal(signs, 1, "the unchanged status was not signed again");
    assert.ok(bytesEqual(first.bytes, second.bytes));
    // What a peer reads from the reused message is the report as it stands.
    const read = c.decode(second.bytes).message.kind;
    assert.equal(read.case, "status");
    assert.equal(read.value.$typeName, StatusReportSchema.typeName);
    assert.equal(read.value.committedHeight, 0n);
    // A committed height changes the report: sealed afresh, with the new height.
    c.setWork(1, [0]);
    c.run();
    assert.deepEqual(c.heights(1), [1n]);
    const signsBefore = signs;
    const third = statusOf(c.step(1, { kind: "tick" }).actions);
    assert.equal(signs, signsBefore + 1, "a changed status is signed");
    const changed = c.decode(third.bytes).message.kind;
    assert.equal(changed.case, "status");
    assert.equal(changed.value.committedHeight, 1n);
    statusOf(c.step(1, { kind: "tick" }).actions);
    assert.equal(signs, signsBefore + 1, "and then reused again");
  });
});
