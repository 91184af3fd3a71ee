// What one simulation run is given (SimConfig) and what it reports (SimResult), the simulator's
// fixed chain id and timing, and the deterministic key material a seed derives. Shared by the run
// itself (simulation.ts), its epoch half (elections.ts), the multi-seed runner and the tests.
import { createHash } from "node:crypto";
import type { ConsensusTiming, TestOnlyFaults } from "../consensus/pbft/types.js";
import { u32be } from "../types/bytes.js";
import type { FaultKind, FaultPlan } from "./faults.js";
import type { Violation } from "./invariants.js";
import type { NetworkProfile } from "./network.js";

export const SIM_CHAIN_ID = "parabft-sim";

/** Timing used by the simulator: short timeouts so a seed covers many views in little virtual time. */
export const SIM_TIMING: ConsensusTiming = {
  window: 10,
  checkpointInterval: 5,
  maxExecLag: 5,
  viewTimeoutMs: 200,
  viewTimeoutCapMs: 1000,
  maxClockSkewMs: 10_000,
};

/**
 * Liveness bound: after stabilisation at T every transaction commits by T + k × capped view
 * timeout. k = 6 covers f + 1 ≤ 3 consecutive failed views at the cap (n ≤ 7) plus view
 * synchronisation and catch-up of restarted replicas.
 */
export const LIVENESS_K = 6;
/** Default stabilisation time T: faults happen in [0, T). */
export const DEFAULT_STABLE_AT_MS = 4000;

export interface SimConfig {
  seed: number;
  n: number;
  /** Byzantine replicas (k); at most f unless a test explicitly goes beyond. */
  byzantine: number;
  faults: readonly FaultKind[];
  timing?: ConsensusTiming;
  /** Stabilisation time T (virtual ms). */
  stableAtMs?: number;
  livenessK?: number;
  /** Total virtual time; default T + k × cap + 500. */
  durationMs?: number;
  clients?: number;
  /** Client think time between submissions, virtual ms. */
  txIntervalMs?: [number, number];
  /** Clients stop submitting at this time; default duration − liveness deadline. */
  submitUntilMs?: number;
  testOnlyFaults?: TestOnlyFaults;
  /** Replicas skip verifying votes they will not use, as the node does (ReplicaConfig.skipUnneededVotes). */
  skipUnneededVotes?: boolean;
  /** Replicas crashed from time 0; restarted at restartAtMs when given. Counts as a fault before T. */
  crashedAtStart?: { replicas: number[]; restartAtMs?: number };
  /** Replaces the seed's network profile (e.g. constant delay for latency measurement). */
  network?: NetworkProfile;
  /** Fixed Byzantine roles instead of seed-chosen ones. */
  byzantineRoles?: Map<number, FaultPlan["byzantine"] extends Map<number, infer B> ? B : never>;
  checkLiveness?: boolean;
  /** Report an honest replica rejecting an honest replica's message (default true). */
  checkVerdicts?: boolean;
  /** Random execution delay upper bound (virtual ms). */
  execDelayMs?: number;
  maxSteps?: number;
  /**
   * (Epochs, issue 11) Heights per epoch: the replicas run `EpochReplica`, clients also send
   * staking calls, and each replica's stand-in executor runs the real staking programs and epoch
   * hook, whose elections give the sets (src/sim/staking.ts). Absent: one set.
   */
  epochLength?: number;
  /** (Epochs) Validators beyond n that register with RegisterValidator and compete (default 1). */
  extraValidators?: number;
  /** (Epochs, test only) This replica's stand-in executor ignores Vote calls: a divergent executor. */
  testOnlySkipVotesAt?: number;
  /** (Epochs) When epoch `epoch`'s last height first commits, `count` honest members of its set crash for good. */
  crashAtBoundary?: { epoch: number; count: number };
}

export interface SimResult {
  seed: number;
  n: number;
  byzantine: number;
  faults: string;
  traceHash: string;
  /** Highest height committed by any honest replica (all agree on it by the agreement invariant). */
  committedHeight: number;
  /** Highest view any honest replica reached: the number of view changes. */
  viewChanges: number;
  simulatedMs: number;
  steps: number;
  messages: number;
  txSubmitted: number;
  txCommitted: number;
  violations: Violation[];
  /** Time of the first honest commit (virtual ms), or -1. */
  firstCommitMs: number;
  /** Per height: first honest delivery − proposal time at the primary (virtual ms). */
  commitLatenciesMs: number[];
  txLatenciesMs: number[];
  rejectedByHonest: number;
  /** Known-bad Byzantine messages whose verdict at an honest replica was checked. */
  expectationsChecked: number;
  truncated: boolean;
  /** NEW-VIEWs that re-proposed, at some height, a digest other than one an honest replica COMMITted there. */
  newViewOverrides: number;
  /** The stitch script (faults `stitch`) reached its goal: two digests each stitchable, neither certifiable. */
  stitchReached: boolean;
  /** The command that replays this run. */
  replay: string;
  /** (Epochs) Highest epoch an honest replica entered (0 without epochs). */
  epochsReached: number;
  /** (Epochs) Per boundary B: first honest commit of B + 1 (by the new set) − first honest commit of B, virtual ms. */
  handoffMs: number[];
  /** (Epochs) The same gap for every other height h (h − 1 not a boundary): the baseline. */
  commitGapsMs: number[];
  /** (Epochs) Sets elected by execution (epochs ≥ 2), and how many differ in members from the epoch before. */
  electedSets: number;
  setChanges: number;
  /** (Epochs) Distinct member lists among the genesis set and the elected ones. */
  distinctSets: number;
  /** (Epochs) Staking calls executed (first execution of each height) and how many failed. */
  stakingCalls: number;
  stakingFailed: number;
}

export function replayCommand(cfg: SimConfig): string {
  const parts = [`parabft sim --seed ${cfg.seed} --validators ${cfg.n} --byzantine ${cfg.byzantine}`];
  parts.push(`--faults ${cfg.faults.length === 0 ? "none" : cfg.faults.join(",")}`);
  const t = cfg.testOnlyFaults;
  if (cfg.epochLength !== undefined) parts.push(`--epoch-length ${cfg.epochLength}`);
  if (t !== undefined) {
    const on = Object.entries(t)
      .filter(([, v]) => v === true)
      .map(([k]) => k);
    if (on.length > 0) parts.push(`--test-only-faults ${on.join(",")}`);
  }
  return parts.join(" ");
}

/** A validator's advertised address (registration data only: the simulator routes by index). */
export function peerAddressOf(i: number): string {
  return `127.0.0.1:${26000 + i}`;
}

/** A seed's 32-byte secret for the i-th key of a role ("validator", "operator", "client0", ...). */
export function seedSecret(seed: number, role: string, i: number): Uint8Array {
  return createHash("sha256").update(`sim/${seed}/${role}/`).update(u32be(i)).digest();
}
