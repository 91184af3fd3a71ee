// Measurements printed by CI (and recorded in src/sim/README.md): simulated seeds per second,
// commit latency in message delays in the normal case, and recovery under a silent primary.
// Assertions are on virtual time, which is deterministic; wall time is only printed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SIM_TIMING } from "../../src/sim/config.js";
import { DEFAULT_FAULTS } from "../../src/sim/faults.js";
import { calmNetwork } from "../../src/sim/network.js";
import { runSeeds } from "../../src/sim/runner.js";
import { runSimulation } from "../../src/sim/simulation.js";

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
};

describe("simulator measurements", () => {
  it("measures simulated seeds per second on one thread", async () => {
    const totals = await runSeeds({ firstSeed: 50_000, count: 40, faults: DEFAULT_FAULTS }, { workers: 1 });
    const perSec = (totals.seeds * 1000) / totals.wallMs;
    console.log(
      `seeds/s (1 thread, all faults, n=4..7): ${perSec.toFixed(1)}; virtual s per wall s: ${(totals.simulatedMs / totals.wallMs).toFixed(0)}`,
    );
    assert.equal(totals.failures.length, 0);
  });

  it("commits in three message delays after the proposal in the normal case", () => {
    const delay = 10;
    for (const n of [4, 7]) {
      const r = runSimulation({
        seed: 1,
        n,
        byzantine: 0,
        faults: [],
        network: { ...calmNetwork, minDelayMs: delay },
        execDelayMs: 0,
        clients: 1,
        txIntervalMs: [200, 200],
      });
      assert.deepEqual(r.violations, []);
      assert.equal(r.viewChanges, 0);
      const inDelays = r.commitLatenciesMs.map((ms) => ms / delay);
      const med = median(inDelays);
      console.log(
        `n=${n}: commit latency ${med} message delays (median of ${inDelays.length} heights, constant delay ${delay} ms)`,
      );
      assert.ok(inDelays.length > 10);
      assert.equal(med, 3);
    }
  });

  it("recovers from a silent primary with one view change", () => {
    for (const n of [4, 7]) {
      const r = runSimulation({
        seed: 2,
        n,
        byzantine: 1,
        faults: ["silent"],
        byzantineRoles: new Map([[0, ["silent"]]]),
        network: { ...calmNetwork, minDelayMs: 10 },
        stableAtMs: 0,
        submitUntilMs: 3000,
        clients: 1,
        txIntervalMs: [200, 200],
      });
      assert.deepEqual(r.violations, []);
      const firstTx = 200;
      console.log(
        `n=${n}: silent primary: ${r.viewChanges} view change(s), first commit ${r.firstCommitMs - firstTx} ms after the first tx (view timeout ${SIM_TIMING.viewTimeoutMs} ms), tx latency median ${median(r.txLatenciesMs)} ms`,
      );
      assert.equal(r.viewChanges, 1);
      assert.ok(r.firstCommitMs > firstTx + SIM_TIMING.viewTimeoutMs);
      assert.ok(r.txSubmitted >= 10);
      assert.equal(r.txCommitted, r.txSubmitted);
    }
  });
});
