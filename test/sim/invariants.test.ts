import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AgreementChecker,
  ElectionChecker,
  LivenessChecker,
  OrderChecker,
  ValidityChecker,
} from "../../src/sim/invariants.js";
import { nullBlockDigest } from "../../src/types/block.js";

const d = (b: number) => new Uint8Array(32).fill(b);

describe("agreement checker", () => {
  it("accepts the same digest from every replica", () => {
    const c = new AgreementChecker();
    assert.equal(c.onCommit(0, 0, 1n, d(1)), null);
    assert.equal(c.onCommit(5, 1, 1n, d(1)), null);
    assert.equal(c.onCommit(6, 1, 2n, d(2)), null);
  });

  it("fails when two replicas commit different digests at one height", () => {
    const c = new AgreementChecker();
    c.onCommit(0, 0, 3n, d(1));
    const v = c.onCommit(1, 2, 3n, d(9));
    assert.equal(v?.invariant, "agreement");
    assert.equal(v?.height, 3n);
  });
});

describe("order checker", () => {
  it("accepts consecutive heights and a resume after restart", () => {
    const c = new OrderChecker();
    assert.equal(c.onDeliver(0, 0, 1n), null);
    assert.equal(c.onDeliver(0, 0, 2n), null);
    c.resume(0, 2n);
    assert.equal(c.onDeliver(0, 0, 3n), null);
  });

  it("fails on a gap", () => {
    const c = new OrderChecker();
    c.onDeliver(0, 1, 1n);
    assert.equal(c.onDeliver(0, 1, 3n)?.invariant, "order");
  });

  it("fails on a repeated height", () => {
    const c = new OrderChecker();
    c.onDeliver(0, 1, 1n);
    assert.equal(c.onDeliver(0, 1, 1n)?.invariant, "order");
  });
});

describe("validity checker", () => {
  const nullOf = (h: bigint) => nullBlockDigest("t", 0n, h);
  const body = (over: Partial<{ height: bigint; proposer: number; invalidTx: string | null }> = {}) => ({
    height: 4n,
    proposer: 1,
    recomputedDigest: d(4),
    invalidTx: null,
    ...over,
  });

  it("accepts a proposed block and the null block", () => {
    const c = new ValidityChecker(nullOf);
    c.recordProposal(d(4), { proposer: 1 });
    assert.equal(c.onCommit(0, 0, 4n, d(4), body()), null);
    assert.equal(c.onCommit(0, 0, 5n, nullOf(5n), null), null);
  });

  it("fails on a block nobody proposed", () => {
    const c = new ValidityChecker(nullOf);
    assert.equal(c.onCommit(0, 0, 4n, d(4), body())?.invariant, "validity");
  });

  it("fails on a body that does not hash to the digest", () => {
    const c = new ValidityChecker(nullOf);
    c.recordProposal(d(4), { proposer: 1 });
    assert.equal(c.onCommit(0, 0, 4n, d(4), { ...body(), recomputedDigest: d(5) })?.invariant, "validity");
  });

  it("fails on an invalid transaction and on a missing body that is not the null block", () => {
    const c = new ValidityChecker(nullOf);
    c.recordProposal(d(4), { proposer: 1 });
    assert.equal(c.onCommit(0, 0, 4n, d(4), body({ invalidTx: "bad signature" }))?.invariant, "validity");
    assert.equal(c.onCommit(0, 0, 6n, d(6), null)?.invariant, "validity");
  });

  it("fails when the proposer field differs from the builder", () => {
    const c = new ValidityChecker(nullOf);
    c.recordProposal(d(4), { proposer: 1 });
    assert.equal(c.onCommit(0, 0, 4n, d(4), body({ proposer: 2 }))?.invariant, "validity");
  });
});

describe("liveness checker", () => {
  it("passes when every transaction commits before its deadline", () => {
    const c = new LivenessChecker(1000, 500);
    c.onSubmit(100, "aa");
    c.onSubmit(1200, "bb");
    c.onTxCommitted(1400, "aa");
    assert.equal(c.check(1600), null);
    c.onTxCommitted(1650, "bb");
    assert.equal(c.check(10_000), null);
    assert.deepEqual(c.commitLatencies, [1300, 450]);
  });

  it("fails when a transaction is still pending after max(submit, T) + deadline", () => {
    const c = new LivenessChecker(1000, 500);
    c.onSubmit(100, "aa");
    assert.equal(c.check(1500), null);
    assert.equal(c.check(1501)?.invariant, "liveness");
  });
});

describe("election checker", () => {
  const set = (hash: string, byzantinePower = 12_450n, members = 4) => ({
    epoch: 2n,
    snapshotHash: hash,
    members,
    totalPower: 42_450n,
    byzantinePower,
  });

  it("accepts the same snapshot from every executor, including a re-execution", () => {
    const c = new ElectionChecker(4);
    assert.equal(c.onElected(0, 0, set("aa")), null);
    assert.equal(c.onElected(1, 1, set("aa")), null);
    assert.equal(c.onElected(2, 0, set("aa")), null);
    assert.equal(c.elected, 1);
  });

  it("fails when two executors elect different sets for one epoch", () => {
    const c = new ElectionChecker(4);
    c.onElected(0, 0, set("aa"));
    const v = c.onElected(1, 2, set("bb"));
    assert.equal(v?.invariant, "election");
    assert.match(v?.detail ?? "", /epoch 2/);
  });

  it("fails when the Byzantine power reaches 1/3 or the set has the wrong size", () => {
    // 3 × 14,150 = 42,450: exactly one third is already too much.
    assert.equal(new ElectionChecker(4).onElected(0, 0, set("aa", 14_150n))?.invariant, "election");
    assert.equal(new ElectionChecker(4).onElected(0, 0, set("aa", 14_149n)), null);
    assert.equal(new ElectionChecker(4).onElected(0, 0, set("aa", 0n, 3))?.invariant, "election");
  });
});
