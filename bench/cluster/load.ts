import { appendFileSync } from "node:fs";
import * as hdr from "hdr-histogram-js";
import { type ParabftClient, RpcError, signTx, transferTx } from "../../src/client/node.js";
import type { NodeSigner } from "../../src/crypto/node.js";
import type { SignedTx } from "../../src/gen/parabft/v1/types_pb.js";
import { sha256, toHex, u32be } from "../../src/types/index.js";
import type { ChainWatcher } from "./chain.js";
import type { SignJob, SignPool } from "./signPool.js";
import { Slots, slotCount } from "./slots.js";
import { round3, scrapeMetrics, stageBreakdown } from "./stages.js";
import { explainStuck, type Uncommitted } from "./stuck.js";
import type { Submitter } from "./submitter.js";
import type { LatencySummary, RunReport, TimelinePoint, VerifyCeiling } from "./types.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const PER_CONNECTION_IN_FLIGHT = 48;
// ---------------------------------------------------------------------------------------------
// Load

export interface Sender {
  signer: NodeSigner;
  /** For the signing threads (signPool.ts). */
  secretKey: Uint8Array;
  address: Uint8Array;
  nextNonce: bigint;
  /** Set after a failed submit: its later nonces may be stuck behind a gap, so it sits out. */
  tainted: boolean;
}

export function newHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export type Histogram = ReturnType<typeof newHistogram>;

export function summarize(h: Histogram): LatencySummary {
  // Recorded in microseconds, reported in milliseconds.
  const ms = (us: number) => Math.round(us / 10) / 100;
  if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  // A percentile is reported as the top of its HDR bucket, which can lie above the largest value
  // recorded; no percentile exceeds the maximum.
  const max = h.maxValue;
  const at = (q: number) => ms(Math.min(h.getValueAtPercentile(q), max));
  return { count: h.totalCount, p50: at(50), p90: at(90), p99: at(99), max: ms(max), mean: ms(h.mean) };
}

export const recordMs = (h: Histogram, ms: number) => h.recordValue(Math.max(1, Math.round(ms * 1000)));

/** Everything the watcher learns about committed blocks, shared by every run of a bench. */

export class Connection {
  inFlight = 0;
  readonly queue: (() => void)[] = [];
  constructor(readonly client: ParabftClient) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const go = () => {
        this.inFlight++;
        fn()
          .then(resolve, reject)
          .finally(() => {
            this.inFlight--;
            this.queue.shift()?.();
          });
      };
      if (this.inFlight < PER_CONNECTION_IN_FLIGHT) go();
      else this.queue.push(go);
    });
  }
}

export function recipient(i: number): Uint8Array {
  // Fresh recipients: transfers do not contend on one hot account.
  return sha256(u32be(i)).slice(0, 20);
}

export interface RunContext {
  chainId: string;
  senders: Sender[];
  conns: Connection[];
  /** One API client per validator (index = validator; connection c submits to validator
   *  c % validators), for queries that must ask every validator. */
  validatorClients: ParabftClient[];
  watcher: ChainWatcher;
  ceiling: VerifyCeiling;
  drainTimeoutS: number;
  progress: boolean;
  signal?: AbortSignal;
  /** Validators' metrics addresses (host:port), for the per-stage breakdown. */
  metricsAddrs: string[];
  /** Every tx counted as committed, for the final chain check. */
  committedLog: { hash: Uint8Array; height: number }[];
  recipientCounter: number;
  /** Signs the open-loop and overload runs' transfers off the pacing thread. */
  signPool: SignPool;
  /** SubmitTx per transaction, or SubmitTxs batches (`--submit-batch`). */
  submitter: Submitter;
  /**
   * Set by `measured` while a run is measured: restarts the validators' per-stage window (CPU,
   * heights, persists) now. A closed loop calls it when its warm-up ends, so the stages cover the
   * recorded window only (issue 14: the validators' JIT is still compiling ~20 functions a second
   * 15 s into a run; a long warm-up then leaves it out of CPU per height).
   */
  restartStages?: () => Promise<void>;
}

/**
 * Signs `total` transfers in the signing threads before a run, round-robin over the usable
 * senders with consecutive nonces, so the run's pacing thread only submits.
 */
