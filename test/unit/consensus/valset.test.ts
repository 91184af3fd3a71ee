import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidatorSet } from "../../../src/consensus/valset/index.js";
import { u32be } from "../../../src/types/bytes.js";
import { sha256 } from "../../../src/types/hash.js";

const keys = (n: number) => Array.from({ length: n }, (_, i) => sha256(u32be(i)));

describe("validator set quorum math", () => {
  it("quorum is more than 2/3 of power, never 2f+1", () => {
    // n: [quorum, weak]; 2f+1 would be 3, 3, 5, 5 for n = 4, 5, 6, 7.
    const expect: Record<number, [bigint, bigint]> = { 4: [3n, 2n], 5: [4n, 2n], 6: [5n, 3n], 7: [5n, 3n] };
    for (const [n, [q, w]] of Object.entries(expect)) {
      const s = ValidatorSet.uniform(0n, keys(Number(n)));
      assert.equal(s.quorum, q, `quorum n=${n}`);
      assert.equal(s.weak, w, `weak n=${n}`);
    }
    const five = ValidatorSet.uniform(0n, keys(5));
    assert.equal(five.isQuorum([0, 1, 2]), false, "n=5: three of five (2f+1) is not a quorum");
    assert.equal(five.isQuorum([0, 1, 2, 3]), true);
  });

  it("weights quorums by power and ignores duplicates and unknown indices", () => {
    const k = keys(4);
    const s = new ValidatorSet(0n, [
      { publicKey: k[0]!, power: 10n },
      { publicKey: k[1]!, power: 1n },
      { publicKey: k[2]!, power: 1n },
      { publicKey: k[3]!, power: 1n },
    ]);
    assert.equal(s.totalPower, 13n);
    assert.equal(s.quorum, 9n); // 2*13/3 = 8.67 -> 9
    assert.equal(s.isQuorum([0]), true, "one heavy validator holds a quorum");
    assert.equal(s.isQuorum([1, 2, 3]), false, "three light ones do not");
    assert.equal(s.isWeak([0]), true);
    assert.equal(s.powerOfSet([1, 1, 1, 7, -1]), 1n);
  });

  it("rotates the primary by (epoch + view) mod n and looks members up by key", () => {
    const k = keys(4);
    const s0 = ValidatorSet.uniform(0n, k);
    const s3 = ValidatorSet.uniform(3n, k);
    assert.deepEqual(
      [0n, 1n, 2n, 5n].map((v) => s0.primary(v)),
      [0, 1, 2, 1],
    );
    assert.equal(s3.primary(0n), 3);
    assert.equal(s3.primary(1n), 0);
    assert.equal(s0.indexOf(k[2]!), 2);
    assert.equal(s0.indexOf(sha256(u32be(99))), undefined);
  });

  it("refuses empty sets, zero power and duplicate keys", () => {
    const k = keys(2);
    assert.throws(() => new ValidatorSet(0n, []));
    assert.throws(() => new ValidatorSet(0n, [{ publicKey: k[0]!, power: 0n }]));
    assert.throws(
      () =>
        new ValidatorSet(0n, [
          { publicKey: k[0]!, power: 1n },
          { publicKey: k[0]!, power: 1n },
        ]),
    );
  });
});
