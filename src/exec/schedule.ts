// Scheduling a block: conflict graph from declared access lists -> lanes (connected components,
// block order inside a lane) -> bins for workers, and the cost model deciding whether shipping
// lanes to workers pays (DESIGN §5).
import type { DecodedTx } from "./programs.js";
import { touchedKeys } from "./programs.js";

/**
 * Per-block cost model, in microseconds. Measured on the 2-vCPU EPYC VM (see README.md):
 * the figures only need to be right within ~2x, the margin absorbs the rest.
 */
export interface CostModel {
  /** Executing a cheap transaction (transfer, kv, swap) on an already-decoded tx. */
  cheapTxUs: number;
  /** One compute.work iteration (SHA-256 of 32 bytes, sha256iter.ts). */
  computeIterationUs: number;
  /** Worker-side protobuf decode of one body, paid inside each bin. */
  workerDecodeUs: number;
  /** Main-thread encode + result decode + merge, per transaction shipped (serial). */
  mainShipUs: number;
  /** Fixed per-block cost of a parallel round trip (message latency, buffers). */
  fixedUs: number;
  /** Run in parallel only when predicted parallel time < margin × sequential time. */
  margin: number;
  /** Never ship fewer transactions than this. */
  minTxs: number;
}

/**
 * From `parabft bench exec` calibration (CPU time, 2-vCPU EPYC VM shared with other work):
 * compute iteration 0.39 µs (sha256iter.ts), inline transfer 12–20 µs (decode, apply, receipt),
 * worker decode 2.4–3.6 µs, forced 2-worker transfer 31–35 µs/tx more CPU than inline (main and
 * worker side together).
 */
export const DEFAULT_COST_MODEL: CostModel = {
  cheapTxUs: 8,
  computeIterationUs: 0.4,
  workerDecodeUs: 5,
  mainShipUs: 10,
  fixedUs: 500,
  margin: 0.8,
  minTxs: 16,
};

export function txCostUs(tx: Pick<DecodedTx, "body">, m: CostModel): number {
  const call = tx.body.call?.call;
  if (call?.case === "compute") return m.cheapTxUs + m.computeIterationUs * call.value.iterations;
  return m.cheapTxUs;
}

export interface Lane {
  /** Block indices, ascending. */
  txs: number[];
  costUs: number;
}

function find(parent: Int32Array, i: number): number {
  let r = i;
  while (parent[r] !== r) r = parent[r]!;
  while (parent[i] !== r) {
    const next = parent[i]!;
    parent[i] = r;
    i = next;
  }
  return r;
}

/**
 * Two transactions conflict when one writes a key the other reads or writes. Keys that are
 * only read within the block join nothing. Malformed (null) entries belong to no lane.
 */
export function buildLanes(txs: readonly (DecodedTx | null)[], m: CostModel): Lane[] {
  const n = txs.length;
  const parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const byKey = new Map<string, { txs: number[]; write: boolean }>();
  for (let i = 0; i < n; i++) {
    const tx = txs[i];
    if (!tx) continue;
    const t = touchedKeys(tx);
    for (let j = 0; j < t.keys.length; j++) {
      const k = t.keys[j]!;
      const e = byKey.get(k);
      if (e === undefined) byKey.set(k, { txs: [i], write: t.writes[j]! });
      else {
        e.txs.push(i);
        if (t.writes[j]) e.write = true;
      }
    }
  }
  for (const e of byKey.values()) {
    if (!e.write || e.txs.length < 2) continue;
    const r0 = find(parent, e.txs[0]!);
    for (let j = 1; j < e.txs.length; j++) {
      const r = find(parent, e.txs[j]!);
      if (r !== r0) parent[r] = r0;
    }
  }
  const laneOf = new Map<number, Lane>();
  const lanes: Lane[] = [];
  for (let i = 0; i < n; i++) {
    const tx = txs[i];
    if (!tx) continue;
    const r = find(parent, i);
    let lane = laneOf.get(r);
    if (lane === undefined) {
      lane = { txs: [], costUs: 0 };
      laneOf.set(r, lane);
      lanes.push(lane);
    }
    lane.txs.push(i);
    lane.costUs += txCostUs(tx, m);
  }
  return lanes;
}

export interface Plan {
  mode: "inline" | "parallel";
  /** Per worker: block indices in block order. Empty when inline. */
  bins: number[][];
  lanes: number;
  /** Predicted costs, for metrics and the README's cost model table. */
  sequentialUs: number;
  parallelUs: number;
}

/**
 * plan's pre-check: `n` well-formed txs of predicted sequential cost `seqUs` run inline whatever
 * their conflicts, because shipping alone would cost more (or there is no worker, or too few txs).
 */
export function inlineByPrecheck(n: number, seqUs: number, workers: number, m: CostModel): boolean {
  return workers <= 0 || n < m.minTxs || m.fixedUs + m.mainShipUs * n >= m.margin * seqUs;
}

/** Longest-processing-time-first bin packing of lanes, then the cost comparison. */
export function plan(
  txs: readonly (DecodedTx | null)[],
  workers: number,
  mode: "auto" | "always" | "never",
  m: CostModel,
): Plan {
  // Cheap pre-check before building the conflict graph: if shipping alone costs more than the
  // whole block would inline, no lane split can pay (transfers, kv, swaps land here).
  if (mode !== "always") {
    let seq = 0;
    let n = 0;
    for (const tx of txs) {
      if (!tx) continue;
      seq += txCostUs(tx, m);
      n++;
    }
    if (inlineByPrecheck(n, seq, workers, m)) {
      return { mode: "inline", bins: [], lanes: 0, sequentialUs: seq, parallelUs: Number.POSITIVE_INFINITY };
    }
  }
  const lanes = buildLanes(txs, m);
  let shipped = 0;
  let sequentialUs = 0;
  for (const l of lanes) {
    sequentialUs += l.costUs;
    shipped += l.txs.length;
  }
  if (workers <= 0 || mode === "never" || lanes.length === 0) {
    return {
      mode: "inline",
      bins: [],
      lanes: lanes.length,
      sequentialUs,
      parallelUs: Number.POSITIVE_INFINITY,
    };
  }
  const order = lanes.map((_, i) => i).sort((a, b) => lanes[b]!.costUs - lanes[a]!.costUs || a - b);
  const load = new Array<number>(workers).fill(0);
  const assigned: number[][] = Array.from({ length: workers }, () => []);
  for (const li of order) {
    let best = 0;
    for (let w = 1; w < workers; w++) if (load[w]! < load[best]!) best = w;
    const lane = lanes[li]!;
    load[best]! += lane.costUs + m.workerDecodeUs * lane.txs.length;
    for (const t of lane.txs) assigned[best]!.push(t);
  }
  const parallelUs = m.fixedUs + m.mainShipUs * shipped + Math.max(...load);
  const bins = assigned.filter((b) => b.length > 0).map((b) => b.sort((x, y) => x - y));
  const pays = shipped >= m.minTxs && parallelUs < m.margin * sequentialUs;
  if (mode === "always" || pays)
    return { mode: "parallel", bins, lanes: lanes.length, sequentialUs, parallelUs };
  return { mode: "inline", bins: [], lanes: lanes.length, sequentialUs, parallelUs };
}
