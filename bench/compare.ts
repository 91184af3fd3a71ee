// Compares `bench cluster` result files of two builds run alternately (A B B A A B ...): medians
// per build and shape, plus the per-stage table, as JSON + table + SVG chart. The machine is
// shared and loaded, so only medians of interleaved runs compare; the load average of each run
// is kept beside it.
//   node dist/bench/compare.js OUT_NAME LABEL_A:DIR_GLOB_PREFIX LABEL_B:... -- FILES...
// Each file is a cluster bench JSON; its build is the label whose marker occurs in its path.
import { readFileSync } from "node:fs";
import path from "node:path";
import { stackSvg } from "./cluster/report.js";
import { blockRate } from "./cluster/stages.js";
import type { ClusterBenchReport, RunReport } from "./cluster.js";
import { barChartSvg, formatTable, writeResultFiles } from "./lib/index.js";

interface Row {
  build: string;
  shape: string;
  file: string;
  load1m: number;
  /** node:crypto Ed25519 verifies/s on one thread, measured in the same run: the machine's speed then. */
  verifyPerSec: number;
  run: RunReport;
}

const median = (xs: number[]) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
const r2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);

function main(): void {
  const args = process.argv.slice(2);
  const sep = args.indexOf("--");
  const [name, outDir, ...labels] = args.slice(0, sep);
  const files = args.slice(sep + 1);
  const builds = labels.map((l) => {
    const [label, marker] = l.split("=");
    return { label: label!, marker: marker! };
  });
  const rows: Row[] = [];
  for (const f of files) {
    const b = builds.find((x) => f.includes(x.marker));
    if (!b) continue;
    const rep = JSON.parse(readFileSync(f, "utf8")) as ClusterBenchReport;
    for (const run of rep.runs) {
      if (run.warmup === true) continue; // not judged (--warmup)
      const shape = run.mode === "closed" ? `closed loop ×${run.clients}` : `open ${run.offeredRate} tx/s`;
      rows.push({
        build: b.label,
        shape,
        file: path.basename(f),
        load1m: rep.machine.loadAverage1m,
        verifyPerSec: rep.verifyCeiling.singleThreadPerSec,
        run,
      });
    }
  }
  const shapes = [...new Set(rows.map((r) => r.shape))];
  const summary = [];
  for (const shape of shapes)
    for (const { label } of builds) {
      const rs = rows.filter((r) => r.shape === shape && r.build === label);
      if (rs.length === 0) continue;
      const m = (f: (r: Row) => number | null | undefined) => r2(median(rs.map((r) => f(r) ?? Number.NaN)));
      summary.push({
        shape,
        build: label,
        runs: rs.length,
        loadAverage1m: rs.map((r) => r.load1m),
        verifyPerSec: rs.map((r) => r.verifyPerSec),
        committed: rs.map((r) => r.run.committed),
        failedOrStalled: rs.map(
          (r) => Object.values(r.run.submitFailures).reduce((a, b) => a + b, 0) + r.run.uncommitted,
        ),
        achievedTps: m((r) => r.run.achievedTps),
        /** Admitted but not committed by the end of the drain, per run. */
        uncommitted: rs.map((r) => r.run.uncommitted),
        txsPerBlock: m((r) => blockRate(r.run).txsPerBlock),
        heightsPerS: m((r) => blockRate(r.run).heightsPerS),
        p50: m((r) => r.run.finalityMs.p50),
        p90: m((r) => r.run.finalityMs.p90),
        p99: m((r) => r.run.finalityMs.p99),
        max: m((r) => r.run.finalityMs.max),
        stages: {
          persistMs: m((r) => r.run.stages?.persistMs),
          persistsPerHeight: m((r) => r.run.stages?.persistsPerHeight),
          preparedMs: m((r) => r.run.stages?.preparedMs),
          committedMs: m((r) => r.run.stages?.committedMs),
          cpuPerHeightMsPerValidator: m((r) => r.run.stages?.cpuPerHeightMsPerValidator),
          cpuPerTxMs: m((r) => r.run.stages?.cpuPerTxMs),
          cpuCores: m((r) => r.run.stages?.cpuCores),
          viewChanges: m((r) => r.run.stages?.viewChanges),
          execBusyExecute: m((r) => r.run.stages?.execBusy?.execute),
          execBusyPersist: m((r) => r.run.stages?.execBusy?.persist),
        },
      });
    }
  const table = formatTable(
    [
      "shape",
      "build",
      "runs",
      "load 1m",
      "verify/s (1 thread, same run)",
      "committed",
      "failed/stalled",
      "tx/s",
      "txs/block",
      "heights/s",
      "p50 ms",
      "p90",
      "p99",
      "max",
    ],
    summary.map((s) => [
      s.shape,
      s.build,
      s.runs,
      s.loadAverage1m.join(" "),
      s.verifyPerSec.join(" "),
      s.committed.join(" "),
      s.failedOrStalled.join(" "),
      s.achievedTps ?? "-",
      s.txsPerBlock ?? "-",
      s.heightsPerS ?? "-",
      s.p50 ?? "-",
      s.p90 ?? "-",
      s.p99 ?? "-",
      s.max ?? "-",
    ]),
  );
  const stages = formatTable(
    [
      "shape",
      "build",
      "persist ms",
      "persists/height",
      "PREPARE->prepared ms",
      "COMMIT->committed ms",
      "CPU ms/height/validator",
      "CPU ms/tx (cluster)",
      "CPU cores",
      "view changes",
      "exec stage busy (execute / persist)",
    ],
    summary.map((s) => [
      s.shape,
      s.build,
      s.stages.persistMs ?? "-",
      s.stages.persistsPerHeight ?? "-",
      s.stages.preparedMs ?? "-",
      s.stages.committedMs ?? "-",
      s.stages.cpuPerHeightMsPerValidator ?? "-",
      s.stages.cpuPerTxMs ?? "-",
      s.stages.cpuCores ?? "-",
      s.stages.viewChanges ?? "-",
      `${s.stages.execBusyExecute ?? "-"} / ${s.stages.execBusyPersist ?? "-"}`,
    ]),
  );
  const text = `medians of interleaved runs (finality: closed loop = send -> SubmitTxAndWait reply; open loop = scheduled send -> block on StreamBlocks)\n\n${table}\n\nper stage (validators' metrics, medians of the runs' means)\n\n${stages}\n`;
  const categories = summary.map((s) => `${s.shape} ${s.build}`);
  const svg = stackSvg([
    barChartSvg({
      title: "finality, medians of interleaved runs (ms, log scale)",
      categories,
      series: [
        { name: "p50", values: summary.map((s) => s.p50) },
        { name: "p99", values: summary.map((s) => s.p99) },
      ],
      yLabel: "ms",
      logScale: true,
    }),
    barChartSvg({
      title: "cluster CPU per committed tx (ms) and heights per second, medians",
      categories,
      series: [
        { name: "CPU ms/tx (cluster)", values: summary.map((s) => s.stages.cpuPerTxMs) },
        { name: "heights/s", values: summary.map((s) => s.heightsPerS) },
      ],
      yLabel: "ms or 1/s",
      logScale: true,
    }),
  ]);
  writeResultFiles(
    outDir!,
    name!,
    {
      kind: "parabft-cluster-compare",
      summary,
      runs: rows.map((r) => ({ ...r, run: { ...r.run, timeline: undefined } })),
    },
    text,
    svg,
  );
  console.log(text);
}

main();
