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
// Validators from p24 on also log per-transaction trace points (src/node/trace.ts): the hops
// before the proposal (entry admission, gossip in at the primary, its admission, the pool) by tx
// id, and the mempool's account read / signatures / re-read per admission batch.
import { existsSync, readFileSync } from "node:fs";
import { primaryTimeline, readLog } from "./traceTimeline.js";

interface TxLine {
  i: number;
  sched: number | null;
  sent: number | null;
  acked: number | null;
  seen: number | null;
  entry: number | null;
  height: number | null;
  /** The first 12 hex digits of the tx hash (bench builds from p24 on). */
  id?: string;
}

/** When a transaction's admission began (wall ms) and ended (the line's time) on one node. */
interface Admission {
  at0: number;
  time: number;
}

/** The nodes' per-transaction trace points (PARABFT_TRACE, validators from p24 on). */
interface TxTrace {
  /** Per node: tx id -> its API admission there. */
  api: Map<string, Admission>[];
  /** Node 0 (the primary): tx id -> the gossip envelope carrying it arrived. */
  gossipIn: Map<string, number>;
  /** Node 0: tx id -> its admission from gossip. */
  gossipAdmitted: Map<string, Admission>;
}

interface TraceLine {
  time: number;
  msg: string;
  at0?: number;
  txs?: string[];
  origin?: string;
  n?: number;
  accountMs?: number;
  verifyMs?: number;
  rereadMs?: number;
  reread?: boolean;
}

/**
 * The mempool's "trace admission" lines (one per admitted batch, p24): p50/p90/p99 of the account
 * read, the signature check and the re-read after a commit or execution moved nonces, per origin
 * (api, peer = gossip) on the primary (node 0) and on the backups.
 */
export function admissionRows(dir: string): StageRow[] {
  const cols = new Map<string, number[]>();
  const add = (k: string, v: number) => {
    const xs = cols.get(k);
    if (xs) xs.push(v);
    else cols.set(k, [v]);
  };
  for (let i = 0; existsSync(`${dir}/node${i}/node.log`); i++) {
    const where = i === 0 ? "primary" : "backups";
    for (const e of readLog(dir, i) as TraceLine[]) {
      if (e.msg !== "trace admission") continue;
      const k = `admission batch, ${e.origin} at ${where}:`;
      add(`${k} txs`, e.n ?? Number.NaN);
      add(`${k} account read`, e.accountMs ?? Number.NaN);
      add(`${k} signatures`, e.verifyMs ?? Number.NaN);
      add(`${k} re-read`, e.rereadMs ?? Number.NaN);
      add(`${k} re-read share`, e.reread ? 1 : 0);
    }
  }
  const out: StageRow[] = [];
  for (const [stage, xs] of [...cols].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (stage.endsWith("share"))
      out.push({
        stage,
        p50: xs.reduce((a, b) => a + b, 0) / xs.length,
        p90: Number.NaN,
        p99: Number.NaN,
        n: xs.length,
      });
    else out.push({ stage, p50: pct(xs, 0.5), p90: pct(xs, 0.9), p99: pct(xs, 0.99), n: xs.length });
  }
  return out;
}

function txTrace(dir: string): TxTrace {
  const api: Map<string, Admission>[] = [];
  const gossipIn = new Map<string, number>();
  const gossipAdmitted = new Map<string, Admission>();
  for (let i = 0; existsSync(`${dir}/node${i}/node.log`); i++) {
    const m = new Map<string, Admission>();
    api.push(m);
    for (const e of readLog(dir, i) as TraceLine[]) {
      if (e.txs === undefined) continue;
      if (e.msg === "trace api admitted") for (const id of e.txs) m.set(id, { at0: e.at0!, time: e.time });
      else if (i !== 0) continue;
      else if (e.msg === "trace gossip in") {
        for (const id of e.txs) if (!gossipIn.has(id)) gossipIn.set(id, e.time);
      } else if (e.msg === "trace gossip admitted")
        for (const id of e.txs) gossipAdmitted.set(id, { at0: e.at0!, time: e.time });
    }
  }
  return { api, gossipIn, gossipAdmitted };
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
  const trace = txTrace(dir);
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
    const nextProposal = (at: number): number => {
      let lo = 0;
      let hi = props.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (props[mid]![1] < at) lo = mid + 1;
        else hi = mid;
      }
      return props[lo]?.[1] ?? Number.NaN;
    };
    const first = nextProposal(t.sent);
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
    // The hops before the proposal (p24 trace points): entry admission, gossip, the primary's.
    const entryAdm = t.id !== undefined && t.entry !== null ? trace.api[t.entry]?.get(t.id) : undefined;
    if (entryAdm !== undefined) {
      add("  sent -> entry API begins admission", entryAdm.at0 - t.sent);
      add("  entry admission", entryAdm.time - entryAdm.at0);
      add("  entry admitted -> acked at the client", (t.acked ?? Number.NaN) - entryAdm.time);
      let inPool = entryAdm.time;
      if (t.entry !== 0) {
        const gin = trace.gossipIn.get(t.id!);
        const gadm = trace.gossipAdmitted.get(t.id!);
        add("  entry admitted -> gossip in at primary", (gin ?? Number.NaN) - entryAdm.time);
        add("  gossip in -> primary admission begins", (gadm?.at0 ?? Number.NaN) - (gin ?? Number.NaN));
        add("  primary admission (gossip)", gadm === undefined ? Number.NaN : gadm.time - gadm.at0);
        inPool = gadm?.time ?? Number.NaN;
        add("  not admitted from gossip at the primary share", gadm === undefined ? 1 : 0);
      }
      if (Number.isFinite(inPool)) {
        const next = nextProposal(inPool);
        add(`  in the primary's pool -> proposed, ${where}`, r.prop - inPool);
        add(`  pool: missed > 0 share, ${where}`, r.prop - next > 0 ? 1 : 0);
        add(`  pool: wait for the next proposal, ${where}`, next - inPool);
      }
    }
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
  out.push(...admissionRows(dir));
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
