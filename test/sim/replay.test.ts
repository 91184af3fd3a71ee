// `parabft sim --seed S` must replay a run exactly: same seed, same trace hash.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_FAULTS } from "../../src/sim/faults.js";
import { configForSeed, runSeeds, type SeedPlan } from "../../src/sim/runner.js";
import { runSimulation } from "../../src/sim/simulation.js";

describe("replay", () => {
  it("gives the same trace hash for the same seed and a different one for another seed", () => {
    const cfg = { seed: 4242, n: 5, byzantine: 1, faults: DEFAULT_FAULTS };
    const a = runSimulation(cfg);
    const b = runSimulation({ ...cfg });
    const c = runSimulation({ ...cfg, seed: 4243 });
    assert.ok(a.messages > 0 && a.committedHeight > 0, "the run must do something to be a meaningful replay");
    // Its Byzantine replica sent known-bad messages whose verdicts were checked (rejected or ignored).
    assert.ok(a.expectationsChecked > 0);
    assert.equal(a.traceHash, b.traceHash);
    assert.equal(a.committedHeight, b.committedHeight);
    assert.equal(a.steps, b.steps);
    assert.notEqual(a.traceHash, c.traceHash);
  });

  it("gives the same trace hash in a worker thread as on the main thread", async () => {
    const plan: SeedPlan = { firstSeed: 20, count: 4, faults: DEFAULT_FAULTS };
    const fromWorkers = new Map<number, string>();
    await runSeeds(plan, { workers: 2, onSeed: (s) => fromWorkers.set(s.seed, s.traceHash) });
    assert.equal(fromWorkers.size, 4);
    for (const [seed, hash] of fromWorkers) {
      assert.equal(runSimulation(configForSeed(plan, seed)).traceHash, hash, `seed ${seed}`);
    }
  });

  it("replays a run with epochs and staking exactly (same sets, same trace hash)", () => {
    const cfg = { seed: 4242, n: 5, byzantine: 1, faults: DEFAULT_FAULTS, epochLength: 5 };
    const a = runSimulation(cfg);
    const b = runSimulation({ ...cfg });
    const c = runSimulation({ ...cfg, seed: 4243 });
    assert.ok(a.stakingCalls > 0 && a.electedSets > 0, "the run must execute staking calls and elect sets");
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(
      [a.committedHeight, a.steps, a.electedSets, a.setChanges, a.stakingCalls, a.stakingFailed],
      [b.committedHeight, b.steps, b.electedSets, b.setChanges, b.stakingCalls, b.stakingFailed],
    );
    assert.notEqual(a.traceHash, c.traceHash);
  });

  it("prints a replay command naming the seed and its settings", () => {
    const r = runSimulation({ seed: 7, n: 4, byzantine: 1, faults: ["delay", "crash"], durationMs: 500 });
    assert.equal(r.replay, "parabft sim --seed 7 --validators 4 --byzantine 1 --faults delay,crash");
  });
});
