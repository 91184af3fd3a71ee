// Issue 14's overload figures from `bench cluster --overload` JSON reports (bench/pairs.sh runs):
// one row per run and the median per build, the ratio judged on the validators' counters.
//   node dist/bench/cluster/overloadTable.js FILE.json [FILE.json ...]
// A file's build is its name without the trailing "-I" (pairs.sh: BUILD-SHAPE-I.json); its load average
// comes from the .load file beside it (uptime before and after the run) when present.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { formatTable, median } from "../lib/index.js";
import type { ClusterBenchReport, ValidatorWindow } from "./types.js";

const COLUMNS = [
  "run",
  "load 1m",
  "saturation",
  "offered",
  "validators tx/s",
  "ratio",
  "client tx/s",
  "client ratio",
  "view changes",
  "admitted",
  "refused",
  "not sent",
  "lost",
  "finality p50",
  "p99",
  "node finality mean",
  "send lag p50",
  "answer p50 (from send)",
  "client loop p99",
  "node loop p99 (max)",
  "request timeouts (armed/longest wait/late ms)",
  "chain",
] as const;

interface Row {
  build: string;
  cells: (string | number)[];
  nums: Record<string, number | null>;
}

function loadOf(file: string): string {
  const f = file.replace(/\.json$/, ".load");
  if (!existsSync(f)) return "-";
  const avgs = [...readFileSync(f, "utf8").matchAll(/load average: ([\d.]+)/g)].map((m) => m[1]);
  return avgs.join("→") || "-";
}

/** ", at prepare×2" : what the fired timers waited for, when the build exports it. */
function stalledAt(by: Record<string, number> | undefined): string {
  const parts = Object.entries(by ?? {}).map(([phase, n]) => (n === 1 ? phase : `${phase}×${n}`));
  return parts.length === 0 ? "" : `, at ${parts.join(" ")}`;
}

/** Each validator's request timeouts in the window, with the last one's figures when it fired. */
function requestTimeouts(rt: ValidatorWindow["requestTimeouts"]): string {
  if (rt === undefined) return "-";
  return rt
    .map((t) =>
      t === null
        ? "-"
        : `${t.fired === 0 ? "0" : `${t.fired} (${t.armedMs}/${t.longestWaitMs}/${t.lateMs}${stalledAt(t.stalledAt)})`}${t.superseded ? ` +${t.superseded} superseded` : ""}`,
    )
    .join(", ");
}

export function overloadRow(file: string): Row | null {
  const r = JSON.parse(readFileSync(file, "utf8")) as ClusterBenchReport;
  const o = r.overload;
  const run = r.runs.find((x) => x.mode === "overload");
  if (o === undefined || run === undefined) return null;
  const refused = Object.values(o.refused).reduce((a, b) => a + b, 0);
  const v = o.validators ?? null;
  const clientTps = o.clientAchievedTps ?? o.achievedTps;
  const nodeLoop = v?.loopDelayP99Ms?.filter((x): x is number => x !== null) ?? [];
  const nums = {
    saturation: o.saturationTps,
    validatorsTps: v?.tps ?? null,
    ratio: v !== null ? o.ratioToSaturation : null,
    clientRatio: o.clientRatioToSaturation ?? o.ratioToSaturation,
    viewChanges: o.viewChanges,
    refused,
    notSent: o.clientBlocked,
    notSentShare: run.scheduled > 0 ? o.clientBlocked / run.scheduled : null,
    lost: o.admittedNotCommitted,
    p50: o.finalityP50Ms,
    p99: o.finalityP99Ms,
    answerP50: run.answerTimes?.roundTripMs.p50 ?? null,
    nodeFinality: run.stages?.apiFinalityMs ?? null,
    sendLag: run.answerTimes?.sendLagMs.p50 ?? null,
  };
  const build = path.basename(file, ".json").replace(/-\d+$/, "");
  return {
    build,
    nums,
    cells: [
      path.basename(file, ".json"),
      loadOf(file),
      // "≥": the probe never saw a rate fail twice, so the cluster's saturation is at least this.
      o.probe === undefined ? `${o.saturationTps} (given)` : `${o.probe.found ? "" : "≥ "}${o.saturationTps}`,
      o.offeredRate,
      v?.tps ?? "-",
      v !== null ? o.ratioToSaturation : "-",
      clientTps,
      nums.clientRatio,
      // A replica left in a view change nobody joined: its view is above the others' at the end.
      `${o.viewChanges ?? "-"}${v?.views && new Set(v.views.filter((x) => x !== null)).size > 1 ? ` (views ${v.views.map((x) => x ?? "-").join("/")})` : ""}`,
      o.admitted,
      refused,
      `${o.clientBlocked} (${(100 * (nums.notSentShare ?? 0)).toFixed(1)}%)`,
      o.admittedNotCommitted,
      o.finalityP50Ms,
      o.finalityP99Ms,
      run.stages?.apiFinalityMs ?? "-",
      run.answerTimes?.sendLagMs.p50 ?? "-",
      run.answerTimes?.roundTripMs.p50 ?? "-",
      run.answerTimes?.clientLoopDelayMs.p99 ?? "-",
      nodeLoop.length > 0 ? `${median(nodeLoop)} (${Math.max(...nodeLoop)})` : "-",
      requestTimeouts(v?.requestTimeouts),
      `${r.verification.inChain}/${r.verification.checked}`,
    ],
  };
}

export function overloadTable(files: string[]): string {
  const rows = files.map(overloadRow).filter((x): x is Row => x !== null);
  const out = [
    formatTable(
      [...COLUMNS],
      rows.map((r) => r.cells),
    ),
  ];
  const builds = [...new Set(rows.map((r) => r.build))];
  const keys = [
    "saturation",
    "validatorsTps",
    "ratio",
    "clientRatio",
    "viewChanges",
    "refused",
    "notSent",
    "notSentShare",
    "lost",
    "p50",
    "p99",
    "nodeFinality",
    "sendLag",
    "answerP50",
  ];
  const med = (b: string, k: string) => {
    const xs = rows
      .filter((r) => r.build === b)
      .map((r) => r.nums[k])
      .filter((x): x is number => x !== null && x !== undefined);
    return xs.length > 0 ? Math.round(median(xs) * 1000) / 1000 : "-";
  };
  out.push(
    "",
    formatTable(
      ["median", "runs", ...keys],
      builds.map((b) => [b, rows.filter((r) => r.build === b).length, ...keys.map((k) => med(b, k))]),
    ),
  );
  return out.join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.stdout.write(`${overloadTable(process.argv.slice(2))}\n`);
}
