// CPU per committed transaction and per height, two builds run alternately in one session
// (issue 14): `bench cluster` reports (closed loop, any client count) and `bench/idle.ts` reports.
// Medians per build and shape, each run's load average beside it; JSON + table + SVG chart.
//   node dist/bench/cpuCompare.js OUT_NAME OUT_DIR LABEL=MARKER ... -- FILES...
// A file belongs to the build whose marker occurs in its path.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { ClusterBenchReport } from "./cluster.js";
import { barChartSvg, formatTable, writeResultFiles } from "./lib/index.js";

interface IdleReport {
  kind: "parabft-idle-cpu";
  seconds: number;
  loadAverage1m: { start: number; end: number };
  cpuMsPerSecondPerValidator: number;
  heights: number;
}

interface Row {
  build: string;
  shape: string;
  file: string;
  load1m: number;
  committed: number | null;
  tps: number | null;
  p50: number | null;
  cpuMsPerTx: number | null;
  cpuMsPerHeightPerValidator: number | null;
  cpuMsPerSecondPerValidator: number | null;
  heightsPerSecond: number | null;
  viewChanges: number | null;
}

const median = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  const r = v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
  return Math.round(r * 100) / 100;
};

function rowsOf(file: string, build: string): Row[] {
  const rep = JSON.parse(readFileSync(file, "utf8")) as ClusterBenchReport | IdleReport;
  const base = path.basename(file);
  if ("kind" in rep && rep.kind === "parabft-idle-cpu") {
    return [
      {
        build,
        shape: "idle (no load)",
        file: base,
        load1m: rep.loadAverage1m.start,
        committed: null,
        tps: null,
        p50: null,
        cpuMsPerTx: null,
        cpuMsPerHeightPerValidator: null,
        cpuMsPerSecondPerValidator: rep.cpuMsPerSecondPerValidator,
        heightsPerSecond: rep.heights / rep.seconds,
        viewChanges: null,
      },
    ];
  }
  const r = rep as ClusterBenchReport;
  return r.runs
    .filter((run) => run.warmup !== true)
    .map((run) => {
      const s = run.stages;
      const wallS =
        s && s.cpuCores > 0 && s.cpuPerTxMs ? (s.cpuPerTxMs * run.committed) / 1000 / s.cpuCores : null;
      return {
        build,
        shape: run.mode === "closed" ? `closed loop ×${run.clients}` : `open ${run.offeredRate} tx/s`,
        file: base,
        load1m: r.machine.loadAverage1m,
        committed: run.committed,
        tps: run.achievedTps,
        p50: run.finalityMs.p50,
        cpuMsPerTx: s?.cpuPerTxMs ?? null,
        cpuMsPerHeightPerValidator: s?.cpuPerHeightMsPerValidator ?? null,
        cpuMsPerSecondPerValidator:
          s && r.setup.validators > 0 ? (s.cpuCores * 1000) / r.setup.validators : null,
        heightsPerSecond: s && wallS ? s.heights / wallS : null,
        viewChanges: s?.viewChanges ?? null,
      };
    });
}

function main(): void {
  const args = process.argv.slice(2);
  const sep = args.indexOf("--");
  const [name, outDir, ...labels] = args.slice(0, sep);
  const builds = labels.map((l) => {
    const [label, marker] = l.split("=");
    return { label: label!, marker: marker! };
  });
  const rows: Row[] = [];
  for (const f of args.slice(sep + 1)) {
    const b = builds.find((x) => path.basename(f).includes(x.marker));
    if (b) rows.push(...rowsOf(f, b.label));
  }
  const shapes = [...new Set(rows.map((r) => r.shape))];
  const summary = [];
  for (const shape of shapes)
    for (const { label } of builds) {
      const rs = rows.filter((r) => r.shape === shape && r.build === label);
      if (rs.length === 0) continue;
      summary.push({
        shape,
        build: label,
        runs: rs.length,
        loadAverage1m: rs.map((r) => r.load1m),
        committed: rs.map((r) => r.committed),
        tps: median(rs.map((r) => r.tps)),
        p50: median(rs.map((r) => r.p50)),
        cpuMsPerTx: median(rs.map((r) => r.cpuMsPerTx)),
        cpuMsPerTxRuns: rs.map((r) => r.cpuMsPerTx),
        cpuMsPerHeightPerValidator: median(rs.map((r) => r.cpuMsPerHeightPerValidator)),
        cpuMsPerSecondPerValidator: median(rs.map((r) => r.cpuMsPerSecondPerValidator)),
        cpuMsPerSecondPerValidatorRuns: rs.map((r) =>
          r.cpuMsPerSecondPerValidator === null ? null : Math.round(r.cpuMsPerSecondPerValidator * 10) / 10,
        ),
        viewChanges: median(rs.map((r) => r.viewChanges)),
      });
    }
  const dash = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
  const table = formatTable(
    [
      "shape",
      "build",
      "runs",
      "load 1m",
      "committed",
      "tx/s",
      "p50 ms",
      "CPU ms/tx (cluster)",
      "per run",
      "CPU ms/height/validator",
      "CPU ms/s/validator",
      "per run",
      "view changes",
    ],
    summary.map((s) => [
      s.shape,
      s.build,
      s.runs,
      s.loadAverage1m.join(" "),
      s.committed.map(dash).join(" "),
      dash(s.tps),
      dash(s.p50),
      dash(s.cpuMsPerTx),
      s.cpuMsPerTxRuns.map(dash).join(" "),
      dash(s.cpuMsPerHeightPerValidator),
      dash(s.cpuMsPerSecondPerValidator),
      s.cpuMsPerSecondPerValidatorRuns.map(dash).join(" "),
      dash(s.viewChanges),
    ]),
  );
  const text =
    "CPU of the validators (process_cpu_seconds_total: main thread + workers), medians of interleaved runs.\n" +
    "CPU ms/tx = all validators' CPU over the run / committed txs; ms/height/validator = per validator per committed height;\n" +
    "ms/s/validator = CPU per second of wall time per validator (idle: no client at all).\n\n" +
    `${table}\n`;
  const cats = summary.map((s) => `${s.shape} ${s.build}`);
  const svg = barChartSvg({
    title: "validator CPU, medians of interleaved runs (ms, log scale)",
    categories: cats,
    series: [
      { name: "CPU ms per committed tx (cluster)", values: summary.map((s) => s.cpuMsPerTx) },
      { name: "CPU ms per height per validator", values: summary.map((s) => s.cpuMsPerHeightPerValidator) },
      { name: "CPU ms per second per validator", values: summary.map((s) => s.cpuMsPerSecondPerValidator) },
    ],
    yLabel: "ms",
    logScale: true,
  });
  writeResultFiles(outDir!, name!, { kind: "parabft-cpu-compare", summary, runs: rows }, text, svg);
  console.log(text);
}

main();
