import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bytesEqual } from "../../../src/types/bytes.js";
import { Cluster } from "./harness.js";

describe("pbft normal case", () => {
  it("commits and delivers a proposed block on every replica with a quorum certificate", () => {
    const c = new Cluster(4);
    c.setWork(1, [0]);
    c.run();
    for (const n of c.nodes) {
      assert.deepEqual(
        n.delivered.map((d) => d.height),
        [1n],
      );
      assert.ok(n.delivered[0]!.cert.signatures.length >= 3);
    }
    assert.ok(bytesEqual(c.nodes[0]!.delivered[0]!.digest, c.nodes[3]!.delivered[0]!.digest));
  });

  it("an idle primary proposes nothing", () => {
    const c = new Cluster(4);
    c.tick();
    c.run();
    for (const n of c.nodes) {
      assert.equal(n.delivered.length, 0);
      assert.ok(!n.actions.some((a) => a.kind === "requestProposal"));
    }
  });

  it("pipelines heights, stabilises checkpoints and garbage-collects", () => {
    const c = new Cluster(4);
    c.blocksLeft = 23;
    c.setWork(100, [0]);
    c.run();
    for (const n of c.nodes) {
      assert.equal(n.delivered.length, 23);
      assert.equal(n.replica.stableHeight, 20n);
    }
  });
});
