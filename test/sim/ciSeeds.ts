// The main simulator run in CI, shared by the seeds-*.test.ts files: ≥ 1,000 seeds over n = 4, 5,
// 6, 7 with f Byzantine replicas, network faults and crash-restarts mixed, plus the issue-9 faults
// (each on in a seed with probability 1/2: asymmetric links, crash mid-step with a torn write,
// adversarial NEW-VIEW quorums, withheld bodies, floods, weighted power, whole-cluster crashes;
// amnesia with k = f in the Byzantine-free run), and zero violations of any invariant.
//
// The 1,000 seeds are split over four files of 250 so that each test stays well under node's
// --test-timeout of 600 s on a heavily loaded 2-core box (one file took over 600 s at load 16).
import assert from "node:assert/strict";
import { DEFAULT_FAULTS, type FaultKind, ISSUE9_FAULTS } from "../../src/sim/faults.js";
import { formatTotals } from "../../src/sim/report.js";
import { type RunTotals, runSeeds, type SeedPlan } from "../../src/sim/runner.js";

/** Seeds per file of the main run (PARABFT_SIM_SEEDS is the total over the four files). */
export const CHUNK = Math.max(1, Math.round(Number(process.env.PARABFT_SIM_SEEDS ?? 1000) / 4));
export const CI_FAULTS: readonly FaultKind[] = [...DEFAULT_FAULTS, ...ISSUE9_FAULTS];

/** Runs the main-mix seeds of chunk `i` (0..3) and asserts zero violations and real activity. */
export async function runMainChunk(i: number): Promise<RunTotals> {
  const plan: SeedPlan = { firstSeed: 1 + i * CHUNK, count: CHUNK, faults: CI_FAULTS };
  return checkTotals(plan, await runSeeds(plan, { workers: 2 }));
}

/**
 * With no Byzantine replica the fault budget f is free for amnesiac restarts (a replica whose
 * signing state is lost stays silent until caught up, so it counts as faulty until then).
 */
export async function runAmnesia(count = 200): Promise<RunTotals> {
  const plan: SeedPlan = {
    firstSeed: 100_001,
    count,
    byzantine: 0,
    faults: ["delay", "loss", "dup", "partition", "crash", ...ISSUE9_FAULTS],
  };
  return checkTotals(plan, await runSeeds(plan, { workers: 2 }));
}

export function checkTotals(plan: SeedPlan, totals: RunTotals): RunTotals {
  const report = formatTotals(totals);
  console.log(`seeds ${plan.firstSeed}..${plan.firstSeed + plan.count - 1}:\n${report.join("\n")}`);
  assert.equal(totals.seeds, plan.count);
  assert.deepEqual(
    totals.failures.map((f) => f.replay),
    [],
    report.join("\n"),
  );
  // The seeds must actually exercise the protocol, not idle.
  assert.ok(totals.heights > plan.count * 5, `only ${totals.heights} heights committed`);
  if ((plan.byzantine ?? 1) > 0)
    assert.ok(totals.viewChanges > plan.count / 2, `only ${totals.viewChanges} view changes`);
  assert.equal(totals.truncated, 0);
  return totals;
}
