// `parabft sim`: runs the deterministic simulator over many seeds, or replays one seed exactly.
import type { TestOnlyFaults } from "../../consensus/pbft/types.js";
import {
  DEFAULT_FAULTS,
  type FaultKind,
  ISSUE9_FAULTS,
  parseFaults,
  SCRIPTED_FAULTS,
  TARGETED_FAULTS,
} from "../../sim/faults.js";
import { formatTotals, formatViolation, toJson } from "../../sim/report.js";
import { configForSeed, defaultWorkers, runSeeds, type SeedPlan, summarise } from "../../sim/runner.js";
import { runSimulation } from "../../sim/simulation.js";
import { type CliCommand, intFlag, parseCommandArgs, UsageError } from "../command.js";

const usage = `Usage: parabft sim (--seeds N | --seed S) [options]

Runs the deterministic adversarial simulator: n replicas of the real PBFT core over a simulated
network with delays, loss, duplication, partitions, crash-restarts and Byzantine replicas, with
agreement, order, validity and liveness checked after every step. Exits 1 on any violation.

Options:
  --seeds N             run N seeds (first seed from --first-seed, default 1)
  --seed S              run exactly seed S and print its trace hash (replay)
  --first-seed B        first seed for --seeds (default 1)
  --validators n        validators per seed, 4..16 (default: cycle seeds over 4, 5, 6, 7)
  --byzantine k         Byzantine replicas per seed (default f = floor((n-1)/3))
  --faults LIST         comma list, all|none, or default,EXTRA,... (default all:
                        ${DEFAULT_FAULTS.join(",")};
                        targeted extras: ${TARGETED_FAULTS.join(", ")};
                        issue-9 extras: ${ISSUE9_FAULTS.join(", ")};
                        scripted (n=4, 1 Byzantine): ${SCRIPTED_FAULTS.join(", ")})
  --test-only-faults L  break the core on purpose (to show the checkers catch it):
                        safety: quorumOneShort, acceptSecondPrePrepare, skipPreparedCertPersist,
                        stitchCertificates (liveness and verdict checks off);
                        liveness: commitLock, volatileBodies (verdict checks off)
  --workers W           worker threads (default ${defaultWorkers()})
  --json                print the result as JSON
  -h, --help            this help
`;

const TEST_ONLY = [
  "quorumOneShort",
  "acceptSecondPrePrepare",
  "skipPreparedCertPersist",
  "commitLock",
  "volatileBodies",
  "stitchCertificates",
] as const;
/** Switches whose bug is a halt, not a safety violation: liveness stays checked for them. */
const LIVENESS_TEETH: readonly string[] = ["commitLock", "volatileBodies"];

function parseTestOnly(raw: string | undefined): TestOnlyFaults | undefined {
  if (raw === undefined) return undefined;
  const out: TestOnlyFaults = {};
  for (const f of raw.split(",").map((s) => s.trim())) {
    if (!(TEST_ONLY as readonly string[]).includes(f)) {
      throw new UsageError(
        "--test-only-faults",
        `unknown test-only fault '${f}' (known: ${TEST_ONLY.join(", ")})`,
      );
    }
    out[f as (typeof TEST_ONLY)[number]] = true;
  }
  return out;
}

