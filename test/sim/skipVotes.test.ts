// Issue 14: replicas that skip verifying votes they will not use (ReplicaConfig.skipUnneededVotes,
// what the node's driver does) keep every simulator invariant under the main fault mix, Byzantine
// equivocators included, with epochs, and with amnesiac restarts. A small run beside the main
// seeds (which verify every vote); PARABFT_SIM_SKIP_SEEDS scales it (300 main-mix seeds passed).
import { describe, it } from "node:test";
import { ISSUE9_FAULTS } from "../../src/sim/faults.js";
import { runSeeds, type SeedPlan } from "../../src/sim/runner.js";
import { CI_FAULTS, checkTotals } from "./ciSeeds.js";

const COUNT = Math.max(1, Math.round(Number(process.env.PARABFT_SIM_SKIP_SEEDS ?? 40)));

describe("simulator with unneeded votes skipped unverified", () => {
  it(`keeps agreement, order, validity and liveness over ${COUNT} main-mix seeds`, async () => {
    const plan: SeedPlan = {
      firstSeed: 700_001,
      count: COUNT,
      faults: CI_FAULTS,
      overrides: { skipUnneededVotes: true },
    };
    checkTotals(plan, await runSeeds(plan, { workers: 2 }));
  });

  it(`and over ${Math.ceil(COUNT / 2)} seeds with epochs (EpochReplica)`, async () => {
    const plan: SeedPlan = {
      firstSeed: 710_001,
      count: Math.ceil(COUNT / 2),
      faults: CI_FAULTS,
      overrides: { skipUnneededVotes: true, epochLength: 5 },
    };
    checkTotals(plan, await runSeeds(plan, { workers: 2 }));
  });

  it(`and over ${Math.ceil(COUNT / 2)} seeds with amnesiac restarts (no Byzantine replica)`, async () => {
    const plan: SeedPlan = {
      firstSeed: 720_001,
      count: Math.ceil(COUNT / 2),
      byzantine: 0,
      faults: ["delay", "loss", "dup", "partition", "crash", ...ISSUE9_FAULTS],
      overrides: { skipUnneededVotes: true },
    };
    checkTotals(plan, await runSeeds(plan, { workers: 2 }));
  });
});
