// Self time by package, file or function from the validators' `node --cpu-prof` files (issue 14):
//   PARABFT_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" parabft bench cluster ...
//   node dist/bench/cpuProfile.js DIR [--by package|file|function|caller|callerfile|entry|path] [--from S]
//     [--to S] [--top N] [--workers] [--ms-per-height X]
// caller/callerfile/entry/path attribute each sample to OUR code (see pathOf / ourFrame) and split each
// row by the leaf's package: the per-height CPU ledger of issue 14 (X: main-thread ms per height).
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
  children?: number[];
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

const OURS = "/dist/src/";

/** The package a leaf frame belongs to, with Ed25519 (node:crypto sign/verify) split out of node core. */
export function leafClass(cf: CallFrame): string {
  if (cf.functionName === "verifyOneShot" || cf.functionName === "signOneShot") return "ed25519";
  if (cf.url.includes(OURS)) return "self";
  return keyOf(cf, "package");
}

/**
 * Our nearest frame on a sample's stack (the leaf itself if it is ours), as `function file:line`
 * (`caller`; `callerfile`: its file), or our outermost frame (`entry`: the callback or entry point
 * the sample's work came in through).
 */
function ourFrame(node: ProfileNode, parent: Map<number, ProfileNode>, by: string): string | undefined {
  let outer: CallFrame | undefined;
  for (let n: ProfileNode | undefined = node; n !== undefined; n = parent.get(n.id)) {
    const cf = n.callFrame;
    if (!cf.url.includes(OURS)) continue;
    if (by !== "entry") return by === "callerfile" ? keyOf(cf, "file") : keyOf(cf, "function");
    outer = cf;
  }
  return outer === undefined ? undefined : keyOf(outer, "function");
}

/** The outermost npm frame of a stack with none of ours (whose library callback the sample is in). */
function outerLibrary(node: ProfileNode, parent: Map<number, ProfileNode>): string {
  let found = "";
  for (let n: ProfileNode | undefined = node; n !== undefined; n = parent.get(n.id))
    if (n.callFrame.url.includes("node_modules/")) found = keyOf(n.callFrame, "function");
  return found;
}

/**
 * `--by path`: which of our paths a sample belongs to. The sample's stack is walked from the leaf
 * up and the first of our frames matching a rule names the path (so a send the core makes is
 * "peer send", the core's own work "consensus core", and the receive path what is left of a
 * peer callback). Frames of src/types and src/crypto's sign/verify/hash name nothing (their
 * caller does). A stack with none of our frames is named by its outermost library (grpc-js's
 * server or client side of a stream) or by its leaf (node core event loop, GC, native).
 */
