// Runs many seeds, spread over worker threads (2 cores: one worker per core). Each worker runs
// whole seeds; the main thread only hands out seed chunks and folds the summaries, so results
// do not depend on how seeds were spread.
import { cpus } from "node:os";
import { Worker } from "node:worker_threads";
import type { TestOnlyFaults } from "../consensus/pbft/types.js";
import type { SimConfig, SimResult } from "./config.js";
import type { FaultKind } from "./faults.js";
import { runSimulation } from "./simulation.js";

/**
 * What a worker sends back per seed: the result without its per-height and per-tx latency lists
 * (large, and only the single-seed measurements read them) and the summary faults string.
 */
export type SeedSummary = Omit<
  SimResult,
  | "faults"
  | "firstCommitMs"
  | "commitLatenciesMs"
  | "txLatenciesMs"
  | "rejectedByHonest"
  | "expectationsChecked"
>;

export function summarise(r: SimResult): SeedSummary {
  const {
    faults: _faults,
    firstCommitMs: _first,
    commitLatenciesMs: _commits,
    txLatenciesMs: _txs,
    rejectedByHonest: _rejected,
    expectationsChecked: _expectations,
    ...summary
  } = r;
  return summary;
}

export interface SeedPlan {
  /** First seed; seeds are firstSeed .. firstSeed + count − 1. */
  firstSeed: number;
  count: number;
  /** Fixed validator count; when absent seeds cycle over n = 4, 5, 6, 7. */
  validators?: number;
  /** Byzantine replicas per seed; default f = ⌊(n − 1)/3⌋. */
  byzantine?: number;
  faults: readonly FaultKind[];
  testOnlyFaults?: TestOnlyFaults;
  /** Extra SimConfig fields applied to every seed. */
  overrides?: Partial<SimConfig>;
}

export const N_CYCLE = [4, 5, 6, 7] as const;

export function configForSeed(plan: SeedPlan, seed: number): SimConfig {
  const n = plan.validators ?? N_CYCLE[seed % N_CYCLE.length]!;
  const f = Math.floor((n - 1) / 3);
  return {
    ...plan.overrides,
    seed,
    n,
    byzantine: plan.byzantine ?? f,
    faults: plan.faults,
    testOnlyFaults: plan.testOnlyFaults,
  };
}

export interface RunTotals {
  seeds: number;
  heights: number;
  viewChanges: number;
  simulatedMs: number;
  messages: number;
  txSubmitted: number;
  txCommitted: number;
  truncated: number;
  /** Seeds in which some NEW-VIEW re-proposed a digest other than one an honest replica COMMITted. */
  seedsWithOverride: number;
  /** Seeds in which the stitch script (faults `stitch`) reached its goal. */
  seedsStitchReached: number;
  failures: SeedSummary[];
  wallMs: number;
  /** (Epochs) sum over seeds of the highest epoch entered = epoch switches seen. */
  epochSwitches: number;
  handoffMs: number[];
  commitGapsMs: number[];
  /** (Epochs) sums over seeds of the SeedSummary fields of the same names. */
  electedSets: number;
  setChanges: number;
  distinctSets: number;
  stakingCalls: number;
  stakingFailed: number;
}

export interface RunOptions {
  workers?: number;
  /** Stop handing out seeds after the first violation. */
  stopOnViolation?: boolean;
  onSeed?: (s: SeedSummary, totals: RunTotals) => void;
}

function emptyTotals(): RunTotals {
  return {
    seeds: 0,
    heights: 0,
    viewChanges: 0,
    simulatedMs: 0,
    messages: 0,
    txSubmitted: 0,
    txCommitted: 0,
    truncated: 0,
    seedsWithOverride: 0,
    seedsStitchReached: 0,
    failures: [],
    wallMs: 0,
    epochSwitches: 0,
    handoffMs: [],
    commitGapsMs: [],
    electedSets: 0,
    setChanges: 0,
    distinctSets: 0,
    stakingCalls: 0,
    stakingFailed: 0,
  };
}

function add(t: RunTotals, s: SeedSummary): void {
  t.seeds++;
  t.heights += s.committedHeight;
  t.viewChanges += s.viewChanges;
  t.simulatedMs += s.simulatedMs;
  t.messages += s.messages;
  t.txSubmitted += s.txSubmitted;
  t.txCommitted += s.txCommitted;
  if (s.truncated) t.truncated++;
  if (s.newViewOverrides > 0) t.seedsWithOverride++;
  if (s.stitchReached) t.seedsStitchReached++;
  if (s.violations.length > 0) t.failures.push(s);
  t.epochSwitches += s.epochsReached;
  for (const x of s.handoffMs) t.handoffMs.push(x);
  for (const x of s.commitGapsMs) t.commitGapsMs.push(x);
  t.electedSets += s.electedSets;
  t.setChanges += s.setChanges;
  t.distinctSets += s.distinctSets;
  t.stakingCalls += s.stakingCalls;
  t.stakingFailed += s.stakingFailed;
}

export function defaultWorkers(): number {
  return Math.max(1, Math.min(2, cpus().length));
}

/** Runs the plan's seeds; with workers ≤ 1 everything runs on this thread. */
export async function runSeeds(plan: SeedPlan, opts: RunOptions = {}): Promise<RunTotals> {
  const started = performance.now();
  const totals = emptyTotals();
  const workers = Math.min(opts.workers ?? defaultWorkers(), Math.max(1, plan.count));
  if (workers <= 1) {
    for (let i = 0; i < plan.count; i++) {
      const s = summarise(runSimulation(configForSeed(plan, plan.firstSeed + i)));
      add(totals, s);
      opts.onSeed?.(s, totals);
      if (opts.stopOnViolation && s.violations.length > 0) break;
    }
    totals.wallMs = performance.now() - started;
    return totals;
  }

  const chunk = Math.max(1, Math.min(8, Math.ceil(plan.count / (workers * 8))));
  let next = 0;
  let stop = false;
  const results = new Map<number, SeedSummary>();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      const w = new Worker(new URL("./worker.js", import.meta.url));
      try {
        for (;;) {
          if (stop || next >= plan.count) break;
          const from = next;
          const to = Math.min(plan.count, from + chunk);
          next = to;
          const configs: SimConfig[] = [];
          for (let i = from; i < to; i++) configs.push(configForSeed(plan, plan.firstSeed + i));
          let out: SeedSummary[];
          try {
            out = await request(w, configs);
          } catch (err: unknown) {
            stop = true;
            throw err;
          }
          for (const s of out) {
            results.set(s.seed, s);
            add(totals, s);
            opts.onSeed?.(s, totals);
            if (opts.stopOnViolation && s.violations.length > 0) stop = true;
          }
        }
      } finally {
        await w.terminate();
      }
    }),
  );
  totals.failures.sort((a, b) => a.seed - b.seed);
  totals.wallMs = performance.now() - started;
  return totals;
}

function request(w: Worker, configs: SimConfig[]): Promise<SeedSummary[]> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { ok: true; summaries: SeedSummary[] } | { ok: false; error: string }) => {
      cleanup();
      if (msg.ok) resolve(msg.summaries);
      else reject(new Error(msg.error));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`simulator worker exited with code ${code}`));
    };
    const cleanup = () => {
      w.off("message", onMessage);
      w.off("error", onError);
      w.off("exit", onExit);
    };
    w.on("message", onMessage);
    w.on("error", onError);
    w.on("exit", onExit);
    w.postMessage(configs);
  });
}
