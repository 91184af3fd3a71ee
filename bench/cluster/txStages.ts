// Where an open-loop transaction's milliseconds go (issue 14, p23): the bench's per-transaction
// log joined with the primary's PARABFT_TRACE log, by the block height each transaction landed in.
//   PARABFT_TRACE=1 PARABFT_BENCH_LOG_LEVEL=debug PARABFT_BENCH_KEEP=1 PARABFT_BENCH_TXLOG=FILE \
//     parabft bench cluster --validators 4 --rate R --duration 15 ...       (prints "kept DIR")
//   node dist/bench/cluster/txStages.js FILE DIR [--json]
// Node 0 must be the primary (view 0) and the watcher's node, as in `bench cluster`. Stages of
// each transaction (wall clock; the logs have whole milliseconds, so read medians and p99s):
//   gather      scheduled -> its SubmitTxs call left the client (the submitter's gathering)
//   to proposal sent -> the primary proposed its block: admission at the entry node, the gossip
//               to the primary, and the wait behind the height in flight (proposalDepth)
//     wait      sent -> the first proposal after it was sent
//     missed    that proposal -> its block's proposal (> 0: it missed a proposal)
//   PRE-PREPARE proposing -> PRE-PREPARE sent (the primary's signing-state persist)
//   prepare     PRE-PREPARE sent -> prepared (a quorum of PREPAREs in)
//   commit      prepared -> delivered on the primary (commit certificate: final)
//   durable     delivered -> the primary's commit batch durable
//   observe     durable -> the block on the watcher's StreamBlocks (the bench's finality stamp;
//               negative for a node that streams at certificate time), and delivered -> seen
// plus "ack" (sent -> SubmitTxs answered) beside them, and the same split by entry node (the
// primary itself, or a backup that gossips to it).
import { readFileSync } from "node:fs";
import { primaryTimeline, readLog } from "./traceTimeline.js";

interface TxLine {
  i: number;
  sched: number | null;
  sent: number | null;
  acked: number | null;
  seen: number | null;
  entry: number | null;
  height: number | null;
}

function pct(xs: number[], p: number): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

export interface StageRow {
  stage: string;
  p50: number;
  p90: number;
  p99: number;
  n: number;
}

export function txStages(txs: TxLine[], dir: string): { rows: StageRow[]; notes: string[] } {
  const log0 = readLog(dir, 0);
  const heights = primaryTimeline(log0);
  // Delivery and the commit batch's sync may be logged after the next height's proposal (a
  // pipelined primary): take them by height, not from the proposal's run of lines.
  const delivered = new Map<string, number>();
  const durable = new Map<string, number>();
  for (const e of log0) {
    if (e.height === undefined) continue;
    if (e.msg === "delivered" && !delivered.has(e.height)) delivered.set(e.height, e.time);
    else if (e.msg === "commit batch durable" && !durable.has(e.height)) durable.set(e.height, e.time);
  }
  for (const [h, r] of heights) {
    r.del ??= delivered.get(h);
    r.dur ??= durable.get(h);
  }
  const props = [...heights.entries()]
    .map(([h, r]) => [Number(h), r.prop] as const)
    .sort((a, b) => a[1] - b[1]);
  const cols = new Map<string, number[]>();
  const add = (k: string, v: number) => {
    if (!Number.isFinite(v)) return;
    const xs = cols.get(k);
    if (xs) xs.push(v);
    else cols.set(k, [v]);
  };
  let joined = 0;
  for (const t of txs) {
    if (t.sched === null || t.sent === null || t.seen === null || t.height === null) continue;
    const r = heights.get(String(t.height));
    if (r === undefined || r.ppOut === undefined || r.del === undefined || r.prepIn.length < 2) continue;
    joined++;
    const prepared = r.prepIn[1]!;
    // The first proposal at or after the send (binary search over proposal times).
    let lo = 0;
    let hi = props.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (props[mid]![1] < t.sent) lo = mid + 1;
      else hi = mid;
    }
    const first = props[lo]?.[1] ?? Number.NaN;
    const where = t.entry === 0 ? "entry = primary" : "entry = backup";
    const rows: [string, number][] = [
      ["gather (scheduled -> call sent)", t.sent - t.sched],
      ["ack (call sent -> SubmitTxs answered)", (t.acked ?? Number.NaN) - t.sent],
      ["to proposal (call sent -> its block proposed)", r.prop - t.sent],
      ["  wait (sent -> next proposal)", first - t.sent],
      ["  missed (next proposal -> its block's)", r.prop - first],
      ["PRE-PREPARE (proposing -> sent, persist)", r.ppOut - r.prop],
      ["prepare (PRE-PREPARE sent -> prepared)", prepared - r.ppOut],
      ["commit (prepared -> delivered on primary)", r.del - prepared],
      ["durable (delivered -> commit batch durable)", (r.dur ?? Number.NaN) - r.del],
      ["observe (durable -> seen on the stream)", t.seen - (r.dur ?? Number.NaN)],
      ["delivered on primary -> seen on the stream", t.seen - r.del],
      ["final at primary (scheduled -> delivered)", r.del - t.sched],
      ["bench finality (scheduled -> seen)", t.seen - t.sched],
    ];
    for (const [k, v] of rows) add(k, v);
    add(`to proposal, ${where}`, r.prop - t.sent);
    add(`missed > 0 share, ${where}`, r.prop - first > 0 ? 1 : 0);
  }
  const out: StageRow[] = [];
  for (const [stage, xs] of cols) {
    if (stage.includes("share")) {
      const share = xs.reduce((a, b) => a + b, 0) / xs.length;
      out.push({ stage, p50: share, p90: Number.NaN, p99: Number.NaN, n: xs.length });
    } else out.push({ stage, p50: pct(xs, 0.5), p90: pct(xs, 0.9), p99: pct(xs, 0.99), n: xs.length });
  }
  const inRun = [...heights.entries()].filter(([h]) => txs.some((t) => t.height === Number(h)));
  const cycles = inRun
    .map(([h, r]) => (heights.get(String(BigInt(h) + 1n))?.prop ?? Number.NaN) - r.prop)
    .filter(Number.isFinite);
  const perBlock = new Map<number, number>();
  for (const t of txs) if (t.height !== null) perBlock.set(t.height, (perBlock.get(t.height) ?? 0) + 1);
  const sizes = [...perBlock.values()];
  const notes = [
    `${joined} of ${txs.length} transactions joined to the primary's timeline`,
    `heights ${perBlock.size}: txs/block p50 ${pct(sizes, 0.5)} p90 ${pct(sizes, 0.9)} max ${pct(sizes, 1)}; proposal cycle p50 ${pct(cycles, 0.5)} ms p90 ${pct(cycles, 0.9)} ms`,
  ];
  return { rows: out, notes };
}

function main(): void {
  const [file, dir] = process.argv.slice(2);
  if (file === undefined || dir === undefined)
    throw new Error("usage: txStages.js TXLOG KEPT_BENCH_DIR [--json]");
  const txs = readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as TxLine);
  const { rows, notes } = txStages(txs, dir);
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ rows, notes }, null, 1));
    return;
  }
  for (const n of notes) console.log(n);
  console.log(`${"stage (ms)".padEnd(50)}    p50     p90     p99`);
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-").padStart(7);
  for (const r of rows) console.log(`${r.stage.padEnd(50)} ${f(r.p50)} ${f(r.p90)} ${f(r.p99)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