const PATH_RULES: [RegExp, string][] = [
  [/src\/storage\/signingStateLog|^persist src\/node\/driver|^startSync /, "signing-state log"],
  [
    /^(sendWhenDurable|send|broadcast|flush|pump|enqueue|write\w*) src\/net\/|src\/net\/(frames|grpcAdapter)|^sealMessage |^seal /,
    "peer send",
  ],
  [/^(noteStatus|onStatus|onTick|repeatsStatus) /, "statuses / ticks"],
  [/src\/api\//, "client API"],
  [/src\/metrics\/|src\/node\/metrics/, "metrics"],
  [/src\/exec\//, "exec"],
  [/src\/storage\/|^(commitOne|onDeliver|writeCommit\w*) src\/node\/node/, "commit batch / storage"],
  [/src\/mempool\/|src\/crypto\/verifyPool|src\/node\/gossipIntake|^checkBlock /, "mempool / tx verify"],
  [/src\/consensus\/envelope|src\/node\/verdictCache/, "peer receive: envelope check"],
  [/src\/net\//, "peer receive: transport"],
  [/src\/node\/coreTimers/, "timers"],
  [/src\/consensus\//, "consensus core"],
  [/src\/node\/(driver|proposer)/, "driver"],
];
const PATH_SKIP = /src\/types\/|src\/crypto\/(node|hash|lru)/;

function pathOf(node: ProfileNode, parent: Map<number, ProfileNode>): string {
  for (let n: ProfileNode | undefined = node; n !== undefined; n = parent.get(n.id)) {
    const cf = n.callFrame;
    if (!cf.url.includes(OURS)) continue;
    const k = keyOf(cf, "function");
    if (PATH_SKIP.test(k)) continue;
    for (const [re, name] of PATH_RULES) if (re.test(k)) return name;
    return `other: ${keyOf(cf, "file")}`;
  }
  const outer = outerLibrary(node, parent);
  if (/grpc-js\/build\/src\/(server|server-call|server-interceptors)\.js/.test(outer))
    return "grpc-js, server side (no frame of ours)";
  if (outer.includes("grpc-js")) return "grpc-js, client side (no frame of ours)";
  if (outer !== "") return `library (no frame of ours): ${keyOf(node.callFrame, "package")}`;
  const leaf = keyOf(node.callFrame, "package");
  return leaf === "node core" ? "node core event loop (no frame of ours)" : leaf;
}

const COLUMNS = [
  "self",
  "ed25519",
  "node core",
  "npm:@grpc/grpc-js",
  "npm:@bufbuild/protobuf",
  "npm:rocksdb",
];

function main(): void {
  const dir = process.argv[2];
  if (!dir || dir.startsWith("--"))
    throw new Error("usage: cpuProfile.js DIR [--by package|file|function|caller|callerfile|entry|path]");
  const by = arg("by") ?? "package";
  const from = Number(arg("from") ?? 0);
  const to = Number(arg("to") ?? Number.POSITIVE_INFINITY);
  const top = Number(arg("top") ?? 25);
  const perHeight = arg("ms-per-height") === undefined ? undefined : Number(arg("ms-per-height"));
  const workers = process.argv.includes("--workers");
  const callers = by === "caller" || by === "callerfile" || by === "entry" || by === "path";
  const totals = new Map<string, number>();
  const split = new Map<string, Map<string, number>>();
  let busy = 0;
  let idle = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".cpuprofile"))) {
    if (!workers && !/\.0\.001\.cpuprofile$/.test(f)) continue;
    const p = JSON.parse(readFileSync(path.join(dir, f), "utf8")) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, ProfileNode>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
    let t = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i] ?? 0;
      t += dt;
      const s = t / 1e6;
      if (s < from || s > to) continue;
      const node = byId.get(p.samples[i]!)!;
      const cf = node.callFrame;
      if (cf.functionName === "(idle)") {
        idle += dt;
        continue;
      }
      let k: string;
      if (callers) {
        const leaf = leafClass(cf);
        k =
          by === "path"
            ? pathOf(node, parent)
            : (ourFrame(node, parent, by) ??
              `(no parabft frame) ${outerLibrary(node, parent) || keyOf(cf, "package")}`);
        const m = split.get(k) ?? new Map<string, number>();
        const col = COLUMNS.includes(leaf) ? leaf : "other";
        m.set(col, (m.get(col) ?? 0) + dt);
        split.set(k, m);
      } else k = keyOf(cf, by);
      totals.set(k, (totals.get(k) ?? 0) + dt);
      busy += dt;
    }
  }
  const cols = [...COLUMNS, "other"];
  const short = (c: string): string =>
    c.replace("npm:@grpc/", "").replace("npm:@bufbuild/", "").replace("npm:", "");
  if (callers)
    console.log(
      `share    ms${perHeight === undefined ? "" : "  ms/height"}  ${cols.map((c) => short(c).padStart(9)).join(" ")}  ${by === "path" ? "our path" : by === "entry" ? "our outermost frame" : "our nearest frame"} (leaf package split in %)`,
    );
  for (const [k, us] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const share = us / busy;
    const ph = perHeight === undefined ? "" : `  ${(share * perHeight).toFixed(3).padStart(8)}`;
    const parts = callers
      ? `  ${cols.map((c) => `${((100 * (split.get(k)?.get(c) ?? 0)) / us).toFixed(0)}%`.padStart(9)).join(" ")}`
      : "";
    console.log(
      `${(100 * share).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms${ph}${parts}  ${k}`,
    );
  }
  console.log(
    `busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms (sampled, all profiles)`,
  );
}

main();