export const simCommand: CliCommand = {
  name: "sim",
  summary: "run the deterministic adversarial simulator over many seeds",
  usage,
  async run(argv: string[]): Promise<number> {
    const { values } = parseCommandArgs(argv, {
      seeds: { type: "string" },
      seed: { type: "string" },
      "first-seed": { type: "string" },
      validators: { type: "string" },
      byzantine: { type: "string" },
      faults: { type: "string" },
      "test-only-faults": { type: "string" },
      workers: { type: "string" },
      json: { type: "boolean" },
    });
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    if ((values.seeds === undefined) === (values.seed === undefined)) {
      throw new UsageError("--seeds", "give exactly one of --seeds N or --seed S");
    }
    const validators =
      values.validators === undefined ? undefined : intFlag("validators", values.validators, 4, 4, 16);
    const byzantine =
      values.byzantine === undefined ? undefined : intFlag("byzantine", values.byzantine, 0, 0, 16);
    if (validators !== undefined && byzantine !== undefined && byzantine >= validators) {
      throw new UsageError("--byzantine", "--byzantine must be smaller than --validators");
    }
    let faults: FaultKind[];
    try {
      faults = values.faults === undefined ? [...DEFAULT_FAULTS] : parseFaults(values.faults);
    } catch (err: unknown) {
      throw new UsageError("--faults", err instanceof Error ? err.message : String(err));
    }
    const plan: SeedPlan = {
      firstSeed: 0,
      count: 1,
      validators,
      byzantine,
      faults,
      testOnlyFaults: parseTestOnly(values["test-only-faults"]),
    };
    // A core broken on purpose for safety is examined for safety: it may stall, and the
    // certificates it builds are rejected by correct peers, which would otherwise be reported
    // first. The liveness switches (commitLock, volatileBodies) keep the liveness check.
    if (plan.testOnlyFaults !== undefined) {
      const on = Object.keys(plan.testOnlyFaults);
      plan.overrides = { checkLiveness: on.every((k) => LIVENESS_TEETH.includes(k)), checkVerdicts: false };
    }

    if (values.seed !== undefined) {
      const seed = intFlag("seed", values.seed, 0, 0, 2 ** 32 - 1);
      const cfg = configForSeed(plan, seed);
      if (cfg.byzantine >= cfg.n) throw new UsageError("--byzantine", "--byzantine must be smaller than n");
      const r = runSimulation(cfg);
      const s = summarise(r);
      if (values.json) {
        process.stdout.write(`${toJson({ ...s, firstCommitMs: r.firstCommitMs })}\n`);
      } else {
        console.log(`seed ${seed}: n=${r.n} byzantine=${r.byzantine} faults=${r.faults}`);
        console.log(`heights committed:  ${r.committedHeight}`);
        console.log(`view changes:       ${r.viewChanges}`);
        console.log(`simulated seconds:  ${(r.simulatedMs / 1000).toFixed(1)}`);
        console.log(`transactions:       ${r.txCommitted} committed of ${r.txSubmitted} submitted`);
        console.log(`trace hash:         ${r.traceHash}`);
        if (r.stitchReached) console.log("stitch script:      reached its goal");
        console.log(`violations:         ${r.violations.length === 0 ? "none" : r.violations.length}`);
        if (r.violations.length > 0) for (const line of formatViolation(s)) console.log(line);
      }
      return r.violations.length > 0 ? 1 : 0;
    }

    plan.count = intFlag("seeds", values.seeds, 1, 1, 100_000_000);
    plan.firstSeed = intFlag("first-seed", values["first-seed"], 1, 0, 2 ** 32 - 1);
    if (plan.validators === undefined && byzantine !== undefined && byzantine >= 4) {
      throw new UsageError("--byzantine", "--byzantine must be smaller than the smallest n (4)");
    }
    const workers = intFlag("workers", values.workers, defaultWorkers(), 1, 64);
    let lastStatus = performance.now();
    const totals = await runSeeds(plan, {
      workers,
      onSeed: (_s, t) => {
        const now = performance.now();
        if (now - lastStatus < 2000) return;
        lastStatus = now;
        process.stderr.write(
          `sim: ${t.seeds}/${plan.count} seeds, ${t.heights} heights, ${t.viewChanges} view changes, ${t.failures.length} failing\n`,
        );
      },
    });
    if (values.json) process.stdout.write(`${toJson(totals)}\n`);
    else for (const line of formatTotals(totals)) console.log(line);
    return totals.failures.length > 0 ? 1 : 0;
  },
};
