// The cluster benchmark (DESIGN §10, §11): open-loop load of pre-signed transfers against a
// running ParaBFT cluster, finality and execution latency in HDR histograms, throughput as a
// ratio to this machine's signature-verification ceiling measured in the same run, and a final
// check that every transaction counted as committed really is in the chain.
//
// How latency is observed (and why): each transaction is sent with SubmitTx (a fast admission
// ack), and one StreamBlocks watcher on a dedicated connection matches the hashes of committed
// blocks. submit->committed is the time from the transaction's *scheduled* send time (so a
// slow generator or a saturated API cannot hide latency: no coordinated omission) to the moment
// its block arrives on the stream. submit->executed uses the same node's GetStatus executed
// height, polled every few ms on the watcher connection. SubmitTxAndWait per transaction was
// rejected: it holds one call open per in-flight transaction, so at a few hundred tx/s it runs
// into the API's per-connection in-flight limit and measures that limit instead of finality, and
// it makes the node keep a waiter per transaction.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { LocalCluster } from "../src/cli/cluster.js";
import { ParabftClient } from "../src/client/node.js";
import { nativeSha256 } from "../src/crypto/hash.js";
import { readKeyFile } from "../src/crypto/keys.js";
import { NodeSigner } from "../src/crypto/node.js";
import { useSha256 } from "../src/types/index.js";
import { ChainWatcher, executedMethod, verifyChain } from "./cluster/chain.js";
import {
  Connection,
  measured,
  PER_CONNECTION_IN_FLIGHT,
  type RunContext,
  runClosedLoop,
  runOnce,
  type Sender,
} from "./cluster/load.js";
import { runOverload } from "./cluster/overload.js";
import {
  type ScheduleOutcome,
  StepSchedule,
  type StepSchedulePlan,
  topStepsMedian,
} from "./cluster/probe.js";
import { chartReport, formatReport } from "./cluster/report.js";
import { SignPool } from "./cluster/signPool.js";
import { round3 } from "./cluster/stages.js";
import { OVERLOAD_BATCH_DELAY_MS, SUBMIT_BATCH_DELAY_MS, Submitter } from "./cluster/submitter.js";
import type { ClusterBenchOpts, ClusterBenchReport, OverloadSummary, RunReport } from "./cluster/types.js";
import { measureVerifyCeiling } from "./cluster/verifyCeiling.js";
import { machineInfo, writeResultFiles } from "./lib/index.js";

export { formatReport } from "./cluster/report.js";
export { formatStages, scrapeMetrics, stageBreakdown } from "./cluster/stages.js";
export type * from "./cluster/types.js";
export { measureVerifyCeiling } from "./cluster/verifyCeiling.js";

// ---------------------------------------------------------------------------------------------
// Orchestration

/**
 * SubmitTxs batch size of the open-loop and overload clients unless `--submit-batch` says
 * otherwise (1: one SubmitTx per transaction, the path before SubmitTxs).
 */
export const DEFAULT_SUBMIT_BATCH = 64;

async function loadSenders(keyFiles: string[], clients: ParabftClient[]): Promise<Sender[]> {
  const senders: Sender[] = [];
  for (const f of keyFiles) {
    const kp = await readKeyFile(f);
    senders.push({
      signer: new NodeSigner(kp.secretKey),
      secretKey: kp.secretKey,
      address: kp.address,
      nextNonce: 0n,
      tainted: false,
    });
  }
  // A bounded number of reads at a time: a thousand at once trip the API's per-connection limits.
  for (let from = 0; from < senders.length; from += 64) {
    await Promise.all(
      senders.slice(from, from + 64).map(async (s, k) => {
        const i = from + k;
        s.nextNonce = (await clients[i % clients.length]!.getAccount(s.address)).nonce;
      }),
    );
  }
  return senders;
}

