// Interleaved baseline and attack windows for the hostile-* cluster tests: how honest service
// under attack is compared with the same run's baseline so that the comparison survives a loaded
// machine (the CI box is 2 cores shared with other jobs; load averages of 10-20 are normal).
//
// Windows run B A B A ... A B (B: baseline, A: attack toggled on within the same cluster run).
// Each attack window is compared with the mean of the two baseline windows that bracket it, so a
// drift in the machine's load during the run (which moves both neighbours alike) cancels out, and
// the verdict is the median over the attack windows' ratios, so one burst of outside load that
// lands in a single window (on either side) cannot decide it. The attack is the same in every
// attack window: damage it does shows in every ratio and so in the median.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import path from "node:path";
import { barChartSvg, formatTable, writeResultFiles } from "../../bench/lib/index.js";
import {
  type ParabftClient,
  type PreparedTx,
  signTx,
  type TxSigner,
  toHex,
  transferTx,
} from "../../src/client/node.js";
import { type PresetName, presets } from "../../src/params/index.js";
import { LocalCluster, stopAndRemove, tempDir } from "./harness.js";
import { type Ack, clientsFor, closeAll, metricValue, percentile, sleep } from "./lib.js";

export interface HonestWindow {
  attack: boolean;
  seconds: number;
  acks: number;
  /** Honest commits acknowledged per second in this window. */
  rate: number;
  /** Finality p99 (submit to committed answer) of the acks that arrived in this window, ms. */
  p99: number;
  /** CPU seconds each validator process used in this window. */
  nodeCpu: number[];
  /** CPU seconds this test process (honest clients + attacker worker threads) used. */
  testCpu: number;
  /** The machine's 1-minute load average at the window's end. */
  load: number;
  /** What the test's probe reported at the window's end (e.g. the consensus view). */
  note: string;
  /**
   * The window's start and end on the machine's monotonic clock (ms), the clock of a
   * `--cpu-prof` profile's timestamps: a node profile can be cut into attack and baseline windows.
   */
  monoMs: [number, number];
}

export interface Interleaved {
  windows: HonestWindow[];
  /** Per attack window: its rate over the mean rate of its two neighbouring baseline windows. */
  rateRatios: number[];
  /** Per attack window: its p99 over the mean p99 of its two neighbouring baseline windows. */
  p99Ratios: number[];
  rateRatio: number;
  p99Ratio: number;
  /**
   * Medians over the attack windows of the CPU seconds each used beyond the mean of its two
   * bracketing baselines: the four validators together, and the test process (the attacker's
   * worker thread and client on the same cores; the honest clients run in both windows alike).
   * The attacker's share is an artefact of the shared box: a real attacker runs elsewhere.
   */
  extraNodeCpu: number;
  extraTestCpu: number;
}

