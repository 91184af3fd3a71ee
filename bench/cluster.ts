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
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import * as hdr from "hdr-histogram-js";
import { LocalCluster } from "../src/cli/cluster.js";
import { ParabftClient, RpcError, signTx, transferTx, verifyCommitCertificate } from "../src/client/node.js";
import { readKeyFile } from "../src/crypto/keys.js";
import { NodeSigner } from "../src/crypto/node.js";
import type { BlockHeader, CommitCertificate, SignedTx } from "../src/gen/parabft/v1/types_pb.js";
import { TxStatus } from "../src/gen/parabft/v1/types_pb.js";
import type { PresetName } from "../src/params/index.js";
import { sha256, toHex, u32be } from "../src/types/index.js";
import { barChartSvg, formatTable, type MachineInfo, machineInfo, writeResultFiles } from "./lib/index.js";

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
  /** Closed loop: seconds of unrecorded warm-up before the measured `durationS` (default 1). */
  warmupS?: number;
  sweep?: boolean;
  /** Rate multiplier per sweep step. */
  sweepFactor?: number;
  sweepMaxSteps?: number;
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
}

export interface RunReport {
  /** Per-stage figures from the validators' metrics (own cluster, or --metrics). */
  stages?: StageBreakdown;
  /** open: fixed offered rate; closed: `clients` clients, each waiting for its commit. */
  mode?: "open" | "closed";
  /** Closed loop: number of clients. */
  clients?: number;
  /** Closed loop: the achieved rate (nothing is offered). */
  offeredRate: number;
  durationS: number;
  scheduled: number;
  submitted: number;
  submitFailures: Record<string, number>;
  committed: number;
  executed: number;
  /** Admitted but not committed by the end of the drain period. */
  uncommitted: number;
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
    /** Own cluster: whether peer links ran over mTLS (false: --insecure-peers); null for --api. */
    peerTls?: boolean | null;
    chainId: string;
    senders: number;
    connections: number;
    workload: string;
    finalityMethod: string;
    executedMethod: string;
  };
  verifyCeiling: VerifyCeiling;
  runs: RunReport[];
  /** The last sweep step that kept up; null offeredRate when even the first did not. */
  saturation: {
    offeredRate: number | null;
    achievedTps: number | null;
    finalityP99Ms: number | null;
    reason: string;
  } | null;
  verification: ChainVerification;
  files?: { json: string; table: string; svg?: string };
}

const CLOSED_LOOP_METHOD =
  "closed loop: each client signs a tx, calls SubmitTxAndWait (committed) on its node and measures until the reply; then the next";
const FINALITY_METHOD =
  "SubmitTx ack + StreamBlocks watcher; latency from each tx's scheduled send time to its block's arrival on the stream";
const EXECUTED_METHOD =
  "watcher node's GetStatus executed_height, polled every 5 ms while a streamed block awaits execution (every 100 ms otherwise)";
const PER_CONNECTION_IN_FLIGHT = 48;
// Fast only while something awaits execution, so the poller adds no steady load to the node.
const STATUS_POLL_MS = 5;
const STATUS_IDLE_POLL_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The signature-verification ceiling of this machine