/**
 * Why a sweep step did not keep up, or null. `baseline` (the first step) adds the latency
 * criterion; without it only errors and throughput count (the overload probe: the reference is
 * the most the cluster commits, whatever its latency).
 */
function isSaturated(run: RunReport, baseline: RunReport | null): string | null {
  const failed = Object.values(run.submitFailures).reduce((a, b) => a + b, 0) + run.uncommitted;
  if (failed > 0.01 * run.scheduled) return `errors: ${failed} of ${run.scheduled} not committed`;
  // The probe judges by the sustained rate: short steps with seconds of finality would otherwise
  // count their own latency as a shortfall.
  const tps = baseline === null ? (run.sustainedTps ?? run.achievedTps) : run.achievedTps;
  if (tps < 0.9 * run.offeredRate) {
    return `throughput: ${baseline === null ? "sustained" : "achieved"} ${tps} tx/s < 90% of offered ${run.offeredRate}`;
  }
  if (baseline === null) return null;
  const limit = Math.max(500, 5 * baseline.finalityMs.p99);
  if (run.finalityMs.p99 > limit) return `latency: p99 ${run.finalityMs.p99} ms > ${limit} ms`;
  return null;
}

interface SweepPlan extends StepSchedulePlan {
  durationS: number;
  /** Judge steps by errors and throughput only (no latency criterion). */
  throughputOnly: boolean;
  label: string;
}

/** Open-loop steps on `StepSchedule`'s rates until it stops; the runs and the saturation point. */
async function sweep(
  ctx: RunContext,
  plan: SweepPlan,
  say: (m: string) => void,
): Promise<{
  runs: RunReport[];
  saturation: NonNullable<ClusterBenchReport["saturation"]> | null;
  outcome: ScheduleOutcome;
}> {
  const runs: RunReport[] = [];
  const schedule = new StepSchedule(plan);
  for (let rate = schedule.next(); rate !== null && !ctx.signal?.aborted; rate = schedule.next()) {
    const run = await measured(ctx, () =>
      runOnce(ctx, rate!, plan.durationS, `${plan.label} ${runs.length + 1}: ${rate} tx/s`),
    );
    runs.push(run);
    const why = isSaturated(run, plan.throughputOnly ? null : runs[0]!);
    say(
      `  offered ${rate} tx/s: achieved ${run.achievedTps} tx/s, finality p50 ${run.finalityMs.p50} ms p99 ${run.finalityMs.p99} ms${why ? ` — saturated (${why})` : ""}`,
    );
    schedule.record(why);
  }
  const outcome = schedule.outcome();
  // The last step at the highest rate that kept up (a stalled rate's retry is the one that did).
  let good: RunReport | undefined;
  for (const r of runs) if (r.offeredRate === outcome.lastGood) good = r;
  const saturation: NonNullable<ClusterBenchReport["saturation"]> | null =
    good !== undefined
      ? {
          ...saturationAt(good, outcome.reason),
          ...(outcome.stalls.length ? { stalls: outcome.stalls } : {}),
        }
      : runs.length > 0
        ? { offeredRate: null, achievedTps: null, finalityP99Ms: null, reason: outcome.reason }
        : null;
  return { runs, saturation, outcome };
}

/** The saturation point a sweep reports: the step `run` that kept up, and why it stopped there. */
function saturationAt(run: RunReport, reason: string): NonNullable<ClusterBenchReport["saturation"]> {
  return {
    offeredRate: run.offeredRate,
    achievedTps: run.achievedTps,
    finalityP99Ms: run.finalityMs.p99,
    reason,
  };
}

/** Thrown when `signal` aborted the run; the cluster and temp files are cleaned up first. */
export class BenchAborted extends Error {
  constructor() {
    super("benchmark interrupted");
    this.name = "BenchAborted";
  }
}

const CLOSED_LOOP_METHOD =
  "closed loop: each client signs a tx, calls SubmitTxAndWait (committed) on its node and measures until the reply; then the next";
