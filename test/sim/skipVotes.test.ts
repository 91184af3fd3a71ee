// Issue 14: replicas that skip verifying votes they will not use (ReplicaConfig.skipUnneededVotes,
// what the node's driver does) keep every simulator invariant under the main fault mix, Byzantine
// equivocators included. A small run beside the 1,000 main seeds (which verify every vote).
import { describe, it } from "node:test";
import { runSeeds, type SeedPlan } from "../../src/sim/runner.js";
import { CI_FAULTS, checkTotals } from "./ciSeeds.js";

const COUNT = Math.max(1, Math.round(Number(process.env.PARABFT_SIM_SKIP_SEEDS ?? 40)));

describe("simulator with unneeded votes skipped unverified", () => {
  it(`keeps agreement, order, validity and liveness over ${COUNT} seeds`, async () => {
    const plan: SeedPlan = {
      firstSeed: 700_001,
      count: COUNT,
      faults: CI_FAULTS,
      overrides: { skipUnneededVotes: true },
    };
    checkTotals(plan, await runSeeds(plan, { workers: 2 }));
  });
});