export async function presign(
  ctx: RunContext,
  total: number,
): Promise<{ txs: SignedTx[]; hashes: Uint8Array[]; senderOf: number[]; nonceOf: bigint[] }> {
  const active = ctx.senders.map((s, i) => ({ s, i })).filter((x) => !x.s.tainted);
  if (active.length === 0) throw new Error("no usable senders left (every sender had a failed submit)");
  const jobs: SignJob[] = new Array(total);
  const senderOf: number[] = new Array(total);
  const nonceOf: bigint[] = new Array(total);
  for (let i = 0; i < total; i++) {
    const { s, i: si } = active[i % active.length]!;
    nonceOf[i] = s.nextNonce++;
    jobs[i] = { sender: si, nonce: nonceOf[i]!, recipient: ctx.recipientCounter++ };
    senderOf[i] = si;
  }
  const signed = await ctx.signPool.sign(jobs);
  return { txs: signed.map((p) => p.tx), hashes: signed.map((p) => p.hash), senderOf, nonceOf };
}

let lastPlainProgress = "";

export function renderProgress(
  ctx: RunContext,
  label: string,
  elapsed: number,
  total: number,
  stats: string,
): void {
  if (!ctx.progress) return;
  const width = 24;
  const f = Math.min(1, elapsed / total);
  const bar = "#".repeat(Math.round(f * width)).padEnd(width, "-");
  const line = `${label} [${bar}] ${elapsed.toFixed(0)}/${total}s ${stats}`;
  if (process.stderr.isTTY) {
    process.stderr.write(`\r${line.padEnd(100)}`);
    return;
  }
  // Not a terminal (CI logs): one line per 5-second window.
  const bucket = `${label}/${Math.floor(elapsed / 5)}/${stats.startsWith("draining")}`;
  if (bucket !== lastPlainProgress) {
    lastPlainProgress = bucket;
    process.stderr.write(`${line}\n`);
  }
}

/** Runs one measurement between two scrapes of the validators' metrics. */
export async function measured(ctx: RunContext, run: () => Promise<RunReport>): Promise<RunReport> {
  let before = await scrapeMetrics(ctx.metricsAddrs);
  let t0 = performance.now();
  ctx.restartStages = async () => {
    const at = performance.now();
    before = await scrapeMetrics(ctx.metricsAddrs);
    t0 = at;
  };
  let r: RunReport;
  try {
    r = await run();
  } finally {
    delete ctx.restartStages;
  }
  const after = await scrapeMetrics(ctx.metricsAddrs);
  const stages = stageBreakdown(before, after, r.committed, (performance.now() - t0) / 1000);
  if (stages) r.stages = stages;
  return r;
}

/** "STATUS/CODE" for a server refusal whose message starts with a ParaBFT code, else the status. */
export function failureKey(err: unknown): string {
  if (!(err instanceof RpcError)) return "CLIENT_ERROR";
  const m = /^([A-Z][A-Z_]+):/.exec(err.serverMessage);
  return m ? `${err.statusName}/${m[1]}` : err.statusName;
}

/** The server's retry hint ("retry after N ms"), else 100 ms. */
function retryAfter(err: unknown): number {
  const m = err instanceof RpcError ? /retry after (\d+) ms/.exec(err.serverMessage) : null;
  return Math.min(5_000, m ? Number(m[1]) : 100);
}

