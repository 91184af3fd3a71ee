// Self time by package, file or function from the validators' `node --cpu-prof` files (issue 14):
//   PARABFT_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" parabft bench cluster ...
//   node dist/bench/cpuProfile.js DIR [--by package|file|function] [--from S] [--to S] [--top N] [--workers]
// Main threads only unless --workers (worker profiles are the files not ending in .0.001). --from/--to
// keep the samples of a window in seconds from each profile's start (the load, not the startup).
// The profiles are wall-sampled: on a loaded machine read shares, not absolute times.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function keyOf(cf: CallFrame, by: string): string {
  const u = cf.url;
  const short = u.replace(/.*node_modules\//, "nm/").replace(/.*\/dist\//, "");
  if (by === "function") return `${cf.functionName || "(anonymous)"} ${short}:${cf.lineNumber}`;
  if (by === "file") return short || cf.functionName;
  if (!u) return cf.functionName; // (program), (garbage collector), native
  if (u.includes("node_modules/")) {
    const parts = u.split("node_modules/").pop()!.split("/");
    return `npm:${parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  if (u.startsWith("node:")) return "node core";
  if (u.includes("/dist/")) return `parabft:${u.split("/dist/")[1]!.split("/").slice(0, 3).join("/")}`;
  return u;
}

function main(): void {
  const dir = process.argv[2];
  if (!dir || dir.startsWith("--")) throw new Error("usage: cpuProfile.js DIR [--by package|file|function]");
  const by = arg("by") ?? "package";
  const from = Number(arg("from") ?? 0);
  const to = Number(arg("to") ?? Number.POSITIVE_INFINITY);
  const top = Number(arg("top") ?? 25);
  const workers = process.argv.includes("--workers");
  const totals = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".cpuprofile"))) {
    if (!workers && !/\.0\.001\.cpuprofile$/.test(f)) continue;
    const p = JSON.parse(readFileSync(path.join(dir, f), "utf8")) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    let t = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i] ?? 0;
      t += dt;
      const s = t / 1e6;
      if (s < from || s > to) continue;
      const cf = byId.get(p.samples[i]!)!.callFrame;
      if (cf.functionName === "(idle)") {
        idle += dt;
        continue;
      }
      const k = keyOf(cf, by);
      totals.set(k, (totals.get(k) ?? 0) + dt);
      busy += dt;
    }
  }
  for (const [k, us] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(
      `${((100 * us) / busy).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
    );
  console.log(
    `busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms (sampled, all profiles)`,
  );
}

main();
