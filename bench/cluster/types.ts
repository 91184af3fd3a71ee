// The cluster benchmark's options and report shapes (bench/cluster.ts runs it; bench/compare.ts reads its JSON).
import type { LocalCluster } from "../../src/cli/cluster.js";
import type { ConsensusParams, PresetName } from "../../src/params/index.js";
import type { MachineInfo } from "../lib/index.js";
import type { StuckReport } from "./stuck.js";
export interface ClusterBenchOpts {
  /** Start a local cluster of this many validators (in a temp dir), or use `api`. */
  validators?: number;
  /** API addresses of an existing cluster. */
  api?: string[];
  /** Existing cluster only: directory of funded account key files (e.g. <testnet>/accounts). */
  keysDir?: string;
  /** Existing cluster only: validators' metrics addresses, for the per-stage breakdown. */
  metrics?: string[];
  preset?: PresetName;
  /** Own cluster only: consensus parameters replacing the preset's (e.g. maxBlockTxs). */
  consensus?: Partial<ConsensusParams>;
  /** Own cluster only: peer links without TLS (net.insecure), to measure the cost of TLS. */
  insecurePeers?: boolean;
  /** Seconds of load (per step with sweep). */
  durationS: number;
  /** Offered load, tx/s (the starting rate with sweep). */
  rate: number;
  /**
   * Closed loop instead of open loop: this many clients, each submitting one transaction with
   * SubmitTxAndWait and waiting for its commit before the next (no sweep).
   */
  closedLoop?: number;
  /**
   * Closed loop: seconds of unrecorded warm-up before the measured `durationS` (default 1).
   * Open loop at one rate: seconds of a warm-up run at that rate first, reported apart with
   * `warmup` set and not judged (default 0).
   */
  warmupS?: number;
  /**
   * Open loop at one rate: the warm-up climbs to the rate in WARMUP_RAMP (bench/cluster.ts)
   * equal steps instead of starting cold at the full rate. A cold cluster at 1,200 tx/s builds a
   * seconds-long backlog while its code compiles and then spends the warm-up draining it
   * (bench/results/s28-lead-notes.md); a ramp measures the warm cluster's steady state.
   */
  warmupRamp?: boolean;
  sweep?: boolean;
  /**
   * Overload measurement: probe saturation (a short open-loop sweep from `rate`, ×1.25 per
   * `probeS`-second step, stopping at the first step that does not keep up), unless
   * `saturationTps` gives it; then offer `factor` × saturation for `durationS` with refusals
   * counted and never retried (bench/cluster/overload.ts).
   */
  overload?: { factor: number; probeS: number; saturationTps?: number };
  /** Rate multiplier per sweep step. */
  sweepFactor?: number;
  sweepMaxSteps?: number;
  /**
   * Open loop and overload: SubmitTxs batches of up to this many transactions (1: SubmitTx per
   * transaction). Default DEFAULT_SUBMIT_BATCH (bench/cluster.ts).
   */
  submitBatch?: number;
  /**
   * Open loop: each sender's batches on its own connection (submitter.ts, a lane per connection)
   * instead of one gathering lane whose calls go round-robin (the default). The lead's s24 runs:
   * with lanes, calls carry ~1 tx at light load and saturation fell from ~1,780 to ~1,230-1,370
   * tx/s for the same validators, from the calls alone.
   */
  stickySenders?: boolean;
  /** Client connections, spread round-robin over the nodes. */
  connections?: number;
  /** Distinct senders (funded accounts); more senders means less nonce serialisation. */
  senders?: number;
  /** How long to wait after the load for stragglers to commit and execute. */
  drainTimeoutS?: number;
  /** Result directory, or null to write nothing. */
  outDir: string | null;
  /** Result file base name. */
  name?: string;
  /** Progress on stderr. */
  progress?: boolean;
  signal?: AbortSignal;
  /** Length of each verification-ceiling burst (single thread, then all cores); default 1000 ms. */
  verifyCeilingMs?: number;
  /** Receives the LocalCluster as soon as it exists (the demo's SIGINT handler stops it). */
  onCluster?: (cluster: LocalCluster) => void;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface TimelinePoint {
  second: number;
  sent: number;
  committed: number;
  finalityP50Ms: number | null;
  finalityP99Ms?: number | null;
  finalityMaxMs?: number | null;
}

/**
 * Where the time goes, from the validators' own metrics (scraped before and after the run; the
 * difference, averaged over the validators): mean ms per observation and count per committed
 * height, plus process CPU.
 */
export interface StageBreakdown {
  /** Signing-state writes before sends: mean ms and writes per height, per validator. */
  persistMs: number | null;
  persistsPerHeight: number | null;
  /** PREPARE signed -> COMMIT signed (prepared), mean ms. */
  preparedMs: number | null;
  /** COMMIT signed -> delivered (committed), mean ms. */
  committedMs: number | null;
  /** RocksDB batch writes by kind, mean ms. */
  dbWriteMs: Record<string, number>;
  /** Submit (admitted by the node's API) -> committed, mean ms, over the nodes that took submits. */
  apiFinalityMs: number | null;
  /** Public API calls, mean ms by method (OK only). */
  apiCallMs: Record<string, number>;
  /** Heights committed during the run (the highest validator's delta). */
  heights: number;
  viewChanges: number;
  /** Validators' CPU (user+sys) per committed height, ms, per validator (mean). */
  cpuPerHeightMsPerValidator: number | null;
  /** All validators' CPU per committed transaction, ms (the cluster's cost of one tx). */
  cpuPerTxMs: number | null;
  /** All validators' CPU over the run, in cores. */
  cpuCores: number;
  /**
   * Share of the run's wall time each execution pipeline stage (prepare, execute, persist) was
   * busy, mean over the validators (issue 13: is saturation bound by execution or persistence?).
   * Absent in result files written before it existed.
   */
  execBusy?: Record<string, number>;
  /**
   * Of the proposed blocks' transactions checked by the validators, the share the pool did not
   * vouch for, so verified at the check (consensus_block_check_txs_total); absent in older builds.
   */
  blockTxsVerifiedShare?: number;
  /** Gossip batches the validators shed under a backlog (GOSSIP_BACKLOG verdicts). */
  gossipShed?: number;
}

/**
 * The validators' own counters over a run's load window (overload: the judged window), from their
 * metrics scraped when the load started and when it ended: what the cluster committed, whatever
 * the bench client saw of it.
 */
export interface ValidatorWindow {
  /** Seconds between the two scrapes (each timed at its midpoint). */
  windowS: number;
  /** consensus_committed_txs_total delta, per validator (metrics order; null: not scraped). */
  committedTxs: (number | null)[];
  /** The median validator's committed transactions per second over the window. */
  tps: number;
  /** consensus_committed_height delta, the median validator. */
  heights: number;
  /** consensus_view_changes_total delta, the highest validator. */
  viewChanges: number;
  /**
   * Each validator's view (consensus_view) as the window closes (null: not scraped). One above
   * the others is a replica that started a view change nobody joined: it sits out the normal path
   * (every quorum then needs all the others) while view changes still reads 0 (l20-notes.md).
   */
  views?: (number | null)[];
  /**
   * Each validator's event-loop delay over the window (p99 and max, ms; the node's process metrics
   * reset at every scrape, so the closing scrape covers the window): how late it runs anything,
   * an API answer included. Null where not exported.
   */
  loopDelayP99Ms?: (number | null)[];
  loopDelayMaxMs?: (number | null)[];
  /**
   * Per validator: request timers that fired in the window (consensus_request_timeouts_total)
   * and those whose deferred expiry found progress first (`superseded`, c17's driver),
   * and at the last one ever fired on it (consensus_last_request_timeout_seconds, ms) the armed
   * timeout, the longest recent wait the pace knew, and the Node timer's lateness. Null where
   * not exported (a build without the pacer metrics).
   */
  requestTimeouts?: ({
    fired: number;
    superseded?: number;
    armedMs: number;
    longestWaitMs: number;
    lateMs: number;
    /** Fired timers in the window by what the lowest uncommitted height waited for (pace.ts StallPhase). */
    stalledAt?: Record<string, number>;
  } | null)[];
}

/**
 * The overload client's own timings: a sender is busy from its send to its answer, so "not sent"
 * follows (rate × answer time > senders). Each part separately: the client's lateness, the round
 * trip, and the client's own event-loop stalls (which delay both sends and the handling of answers).
 */
export interface AnswerTimes {
  /** Actual send − scheduled send: the generator's lateness (the client's event loop, signing). */
  sendLagMs: LatencySummary;
  /** Answer handled − actual send: the round trip, the node's API handler and both event loops. */
  roundTripMs: LatencySummary;
  /** The bench process's event-loop delay over the load (perf_hooks), ms. */
  clientLoopDelayMs: { p50: number; p99: number; max: number };
  /** Submissions awaiting an answer, sampled each generator tick: mean and max. */
  outstandingMean: number;
  outstandingMax: number;
  /** "Not sent" per second of the load. */
  notSentBySecond: number[];
}

export interface RunReport {
  /** Per-stage figures from the validators' metrics (own cluster, or --metrics). */
  stages?: StageBreakdown;
  /** Overload: the validators' own counters over the load window (absent without metrics). */
  validatorWindow?: ValidatorWindow;
  /**
   * open: fixed offered rate; closed: `clients` clients, each waiting for its commit; overload:
   * fixed offered rate above saturation, refusals counted and never retried (overload.ts).
   */
  mode?: "open" | "closed" | "overload";
  /** An unjudged warm-up run: the overload's before its probe, or an open loop's --warmup. */
  warmup?: boolean;
  /** Closed loop: number of clients. */
  clients?: number;
  /** Closed loop: the achieved rate (nothing is offered). */
  offeredRate: number;
  durationS: number;
  scheduled: number;
  submitted: number;
  /** Open loop and overload: SubmitTx or SubmitTxs calls made (transactions per call = sends / this). */
  submitCalls?: number;
  submitFailures: Record<string, number>;
  /** Open loop: refusals ("STATUS/CODE") the client retried after the server's hint (OVERLOADED,
   *  and the NONCE_GAP of later nonces behind a refused one); absent in older results. */
  refusedRetried?: Record<string, number>;
  /** Overload: refusals ("STATUS/CODE") the client counted and did not retry (the payment is
   *  abandoned; the sender's next payment takes its nonce). */
  refused?: Record<string, number>;
  /** Overload: sends the client could not make because every sender awaited an answer. */
  clientBlocked?: number;
  /**
   * Overload: transfers the client signed before the load (each sender's next nonces) and during
   * it (senders that used those up); absent in older results, whose client signed every send
   * during the load.
   */
  signed?: { before: number; during: number };
  /** Overload: where a submission's answer time goes, seen from the client (why "not sent"). */
  answerTimes?: AnswerTimes;
  /**
   * Open loops: commits per second from the first commit to the last. A step that keeps up
   * commits at its offered rate; one past saturation drains its backlog at capacity after the load,
   * so this is its capacity, free of the ramp (finality) at the start and the drain at the end.
   */
  sustainedTps?: number;
  /** Open loops: transactions committed while the load lasted (overload: achievedTps = this /
   *  durationS); absent in older results. */
  committedInWindow?: number;
  committed: number;
  executed: number;
  /** Admitted but not committed by the end of the drain period. */
  uncommitted: number;
  /** Why each of `uncommitted` did not commit (stuck.ts); absent when nothing was left. */
  stuck?: StuckReport;
  /** committed / (last commit − first scheduled send). */
  achievedTps: number;
  ratioToClusterCeiling: number;
  ratioToMachineCeiling: number;
  finalityMs: LatencySummary;
  executedMs: LatencySummary;
  submitAckMs: LatencySummary;
  /** How far the generator fell behind its schedule (ms). */
  generatorMaxLagMs: number;
  /** CPU the benchmark process itself used during load and drain, in % of one core. */
  generatorCpuPercent: number;
  blocks: number;
  timeline: TimelinePoint[];
}

export interface VerifyCeiling {
  /** node:crypto Ed25519 verifies per second, one thread, cached KeyObject. */
  singleThreadPerSec: number;
  /** The same on every core at once (worker threads), summed. */
  allCoresPerSec: number;
  cores: number;
  /**
   * Every validator verifies every transaction, and all of them share this machine's cores:
   * allCores / validators bounds a local cluster's throughput (DESIGN §11).
   */
  clusterCeilingPerSec: number;
}

export interface ChainVerification {
  /** Transactions counted as committed and looked up with GetTx. */
  checked: number;
  inChain: number;
  missing: number;
  heightMismatch: number;
  receiptsChecked: number;
  receiptStatus: Record<string, number>;
  /** Error strings of sampled non-OK receipts, with counts. */
  receiptErrors: Record<string, number>;
  certificatesChecked: number;
  certificatesValid: number;
  certificateFailures: string[];
}

export interface ClusterBenchReport {
  kind: "parabft-cluster-bench";
  version: 1;
  startedAt: string;
  machine: MachineInfo;
  setup: {
    validators: number;
    apis: string[];
    ownCluster: boolean;
    preset: string | null;
    /** Own cluster: the consensus parameters that replaced the preset's (absent: none). */
    consensus?: Partial<ConsensusParams>;
    /** Own cluster: whether peer links ran over mTLS (false: --insecure-peers); null for --api. */
    peerTls?: boolean | null;
    chainId: string;
    senders: number;
    connections: number;
    workload: string;
    /** How the open-loop and overload clients submit (SubmitTx per tx, or SubmitTxs batches). */
    submit?: string;
    finalityMethod: string;
    executedMethod: string;
    /** The watched node's stream carried the executed height (false: polled; null: unknown). */
    executedFeed?: boolean | null;
    /** GetStatus calls of the chain watcher over the whole bench (warm-up included). */
    watcherStatusCalls?: number;
  };
  verifyCeiling: VerifyCeiling;
  runs: RunReport[];
  /** The last sweep step that kept up; null offeredRate when even the first did not. */
  saturation: {
    offeredRate: number | null;
    achievedTps: number | null;
    finalityP99Ms: number | null;
    reason: string;
    /** Rates that failed once and kept up when run again (the overload probe's retries). */
    stalls?: number[];
  } | null;
  /** The overload measurement (--overload), when it ran. */
  overload?: OverloadSummary;
  verification: ChainVerification;
  files?: { json: string; table: string; svg?: string };
}

/** Issue 14's overload goal, measured: saturation first, then `factor` × it with refusals counted. */
export interface OverloadSummary {
  /** How saturation was found (probe sweep in the same run, or given with --saturation). */
  saturationMethod: string;
  /** The reference: highest commit throughput of the probe steps (or the given figure), tx/s. */
  saturationTps: number;
  /** How the probe ended (absent with --saturation): without a rate that failed twice, saturation is a lower bound. */
  probe?: {
    found: boolean;
    lastKeptUpRate: number | null;
    failedTwiceRate: number | null;
    stalledOnceRates: number[];
    stoppedBecause: string;
    /**
     * Diagnostic, not the goal: the median of what the probe's steps offered ≥ 90 % of saturation
     * sustained (probe.ts topStepsMedian), how many there were, and achievedTps over that median.
     * saturationTps is the best of those noisy steps; this says how far above their typical
     * figure it sits.
     */
    topSteps?: { steps: number; medianTps: number; ratio: number };
  };
  factor: number;
  offeredRate: number;
  durationS: number;
  /**
   * Committed tx/s over the load window and its ratio to saturationTps, judged on the validators'
   * own counters (`validators`) when their metrics were scraped, else on what the client saw.
   */
  achievedTps: number;
  ratioToSaturation: number;
  /** Where achievedTps comes from. */
  achievedFrom: "validators" | "client";
  /** The bench client's own figure: commits it saw on its block stream during the load, per second. */
  clientAchievedTps: number;
  clientRatioToSaturation: number;
  /** The validators' counters over the load window (null: no metrics). */
  validators: ValidatorWindow | null;
  /** View changes during the overload run and its drain (validators' metrics; the highest validator's count). */
  viewChanges: number | null;
  /** Refusals by "STATUS/CODE", and sends the client could not make (every sender awaiting). */
  refused: Record<string, number>;
  clientBlocked: number;
  /** Other submit errors (not a load refusal): should be none. */
  submitFailures: Record<string, number>;
  admitted: number;
  /** Admitted and not committed by the end of the drain: lost unless the chain check finds them. */
  admittedNotCommitted: number;
  /** Why they did not commit (stuck.ts); absent when nothing was left. */
  stuck?: StuckReport;
  finalityP50Ms: number;
  finalityP99Ms: number;
  submitAckP99Ms: number;
  /**
   * The client's lateness behind its schedule (answerTimes.sendLagMs p50/p99, ms): a client that
   * could not offer the load on time (a one-thread client on a busy box) measured a spread-out
   * load, whatever the goals say. Absent in older results.
   */
  sendLagP50Ms?: number;
  sendLagP99Ms?: number;
  /** The goal's three checks, each with a pass flag and why. */
  goals: { name: string; pass: boolean; detail: string }[];
}