const VERIFY_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { generateKeyPairSync, sign, verify } = require("node:crypto");
const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const msg = Buffer.alloc(200, 7);
const sig = sign(null, msg, privateKey);
const until = Date.now() + workerData.ms;
let n = 0;
while (Date.now() < until) { for (let i = 0; i < 64; i++) verify(null, msg, publicKey, sig); n += 64; }
parentPort.postMessage(n);
`;

function verifyBurst(threads: number, ms: number): Promise<number> {
  const runs = Array.from(
    { length: threads },
    () =>
      new Promise<number>((resolve, reject) => {
        const w = new Worker(VERIFY_WORKER, { eval: true, workerData: { ms } });
        w.once("message", (n: number) => {
          resolve(n);
          void w.terminate();
        });
        w.once("error", reject);
      }),
  );
  return Promise.all(runs).then((ns) => (ns.reduce((a, b) => a + b, 0) * 1000) / ms);
}

/** Measured while the cluster idles, so the figure belongs to this run's machine and load. */
export async function measureVerifyCeiling(validators: number, ms = 1000): Promise<VerifyCeiling> {
  const cores = availableParallelism();
  const singleThreadPerSec = await verifyBurst(1, ms);
  const allCoresPerSec = await verifyBurst(cores, ms);
  return {
    singleThreadPerSec: Math.round(singleThreadPerSec),
    allCoresPerSec: Math.round(allCoresPerSec),
    cores,
    clusterCeilingPerSec: Math.round(allCoresPerSec / Math.max(1, validators)),
  };
}

// ---------------------------------------------------------------------------------------------
// Load

interface Sender {
  signer: NodeSigner;
  address: Uint8Array;
  nextNonce: bigint;
  /** Set after a failed submit: its later nonces may be stuck behind a gap, so it sits out. */
  tainted: boolean;
}

function newHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

type Histogram = ReturnType<typeof newHistogram>;

function summarize(h: Histogram): LatencySummary {
  // Recorded in microseconds, reported in milliseconds.
  const ms = (us: number) => Math.round(us / 10) / 100;
  if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  // A percentile is reported as the top of its HDR bucket, which can lie above the largest value
  // recorded; no percentile exceeds the maximum.
  const max = h.maxValue;
  const at = (q: number) => ms(Math.min(h.getValueAtPercentile(q), max));
  return { count: h.totalCount, p50: at(50), p90: at(90), p99: at(99), max: ms(max), mean: ms(h.mean) };
}

const recordMs = (h: Histogram, ms: number) => h.recordValue(Math.max(1, Math.round(ms * 1000)));

/** Everything the watcher learns about committed blocks, shared by every run of a bench. */
class ChainWatcher {
  /** tx hash (hex) -> pending transaction slot. */
  readonly pending = new Map<string, (height: number, at: number) => void>();
  executedHeight = 0;
  committedHeight = 0;
  readonly onExecuted: ((height: number, at: number) => void)[] = [];
  readonly blocks: { height: bigint; header: BlockHeader | null; certificate: CommitCertificate | null }[] =
    [];
  blocksSeen = 0;
  lastError: string | null = null;
  readonly #abort = new AbortController();
  #loops: Promise<void>[] = [];
  #wake: (() => void) | null = null;

  constructor(
    private readonly clients: ParabftClient[],
    private fromHeight: bigint,
  ) {}

  start(): void {
    this.#loops = [this.#streamLoop(), this.#statusLoop()];
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
  }

  async #streamLoop(): Promise<void> {
    let attempt = 0;
    while (!this.#abort.signal.aborted) {
      // Reconnect to the next node if the stream breaks (a node restarting mid-run).
      const client = this.clients[attempt % this.clients.length]!;
      try {
        for await (const res of client.streamBlocks(this.fromHeight, { signal: this.#abort.signal })) {
          const at = performance.now();
          const height = Number(res.height);
          this.fromHeight = res.height + 1n;
          this.committedHeight = Math.max(this.committedHeight, height);
          this.blocksSeen++;
          this.blocks.push({
            height: res.height,
            header: res.block?.header ?? null,
            certificate: res.certificate ?? null,
          });
          this.#wake?.();
          for (const tx of res.block?.txs ?? []) {
            const k = toHex(sha256(tx.body));
            const cb = this.pending.get(k);
            if (cb) {
              this.pending.delete(k);
              cb(height, at);
            }
          }
        }
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
      }
      attempt++;
      if (!this.#abort.signal.aborted) await sleep(100);
    }
  }

  async #statusLoop(): Promise<void> {
    const client = this.clients[0]!;
    while (!this.#abort.signal.aborted) {
      try {
        const s = await client.getStatus();
        const h = Number(s.executedHeight);
        if (h > this.executedHeight) {
          this.executedHeight = h;
          const at = performance.now();
          for (const cb of this.onExecuted) cb(h, at);
        }
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
      }
      if (this.committedHeight > this.executedHeight) await sleep(STATUS_POLL_MS);
      else {
        // Idle: sleep until the stream brings a block (or the idle period ends).
        await Promise.race([
          sleep(STATUS_IDLE_POLL_MS),
          new Promise<void>((resolve) => {
            this.#wake = resolve;
          }),
        ]);
        this.#wake = null;
      }
    }
  }
}

/** A fixed client-side bound per connection, below the API's per-connection in-flight limit. */
class Connection {
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

function recipient(i: number): Uint8Array {
  // Fresh recipients: transfers do not contend on one hot account.
  return sha256(u32be(i)).slice(0, 20);
}

interface RunContext {
  chainId: string;
  senders: Sender[];
  conns: Connection[];
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
}

function presign(
  ctx: RunContext,
  total: number,
): { txs: SignedTx[]; hashes: Uint8Array[]; senderOf: number[] } {
  const active = ctx.senders.map((s, i) => ({ s, i })).filter((x) => !x.s.tainted);
  if (active.length === 0) throw new Error("no usable senders left (every sender had a failed submit)");
  const txs: SignedTx[] = new Array(total);
  const hashes: Uint8Array[] = new Array(total);
  const senderOf: number[] = new Array(total);
  for (let i = 0; i < total; i++) {
    const { s, i: si } = active[i % active.length]!;
    const body = transferTx(
      { chainId: ctx.chainId, sender: s.signer.publicKey, nonce: s.nextNonce++ },
      recipient(ctx.recipientCounter++),
      1n,
    );
    const p = signTx(body, s.signer);
    txs[i] = p.tx;
    hashes[i] = p.hash;
    senderOf[i] = si;
  }
  return { txs, hashes, senderOf };
}

let lastPlainProgress = "";

function renderProgress(ctx: RunContext, label: string, elapsed: number, total: number, stats: string): void {
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
async function measured(ctx: RunContext, run: () => Promise<RunReport>): Promise<RunReport> {
  const before = await scrapeMetrics(ctx.metricsAddrs);
  const t0 = performance.now();
  const r = await run();
  const after = await scrapeMetrics(ctx.metricsAddrs);
  const stages = stageBreakdown(before, after, r.committed, (performance.now() - t0) / 1000);
  if (stages) r.stages = stages;
  return r;
}

async function runOnce(ctx: RunContext, rate: number, durationS: number, label: string): Promise<RunReport> {
  const total = Math.max(1, Math.round(rate * durationS));
  const { txs, hashes, senderOf } = presign(ctx, total);
  const scheduled = new Float64Array(total);
  const committedAt = new Float64Array(total).fill(Number.NaN);
  const executedAt = new Float64Array(total).fill(Number.NaN);
  const commitHeight = new Float64Array(total).fill(Number.NaN);
  const admitted = new Uint8Array(total);
  const failures: Record<string, number> = {};
  const finality = newHistogram();
  const executed = newHistogram();
  const submitAck = newHistogram();
  const byHeight = new Map<number, number[]>();
  let submitted = 0;
  let committedCount = 0;
  let executedCount = 0;
  let lastCommitAt = 0;
  let maxLag = 0;
  const w = ctx.watcher;

  const markExecuted = (i: number, at: number) => {
    if (!Number.isNaN(executedAt[i]!)) return;
    executedAt[i] = at;
    executedCount++;
    recordMs(executed, at - scheduled[i]!);
  };
  const onExecuted = (h: number, at: number) => {
    for (const [height, list] of byHeight) {
      if (height > h) continue;
      for (const i of list) markExecuted(i, at);
      byHeight.delete(height);
    }
  };
  w.onExecuted.push(onExecuted);

  const t0 = performance.now() + 20;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < total; i++) scheduled[i] = t0 + (i * 1000) / rate;
  for (let i = 0; i < total; i++) {
    w.pending.set(toHex(hashes[i]!), (height, at) => {
      committedAt[i] = at;
      commitHeight[i] = height;
      committedCount++;
      lastCommitAt = Math.max(lastCommitAt, at);
      recordMs(finality, at - scheduled[i]!);
      ctx.committedLog.push({ hash: hashes[i]!, height });
      if (w.executedHeight >= height) markExecuted(i, at);
      else {
        const list = byHeight.get(height);
        if (list) list.push(i);
        else byHeight.set(height, [i]);
      }
    });
  }

  const send = (i: number) => {
    const conn = ctx.conns[senderOf[i]! % ctx.conns.length]!;
    conn
      .run(() => conn.client.submitTx(txs[i]!))
      .then(
        () => {
          admitted[i] = 1;
          submitted++;
          recordMs(submitAck, performance.now() - scheduled[i]!);
        },
        (err: unknown) => {
          const key = err instanceof RpcError ? err.statusName : "CLIENT_ERROR";
          failures[key] = (failures[key] ?? 0) + 1;
          ctx.senders[senderOf[i]!]!.tainted = true;
          w.pending.delete(toHex(hashes[i]!));
        },
      );
  };

  // Open loop: send whatever is due on each tick, regardless of how earlier sends fare.
  let next = 0;
  let lastDraw = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && scheduled[next]! <= now) {
        maxLag = Math.max(maxLag, now - scheduled[next]!);
        send(next++);
      }
      if (now - lastDraw > 250) {
        lastDraw = now;
        const el = Math.max(0, (now - t0) / 1000);
        const p50 =
          finality.totalCount > 0 ? `${(finality.getValueAtPercentile(50) / 1000).toFixed(0)}ms` : "-";
        renderProgress(ctx, label, el, durationS, `sent ${next} committed ${committedCount} p50 ${p50}`);
      }
      if (next >= total || ctx.signal?.aborted) resolve();
      else setTimeout(tick, 1);
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });

  // Drain: wait for admitted transactions to commit and execute, bounded.
  const drainUntil = performance.now() + ctx.drainTimeoutS * 1000;
  while (performance.now() < drainUntil && !ctx.signal?.aborted) {
    const inflight = ctx.conns.reduce((a, c) => a + c.inFlight + c.queue.length, 0);
    if (inflight === 0 && committedCount >= submitted && executedCount >= committedCount) break;
    renderProgress(ctx, label, durationS, durationS, `draining: committed ${committedCount}/${submitted}`);
    await sleep(50);
  }
  if (ctx.progress && process.stderr.isTTY) process.stderr.write("\n");
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Math.max(1, performance.now() - t0);
  w.onExecuted.splice(w.onExecuted.indexOf(onExecuted), 1);
  for (let i = 0; i < total; i++) {
    if (Number.isNaN(committedAt[i]!)) {
      w.pending.delete(toHex(hashes[i]!));
      // A sender with an admitted tx that never committed may be stuck behind a gap.
      if (admitted[i]) ctx.senders[senderOf[i]!]!.tainted = true;
    }
  }

  const timeline = buildTimeline(
    t0,
    Math.ceil(durationS + ctx.drainTimeoutS),
    durationS,
    scheduled,
    committedAt,
    (i) => committedAt[i]! - scheduled[i]!,
  );

  const window = Math.max(durationS, (lastCommitAt - t0) / 1000);
  const achievedTps = committedCount > 0 ? committedCount / window : 0;
  const heights = new Set<number>();
  for (let i = 0; i < total; i++) if (!Number.isNaN(commitHeight[i]!)) heights.add(commitHeight[i]!);
  return {
    mode: "open",
    offeredRate: rate,
    durationS,
    scheduled: total,
    submitted,
    submitFailures: failures,
    committed: committedCount,
    executed: executedCount,
    uncommitted: submitted - committedCount,
    achievedTps: Math.round(achievedTps * 10) / 10,
    ratioToClusterCeiling: round3(achievedTps / Math.max(1, ctx.ceiling.clusterCeilingPerSec)),
    ratioToMachineCeiling: round3(achievedTps / Math.max(1, ctx.ceiling.allCoresPerSec)),
    finalityMs: summarize(finality),
    executedMs: summarize(executed),
    submitAckMs: summarize(submitAck),
    generatorMaxLagMs: Math.round(maxLag * 100) / 100,
    generatorCpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
    blocks: heights.size,
    timeline,
  };
}

/** Per-second timeline: sends and commits by second, finality p50/p99/max of what committed in it. */
function buildTimeline(
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
async function runClosedLoop(
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
  const onExecuted = (h: number, at: number) => {
    for (const [height, list] of byHeight) {
      if (height > h) continue;
      for (const i of list) markExecuted(i, at);
      byHeight.delete(height);
    }
  };
  w.onExecuted.push(onExecuted);
  const tWarm = performance.now();
  const t0 = tWarm + warmupS * 1000;
  const tEnd = t0 + durationS * 1000;
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
        const key = err instanceof RpcError ? err.statusName : "CLIENT_ERROR";
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
  // Let the executed watcher catch up with the last commits (bounded).
  const drainUntil = performance.now() + Math.min(5_000, ctx.drainTimeoutS * 1000);
  while (executedCount < sentAt.length && performance.now() < drainUntil && !ctx.signal?.aborted)
    await sleep(20);
  if (ctx.progress && process.stderr.isTTY) process.stderr.write("\n");
  w.onExecuted.splice(w.onExecuted.indexOf(onExecuted), 1);
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

// ---------------------------------------------------------------------------------------------
// Validator metrics: where the time goes

type MetricSample = Map<string, number>;

async function scrapeOne(addr: string): Promise<MetricSample | null> {
  try {
    const res = await fetch(`http://${addr}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) return null;
    const out: MetricSample = new Map();
    for (const line of (await res.text()).split("\n")) {
      if (line.length === 0 || line.startsWith("#")) continue;
      const sp = line.lastIndexOf(" ");
      const v = Number(line.slice(sp + 1));
      if (Number.isFinite(v)) out.set(line.slice(0, sp), v);
    }
    return out;
  } catch (err) {
    process.stderr.write(
      `metrics scrape of ${addr} failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return null;
  }
}

export async function scrapeMetrics(addrs: string[]): Promise<(MetricSample | null)[]> {
  return Promise.all(addrs.map(scrapeOne));
}

/** Sum over series whose name (with labels) starts with `prefix` and contains every `has`. */
function sumOf(m: MetricSample, prefix: string, ...has: string[]): number {
  let t = 0;
  for (const [k, v] of m) if (k.startsWith(prefix) && has.every((h) => k.includes(h))) t += v;
  return t;
}

export function stageBreakdown(
  before: (MetricSample | null)[],
  after: (MetricSample | null)[],
  committedTxs: number,
  wallS: number,
): StageBreakdown | undefined {
  const pairs: [MetricSample, MetricSample][] = [];
  for (let i = 0; i < after.length; i++) if (before[i] && after[i]) pairs.push([before[i]!, after[i]!]);
  if (pairs.length === 0) return undefined;
  const P = "parabft_";
  const delta = (name: string, ...has: string[]) =>
    pairs.map(([b, a]) => sumOf(a, P + name, ...has) - sumOf(b, P + name, ...has));
  const total = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  const mean = (sumName: string, countName: string, ...has: string[]) => {
    const c = total(delta(countName, ...has));
    return c > 0 ? Math.round((total(delta(sumName, ...has)) / c) * 1e5) / 100 : null;
  };
  const heights = Math.max(0, ...delta("consensus_committed_height"));
  const persistCount = total(delta("consensus_signing_state_persist_seconds_count"));
  const kinds = new Set<string>();
  const methods = new Set<string>();
  for (const [, a] of pairs)
    for (const k of a.keys()) {
      const kind = /^parabft_storage_write_seconds_count\{kind="([^"]+)"/.exec(k)?.[1];
      if (kind) kinds.add(kind);
      const method = /^parabft_api_call_seconds_count\{method="([^"]+)",code="OK"/.exec(k)?.[1];
      if (method) methods.add(method);
    }
  const dbWriteMs: Record<string, number> = {};
  for (const k of kinds) {
    const v = mean("storage_write_seconds_sum", "storage_write_seconds_count", `kind="${k}"`);
    if (v !== null) dbWriteMs[k] = v;
  }
  const apiCallMs: Record<string, number> = {};
  for (const m of methods) {
    const v = mean("api_call_seconds_sum", "api_call_seconds_count", `method="${m}"`, 'code="OK"');
    if (v !== null) apiCallMs[m] = v;
  }
  const cpuS = total(delta("process_cpu_seconds_total"));
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    persistMs: mean(
      "consensus_signing_state_persist_seconds_sum",
      "consensus_signing_state_persist_seconds_count",
    ),
    persistsPerHeight: heights > 0 ? r2(persistCount / pairs.length / heights) : null,
    preparedMs: mean("consensus_phase_seconds_sum", "consensus_phase_seconds_count", 'phase="prepared"'),
    committedMs: mean("consensus_phase_seconds_sum", "consensus_phase_seconds_count", 'phase="committed"'),
    dbWriteMs,
    apiFinalityMs: mean("api_finality_seconds_sum", "api_finality_seconds_count"),
    apiCallMs,
    heights,
    viewChanges: Math.max(0, ...delta("consensus_view_changes_total")),
    cpuPerHeightMsPerValidator: heights > 0 ? r2((cpuS * 1000) / pairs.length / heights) : null,
    cpuPerTxMs: committedTxs > 0 ? r2((cpuS * 1000) / committedTxs) : null,
    cpuCores: wallS > 0 ? r2(cpuS / wallS) : 0,
  };
}

export function formatStages(runs: RunReport[]): string {
  const rows = runs
    .filter((x) => x.stages)
    .map((x) => {
      const s = x.stages!;
      const label = x.mode === "closed" ? `closed ×${x.clients}` : `${x.offeredRate} tx/s`;
      const db = Object.entries(s.dbWriteMs)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      const api = Object.entries(s.apiCallMs)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      return [
        label,
        s.heights,
        s.persistMs ?? "-",
        s.persistsPerHeight ?? "-",
        s.preparedMs ?? "-",
        s.committedMs ?? "-",
        db || "-",
        api || "-",
        s.viewChanges,
        s.cpuPerHeightMsPerValidator ?? "-",
        s.cpuPerTxMs ?? "-",
        s.cpuCores,
      ];
    });
  if (rows.length === 0) return "";
  return formatTable(
    [
      "run",
      "heights",
      "persist ms",
      "persists/height",
      "prepare->prepared ms",
      "commit->committed ms",
      "db write ms",
      "api call ms (OK)",
      "view changes",
      "CPU ms/height/validator",
      "CPU ms/tx (cluster)",
      "CPU cores",
    ],
    rows,
  );
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------------------------------------
// Final check: what we counted as committed is in the chain

/** How long the chain check waits for nodes to execute the last height the watcher saw. */
const CATCH_UP_WAIT_MS = 60_000;

/** The clients whose node has committed and executed `height`, waiting up to `waitMs` for all. */
async function nodesAtHeight(
  clients: ParabftClient[],
  height: bigint,
  waitMs: number,
): Promise<ParabftClient[]> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const ready: ParabftClient[] = [];
    for (const c of clients) {
      const s = await c.getStatus().catch(() => null);
      if (s !== null && s.committedHeight >= height && s.executedHeight >= height) ready.push(c);
    }
    if (ready.length === clients.length || performance.now() > deadline) return ready;
    await sleep(200);
  }
}

async function verifyChain(
  ctx: RunContext,
  clients: ParabftClient[],
  chainId: string,
  receiptSample = 1000,
  certificateSample = 12,
): Promise<ChainVerification> {
  const out: ChainVerification = {
    checked: 0,
    inChain: 0,
    missing: 0,
    heightMismatch: 0,
    receiptsChecked: 0,
    receiptStatus: {},
    receiptErrors: {},
    certificatesChecked: 0,
    certificatesValid: 0,
    certificateFailures: [],
  };
  const log = ctx.committedLog;
  const receiptEvery = Math.max(1, Math.ceil(log.length / receiptSample));
  let cursor = 0;
  // Only nodes that have executed every height the watcher saw can answer for all of it: on a busy
  // host a backup may trail the watcher by seconds, and its "not found" would be no loss.
  const top = log.reduce((m, e) => (e.height > m ? e.height : m), 0);
  const caughtUp = await nodesAtHeight(clients, BigInt(top), CATCH_UP_WAIT_MS);
  const askable = caughtUp.length > 0 ? caughtUp : clients;
  // A few parallel lookups per node; each tx is asked of a node other than the watcher's when possible.
  const workers = Array.from({ length: Math.min(32, Math.max(1, log.length)) }, async (_, wi) => {
    const client = askable[(wi + 1) % askable.length]!;
    while (cursor < log.length) {
      const j = cursor++;
      const { hash, height } = log[j]!;
      out.checked++;
      try {
        const got = await client.getTx(hash);
        if (got === null) out.missing++;
        else if (Number(got.height) !== height) out.heightMismatch++;
        else out.inChain++;
      } catch {
        out.missing++;
      }
      if (j % receiptEvery === 0) {
        try {
          const r = await client.getReceipt(hash);
          const k = r === null ? "NONE" : (TxStatus[r.status] ?? String(r.status));
          out.receiptStatus[k] = (out.receiptStatus[k] ?? 0) + 1;
          if (r !== null && r.status !== TxStatus.OK) {
            const e = r.error || k;
            out.receiptErrors[e] = (out.receiptErrors[e] ?? 0) + 1;
          }
          out.receiptsChecked++;
        } catch {
          out.receiptStatus.ERROR = (out.receiptStatus.ERROR ?? 0) + 1;
        }
      }
    }
  });
  await Promise.all(workers);

  // Certificates of a spread of blocks, checked like a light client against GetValidators.
  const withCert = ctx.watcher.blocks.filter((b) => b.certificate !== null);
  const step = Math.max(1, Math.floor(withCert.length / certificateSample));
  const sets = new Map<bigint, Awaited<ReturnType<ParabftClient["getValidators"]>>>();
  for (let i = 0; i < withCert.length && out.certificatesChecked < certificateSample; i += step) {
    const b = withCert[i]!;
    const cert = b.certificate!;
    try {
      let set = sets.get(cert.epoch);
      if (!set) {
        set = await clients[0]!.getValidators(cert.epoch);
        sets.set(cert.epoch, set);
      }
      const subject = b.header ? b.header : ({ kind: "null", epoch: cert.epoch, height: b.height } as const);
      const v = verifyCommitCertificate(subject, cert, set, chainId);
      out.certificatesChecked++;
      if (v.ok) out.certificatesValid++;
      else out.certificateFailures.push(`height ${b.height}: ${v.reason}: ${v.message}`);
    } catch (err) {
      out.certificatesChecked++;
      out.certificateFailures.push(`height ${b.height}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Orchestration

async function loadSenders(keyFiles: string[], clients: ParabftClient[]): Promise<Sender[]> {
  const senders: Sender[] = [];
  for (const f of keyFiles) {
    const kp = await readKeyFile(f);
    senders.push({
      signer: new NodeSigner(kp.secretKey),
      address: kp.address,
      nextNonce: 0n,
      tainted: false,
    });
  }
  await Promise.all(
    senders.map(async (s, i) => {
      s.nextNonce = (await clients[i % clients.length]!.getAccount(s.address)).nonce;
    }),
  );
  return senders;
}

function isSaturated(run: RunReport, baseline: RunReport): string | null {
  const failed = Object.values(run.submitFailures).reduce((a, b) => a + b, 0) + run.uncommitted;
  if (failed > 0.01 * run.scheduled) return `errors: ${failed} of ${run.scheduled} not committed`;
  if (run.achievedTps < 0.9 * run.offeredRate) {
    return `throughput: achieved ${run.achievedTps} tx/s < 90% of offered ${run.offeredRate}`;
  }
  const limit = Math.max(500, 5 * baseline.finalityMs.p99);
  if (run.finalityMs.p99 > limit) return `latency: p99 ${run.finalityMs.p99} ms > ${limit} ms`;
  return null;
}

/** Thrown when `signal` aborted the run; the cluster and temp files are cleaned up first. */
export class BenchAborted extends Error {
  constructor() {
    super("benchmark interrupted");
    this.name = "BenchAborted";
  }
}

export async function runClusterBench(opts: ClusterBenchOpts): Promise<ClusterBenchReport> {
  const startedAt = new Date().toISOString();
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
  try {
    let apis: string[];
    let keyFiles: string[];
    if (opts.validators !== undefined) {
      tmp = await mkdtemp(path.join(tmpdir(), "parabft-bench-"));
      say(`starting a ${opts.validators}-validator local cluster in ${tmp} ...`);
      cluster = await LocalCluster.create(opts.validators, tmp, {
        accounts: senderCount,
        preset: opts.preset ?? "default",
        // PARABFT_BENCH_LOG_LEVEL=debug and PARABFT_BENCH_KEEP=1 keep the validators' logs to read.
        logLevel: (process.env.PARABFT_BENCH_LOG_LEVEL as "warn" | undefined) ?? "warn",
        insecurePeers: opts.insecurePeers === true,
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

    const connections = Math.max(1, opts.connections ?? Math.max(4, 2 * apis.length));
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
    watcher = new ChainWatcher(watchClients, status.committedHeight + 1n);
    watcher.start();
    const ctx: RunContext = {
      chainId,
      senders,
      conns: clients.slice(0, connections).map((c) => new Connection(c)),
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
    } else if (!opts.sweep) {
      runs.push(await measured(ctx, () => runOnce(ctx, opts.rate, opts.durationS, `${opts.rate} tx/s`)));
    } else {
      const factor = opts.sweepFactor ?? 1.5;
      const maxSteps = opts.sweepMaxSteps ?? 10;
      let rate = opts.rate;
      let lastGood: RunReport | null = null;
      for (let step = 0; step < maxSteps && !opts.signal?.aborted; step++) {
        const run = await measured(ctx, () =>
          runOnce(ctx, rate, opts.durationS, `step ${step + 1}: ${rate} tx/s`),
        );
        runs.push(run);
        const why = isSaturated(run, runs[0]!);
        say(
          `  offered ${rate} tx/s: achieved ${run.achievedTps} tx/s, finality p50 ${run.finalityMs.p50} ms p99 ${run.finalityMs.p99} ms${why ? ` — saturated (${why})` : ""}`,
        );
        if (why) {
          saturation = lastGood
            ? {
                offeredRate: lastGood.offeredRate,
                achievedTps: lastGood.achievedTps,
                finalityP99Ms: lastGood.finalityMs.p99,
                reason: `next step (${rate} tx/s) saturated: ${why}`,
              }
            : {
                offeredRate: null,
                achievedTps: null,
                finalityP99Ms: null,
                reason: `below the first step (${rate} tx/s): ${why}`,
              };
          break;
        }
        lastGood = run;
        rate = Math.round(rate * factor);
      }
      if (!saturation && lastGood) {
        saturation = {
          offeredRate: lastGood.offeredRate,
          achievedTps: lastGood.achievedTps,
          finalityP99Ms: lastGood.finalityMs.p99,
          reason: "not reached: the highest step still kept up (raise --sweep-steps)",
        };
      }
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
        peerTls: cluster ? opts.insecurePeers !== true : null,
        chainId,
        senders: senders.length,
        connections,
        workload: "bank.transfer, amount 1, to a fresh address per tx; pre-signed before the run",
        finalityMethod: opts.closedLoop !== undefined ? CLOSED_LOOP_METHOD : FINALITY_METHOD,
        executedMethod: EXECUTED_METHOD,
      },
      verifyCeiling: ceiling,
      runs,
      saturation,
      verification,
    };
    if (opts.outDir !== null) {
      const kind = opts.closedLoop !== undefined ? `closed${opts.closedLoop}` : opts.sweep ? "sweep" : "rate";
      const name = opts.name ?? `cluster-${kind}-${startedAt.replace(/[:.]/g, "-")}`;
      // Named before writing so that the JSON on disk lists its siblings too.
      const base = path.join(opts.outDir, name);
      report.files = { json: `${base}.json`, table: `${base}.txt`, svg: `${base}.svg` };
      writeResultFiles(opts.outDir, name, report, formatReport(report), chartReport(report));
    }
    return report;
  } finally {
    await watcher?.stop();
    for (const c of clients) c.close();
    if (cluster) {
      say("stopping the cluster ...");
      await cluster.stop();
    }
    if (tmp && process.env.PARABFT_BENCH_KEEP === "1") say(`kept ${tmp}`);
    else if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Presentation

export function formatReport(r: ClusterBenchReport): string {
  const c = r.verifyCeiling;
  const lines: string[] = [];
  lines.push(
    `ParaBFT cluster benchmark — ${r.setup.validators} validators${r.setup.ownCluster ? " (local processes)" : ""}, ${r.machine.cores} cores (${r.machine.cpuModel}), node ${r.machine.node}, load average ${r.machine.loadAverage1m} at start`,
  );
  lines.push(
    `signature-verification ceiling (node:crypto, same run): ${c.singleThreadPerSec}/s one thread, ${c.allCoresPerSec}/s all cores => cluster ceiling ≈ ${c.clusterCeilingPerSec} tx/s`,
  );
  lines.push("");
  lines.push(
    formatTable(
      [
        "offered tx/s",
        "achieved tx/s",
        "× ceiling",
        "committed",
        "failed",
        "final p50 ms",
        "p90",
        "p99",
        "max",
        "exec p50 ms",
        "exec p99",
      ],
      r.runs.map((x) => [
        x.mode === "closed" ? `closed loop ×${x.clients}` : x.offeredRate,
        x.achievedTps,
        x.ratioToClusterCeiling,
        `${x.committed}/${x.scheduled}`,
        Object.values(x.submitFailures).reduce((a, b) => a + b, 0) + x.uncommitted,
        x.finalityMs.p50,
        x.finalityMs.p90,
        x.finalityMs.p99,
        x.finalityMs.max,
        x.executedMs.p50,
        x.executedMs.p99,
      ]),
    ),
  );
  lines.push("");
  for (const x of r.runs) {
    const fails = Object.entries(x.submitFailures)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ");
    lines.push(
      `${x.mode === "closed" ? `closed loop ×${x.clients} (${x.offeredRate} tx/s)` : `${x.offeredRate} tx/s`}: ${x.blocks} blocks; submit ack p50 ${x.submitAckMs.p50} ms; generator lag max ${x.generatorMaxLagMs} ms, CPU ${x.generatorCpuPercent}% of a core${fails ? `; submit failures: ${fails}` : ""}${x.uncommitted ? `; ${x.uncommitted} admitted but not committed` : ""}`,
    );
  }
  const stages = formatStages(r.runs);
  if (stages) {
    lines.push("");
    lines.push("where the time goes (validators' metrics over each run, mean per validator):");
    lines.push(stages);
  }
  if (r.saturation) {
    const sat = r.saturation;
    lines.push("");
    lines.push(
      sat.offeredRate === null
        ? `saturation point: ${sat.reason}`
        : `saturation point: ${sat.offeredRate} tx/s offered, ${sat.achievedTps} tx/s achieved, p99 finality ${sat.finalityP99Ms} ms (${sat.reason})`,
    );
  }
  const v = r.verification;
  lines.push("");
  lines.push(
    `chain check: ${v.inChain}/${v.checked} committed txs found by GetTx at the streamed height (missing ${v.missing}, wrong height ${v.heightMismatch}); receipts sampled ${v.receiptsChecked}: ${JSON.stringify(v.receiptStatus)}${Object.keys(v.receiptErrors).length > 0 ? ` (errors: ${JSON.stringify(v.receiptErrors)})` : ""}; commit certificates verified ${v.certificatesValid}/${v.certificatesChecked}`,
  );
  return lines.join("\n");
}

/** Stacks standalone SVG documents vertically into one. */
function stackSvg(parts: string[]): string {
  let y = 0;
  let width = 0;
  const inner: string[] = [];
  for (const svg of parts) {
    const w = Number(/width="(\d+)"/.exec(svg)?.[1] ?? 640);
    const h = Number(/height="(\d+)"/.exec(svg)?.[1] ?? 420);
    inner.push(svg.replace("<svg ", `<svg y="${y}" `));
    y += h;
    width = Math.max(width, w);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}">\n${inner.join("\n")}\n</svg>\n`;
}

/** Throughput on top (with the verification ceiling), latency below: units never share an axis. */
export function chartReport(r: ClusterBenchReport): string {
  const ceiling = { value: r.verifyCeiling.clusterCeilingPerSec, label: "sig-verify ceiling" };
  const who = `ParaBFT, ${r.setup.validators} validators, ${r.machine.cores} cores`;
  if (r.runs.length > 1) {
    const cats = r.runs.map((x) => `offered ${x.offeredRate}`);
    return stackSvg([
      barChartSvg({
        title: `${who}: throughput per sweep step`,
        categories: cats,
        series: [
          { name: "offered tx/s", values: r.runs.map((x) => x.offeredRate) },
          { name: "achieved tx/s", values: r.runs.map((x) => x.achievedTps) },
        ],
        yLabel: "tx/s",
        referenceLine: ceiling,
      }),
      barChartSvg({
        title: `${who}: latency vs throughput (log scale)`,
        categories: r.runs.map((x) => `${x.achievedTps} tx/s`),
        series: [
          { name: "finality p50", values: r.runs.map((x) => x.finalityMs.p50) },
          { name: "finality p90", values: r.runs.map((x) => x.finalityMs.p90) },
          { name: "finality p99", values: r.runs.map((x) => x.finalityMs.p99) },
          { name: "executed p50", values: r.runs.map((x) => x.executedMs.p50) },
          { name: "executed p99", values: r.runs.map((x) => x.executedMs.p99) },
        ],
        yLabel: "ms",
        logScale: true,
      }),
    ]);
  }
  const run = r.runs[0];
  if (!run) return stackSvg([]);
  const points = run.timeline;
  const shape =
    run.mode === "closed" ? `closed loop, ${run.clients} client(s)` : `${run.offeredRate} tx/s offered`;
  return stackSvg([
    barChartSvg({
      title: `${who}: ${shape}, per second`,
      categories: points.map((p) => `${p.second}s`),
      series: [
        { name: "sent tx/s", values: points.map((p) => p.sent) },
        { name: "committed tx/s", values: points.map((p) => p.committed) },
      ],
      yLabel: "tx/s",
      referenceLine: ceiling,
    }),
    barChartSvg({
      title: `${who}: latency at ${run.achievedTps} tx/s`,
      categories: ["p50", "p90", "p99", "max"],
      series: [
        {
          name: "submit -> committed (ms)",
          values: (["p50", "p90", "p99", "max"] as const).map((k) => run.finalityMs[k]),
        },
        {
          name: "submit -> executed (ms)",
          values: (["p50", "p90", "p99", "max"] as const).map((k) => run.executedMs[k]),
        },
      ],
      yLabel: "ms",
    }),
    barChartSvg({
      title: `${who}: ${shape}, finality latency over time (log scale)`,
      categories: points.map((p) => `${p.second}s`),
      series: [
        { name: "p50 ms", values: points.map((p) => p.finalityP50Ms) },
        { name: "p99 ms", values: points.map((p) => p.finalityP99Ms ?? null) },
        { name: "max ms", values: points.map((p) => p.finalityMaxMs ?? null) },
      ],
      yLabel: "ms",
      logScale: true,
    }),
  ]);
}
