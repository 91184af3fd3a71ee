// Cost of one metric update on the hot path (issue 14 "metrics updated in bulk"): a labelled
// counter inc ({peer, direction}, as the peer network counts messages) and a histogram observe
// (labelled and not), this build against another build's src/metrics (`--base DIST/src/metrics/index.js`),
// alternated 4 rounds, medians of user CPU per update. Prints a table; `--out DIR` also writes it.
//   node dist/bench/metricsUpdate.js [--base DIST_METRICS_INDEX_JS] [--out DIR]
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as ours from "../src/metrics/index.js";
import { formatTable, machineInfo, median, writeResultFiles } from "./lib/index.js";

type Mod = typeof ours;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function once(mod: Mod): [number, number] {
  const r = new mod.MetricsRegistry();
  const c = r.counter<"peer" | "direction">({
    name: "m_total",
    help: "x",
    labelNames: ["peer", "direction"],
  });
  const h = r.histogram<"kind">({ name: "h_seconds", help: "x", labelNames: ["kind"] });
  const u = r.histogram({ name: "u_seconds", help: "x" });
  const kinds = ["commit", "execution"];
  let t0 = process.cpuUsage();
  for (let i = 0; i < 1_000_000; i++) c.inc({ peer: i & 3, direction: "in" });
  const counterNs = process.cpuUsage(t0).user / 1000; // µs for 1M updates = ns per update
  t0 = process.cpuUsage();
  for (let i = 0; i < 300_000; i++) {
    h.observe({ kind: kinds[i & 1]! }, (i % 1000) / 1e4);
    u.observe((i % 1000) / 1e4);
  }
  const histNs = (process.cpuUsage(t0).user * 1000) / 600_000;
  return [counterNs, histNs];
}

const builds: [string, Mod][] = [["new", ours]];
const base = arg("base");
if (base !== undefined)
  builds.unshift(["base", (await import(pathToFileURL(path.resolve(base)).href)) as Mod]);
const res = new Map<string, [number, number][]>();
for (let round = 0; round < 4; round++) {
  for (const [label, mod] of round % 2 ? [...builds].reverse() : builds) {
    const list = res.get(label) ?? [];
    list.push(once(mod));
    res.set(label, list);
  }
}
const rows = builds.map(([label]) => {
  const l = res.get(label)!;
  return [label, Math.round(median(l.map((x) => x[0]))), Math.round(median(l.map((x) => x[1])))];
});
const table = formatTable(["build", "counter inc ns ({peer, direction})", "histogram observe ns"], rows);
const text = `metric updates, user CPU per update, medians of 4 alternated rounds (load 1m ${machineInfo().loadAverage1m})\n\n${table}`;
console.log(text);
const out = arg("out");
if (out !== undefined)
  writeResultFiles(
    out,
    "metrics-update",
    { kind: "parabft-metrics-update", machine: machineInfo(), rows },
    text,
  );
