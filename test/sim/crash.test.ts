// With f + 1 replicas crashed no quorum exists: nothing commits and nothing unsafe happens.
// After they restart (from only what they persisted) progress resumes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runSimulation } from "../../src/sim/simulation.js";

describe("f + 1 crashed replicas", () => {
  for (const n of [4, 7]) {
    const f = Math.floor((n - 1) / 3);
    const crashed = Array.from({ length: f + 1 }, (_, i) => n - 1 - i);

    it(`n=${n}: commits nothing while ${f + 1} replicas are down`, () => {
      const r = runSimulation({
        seed: 11,
        n,
        byzantine: 0,
        faults: ["delay", "dup"],
        crashedAtStart: { replicas: crashed },
        durationMs: 6000,
        submitUntilMs: 5000,
        checkLiveness: false,
      });
      assert.deepEqual(r.violations, []);
      assert.ok(r.txSubmitted > 0);
      assert.equal(r.committedHeight, 0);
      assert.equal(r.txCommitted, 0);
    });

    it(`n=${n}: resumes and commits every transaction after the crashed replicas restart`, () => {
      const restartAtMs = 3000;
      const r = runSimulation({
        seed: 12,
        n,
        byzantine: 0,
        faults: ["delay", "dup"],
        crashedAtStart: { replicas: crashed, restartAtMs },
        stableAtMs: restartAtMs,
      });
      assert.deepEqual(
        r.violations,
        [],
        JSON.stringify(r.violations, (_k, v) => (typeof v === "bigint" ? `${v}` : v)),
      );
      assert.ok(r.firstCommitMs >= restartAtMs, `first commit at ${r.firstCommitMs} ms, before the restart`);
      assert.ok(r.committedHeight > 0);
      assert.ok(r.txSubmitted > 5);
      assert.equal(r.txCommitted, r.txSubmitted);
    });
  }
});
