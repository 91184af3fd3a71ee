// The main simulator run in CI: ≥ 1,000 seeds over n = 4, 5, 6, 7 with f Byzantine replicas,
// network faults and crash-restarts mixed, plus the issue-9 faults (each on in a seed with
// probability 1/2: asymmetric links, crash mid-step with a torn write, adversarial NEW-VIEW
// quorums, withheld bodies, floods, weighted power, whole-cluster crashes; amnesia with k = f in
// the Byzantine-free run), and zero violations of any invariant.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_FAULTS, ISSUE9_FAULTS } from "../../src/sim/faults.js";
import { formatTotals } from "../../src/sim/report.js";
import { runSeeds } from "../../src/sim/runner.js";

const SEEDS = Number(process.env.PARABFT_SIM_SEEDS ?? 1000);

describe("simulator over many seeds", () => {
  it(`keeps agreement, order, validity and liveness over ${SEEDS} seeds with every fault mixed`, async () => {
    const totals = await runSeeds(
      { firstSeed: 1, count: SEEDS, faults: [...DEFAULT_FAULTS, ...ISSUE9_FAULTS] },
      { workers: 2 },
    );
    const report = formatTotals(totals);
    console.log(report.join("\n"));
    assert.equal(totals.seeds, SEEDS);
    assert.deepEqual(
      totals.failures.map((f) => f.replay),
      [],
      report.join("\n"),
    );
    // The seeds must actually exercise the protocol, not idle.
    assert.ok(totals.heights > SEEDS * 5, `only ${totals.heights} heights committed`);
    assert.ok(totals.viewChanges > SEEDS / 2, `only ${totals.viewChanges} view changes`);
    assert.equal(totals.truncated, 0);
  });

  it("keeps every invariant over 200 seeds without Byzantine replicas, where restarts may also lose the signing state (amnesia, k = f) or the data directory", async () => {
    // With no Byzantine replica the fault budget f is free for amnesiac restarts (a replica whose
    // signing state is lost stays silent until caught up, so it counts as faulty until then).
    const totals = await runSeeds(
      {
        firstSeed: 100_001,
        count: 200,
        byzantine: 0,
        faults: ["delay", "loss", "dup", "partition", "crash", ...ISSUE9_FAULTS],
      },
      { workers: 2 },
    );
    assert.deepEqual(
      totals.failures.map((f) => f.replay),
      [],
      formatTotals(totals).join("\n"),
    );
    assert.ok(totals.heights > 200 * 5);
  });
});