const FINALITY_METHOD =
  "SubmitTx ack + StreamBlocks watcher; latency from each tx's scheduled send time to its block's arrival on the stream";

const WARMUP_S = 5;
/** `--warmup-ramp`: the warm-up's steps as shares of the rate, each an equal part of its seconds. */
const WARMUP_RAMP = [0.25, 0.5, 0.75, 1] as const;
/** The overload probe's climb, and its finer climb after the first counted failure. */
const PROBE_FACTOR = 1.5;
const PROBE_REFINE = 1.15;
const OVERLOAD_CLIENT =
  "each send submits the next signed transfer (signed before the load) of the next sender that awaits no answer; a refusal is counted, never retried as an extra send, and the same transfer is that sender's next payment";

/** An open-loop run at `rate` for `seconds`, reported with `warmup` set and judged by nothing. */
async function warmUp(
  ctx: RunContext,
  what: string,
  rate: number,
  seconds: number,
  runs: RunReport[],
  say: (m: string) => void,
): Promise<void> {
  say(`${what}: warming up (${rate} tx/s for ${seconds} s, not judged) ...`);
  runs.push(await measured(ctx, () => runOnce(ctx, rate, seconds, "warm-up")));
  runs.at(-1)!.warmup = true;
}

/**
 * Issue 14's overload goal: saturation measured in this run (an open-loop sweep judged by errors
 * and throughput only: the reference is the most the cluster commits; a closed loop would measure
 * its clients' round trips instead), then `factor` × that offered for `durationS`.
 */
async function measureOverload(
  ctx: RunContext,
  opts: ClusterBenchOpts,
  o: NonNullable<ClusterBenchOpts["overload"]>,
  runs: RunReport[],
  say: (m: string) => void,
): Promise<OverloadSummary> {
  let saturationTps: number;
  let saturationMethod: string;
  let probeOutcome: ScheduleOutcome | null = null;
  let topSteps: ReturnType<typeof topStepsMedian> = null;
  if (o.saturationTps !== undefined) {
    saturationTps = o.saturationTps;
    saturationMethod = "given (--saturation), not measured in this run";
  } else {
    // A fresh cluster stalls for its first seconds under load (cold code, connections, first
    // view): unjudged, or the first probe step would understate saturation.
    await warmUp(ctx, "overload", opts.rate, WARMUP_S, runs, say);
    say(
      `overload: probing saturation (open loop from ${opts.rate} tx/s, ×${PROBE_FACTOR} per ${o.probeS} s step, a failed step run twice, then ×${PROBE_REFINE}) ...`,
    );
    const probe = await sweep(
      ctx,
      {
        rate: opts.rate,
        factor: PROBE_FACTOR,
        maxSteps: opts.sweepMaxSteps ?? 16,
        durationS: o.probeS,
        throughputOnly: true,
        stepDown: true,
        stepUpAgain: true,
        confirm: true,
        refineFactor: PROBE_REFINE,
        label: "probe",
      },
      say,
    );
    runs.push(...probe.runs);
    probeOutcome = probe.outcome;
    // The reference is the highest rate a step sustained from its first commit to its last (a
    // step past saturation drains at capacity): neither the ramp at its start nor the drain
    // after it dilutes it. The overload run's achieved rate (commits during its load window)
    // includes its ramp, so the comparison leans against the build under test.
    // Capped at the step's offered rate: a stall's backlog drained in a burst is no capacity.
    saturationTps = Math.max(
      0,
      ...probe.runs.map((r) => Math.min(r.offeredRate, r.sustainedTps ?? r.achievedTps)),
    );
    topSteps = topStepsMedian(
      probe.runs.map((r) => ({ offeredRate: r.offeredRate, sustained: r.sustainedTps ?? r.achievedTps })),
      saturationTps,
    );
    saturationMethod = `after a ${WARMUP_S} s warm-up, an open-loop probe from ${opts.rate} tx/s ×${PROBE_FACTOR} per ${o.probeS} s step (÷${PROBE_FACTOR} while the first steps do not keep up; refusals retried); a step with >1% errors or < 90% of offered sustained is run once more and counts only if it fails again; after a counted failure the climb resumes from the last step that kept up at ×${PROBE_REFINE} until a step fails twice; saturation = the highest sustained rate (first to last commit, at most the step's offered rate) of any step`;
  }
  const rate = Math.max(1, Math.round(o.factor * saturationTps));
  say(`overload: ${rate} tx/s offered (${o.factor}× ${saturationTps} tx/s) for ${opts.durationS} s ...`);
  const run = await measured(ctx, () => runOverload(ctx, rate, opts.durationS, `overload ${rate} tx/s`));
  runs.push(run);
  return overloadSummary(run, saturationTps, saturationMethod, o.factor, probeOutcome, topSteps);
}

