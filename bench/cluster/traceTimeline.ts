// One height's timeline at closed loop ×1 from the validators' PARABFT_TRACE logs (issue 14, l19):
//   PARABFT_TRACE=1 PARABFT_BENCH_LOG_LEVEL=debug PARABFT_BENCH_KEEP=1 parabft bench cluster \
//     --validators 4 --closed-loop 1 --duration 15        (prints "kept DIR")
//   node dist/bench/cluster/traceTimeline.js DIR
// Node 0 must be the primary (view 0) and the closed loop's entry node, as in `bench cluster`.
// The logs' timestamps are whole milliseconds: read the medians of many heights, not one height.
// Stages of node 0 per height: proposing -> PRE-PREPARE sent (its signing-state persist) -> the
// second backup PREPARE in (prepared) -> COMMIT sent (persist) -> delivered (the client is answered)
// -> commit batch durable; then delivered -> proposing the next height (the reply, the client's
// turn, the next transaction's admission). Per backup: PRE-PREPARE in -> PREPARE sent / COMMIT
// sent / delivered.
import { readFileSync } from "node:fs";

interface Line {
  time: number;
  msg: string;
  kind?: string;
  height?: string;
  ms?: string;
}

interface Height {
  prop: number;
  ppPersistMs?: number;
  ppOut?: number;
  prepIn: number[];
  commitOut?: number;
  commitIn: number[];
  del?: number;
  dur?: number;
}

interface BackupHeight {
  ppIn: number;
  prepOut?: number;
  commitOut?: number;
  del?: number;
}

export function readLog(dir: string, i: number): Line[] {
  const out: Line[] = [];
  for (const l of readFileSync(`${dir}/node${i}/node.log`, "utf8").split("\n")) {
    if (l.length === 0) continue;
    try {
      out.push(JSON.parse(l) as Line);
    } catch {
      // a torn last line
    }
  }
  return out;
}

function pct(xs: number[], p: number): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

export function primaryTimeline(lines: Line[]): Map<string, Height> {
  const byHeight = new Map<string, Height>();
  let cur: Height | null = null;
  let curHeight = "";
  let phase: "pp" | "prep" | "commit" = "pp";
  for (const e of lines) {
    if (e.msg === "proposing" && e.height !== undefined) {
      cur = { prop: e.time, prepIn: [], commitIn: [] };
      curHeight = e.height;
      byHeight.set(e.height, cur);
      phase = "pp";
      continue;
    }
    if (cur === null) continue;
    if (e.msg === "trace persisted" && phase === "pp") cur.ppPersistMs = Number(e.ms);
    else if (e.msg === "trace broadcast" && e.kind === "prePrepare" && phase === "pp") {
      cur.ppOut = e.time;
      phase = "prep";
    } else if (e.msg === "trace in" && e.kind === "prepare") cur.prepIn.push(e.time);
    else if (e.msg === "trace broadcast" && e.kind === "commit" && phase === "prep") {
      cur.commitOut = e.time;
      phase = "commit";
    } else if (e.msg === "trace in" && e.kind === "commit") cur.commitIn.push(e.time);
    else if (e.msg === "delivered" && e.height === curHeight) cur.del = e.time;
    else if (e.msg === "commit batch durable" && e.height === curHeight) cur.dur = e.time;
  }
  return byHeight;
}

function main(): void {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error("usage: traceTimeline.js KEPT_BENCH_DIR");
  const heights = primaryTimeline(readLog(dir, 0));
  const rows = [...heights.entries()].filter(([, r]) => r.ppOut && r.del && r.dur && r.prepIn.length >= 2);
  const next = (h: string) => heights.get(String(BigInt(h) + 1n));
  const stages: [string, number[]][] = [
    ["proposing -> PRE-PREPARE sent (persist)", rows.map(([, r]) => r.ppOut! - r.prop)],
    ["  its signing-state persist (logged ms)", rows.map(([, r]) => r.ppPersistMs ?? Number.NaN)],
    ["PRE-PREPARE sent -> 1st backup PREPARE in", rows.map(([, r]) => r.prepIn[0]! - r.ppOut!)],
    ["PRE-PREPARE sent -> 2nd backup PREPARE in (prepared)", rows.map(([, r]) => r.prepIn[1]! - r.ppOut!)],
    ["prepared -> COMMIT sent (persist)", rows.map(([, r]) => (r.commitOut ?? Number.NaN) - r.prepIn[1]!)],
    ["prepared -> delivered (client answered)", rows.map(([, r]) => r.del! - r.prepIn[1]!)],
    ["delivered -> commit batch durable", rows.map(([, r]) => r.dur! - r.del!)],
    ["proposing -> delivered", rows.map(([, r]) => r.del! - r.prop)],
    ["delivered -> proposing the next height", rows.map(([h, r]) => (next(h)?.prop ?? Number.NaN) - r.del!)],
    [
      "proposing -> proposing the next height (one cycle)",
      rows.map(([h, r]) => (next(h)?.prop ?? Number.NaN) - r.prop),
    ],
  ];
  console.log(`node 0 (primary), ${rows.length} heights with every stage logged (ms)`);
  console.log(`${"stage".padEnd(54)}   p50    p90`);
  for (const [name, xs] of stages)
    console.log(
      `${name.padEnd(54)} ${pct(xs, 0.5).toFixed(1).padStart(5)}  ${pct(xs, 0.9).toFixed(1).padStart(5)}`,
    );
  for (const i of [1, 2, 3]) {
    let cur: BackupHeight | null = null;
    const rs: BackupHeight[] = [];
    for (const e of readLog(dir, i)) {
      if (e.msg === "trace in" && e.kind === "prePrepare") {
        cur = { ppIn: e.time };
        rs.push(cur);
      } else if (cur === null) continue;
      else if (e.msg === "trace broadcast" && e.kind === "prepare") cur.prepOut ??= e.time;
      else if (e.msg === "trace broadcast" && e.kind === "commit") cur.commitOut ??= e.time;
      else if (e.msg === "delivered") cur.del ??= e.time;
    }
    const ok = rs.filter((r) => r.prepOut !== undefined && r.commitOut !== undefined && r.del !== undefined);
    const m = (f: (r: (typeof ok)[number]) => number) => pct(ok.map(f), 0.5).toFixed(1);
    console.log(
      `node ${i}: PRE-PREPARE in -> PREPARE sent ${m((r) => r.prepOut! - r.ppIn)}, -> COMMIT sent ${m((r) => r.commitOut! - r.ppIn)}, -> delivered ${m((r) => r.del! - r.ppIn)} (p50 of ${ok.length})`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