/** Honest load runs this long before the first (baseline) window. */
export const WARMUP_MS = 10_000;

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The monotonic clock (CLOCK_MONOTONIC, as V8's profiler stamps samples), in ms. */
function monoMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export function cpuSecondsOf(pid: number | null): number {
  if (pid === null) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * Peak resident memory of validator processes over a scenario, sampled every 250 ms from
 * /proc/PID/status, and the bound the hostile tests state for it: no node grows by more than
 * `growthBound` over its RSS at the start, nor exceeds `absBound` (finding 4 reached 559 MB and
 * rising).
 */
export class RssWatch {
  static readonly growthBound = 150 * 1024 * 1024;
  static readonly absBound = 450 * 1024 * 1024;
  readonly start: number[];
  readonly peak: number[];
  private readonly sampler: NodeJS.Timeout;

  constructor(private readonly pids: readonly (number | null)[]) {
    this.start = pids.map(rssOf);
    this.peak = [...this.start];
    this.sampler = setInterval(() => this.sample(), 250);
  }

  stop(): void {
    clearInterval(this.sampler);
  }

  describe(): string {
    const mb = (r: number) => (r / 2 ** 20).toFixed(0);
    return `RSS MB start ${this.start.map(mb).join("/")} peak ${this.peak.map(mb).join("/")}`;
  }

  /** Asserts the bound for each watched process; `names[k]` names the k-th (its node index). */
  assertBounded(names: readonly number[]): void {
    for (const [k, i] of names.entries()) {
      assert.ok(this.peak[k]! < RssWatch.absBound, `node ${i} RSS peaked at ${this.peak[k]} bytes`);
      assert.ok(
        this.peak[k]! - this.start[k]! < RssWatch.growthBound,
        `node ${i} RSS grew ${this.peak[k]! - this.start[k]!} bytes`,
      );
    }
  }

  private sample(): void {
    for (const [k, pid] of this.pids.entries()) this.peak[k] = Math.max(this.peak[k]!, rssOf(pid));
  }
}

function rssOf(pid: number | null): number {
  if (pid === null) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs `rounds` attack windows bracketed by `rounds + 1` baseline windows, each `windowMs` long,
 * while `load` (already started and past its warm-up) keeps honest closed-loop traffic going.
 * `startAttack` is awaited before an attack window's clock starts and `stopAttack` after it ends,
 * so set-up and tear-down fall between windows (their acks are counted in neither).
 */
export async function interleave(
  load: { acks: Ack[] },
  pids: (number | null)[],
  opts: {
    rounds: number;
    windowMs: number;
    startAttack: (round: number) => Promise<void> | void;
    stopAttack: (round: number) => Promise<void> | void;
    /** Honest load before the first window, not compared; default WARMUP_MS. */
    warmupMs?: number;
    /** Called at each window's end; its answer is logged with the window. */
    probe?: () => Promise<string>;
  },
): Promise<Interleaved> {
  const windows: HonestWindow[] = [];
  const run = async (attack: boolean) => {
    const cpu0 = pids.map(cpuSecondsOf);
    const test0 = process.cpuUsage();
    const from = load.acks.length;
    const t0 = performance.now();
    const mono0 = monoMs();
    await sleep(opts.windowMs);
    const seconds = (performance.now() - t0) / 1000;
    const mono1 = monoMs();
    const lat = load.acks.slice(from).map((a) => a.latencyMs);
    const test = process.cpuUsage(test0);
    const note = opts.probe ? await opts.probe().catch((err) => String(err)) : "";
    windows.push({
      attack,
      seconds,
      acks: lat.length,
      rate: lat.length / seconds,
      p99: percentile(lat, 99),
      nodeCpu: pids.map((p, i) => cpuSecondsOf(p) - cpu0[i]!),
      testCpu: (test.user + test.system) / 1e6,
      load: loadavg()[0]!,
      note,
      monoMs: [mono0, mono1],
    });
  };
  // Warm-up, not compared: a fresh cluster's first seconds of load run faster than its steady
  // state (measured: the first window's p99 was 0.3-1.5 s, every later one's ~8-10 s, attack or
  // not), so a first baseline taken then would make the first attack window look bad.
  await sleep(opts.warmupMs ?? WARMUP_MS);
  await run(false);
  for (let round = 0; round < opts.rounds; round++) {
    await opts.startAttack(round);
    try {
      await run(true);
    } finally {
      await opts.stopAttack(round);
    }
    await run(false);
  }
  // Diagnosis: HOSTILE_WINDOWS_DUMP=FILE appends each run's windows (JSON lines), e.g. to cut
  // node profiles (HOSTILE_NODE_ARGS="--cpu-prof ...") into attack and baseline windows.
  if (process.env.HOSTILE_WINDOWS_DUMP)
    await appendFile(process.env.HOSTILE_WINDOWS_DUMP, `${JSON.stringify({ pids, windows })}\n`);
  const rateRatios: number[] = [];
  const p99Ratios: number[] = [];
  const extraNode: number[] = [];
  const extraTest: number[] = [];
  const nodeSum = (w: HonestWindow) => w.nodeCpu.reduce((x, y) => x + y, 0);
  for (let k = 1; k < windows.length; k += 2) {
    const [before, a, after] = [windows[k - 1]!, windows[k]!, windows[k + 1]!];
    rateRatios.push(a.rate / ((before.rate + after.rate) / 2));
    p99Ratios.push(a.p99 / ((before.p99 + after.p99) / 2));
    extraNode.push(nodeSum(a) - (nodeSum(before) + nodeSum(after)) / 2);
    extraTest.push(a.testCpu - (before.testCpu + after.testCpu) / 2);
  }
  return {
    windows,
    rateRatios,
    p99Ratios,
    rateRatio: median(rateRatios),
    p99Ratio: median(p99Ratios),
    extraNodeCpu: median(extraNode),
    extraTestCpu: median(extraTest),
  };
}

/** One line per window, for the test's log. */
export function describeWindows(name: string, r: Interleaved): string {
  const rows = r.windows.map(
    (w) =>
      `#   ${w.attack ? "attack  " : "baseline"} ${w.seconds.toFixed(1)} s  ${w.acks} acks  ` +
      `${w.rate.toFixed(1)}/s  p99 ${w.p99.toFixed(0)} ms  node CPU s ${w.nodeCpu.map((c) => c.toFixed(1)).join("/")}  ` +
      `test CPU s ${w.testCpu.toFixed(1)}  load ${w.load.toFixed(1)}  ${w.note}`,
  );
  return [
    `# ${name}: median rate ratio ${r.rateRatio.toFixed(2)} (${r.rateRatios.map((x) => x.toFixed(2)).join(" ")}), ` +
      `median p99 ratio ${r.p99Ratio.toFixed(2)} (${r.p99Ratios.map((x) => x.toFixed(2)).join(" ")}); ` +
      `CPU s per attack window over its baselines: validators ${r.extraNodeCpu.toFixed(2)}, ` +
      `attacker (test process) ${r.extraTestCpu.toFixed(2)}`,
    ...rows,
  ].join("\n");
}

/**
 * Attack windows per attack. `make test` asserts what holds in every window (no exit, bounded RSS,
 * nothing lost, an honest commit in each attack window): two rounds show it, and keep the three
 * hostile files at about four minutes. The rate and p99 medians of `make bench-hostile`
 * (PARABFT_HOSTILE_STRICT=1) need the full count to be worth quoting.
 */
export function hostileRounds(strictRounds: number): number {
  return process.env.PARABFT_HOSTILE_STRICT === "1" ? strictRounds : Math.min(2, strictRounds);
}

/**
 * Attack windows of the second, open-loop honest shape: only in `make bench-hostile`, where its
 * ratios are asserted and recorded. In `make test` it would add about 50 s per scenario for a
 * figure that is not asserted there, so it does not run (0).
 */
export function openLoopRounds(strictRounds: number): number {
  return process.env.PARABFT_HOSTILE_STRICT === "1" ? strictRounds : 0;
}

/**
 * Issue 10's service bound: honest commits continue at >= 80% of the baseline rate with finality
 * p99 within 3x of the baseline's, judged on the medians of the bracketed per-window ratios.
 *
 * Asserted everywhere: no attack window goes without an honest commit (the attack stops no one).
 * The ratios are a speed figure, so they are asserted only by `make bench-hostile`
 * (PARABFT_HOSTILE_STRICT=1), which also records them in bench/results/hostile.{json,txt,svg}
 * (PARABFT_HOSTILE_OUT): in `make test` on a shared 2-core box they measure the box as much as the
 * attack (docs/SECURITY.md gives the figures).
 */
export function assertHonestService(name: string, r: Interleaved, shape: HonestShape = "closed loop"): void {
  const table = describeWindows(name, r);
  for (const w of r.windows)
    assert.ok(!w.attack || w.acks > 0, `${name}: an attack window had no honest commit\n${table}`);
  const out = process.env.PARABFT_HOSTILE_OUT;
  if (out) recordService(out, name, r, shape);
  if (process.env.PARABFT_HOSTILE_STRICT !== "1") return;
  const base = r.windows.filter((w) => !w.attack);
  assert.ok(
    base.every((w) => w.acks >= 3),
    `${name}: a baseline window is too thin to compare with\n${table}`,
  );
  assert.ok(r.rateRatio >= 0.8, `${name}: honest rate under attack < 80% of baseline\n${table}`);
  assert.ok(r.p99Ratio <= 3, `${name}: honest finality p99 under attack > 3x baseline\n${table}`);
}

/**
 * How the honest load was offered: "closed loop" (TransferLoad: each sender waits for its commit,
 * saturating the box, so it measures capacity under attack) or "open loop" (OpenLoopLoad at a
 * fixed rate below saturation).
 */
export type HonestShape = "closed loop" | "open loop";

interface ServiceRecord {
  name: string;
  /** Absent in records written before the open-loop shape existed: closed loop. */
  shape?: HonestShape;
  rateRatio: number;
  p99Ratio: number;
  rateRatios: number[];
  p99Ratios: number[];
  loadAverages: number[];
  /** Interleaved.extraNodeCpu / extraTestCpu (absent in records written before them). */
  extraNodeCpu?: number;
  extraTestCpu?: number;
  pass: boolean;
  at: string;
}

/** Adds (or replaces) one attack's figures in DIR/hostile.{json,txt,svg}. */
function recordService(dir: string, name: string, r: Interleaved, shape: HonestShape): void {
  const file = path.join(dir, "hostile.json");
  const prior: { scenarios: ServiceRecord[] } = existsSync(file)
    ? JSON.parse(readFileSync(file, "utf8"))
    : { scenarios: [] };
  const scenarios = prior.scenarios.filter((s) => s.name !== name);
  scenarios.push({
    name,
    shape,
    rateRatio: r.rateRatio,
    p99Ratio: r.p99Ratio,
    rateRatios: r.rateRatios,
    p99Ratios: r.p99Ratios,
    loadAverages: r.windows.map((w) => w.load),
    extraNodeCpu: r.extraNodeCpu,
    extraTestCpu: r.extraTestCpu,
    pass: r.rateRatio >= 0.8 && r.p99Ratio <= 3,
    at: new Date().toISOString(),
  });
  const round = (x: number) => Math.round(x * 100) / 100;
  const table = formatTable(
    [
      "attack",
      "honest load",
      "rate ratio (>= 0.8)",
      "p99 ratio (<= 3)",
      "per-window rate ratios",
      "extra CPU s/window: validators, attacker",
      "load",
      "pass",
    ],
    scenarios.map((s) => [
      s.name,
      s.shape ?? "closed loop",
      round(s.rateRatio),
      round(s.p99Ratio),
      s.rateRatios.map(round).join(" "),
      s.extraNodeCpu === undefined ? "" : `${round(s.extraNodeCpu)}, ${round(s.extraTestCpu ?? 0)}`,
      `${round(Math.min(...s.loadAverages))}-${round(Math.max(...s.loadAverages))}`,
      s.pass ? "yes" : "no",
    ]),
  );
  const svg = barChartSvg({
    title: "Honest commit rate under attack / same run's baseline (median of bracketed windows)",
    categories: scenarios.map((s) => `${s.name} (${s.shape ?? "closed loop"})`),
    series: [{ name: "rate ratio", values: scenarios.map((s) => s.rateRatio) }],
    yLabel: "ratio",
    referenceLine: { value: 0.8, label: "goal 0.8" },
  });
  writeResultFiles(dir, "hostile", { kind: "parabft-hostile-bench", version: 1, scenarios }, table, svg);
}

/**
 * Rewrites the cluster's genesis (before it starts) to `preset`'s parameters with the base view
 * timeout set to `viewTimeoutMs`. On a 2-core box at load 20 each validator gets about a tenth of
 * a core, a round takes seconds, and a 0.3 s or 1 s view timeout turns that starvation into
 * view changes whose doubling back-off stalls commits for up to viewTimeoutCapMs: windows would
 * then measure where those spurious stalls fell, not the attack. A longer base timeout hides no
 * attack: a stall the attack causes (a displaced link, a starved primary) lasts at least as long.
 */
export async function setViewTimeout(
  cluster: LocalCluster,
  preset: PresetName,
  viewTimeoutMs: number,
): Promise<void> {
  const params = structuredClone(presets[preset]);
  params.consensus.viewTimeoutMs = viewTimeoutMs;
  params.consensus.viewTimeoutCapMs = Math.max(params.consensus.viewTimeoutCapMs, viewTimeoutMs);
  const files = [cluster.dir, ...Array.from({ length: cluster.size }, (_, i) => cluster.node(i).home)].map(
    (d) => path.join(d, "genesis.json"),
  );
  for (const f of files) {
    const text = await readFile(f, "utf8");
    const from = `"preset": "${preset}"`;
    assert.ok(text.includes(from), `${f} does not name preset ${preset}`);
    await writeFile(f, text.replace(from, `"params": ${JSON.stringify(params)}`));
  }
}

/**
 * No node banned an honest validator: an attack must not turn the ban machinery against honest
 * peers (a relayed NEW-VIEW once cost its honest forwarder a penalty per relay, and view-change
 * storms under load ended in bans).
 */
export async function assertNoHonestBans(cluster: LocalCluster, nodes: number[], honest: number[]) {
  for (const i of nodes) {
    for (const peer of honest) {
      if (peer === i) continue;
      const bans = await metricValue(cluster.node(i).metrics, "parabft_net_bans_total", {
        peer: String(peer),
      });
      assert.equal(bans, 0, `node ${i} banned honest validator ${peer}\n${cluster.logTail(i)}`);
    }
  }
}

/** The hostile tests' four validators, their API clients, and every unexpected validator exit. */
export interface HostileCluster {
  cluster: LocalCluster;
  clients: ParabftClient[];
  exits: string[];
}

/**
 * Starts the four validators the hostile-* tests attack, on the default preset: its 1 s view
 * timeout, because on a loaded 2-core box the minimal preset's 300 ms turns every scheduling
 * hiccup into a view change (dozens a minute at load 20), and the windows would measure those
 * instead of the attack. HOSTILE_VIEW_TIMEOUT_MS overrides the timeout (setViewTimeout);
 * HOSTILE_NODE_ARGS passes node flags, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where a
 * node spends an attack; HOSTILE_NODE_ENTRY runs another build's validators (its
 * dist/src/cli/main.js) under this build's attack and windows, for before/after pairs.
 */
export async function startHostileCluster(accounts: number): Promise<HostileCluster> {
  const exits: string[] = [];
  const cluster = await LocalCluster.create(4, await tempDir(), {
    preset: "default",
    accounts,
    nodeArgs: process.env.HOSTILE_NODE_ARGS?.split(" ").filter((x) => x !== ""),
    entry: process.env.HOSTILE_NODE_ENTRY || undefined,
    onUnexpectedExit: (i, code, signal) => exits.push(`node ${i} exited (code ${code}, signal ${signal})`),
  });
  try {
    if (process.env.HOSTILE_VIEW_TIMEOUT_MS)
      await setViewTimeout(cluster, "default", Number(process.env.HOSTILE_VIEW_TIMEOUT_MS));
    await cluster.start();
  } catch (err) {
    await stopAndRemove(cluster);
    throw err;
  }
  return { cluster, clients: clientsFor(cluster), exits };
}

/** Closes the clients, stops every node and removes the cluster's directory (see stopAndRemove). */
export async function stopHostileCluster(h: HostileCluster | undefined): Promise<void> {
  if (!h) return;
  closeAll(h.clients);
  await stopAndRemove(h.cluster);
}

/**
 * Open-loop honest load, the second honest shape beside the closed loop (TransferLoad): `rate`
 * transfers per second over all senders, each sent on its schedule whether or not earlier ones
 * are answered, so the load does not saturate the box and falls only if the cluster cannot keep
 * up. Sender k sends consecutive nonces, all to node k mod n (one pool sees them in order). A
 * failed attempt is retried with the same signed bytes until it commits or the load stops.
 */
export class OpenLoopLoad {
  readonly acks: Ack[] = [];
  readonly errors: string[] = [];
  /** Transactions sent (first attempts). */
  sent = 0;
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly chainId: string,
    private readonly clients: ParabftClient[],
    private readonly senders: TxSigner[],
    private readonly recipient: Uint8Array,
    private readonly rate: number,
  ) {}

  start(): void {
    this.senders.forEach((s, k) => {
      this.loops.push(this.run(s, k));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all([...this.pending]);
  }

  private async run(sender: TxSigner, k: number): Promise<void> {
    const node = k % this.clients.length;
    let nonce = (await this.clients[node]!.getAccount(sender.address)).nonce;
    const intervalMs = (1000 * this.senders.length) / this.rate;
    // Senders start spread over one interval.
    let next = performance.now() + (intervalMs * k) / this.senders.length;
    while (!this.stopped) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.stopped) break;
      next += intervalMs;
      const tx = signTx(
        transferTx({ chainId: this.chainId, sender: sender.publicKey, nonce: nonce++ }, this.recipient, 1n),
        sender,
      );
      this.sent++;
      const p = this.send(tx, node);
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    }
  }

  private async send(tx: PreparedTx, node: number): Promise<void> {
    const t0 = performance.now();
    for (;;) {
      try {
        const res = await this.clients[node]!.submitAndWait(tx, { timeoutMs: 8000 });
        this.acks.push({ hash: toHex(res.txHash), height: res.height, latencyMs: performance.now() - t0 });
        return;
      } catch (err) {
        this.errors.push(`node ${node}: ${err instanceof Error ? err.message : String(err)}`);
        const found = await this.clients[node]!.getTx(tx.hash).catch(() => null);
        if (found) {
          this.acks.push({ hash: toHex(tx.hash), height: found.height, latencyMs: performance.now() - t0 });
          return;
        }
        if (this.stopped) return;
        await sleep(100);
      }
    }
  }
}

/** The open-loop rate: this share of the median closed-loop baseline window's rate. */
export const OPEN_LOOP_SHARE = 0.5;

export function openLoopRate(closed: Interleaved): number {
  return OPEN_LOOP_SHARE * median(closed.windows.filter((w) => !w.attack).map((w) => w.rate));
}
