import { barChartSvg, formatTable } from "../lib/index.js";
import { blockRate, formatStages } from "./stages.js";
import { formatStuck } from "./stuck.js";
import type { ClusterBenchReport, OverloadSummary, RunReport, TimelinePoint } from "./types.js";

// ---------------------------------------------------------------------------------------------
// Presentation

function runLabel(x: RunReport): string | number {
  if (x.mode === "closed") return `closed loop ×${x.clients}`;
  if (x.mode === "overload") return `overload ${x.offeredRate}`;
  if (x.warmup) return `warm-up ${x.offeredRate}`;
  return x.offeredRate;
}

export function formatOverload(o: OverloadSummary): string {
  const refused = Object.entries(o.refused)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  return [
    `overload: ${o.offeredRate} tx/s offered (${o.factor}× saturation ${o.saturationTps} tx/s) for ${o.durationS} s`,
    `  saturation: ${o.saturationMethod}`,
    ...(o.probe
      ? [
          `  probe: ${o.probe.found ? "found" : "no rate failed twice, so saturation is a lower bound"} (${o.probe.stoppedBecause}${o.probe.stalledOnceRates.length ? `; stalled once and kept up when run again: ${o.probe.stalledOnceRates.join(", ")} tx/s` : ""})`,
          ...(o.probe.topSteps
            ? [
                `  probe's top steps (offered ≥ 90% of saturation): median sustained ${o.probe.topSteps.medianTps} tx/s over ${o.probe.topSteps.steps} step(s); achieved / that median = ${(100 * o.probe.topSteps.ratio).toFixed(1)}% (diagnostic: the goal is judged against saturation, the best step)`,
              ]
            : []),
        ]
      : []),
    o.validators
      ? `  validators committed ${o.validators.tps} tx/s over the ${o.validators.windowS} s load window (median validator; per validator ${o.validators.committedTxs.map((x) => x ?? "-").join(" / ")} txs, ${o.validators.heights} heights, ${o.validators.viewChanges} view changes${o.validators.views ? `, views at the end ${o.validators.views.map((x) => x ?? "-").join(" / ")}` : ""}; event-loop delay p99 ${(o.validators.loopDelayP99Ms ?? []).map((x) => x ?? "-").join(" / ")} ms, max ${(o.validators.loopDelayMaxMs ?? []).map((x) => x ?? "-").join(" / ")} ms) = ${(100 * o.ratioToSaturation).toFixed(1)}% of saturation`
      : "  validators' counters: no metrics",
    `  the client saw ${o.clientAchievedTps} tx/s committed during the load = ${(100 * o.clientRatioToSaturation).toFixed(1)}% of saturation; view changes (load and drain) ${o.viewChanges ?? "-"}`,
    `  admitted ${o.admitted}; refused: ${refused || "none"}; not sent (every sender awaiting an answer) ${o.clientBlocked}; admitted but not committed ${o.admittedNotCommitted}`,
    ...(o.stuck ? [formatStuck(o.stuck)] : []),
    `  finality of the admitted: p50 ${o.finalityP50Ms} ms, p99 ${o.finalityP99Ms} ms; submit answer p99 ${o.submitAckP99Ms} ms`,
    ...(o.sendLagP99Ms !== undefined && o.sendLagP99Ms > 1000
      ? [
          `  NOTE the client fell behind its schedule (send lag p50 ${o.sendLagP50Ms} ms, p99 ${o.sendLagP99Ms} ms): it did not offer the load on time`,
        ]
      : []),
    ...o.goals.map((g) => `  goal ${g.pass ? "MET   " : "MISSED"} ${g.name}: ${g.detail}`),
  ].join("\n");
}

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
        runLabel(x),
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
    const retried = Object.entries(x.refusedRetried ?? {})
      .map(([k, n]) => `${k} ${n}`)
      .join(", ");
    const rate = blockRate(x);
    const refused = Object.entries(x.refused ?? {})
      .map(([k, n]) => `${k} ${n}`)
      .join(", ");
    lines.push(
      `${x.mode === "closed" ? `closed loop ×${x.clients} (${x.offeredRate} tx/s)` : `${runLabel(x)} tx/s`}: ${x.blocks} blocks (${rate.txsPerBlock ?? "-"} txs/block, ${rate.heightsPerS ?? "-"} heights/s); submit ack p50 ${x.submitAckMs.p50} ms; generator lag max ${x.generatorMaxLagMs} ms, CPU ${x.generatorCpuPercent}% of a core${fails ? `; submit failures: ${fails}` : ""}${retried ? `; refused and retried: ${retried}` : ""}${refused ? `; refused (not retried): ${refused}` : ""}${x.clientBlocked ? `; ${x.clientBlocked} not sent (every sender awaiting an answer)` : ""}${x.uncommitted ? `; ${x.uncommitted} admitted but not committed` : ""}`,
    );
    if (x.stuck && x.mode !== "overload") lines.push(formatStuck(x.stuck));
  }
  for (const x of r.runs) {
    const a = x.answerTimes;
    if (a === undefined) continue;
    lines.push(
      `${runLabel(x)} tx/s, answer times (client): send lag p50 ${a.sendLagMs.p50} ms p99 ${a.sendLagMs.p99} ms; round trip p50 ${a.roundTripMs.p50} ms p99 ${a.roundTripMs.p99} ms; client event-loop delay p50 ${a.clientLoopDelayMs.p50} ms p99 ${a.clientLoopDelayMs.p99} ms max ${a.clientLoopDelayMs.max} ms; outstanding mean ${a.outstandingMean} max ${a.outstandingMax}; not sent by second: ${a.notSentBySecond.join(" ")}`,
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
  if (r.overload) {
    lines.push("");
    lines.push(formatOverload(r.overload));
  }
  const v = r.verification;
  lines.push("");
  lines.push(
    `chain check: ${v.inChain}/${v.checked} committed txs found by GetTx at the streamed height (missing ${v.missing}, wrong height ${v.heightMismatch}); receipts sampled ${v.receiptsChecked}: ${JSON.stringify(v.receiptStatus)}${Object.keys(v.receiptErrors).length > 0 ? ` (errors: ${JSON.stringify(v.receiptErrors)})` : ""}; commit certificates verified ${v.certificatesValid}/${v.certificatesChecked}`,
  );
  return lines.join("\n");
}

/** Finality p50 / p99 / max of what committed in each second of a run (log scale). */
function latencyOverTime(title: string, points: TimelinePoint[]): string {
  return barChartSvg({
    title,
    categories: points.map((p) => `${p.second}s`),
    series: [
      { name: "p50 ms", values: points.map((p) => p.finalityP50Ms) },
      { name: "p99 ms", values: points.map((p) => p.finalityP99Ms ?? null) },
      { name: "max ms", values: points.map((p) => p.finalityMaxMs ?? null) },
    ],
    yLabel: "ms",
    logScale: true,
  });
}

/** Stacks standalone SVG documents vertically into one. */
export function stackSvg(parts: string[]): string {
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
  const over = r.overload ? r.runs.find((x) => x.mode === "overload") : undefined;
  if (r.overload && over) {
    const o = r.overload;
    const points = over.timeline;
    return stackSvg([
      barChartSvg({
        title: `${who}: probe steps and overload (${o.factor}× saturation)`,
        categories: r.runs.map((x) => `${runLabel(x)}`),
        series: [
          { name: "offered tx/s", values: r.runs.map((x) => x.offeredRate) },
          { name: "achieved tx/s", values: r.runs.map((x) => x.achievedTps) },
        ],
        yLabel: "tx/s",
        referenceLine: { value: o.saturationTps, label: "saturation" },
      }),
      barChartSvg({
        title: `${who}: overload ${o.offeredRate} tx/s offered, per second`,
        categories: points.map((p) => `${p.second}s`),
        series: [
          { name: "offered tx/s", values: points.map((p) => p.sent) },
          { name: "committed tx/s", values: points.map((p) => p.committed) },
        ],
        yLabel: "tx/s",
        referenceLine: { value: 0.9 * o.saturationTps, label: "90% of saturation" },
      }),
      latencyOverTime(`${who}: overload, finality of the admitted over time (log scale)`, points),
    ]);
  }
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
    latencyOverTime(`${who}: ${shape}, finality latency over time (log scale)`, points),
  ]);
}
