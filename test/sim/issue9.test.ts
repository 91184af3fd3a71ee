// Issue 9's reproductions, kept as regression seeds: each failed on the code before view-bound
// COMMITs and durable bodies, and must stay clean.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_FAULTS, parseFaults, TARGETED_FAULTS } from "../../src/sim/faults.js";
import { formatTotals, formatViolation } from "../../src/sim/report.js";
import { configForSeed, runSeeds } from "../../src/sim/runner.js";
import { runSimulation } from "../../src/sim/simulation.js";

const HEAVY = parseFaults("default,crashaftercommit,isolatecommitter,doublevote,reorder");

describe("issue 9 reproductions", () => {
  it("--faults accepts default followed by extras", () => {
    assert.deepEqual(HEAVY, [...DEFAULT_FAULTS, ...TARGETED_FAULTS]);
    assert.deepEqual(parseFaults("crash,default"), ["crash", ...DEFAULT_FAULTS.filter((f) => f !== "crash")]);
    assert.throws(() => parseFaults("default,nosuch"), /unknown fault 'nosuch'/);
  });

  it("the commit-lock deadlock seeds 4475, 2295, 5272 (n=7, 2 Byzantine) run clean", () => {
    for (const seed of [4475, 2295, 5272]) {
      const r = runSimulation({ seed, n: 7, byzantine: 2, faults: DEFAULT_FAULTS });
      assert.deepEqual(r.violations, [], `seed ${seed}: ${r.replay}`);
      assert.ok(r.committedHeight > 0);
    }
  });

  it("the heavy-mix seeds 1004, 1008, 1168 (n=4) and 1125 (n=5) with 1 Byzantine run clean", () => {
    for (const [seed, n] of [
      [1004, 4],
      [1008, 4],
      [1168, 4],
      [1125, 5],
    ] as const) {
      const r = runSimulation(
        configForSeed({ firstSeed: seed, count: 1, validators: n, byzantine: 1, faults: HEAVY }, seed),
      );
      assert.deepEqual(r.violations, [], `seed ${seed}: ${r.replay}`);
    }
  });

  it("crash,crashaftercommit without Byzantine replicas (failed 21 of these 60 seeds) runs clean", async () => {
    const totals = await runSeeds(
      { firstSeed: 200_001, count: 60, validators: 4, byzantine: 0, faults: ["crash", "crashaftercommit"] },
      { workers: 2 },
    );
    assert.deepEqual(
      totals.failures.flatMap((f) => formatViolation(f)),
      [],
      formatTotals(totals).join("\n"),
    );
  });
});