export async function runOnce(
  ctx: RunContext,
  rate: number,
  durationS: number,
  label: string,
): Promise<RunReport> {
  // Signed before the schedule starts (Slots sets t0), not during it.
  const { txs, hashes, senderOf, nonceOf } = await presign(ctx, slotCount(rate, durationS));
  const slots = new Slots(ctx, rate, durationS);
  const { total, scheduled, t0 } = slots;
  const admitted = new Uint8Array(total);
  // Through which connection and when each slot was admitted (stuck.ts, if it never commits).
  const connOf = new Int32Array(total).fill(-1);
  const admittedAt = new Float64Array(total);
  const failures: Record<string, number> = {};
  const submitAck = newHistogram();
  let submitted = 0;
  const w = ctx.watcher;
  const cpu0 = process.cpuUsage();
  const calls0 = ctx.submitter.calls;
  for (let i = 0; i < total; i++) slots.watch(i, hashes[i]!);
  // PARABFT_BENCH_TXLOG=FILE: each transaction's client-side times (txStages.ts joins them with
  // the validators' PARABFT_TRACE logs).
  const txLog = process.env.PARABFT_BENCH_TXLOG;
  const sentAt = txLog ? new Float64Array(total).fill(Number.NaN) : null;
  const sentConn = txLog ? new Int32Array(total).fill(-1) : null;
  if (sentAt && sentConn) {
    const slotOf = new Map<SignedTx, number>();
    for (let i = 0; i < total; i++) slotOf.set(txs[i]!, i);
    ctx.submitter.onSend = (sent, conn, at) => {
      for (const tx of sent) {
        const i = slotOf.get(tx);
        if (i !== undefined) {
          sentAt[i] = at;
          sentConn[i] = conn;
        }
      }
    };
  }

  const send = (i: number) => {
    ctx.submitter.submit(txs[i]!, senderOf[i]!).then(
      (conn) => {
        admitted[i] = 1;
        connOf[i] = conn;
        admittedAt[i] = performance.now();
        submitted++;
        recordMs(submitAck, performance.now() - scheduled[i]!);
      },
      (err: unknown) => {
        const key = failureKey(err);
        // Backpressure (OVERLOADED), and the NONCE_GAP of a later nonce of a sender whose
        // earlier one was refused: an honest client retries after the hint, same transaction.
        const code = key.split("/")[1];
        if ((code === "OVERLOADED" || code === "NONCE_GAP") && performance.now() < retryUntil) {
          refusals[key] = (refusals[key] ?? 0) + 1;
          setTimeout(() => send(i), retryAfter(err));
          return;
        }
        failures[key] = (failures[key] ?? 0) + 1;
        ctx.senders[senderOf[i]!]!.tainted = true;
        w.pending.delete(toHex(hashes[i]!));
      },
    );
  };
  // Refused submissions are retried until the load ends plus half the drain window.
  const retryUntil = t0 + (durationS + ctx.drainTimeoutS / 2) * 1000;
  const refusals: Record<string, number> = {};

  const maxLag = await slots.run(label, durationS, send, (sent) => {
    const f = slots.finality;
    const p50 = f.totalCount > 0 ? `${(f.getValueAtPercentile(50) / 1000).toFixed(0)}ms` : "-";
    return `sent ${sent} committed ${slots.committed} p50 ${p50}`;
  });
  ctx.submitter.flush();

  // Drain: wait for admitted transactions to commit and execute, bounded.
  await slots.drain(
    label,
    durationS,
    () =>
      ctx.conns.reduce((a, c) => a + c.inFlight + c.queue.length, 0) === 0 &&
      ctx.submitter.waiting === 0 &&
      slots.committed >= submitted &&
      slots.executedCount >= slots.committed,
    () => `draining: committed ${slots.committed}/${submitted}`,
  );
  if (txLog && sentAt && sentConn) {
    ctx.submitter.onSend = null;
    writeTxLog(txLog, ctx, slots, sentAt, sentConn, admittedAt, hashes);
  }
  const report = slots.report(
    slots.committed / Math.max(durationS, (slots.lastCommitAt - t0) / 1000),
    durationS,
    submitAck,
    maxLag,
    cpu0,
  );
  slots.close();
  // Each sender's lowest nonce the client gave up on (refused until its retries ran out): every
  // later nonce of that sender waits behind a gap the client left, not one the cluster made.
  const abandoned = new Map<number, bigint>();
  for (let i = 0; i < total; i++) {
    const lowest = abandoned.get(senderOf[i]!);
    if (!admitted[i] && (lowest === undefined || nonceOf[i]! < lowest))
      abandoned.set(senderOf[i]!, nonceOf[i]!);
  }
  const left: Uncommitted[] = [];
  for (let i = 0; i < total; i++)
    if (admitted[i] && !slots.isCommitted(i))
      left.push({
        sender: senderOf[i]!,
        nonce: nonceOf[i]!,
        conn: connOf[i]!,
        admittedAtS: (admittedAt[i]! - t0) / 1000,
        clientGap: abandoned.has(senderOf[i]!) && abandoned.get(senderOf[i]!)! < nonceOf[i]!,
      });
  const stuck = await explainStuck(ctx, left);
  for (let i = 0; i < total; i++) {
    if (!slots.isCommitted(i)) {
      w.pending.delete(toHex(hashes[i]!));
      // A sender with an admitted tx that never committed may be stuck behind a gap.
      if (admitted[i]) ctx.senders[senderOf[i]!]!.tainted = true;
    }
  }

  return {
    ...report,
    mode: "open",
    offeredRate: rate,
    durationS,
    scheduled: total,
    submitted,
    submitCalls: ctx.submitter.calls - calls0,
    submitFailures: failures,
    refusedRetried: refusals,
    uncommitted: submitted - slots.committed,
    ...(stuck ? { stuck } : {}),
  };
}

