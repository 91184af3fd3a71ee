// The checkers have teeth: breaking one protocol rule in the core on purpose (test-only switches
// in ReplicaConfig.testOnlyFaults), with a fault mix aimed at that rule, yields a safety
// violation within 200 seeds; the same mix with the correct core yields none.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestOnlyFaults } from "../../src/consensus/pbft/types.js";
import type { FaultKind } from "../../src/sim/faults.js";
import { DEFAULT_FAULTS } from "../../src/sim/faults.js";
import { formatViolation } from "../../src/sim/report.js";
import { configForSeed, runSeeds, type SeedPlan } from "../../src/sim/runner.js";
import { runSimulation } from "../../src/sim/simulation.js";

const SAFETY = new Set(["agreement", "order", "validity"]);

interface Case {
  rule: keyof TestOnlyFaults;
  faults: FaultKind[];
  byzantine?: number;
}

const CASES: Case[] = [
  // An equivocating primary shows one replica only block X, one only block Y and the rest both,
  // with a colluder voting for each side's block; one vote short, each side reaches a "quorum".
  { rule: "quorumOneShort", faults: ["delay", "equivocate", "doublevote"] },
  // Same attack; replicas that vote for the second PRE-PREPARE too let each side reach a quorum.
  // Correct peers count only a validator's first vote, so heavy reordering is needed for the
  // second vote to arrive first at the other side.
  { rule: "acceptSecondPrePrepare", faults: ["reorder", "equivocate", "doublevote"] },
  // Replicas crash right after sending COMMIT and forget their prepared certificates; the one
  // that committed is cut off, so the next view is formed without any proof of the block.
  {
    rule: "skipPreparedCertPersist",
    faults: ["delay", "crashaftercommit", "isolatecommitter"],
    byzantine: 0,
  },
];

function plan(c: Case, count: number, broken: boolean): SeedPlan {
  return {
    firstSeed: 1,
    count,
    byzantine: c.byzantine,
    faults: c.faults,
    testOnlyFaults: broken ? { [c.rule]: true } : undefined,
    // Liveness is not the point here: a broken core may stall, and we look for safety failures.
    // A broken core also builds certificates correct peers reject; that is caught as a "verdict"
    // violation in the control runs, and switched off here so the safety failure shows.
    overrides: { checkLiveness: false, checkVerdicts: !broken },
  };
}

describe("teeth: a deliberately broken core is caught", () => {
  for (const c of CASES) {
    it(`finds a safety violation within 200 seeds when the core has ${c.rule}`, async () => {
      const totals = await runSeeds(plan(c, 200, true), { workers: 2, stopOnViolation: true });
      assert.ok(totals.failures.length > 0, `no violation in ${totals.seeds} seeds with ${c.rule}`);
      const first = totals.failures[0]!;
      console.log(`${c.rule}: first violation after ≤ ${totals.seeds} seeds`);
      console.log(formatViolation(first).join("\n"));
      assert.ok(
        first.violations.some((v) => SAFETY.has(v.invariant)),
        `expected a safety violation, got ${first.violations.map((v) => v.invariant).join(",")}`,
      );
    });

    it(`finds nothing with the same fault mix against the correct core (${c.rule} control)`, async () => {
      const totals = await runSeeds(plan(c, 60, false), { workers: 2 });
      assert.deepEqual(
        totals.failures.flatMap((f) => formatViolation(f)),
        [],
      );
    });
  }
});

