// Idle CPU of a local cluster: N validators with no client load, each validator's process CPU
// (main thread + workers, from its metrics) per second and per height over a window, after a
// warm-up. Interleave builds with --entry (another tree's dist/src/cli/main.js).
//   node dist/bench/idle.js [--validators 4] [--warmup 5] [--seconds 20] [--entry PATH]
// Prints one JSON object on stdout.

import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { LocalCluster } from "../src/cli/cluster.js";
import { scrapeMetrics } from "./cluster/stages.js";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}

const sum = (xs: (number | undefined)[]) => xs.reduce<number>((a, b) => a + (b ?? 0), 0);

async function main(): Promise<void> {
  const n = Number(arg("validators", "4"));
  const warmupS = Number(arg("warmup", "5"));
  const seconds = Number(arg("seconds", "20"));
  const entry = arg("entry", "");
  const dir = await mkdtemp(path.join(tmpdir(), "parabft-idle-"));
  const loadAtStart = loadavg()[0]!;
  // PARABFT_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": node flags for every validator.
  const nodeArgs = (process.env.PARABFT_BENCH_NODE_ARGS ?? "").split(" ").filter((a) => a.length > 0);
  const cluster = await LocalCluster.create(n, dir, {
    logLevel: "warn",
    ...(entry ? { entry } : {}),
    ...(nodeArgs.length > 0 ? { nodeArgs } : {}),
  });
  try {
    await cluster.start();
    const addrs = Array.from({ length: n }, (_, i) => cluster.node(i).metrics);
    await new Promise((r) => setTimeout(r, warmupS * 1000));
    const before = await scrapeMetrics(addrs);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const after = await scrapeMetrics(addrs);
    const wallS = (performance.now() - t0) / 1000;
    const get = (s: (typeof before)[number], name: string) =>
      s === null ? undefined : [...s.entries()].find(([k]) => k.startsWith(`parabft_${name}`))?.[1];
    const cpu = addrs.map(
      (_, i) =>
        (get(after[i]!, "process_cpu_seconds_total") ?? 0) -
        (get(before[i]!, "process_cpu_seconds_total") ?? 0),
    );
    const heights = Math.max(
      ...addrs.map(
        (_, i) =>
          (get(after[i]!, "consensus_committed_height") ?? 0) -
          (get(before[i]!, "consensus_committed_height") ?? 0),
      ),
    );
    const cpuMsPerSecondPerValidator = (sum(cpu) * 1000) / n / wallS;
    console.log(
      JSON.stringify({
        kind: "parabft-idle-cpu",
        entry: entry || "this tree",
        validators: n,
        seconds: Math.round(wallS * 10) / 10,
        loadAverage1m: { start: loadAtStart, end: loadavg()[0] },
        cpuMsPerSecondPerValidator: Math.round(cpuMsPerSecondPerValidator * 100) / 100,
        cpuMsPerValidator: cpu.map((c) => Math.round(c * 1000)),
        heights,
      }),
    );
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