/** Per-second timeline: sends and commits by second, finality p50/p99/max of what committed in it. */
export function buildTimeline(
  t0: number,
  seconds: number,
  durationS: number,
  sentAt: ArrayLike<number>,
  committedAt: ArrayLike<number>,
  latencyOf: (i: number) => number,
): TimelinePoint[] {
  const timeline: TimelinePoint[] = [];
  const pick = (lat: number[], q: number) =>
    lat.length > 0
      ? Math.round(lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)]! * 100) / 100
      : null;
  for (let s = 0; s < seconds; s++) {
    const lat: number[] = [];
    let sent = 0;
    let committed = 0;
    for (let i = 0; i < sentAt.length; i++) {
      if (Math.floor((sentAt[i]! - t0) / 1000) === s) sent++;
      const c = committedAt[i]!;
      if (!Number.isNaN(c) && Math.floor((c - t0) / 1000) === s) {
        committed++;
        lat.push(latencyOf(i));
      }
    }
    if (sent === 0 && committed === 0 && s >= durationS) break;
    lat.sort((a, b) => a - b);
    const p50 = lat.length > 0 ? Math.round(lat[Math.floor((lat.length - 1) / 2)]! * 100) / 100 : null;
    timeline.push({
      second: s,
      sent,
      committed,
      finalityP50Ms: p50,
      finalityP99Ms: pick(lat, 0.99),
      finalityMaxMs: lat.length > 0 ? Math.round(lat[lat.length - 1]! * 100) / 100 : null,
    });
  }
  return timeline;
}

/**
 * Closed loop: `clients` clients, each with its own sender and connection, sign a transfer, call
 * SubmitTxAndWait (committed) and wait for the reply before the next. Latency is send -> reply,
 * the figure a client sees. Warm-up transactions are sent but not recorded.
 */