export function overloadSummary(
  run: RunReport,
  saturationTps: number,
  saturationMethod: string,
  factor: number,
  probe: ScheduleOutcome | null = null,
  topSteps: ReturnType<typeof topStepsMedian> = null,
): OverloadSummary {
  // Judged on the validators' own commit counters over the load window: the one-thread bench
  // client, on the same cores, can fall behind the block stream (o15-notes p4). Its figure stays beside.
  const validators = run.validatorWindow ?? null;
  const achievedTps = validators?.tps ?? run.achievedTps;
  const achievedFrom = validators !== null ? "validators" : "client";
  const ratio = saturationTps > 0 ? achievedTps / saturationTps : 0;
  const clientRatio = saturationTps > 0 ? run.achievedTps / saturationTps : 0;
  const viewChanges = run.stages?.viewChanges ?? null;
  const refused = run.refused ?? {};
  const refusedTotal = Object.values(refused).reduce((a, b) => a + b, 0);
  const otherFailures = Object.values(run.submitFailures).reduce((a, b) => a + b, 0);
  const excess = run.scheduled - run.submitted;
  return {
    saturationMethod,
    saturationTps,
    ...(probe !== null
      ? {
          probe: {
            found: probe.ceiling !== null,
            lastKeptUpRate: probe.lastGood,
            failedTwiceRate: probe.ceiling,
            stalledOnceRates: probe.stalls,
            stoppedBecause: probe.reason,
            ...(topSteps !== null
              ? {
                  topSteps: {
                    ...topSteps,
                    ratio: topSteps.medianTps > 0 ? round3(achievedTps / topSteps.medianTps) : 0,
                  },
                }
              : {}),
          },
        }
      : {}),
    factor,
    offeredRate: run.offeredRate,
    durationS: run.durationS,
    achievedTps,
    ratioToSaturation: round3(ratio),
    achievedFrom,
    clientAchievedTps: run.achievedTps,
    clientRatioToSaturation: round3(clientRatio),
    validators,
    viewChanges,
    refused,
    clientBlocked: run.clientBlocked ?? 0,
    submitFailures: run.submitFailures,
    admitted: run.submitted,
    admittedNotCommitted: run.uncommitted,
    ...(run.stuck ? { stuck: run.stuck } : {}),
    finalityP50Ms: run.finalityMs.p50,
    finalityP99Ms: run.finalityMs.p99,
    submitAckP99Ms: run.submitAckMs.p99,
    ...(run.answerTimes
      ? { sendLagP50Ms: run.answerTimes.sendLagMs.p50, sendLagP99Ms: run.answerTimes.sendLagMs.p99 }
      : {}),
    goals: [
      {
        name: "achieved ≥ 90% of saturation",
        pass: ratio >= 0.9,
        detail: `${achievedTps} / ${saturationTps} tx/s = ${(100 * ratio).toFixed(1)}% (${achievedFrom === "validators" ? "validators' commit counters" : "the client's block stream"})${probe !== null && probe.ceiling === null ? "; the probe found no rate that failed, so saturation is at least this" : ""}`,
      },
      {
        name: "no view change",
        pass: viewChanges === 0,
        detail: viewChanges === null ? "no validator metrics" : `${viewChanges} view change(s)`,
      },
      {
        name: "excess refused at admission, nothing admitted lost",
        // Sends the client could not make (every sender still awaiting its answer) were never
        // offered: a node that answers late holds the load back instead of refusing it.
        pass:
          otherFailures === 0 &&
          run.uncommitted === 0 &&
          refusedTotal + (run.clientBlocked ?? 0) === excess &&
          (run.clientBlocked ?? 0) <= 0.01 * run.scheduled,
        detail: `${refusedTotal} refused with a status, ${run.clientBlocked ?? 0} not sent (every sender awaiting an answer), ${otherFailures} other errors, ${run.uncommitted} admitted but not committed`,
      },
    ],
  };
}