// Issue 9: switches that bring back a liveness bug. The simulator must report a liveness
// violation (a transaction not committed by the deadline after stabilisation); the same seeds
// with the correct core report nothing.
describe("teeth: issue-9 liveness bugs are caught", () => {
  it("commitLock (the old commit lock) deadlocks within 2 seeds (n=7, f=2 Byzantine)", () => {
    // Issue 9's seeds were 4475, 2295, 5272. Request timers that re-arm on progress short of a
    // commit (issue 14) change every schedule, and so does a timeout that follows the pace (o16)
    // and a primary that suspects itself later than its backups (s26): in seeds 1-400 the broken
    // core deadlocks in 147 and 228 now (207, 273 before s26; 57, 153, 245 at 341c8c5; only 371 on
    // 4d3e18d), so these are the seeds that show it today.
    const seeds = [147, 228];
    const failing: number[] = [];
    for (const seed of seeds) {
      const cfg = { seed, n: 7, byzantine: 2, faults: DEFAULT_FAULTS, checkVerdicts: false };
      const broken = runSimulation({ ...cfg, testOnlyFaults: { commitLock: true } });
      if (broken.violations.some((v) => v.invariant === "liveness")) failing.push(seed);
      assert.deepEqual(runSimulation(cfg).violations, [], `seed ${seed} must pass with the correct core`);
    }
    console.log(`commitLock: liveness violation in seeds ${failing.join(", ")} of ${seeds.join(", ")}`);
    assert.ok(failing.length > 0, "no deadlock found with the commit lock");
  });

  it("volatileBodies (bodies in memory only) halts the chain within 30 seeds of crash,crashaftercommit,clustercrash (n=4)", async () => {
    const p = (broken: boolean): SeedPlan => ({
      firstSeed: 200_001,
      count: 30,
      validators: 4,
      byzantine: 0,
      faults: ["crash", "crashaftercommit", "clustercrash"],
      testOnlyFaults: broken ? { volatileBodies: true } : undefined,
    });
    const totals = await runSeeds(p(true), { workers: 2, stopOnViolation: true });
    assert.ok(totals.failures.length > 0, `no halt in ${totals.seeds} seeds with volatileBodies`);
    const first = totals.failures[0]!;
    console.log(`volatileBodies: first halt after ≤ ${totals.seeds} seeds`);
    console.log(formatViolation(first).join("\n"));
    assert.ok(first.violations.some((v) => v.invariant === "liveness"));
    const control = await runSeeds(p(false), { workers: 2 });
    assert.deepEqual(
      control.failures.flatMap((f) => formatViolation(f)),
      [],
    );
  });
});

// Issue 9: a certificate stitched from COMMITs of two views. Random seeds need four consecutive
// adversarial views to show it, so the `stitch` fault is that schedule, scripted (src/sim/stitch.ts:
// replica 0 Byzantine, adversarial network before T, n = 4). With the broken core the first seed
// already yields an agreement violation; the same 200 seeds against the correct core reach the
// stitchable state (two digests each COMMITted by a quorum across views, neither by a quorum in
// one view) and stay clean, liveness and verdicts included.
describe("teeth: a certificate stitched from two views is caught", () => {
  const STITCH_WITHIN = 5;
  const p = (count: number, broken: boolean): SeedPlan => ({
    firstSeed: 1,
    count,
    validators: 4,
    byzantine: 1,
    faults: ["delay", "stitch"],
    testOnlyFaults: broken ? { stitchCertificates: true } : undefined,
    overrides: broken ? { checkLiveness: false, checkVerdicts: false } : undefined,
  });

  it(`stitchCertificates yields an agreement violation within ${STITCH_WITHIN} seeds of the stitch script`, async () => {
    const totals = await runSeeds(p(STITCH_WITHIN, true), { workers: 1, stopOnViolation: true });
    assert.ok(totals.failures.length > 0, `no violation in ${totals.seeds} seeds with stitchCertificates`);
    const first = totals.failures[0]!;
    console.log(`stitchCertificates: first violation after ≤ ${totals.seeds} seeds`);
    console.log(formatViolation(first).join("\n"));
    assert.ok(
      first.violations.some((v) => v.invariant === "agreement"),
      `expected an agreement violation, got ${first.violations.map((v) => v.invariant).join(",")}`,
    );
    // Replayable by seed: the same seed on this thread gives the same violation and trace hash.
    const again = runSimulation(configForSeed(p(1, true), first.seed));
    assert.equal(again.traceHash, first.traceHash);
    assert.deepEqual(again.violations, first.violations);
  });

  it("the correct core stays clean over 200 seeds of the stitch script, each reaching the stitchable state", async () => {
    const totals = await runSeeds(p(200, false), { workers: 2 });
    assert.deepEqual(
      totals.failures.flatMap((f) => formatViolation(f)),
      [],
    );
    assert.equal(totals.seeds, 200);
    console.log(`stitch control: stitchable state reached in ${totals.seedsStitchReached} of 200 seeds`);
    // The control is only meaningful if the attack actually got where the broken core fails.
    assert.ok(
      totals.seedsStitchReached >= 190,
      `stitch script reached its goal in only ${totals.seedsStitchReached} seeds`,
    );
    assert.ok(totals.heights > 200 * 3, `only ${totals.heights} heights committed after the attack`);
  });
});