export async function runClosedLoop(
  ctx: RunContext,
  clients: number,
  durationS: number,
  warmupS: number,
  label: string,
): Promise<RunReport> {
  const active = ctx.senders.filter((s) => !s.tainted);
  if (active.length < clients)
    throw new Error(
      `closed loop with ${clients} clients needs ${clients} usable senders (have ${active.length})`,
    );
  const finality = newHistogram();
  const executed = newHistogram();
  const failures: Record<string, number> = {};
  const sentAt: number[] = [];
  const committedAt: number[] = [];
  const latency: number[] = [];
  const byHeight = new Map<number, number[]>();
  let executedCount = 0;
  let lastCommitAt = 0;
  const heights = new Set<number>();
  const w = ctx.watcher;
  const markExecuted = (i: number, at: number) => {
    executedCount++;
    recordMs(executed, at - sentAt[i]!);
  };
  const untrackExecuted = w.trackExecuted(byHeight, markExecuted);
  const tWarm = performance.now();
  const t0 = tWarm + warmupS * 1000;
  const tEnd = t0 + durationS * 1000;
  // The validators' stages (CPU per height ...) cover the recorded window, not the warm-up.
  let restarted: Promise<void> | undefined;
  const restart = ctx.restartStages;
  const warmTimer =
    restart && warmupS > 0
      ? setTimeout(() => {
          restarted = restart().catch(() => {});
        }, warmupS * 1000)
      : null;
  const cpu0 = process.cpuUsage();
  let lastDraw = 0;
  const loop = async (k: number) => {
    const s = active[k]!;
    const conn = ctx.conns[k % ctx.conns.length]!;
    while (performance.now() < tEnd && !ctx.signal?.aborted) {
      const body = transferTx(
        { chainId: ctx.chainId, sender: s.signer.publicKey, nonce: s.nextNonce },
        recipient(ctx.recipientCounter++),
        1n,
      );
      const p = signTx(body, s.signer);
      const start = performance.now();
      let height: number;
      try {
        const res = await conn.client.submitAndWait(p.tx, { timeoutMs: 30_000 });
        height = Number(res.height);
      } catch (err) {
        const key = failureKey(err);
        if (start >= t0) failures[key] = (failures[key] ?? 0) + 1;
        s.tainted = true;
        return;
      }
      s.nextNonce++;
      const at = performance.now();
      if (start < t0) continue;
      const i = sentAt.length;
      sentAt.push(start);
      committedAt.push(at);
      latency.push(at - start);
      recordMs(finality, at - start);
      lastCommitAt = Math.max(lastCommitAt, at);
      heights.add(height);
      ctx.committedLog.push({ hash: p.hash, height });
      if (w.executedHeight >= height) markExecuted(i, at);
      else {
        const list = byHeight.get(height);
        if (list) list.push(i);
        else byHeight.set(height, [i]);
      }
      if (at - lastDraw > 250) {
        lastDraw = at;
        const p50 = `${(finality.getValueAtPercentile(50) / 1000).toFixed(1)}ms`;
        renderProgress(
          ctx,
          label,
          Math.max(0, (at - t0) / 1000),
          durationS,
          `committed ${sentAt.length} p50 ${p50}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, k) => loop(k)));
  if (warmTimer !== null) clearTimeout(warmTimer);
  await restarted;
  // Let the executed watcher catch up with the last commits (bounded).
  const drainUntil = performance.now() + Math.min(5_000, ctx.drainTimeoutS * 1000);
  while (executedCount < sentAt.length && performance.now() < drainUntil && !ctx.signal?.aborted)
    await sleep(20);
  if (ctx.progress && process.stderr.isTTY) process.stderr.write("\n");
  untrackExecuted();
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Math.max(1, performance.now() - tWarm);
  const committed = sentAt.length;
  const window = Math.max(1e-3, (Math.max(lastCommitAt, t0) - t0) / 1000);
  const achievedTps = committed > 0 ? committed / window : 0;
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  return {
    mode: "closed",
    clients,
    offeredRate: Math.round(achievedTps * 10) / 10,
    durationS,
    scheduled: committed + failed,
    submitted: committed,
    submitFailures: failures,
    committed,
    executed: executedCount,
    uncommitted: 0,
    achievedTps: Math.round(achievedTps * 10) / 10,
    ratioToClusterCeiling: round3(achievedTps / Math.max(1, ctx.ceiling.clusterCeilingPerSec)),
    ratioToMachineCeiling: round3(achievedTps / Math.max(1, ctx.ceiling.allCoresPerSec)),
    finalityMs: summarize(finality),
    executedMs: summarize(executed),
    // The reply is the acknowledgement.
    submitAckMs: summarize(finality),
    generatorMaxLagMs: 0,
    generatorCpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
    blocks: heights.size,
    timeline: buildTimeline(t0, Math.ceil(durationS) + 1, durationS, sentAt, committedAt, (i) => latency[i]!),
  };
}

/**
 * One line per transaction (JSON lines, wall-clock ms, the validators' log clock): scheduled,
 * sent (its SubmitTxs call left), acked (admitted), seen (its block on the watcher's stream),
 * the entry validator, the block's height and the tx id (the first 12 hex digits of its hash, as
 * the validators' PARABFT_TRACE lines name it). Appends, so one file can hold a run's steps.
 */
function writeTxLog(
  file: string,
  ctx: RunContext,
  slots: Slots,
  sentAt: Float64Array,
  sentConn: Int32Array,
  admittedAt: Float64Array,
  hashes: readonly Uint8Array[],
): void {
  const o = performance.timeOrigin;
  const wall = (t: number) => (Number.isFinite(t) && t > 0 ? Math.round((o + t) * 1000) / 1000 : null);
  const n = ctx.validatorClients.length;
  const lines: string[] = [];
  for (let i = 0; i < slots.total; i++)
    lines.push(
      JSON.stringify({
        i,
        sched: wall(slots.scheduled[i]!),
        sent: wall(sentAt[i]!),
        acked: wall(admittedAt[i]!),
        seen: wall(slots.committedAt[i]!),
        entry: sentConn[i]! >= 0 ? sentConn[i]! % n : null,
        height: Number.isNaN(slots.commitHeight[i]!) ? null : slots.commitHeight[i],
        id: toHex(hashes[i]!).slice(0, 12),
      }),
    );
  appendFileSync(file, `${lines.join("\n")}\n`);
}