export async function runClusterBench(opts: ClusterBenchOpts): Promise<ClusterBenchReport> {
  const startedAt = new Date().toISOString();
  // The chain watcher hashes every committed transaction's body (chain.ts) and the open loop each
  // pre-signed one: node:crypto's SHA-256, as the validators use (src/node), not the pure-JS
  // default (~5 % of the client's busy CPU at 2× saturation, o22-notes.md). Same digests.
  useSha256(nativeSha256);
  // Before the cluster starts: the load average then says how busy the machine already was.
  const machine = machineInfo();
  const progress = opts.progress ?? true;
  const say = (m: string) => {
    if (progress) process.stderr.write(`${m}\n`);
  };
  const senderCount = opts.senders ?? 64;
  let cluster: LocalCluster | null = null;
  let tmp: string | null = null;
  const clients: ParabftClient[] = [];
  let watcher: ChainWatcher | null = null;
  let signPool: SignPool | null = null;
  try {
    let apis: string[];
    let keyFiles: string[];
    if (opts.validators !== undefined) {
      tmp = await mkdtemp(path.join(tmpdir(), "parabft-bench-"));
      say(`starting a ${opts.validators}-validator local cluster in ${tmp} ...`);
      cluster = await LocalCluster.create(opts.validators, tmp, {
        accounts: senderCount,
        preset: opts.preset ?? "default",
        ...(opts.consensus ? { consensus: opts.consensus } : {}),
        // PARABFT_BENCH_LOG_LEVEL=debug and PARABFT_BENCH_KEEP=1 keep the validators' logs to read.
        logLevel: (process.env.PARABFT_BENCH_LOG_LEVEL as "warn" | undefined) ?? "warn",
        insecurePeers: opts.insecurePeers === true,
        // PARABFT_BENCH_VALIDATOR_MAIN=/other/build/dist/src/cli/main.js: validators of another
        // build under this build's load (a new bench mode against the baseline's nodes).
        ...(process.env.PARABFT_BENCH_VALIDATOR_MAIN
          ? { entry: process.env.PARABFT_BENCH_VALIDATOR_MAIN }
          : {}),
        // PARABFT_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": node flags for every validator.
        ...(process.env.PARABFT_BENCH_NODE_ARGS
          ? { nodeArgs: process.env.PARABFT_BENCH_NODE_ARGS.split(" ").filter((a) => a.length > 0) }
          : {}),
      });
      opts.onCluster?.(cluster);
      await cluster.start();
      apis = cluster.apiAddresses;
      keyFiles = cluster.accounts.map((a) => a.keyFile);
    } else {
      if (!opts.api || opts.api.length === 0)
        throw new Error("either validators or api addresses are needed");
      if (!opts.keysDir) throw new Error("an existing cluster needs a directory of funded account keys");
      apis = opts.api;
      const dir = opts.keysDir;
      keyFiles = (await readdir(dir))
        .filter((f) => f.endsWith(".json"))
        .sort()
        .slice(0, senderCount)
        .map((f) => path.join(dir, f));
      if (keyFiles.length === 0) throw new Error(`no key files (*.json) in ${dir}`);
    }
    if (opts.signal?.aborted) throw new BenchAborted();

    // Overload: room on the connections for every sender's submission at once, or the excess
    // queues in the client and its latency (from the scheduled send) grows without bound (a
    // quiet-box run with 1,024 senders on 8 connections: finality from 0.3 s to 24 s in 60 s).
    const forSenders = opts.overload ? Math.ceil(senderCount / PER_CONNECTION_IN_FLIGHT) : 0;
    const connections = Math.max(1, opts.connections ?? Math.max(4, 2 * apis.length, forSenders));
    // Separate subchannel pools: one TCP connection per client, as many as asked for.
    const channelOptions = { "grpc.use_local_subchannel_pool": 1 };
    for (let c = 0; c < connections; c++) {
      clients.push(new ParabftClient(apis[c % apis.length]!, { channelOptions }));
    }
    const watchClients = apis.map((a) => new ParabftClient(a, { channelOptions }));
    clients.push(...watchClients);
    await Promise.all(clients.map((c) => c.waitForReady(30_000)));
    const status = await watchClients[0]!.getStatus();
    const chainId = status.chainId;

    say("measuring this machine's signature-verification ceiling ...");
    const ceiling = await measureVerifyCeiling(apis.length, opts.verifyCeilingMs ?? 1000);
    say(
      `  node:crypto Ed25519 verify: ${ceiling.singleThreadPerSec}/s on one thread, ${ceiling.allCoresPerSec}/s on ${ceiling.cores} cores; cluster ceiling ≈ ${ceiling.clusterCeilingPerSec} tx/s`,
    );

    const senders = await loadSenders(keyFiles, watchClients);
    signPool = new SignPool(
      chainId,
      senders.map((s) => s.secretKey),
    );
    watcher = new ChainWatcher(watchClients, status.committedHeight + 1n);
    watcher.start();
    const conns = clients.slice(0, connections).map((c) => new Connection(c));
    const submitBatch = opts.submitBatch ?? DEFAULT_SUBMIT_BATCH;
    const submitter = new Submitter(conns, submitBatch);
    submitter.roundRobin = opts.stickySenders !== true;
    const ctx: RunContext = {
      chainId,
      senders,
      conns,
      validatorClients: watchClients,
      signPool,
      submitter,
      watcher,
      ceiling,
      drainTimeoutS: opts.drainTimeoutS ?? 15,
      progress,
      ...(opts.signal ? { signal: opts.signal } : {}),
      committedLog: [],
      recipientCounter: 0,
      metricsAddrs: cluster
        ? Array.from({ length: cluster.size }, (_, i) => cluster!.node(i).metrics)
        : (opts.metrics ?? []),
    };

    const runs: RunReport[] = [];
    let saturation: ClusterBenchReport["saturation"] = null;
    let overload: OverloadSummary | undefined;
    if (opts.closedLoop !== undefined) {
      const n = opts.closedLoop;
      runs.push(
        await measured(ctx, () =>
          runClosedLoop(ctx, n, opts.durationS, opts.warmupS ?? 1, `closed loop, ${n} client(s)`),
        ),
      );
      const r = runs[0]!;
      say(
        `  closed loop, ${n} client(s): ${r.committed} committed, ${r.achievedTps} tx/s, p50 ${r.finalityMs.p50} ms p90 ${r.finalityMs.p90} ms p99 ${r.finalityMs.p99} ms max ${r.finalityMs.max} ms`,
      );
    } else if (opts.overload !== undefined) {
      overload = await measureOverload(ctx, opts, opts.overload, runs, say);
    } else if (!opts.sweep) {
      // Cold code (JIT, first connections) costs CPU and latency for a run's first seconds:
      // with --warmup the judged run measures the warm cluster.
      const warmS = opts.warmupS ?? 0;
      if (warmS > 0 && opts.warmupRamp === true) {
        const stepS = Math.max(1, Math.round(warmS / WARMUP_RAMP.length));
        for (const share of WARMUP_RAMP)
          await warmUp(ctx, "open loop", Math.max(1, Math.round(share * opts.rate)), stepS, runs, say);
      } else if (warmS > 0) await warmUp(ctx, "open loop", opts.rate, warmS, runs, say);
      runs.push(await measured(ctx, () => runOnce(ctx, opts.rate, opts.durationS, `${opts.rate} tx/s`)));
    } else {
      const r = await sweep(
        ctx,
        {
          rate: opts.rate,
          factor: opts.sweepFactor ?? 1.5,
          maxSteps: opts.sweepMaxSteps ?? 10,
          durationS: opts.durationS,
          throughputOnly: false,
          label: "step",
        },
        say,
      );
      runs.push(...r.runs);
      saturation = r.saturation;
    }

    // An interrupted run reports nothing: half a measurement is not a result.
    if (opts.signal?.aborted) throw new BenchAborted();
    say(`verifying ${ctx.committedLog.length} committed transactions are in the chain (GetTx) ...`);
    await watcher.stop();
    const verification = await verifyChain(ctx, watchClients, chainId);

    const report: ClusterBenchReport = {
      kind: "parabft-cluster-bench",
      version: 1,
      startedAt,
      machine,
      setup: {
        validators: apis.length,
        apis,
        ownCluster: cluster !== null,
        preset: cluster ? (opts.preset ?? "default") : null,
        ...(cluster && opts.consensus ? { consensus: opts.consensus } : {}),
        peerTls: cluster ? opts.insecurePeers !== true : null,
        chainId,
        senders: senders.length,
        connections,
        workload:
          "bank.transfer, amount 1, to a fresh address per tx; signed in the client's signing threads (open loop: before the run)",
        submit:
          submitBatch > 1
            ? `SubmitTxs batches of up to ${submitBatch} txs, sent at once when no call is in flight, else gathered until a call answers or ${SUBMIT_BATCH_DELAY_MS} ms (open loop and probe; ${OVERLOAD_BATCH_DELAY_MS} ms in the overload run)`
            : "SubmitTx per transaction",
        finalityMethod:
          opts.closedLoop !== undefined
            ? CLOSED_LOOP_METHOD
            : opts.overload
              ? `${FINALITY_METHOD}; overload: ${OVERLOAD_CLIENT}`
              : FINALITY_METHOD,
        executedMethod: executedMethod(),
        // Whether the watched node's stream carried the executed height (null: never said), and
        // the GetStatus calls the watcher made on it over the whole bench (warm-up included).
        executedFeed: watcher.feed,
        watcherStatusCalls: watcher.statusCalls,
      },
      verifyCeiling: ceiling,
      runs,
      saturation,
      ...(overload ? { overload } : {}),
      verification,
    };
    if (opts.outDir !== null) {
      const kind =
        opts.closedLoop !== undefined
          ? `closed${opts.closedLoop}`
          : opts.overload
            ? "overload"
            : opts.sweep
              ? "sweep"
              : "rate";
      const name = opts.name ?? `cluster-${kind}-${startedAt.replace(/[:.]/g, "-")}`;
      // Named before writing so that the JSON on disk lists its siblings too.
      const base = path.join(opts.outDir, name);
      report.files = { json: `${base}.json`, table: `${base}.txt`, svg: `${base}.svg` };
      writeResultFiles(opts.outDir, name, report, formatReport(report), chartReport(report));
    }
    return report;
  } finally {
    await watcher?.stop();
    await signPool?.close();
    for (const c of clients) c.close();
    if (cluster) {
      say("stopping the cluster ...");
      await cluster.stop();
    }
    if (tmp && process.env.PARABFT_BENCH_KEEP === "1") say(`kept ${tmp}`);
    else if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}
