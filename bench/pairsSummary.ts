// Summarises bench/pairs.sh directories: per run and median per (shape, build), the CPU per height
// per validator (the bench's own figure), per-thread CPU per height per validator (bench/threads.sh
// ticks × 10 ms / (heights/s × seconds × validators)), finality p50/p99, tx/s, heights/s, the
// signing-state persist and view changes, with each run's load average. Prints a Markdown table.
// `--per-tx`: the thread columns in µs per committed transaction per validator instead (ticks × 10
// ms / (tx/s × seconds × validators)), and `txms` = the bench's cluster CPU ms per committed tx:
// the unit of issue 14's saturation goal (≤ 1.2 ms/tx across the cluster).
//   node dist/bench/pairsSummary.js [--per-tx] DIR [DIR...]
// A run's files share a stem `BUILD-SHAPE-I`: .json (the bench report), .thr, .load.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ClusterBenchReport } from "./cluster/types.js";
import { median } from "./lib/index.js";

const PER_TX = process.argv.includes("--per-tx");

const KEYS = [
  "cpu",
  "txms",
  "main",
  "other",
  "v8",
  "uv",
  "worker",
  "p50",
  "p99",
  "tps",
  "hps",
  "persist",
  "pph",
  "vc",
] as const;
type Key = (typeof KEYS)[number];
type Row = Record<Key, number | null> & { name: string; load: string };

/**
 * Per-thread-group CPU per validator from a threads.sh file (first line: "validators N seconds S"):
 * ms per height with `perSec` = heights/s, µs per tx with `perSec` = tx/s / 1000.
 */
function threadShares(file: string, perSec: number): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(file) || perSec <= 0) return out;
  const [head = "", ...rest] = readFileSync(file, "utf8").split("\n");
  const m = /validators (\d+) seconds (\d+)/.exec(head);
  if (m === null) return out;
  const validators = Number(m[1]);
  const seconds = Number(m[2]);
  if (validators <= 0 || seconds <= 0) return out;
  for (const line of rest) {
    const [group, ticks, extra] = line.trim().split(/\s+/);
    if (group === undefined || ticks === undefined || extra !== undefined || !/^\d+$/.test(ticks)) continue;
    out.set(group.toLowerCase(), (Number(ticks) * 10) / (perSec * seconds * validators));
  }
  return out;
}

function readRun(stem: string): Row | null {
  let report: ClusterBenchReport;
  try {
    report = JSON.parse(readFileSync(`${stem}.json`, "utf8")) as ClusterBenchReport;
  } catch {
    return null; // a run that crashed or is still running
  }
  const run = report.runs.find((r) => r.warmup !== true);
  if (run === undefined) return null;
  const st = run.stages;
  const hps = st !== undefined && run.durationS > 0 ? st.heights / run.durationS : 0;
  const thr = threadShares(`${stem}.thr`, PER_TX ? run.achievedTps / 1000 : hps);
  const loadText = existsSync(`${stem}.load`) ? readFileSync(`${stem}.load`, "utf8") : "";
  const load = /load average: ([\d.]+)/.exec(loadText)?.[1] ?? "?";
  return {
    name: path.basename(stem),
    load,
    cpu: st?.cpuPerHeightMsPerValidator ?? null,
    txms: st?.cpuPerTxMs ?? null,
    main: thr.get("main") ?? null,
    other: thr.get("other") ?? null,
    v8: thr.get("v8") ?? null,
    uv: thr.get("uv") ?? null,
    worker: thr.get("worker") ?? null,
    p50: run.finalityMs.p50,
    p99: run.finalityMs.p99,
    tps: run.achievedTps,
    hps: Math.round(hps * 100) / 100,
    persist: st?.persistMs ?? null,
    pph: st?.persistsPerHeight ?? null,
    vc: st?.viewChanges ?? null,
  };
}

const fmt = (v: number | null) => (v === null ? "-" : Number.isInteger(v) ? String(v) : v.toFixed(2));

const groups = new Map<string, Row[]>();
for (const dir of process.argv.slice(2).filter((a) => a !== "--per-tx")) {
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith(".json")) continue;
    const stem = path.join(dir, f.slice(0, -5));
    const parts = path.basename(stem).split("-");
    if (parts.length < 3) continue;
    const build = parts.slice(0, -2).join("-");
    const shape = parts[parts.length - 2]!;
    const row = readRun(stem);
    if (row === null) continue;
    const key = `${shape} ${build}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
}
if (groups.size === 0) {
  console.error(
    "usage: node dist/bench/pairsSummary.js [--per-tx] DIR [DIR...] (directories written by bench/pairs.sh)",
  );
  process.exit(2);
}
console.log(`| run | load | ${KEYS.join(" | ")} |`);
console.log(`|---|---|${KEYS.map(() => "---").join("|")}|`);
for (const key of [...groups.keys()].sort()) {
  const rows = groups.get(key)!;
  for (const r of rows) console.log(`| ${r.name} | ${r.load} | ${KEYS.map((k) => fmt(r[k])).join(" | ")} |`);
  const med = KEYS.map((k) => {
    const xs = rows.map((r) => r[k]).filter((x): x is number => x !== null && Number.isFinite(x));
    return xs.length === 0 ? null : median(xs);
  });
  console.log(`| **${key} median (n=${rows.length})** | | ${med.map(fmt).join(" | ")} |`);
}
