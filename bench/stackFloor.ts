// The stack floor (issue 14): how fast can 4 replicas on this box finalize requests with the node's
// stack and nothing else? Each replica is its own process (bench/floor/process.ts) running only
// PBFT's normal case (bench/floor/replica.ts). No mempool, gossip, storage, execution, metrics,
// view-change timers or statuses. A closed loop of one client submits a signed 184-byte request to
// replica 0 and waits for its commit there.
// A variant (`--floors`, comma-separated) is `[socket-]tls|plain+nosync|sync|isync`:
// - peer links: grpc-js bidi streams as the node's, or with `socket-` bare sockets;
// - TLS or plaintext;
// - no sync, an fdatasync on the thread pool before each signed vote leaves (`sync`, the node's
//   way), or one on the main thread (`isync`).
// Every variant signs every frame and checks every signature with node:crypto and cached keys.
//
// Each round runs every floor variant and `parabft bench cluster --closed-loop 1` (the node), in
// an order that rotates by round, and reports medians: the node's p50 against the floor's is
// what the node adds; the floor's own p50 bounds what any change to the node can reach here.
// With --rate R both sides run an open loop at R tx/s instead: the floor's replica 0 proposes
// everything pending whenever no height is in flight (blocks grow with the load), every replica
// checks every request's signature, and the node runs `bench cluster --rate R --warmup-ramp`.
//   node dist/bench/stackFloor.js [--rounds 3] [--seconds 15] [--warmup 5] [--cluster-warmup 20] [--rate R]
//     [--floors tls+sync,tls+nosync,plain+sync,plain+nosync] [--no-cluster] [--out bench/results] [--name stack-floor]
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { freePorts } from "../src/cli/ports.js";
import { generateKeyPair } from "../src/crypto/keys.js";
import { NodeSigner } from "../src/crypto/node.js";
import { createValidatorCertificate, ed25519PrivateKeyPem } from "../src/crypto/tls.js";
import { toHex } from "../src/types/bytes.js";
import type { FloorConfig } from "./floor/process.js";
import { REQUEST_BYTES, REQUEST_SIGNED_BYTES, SUBMIT_PATH } from "./floor/wire.js";
import { machineInfo, progress, writeResultFiles } from "./lib/output.js";
import { median, quantile, round } from "./lib/stats.js";
import { barChartSvg } from "./lib/svgChart.js";
import { formatTable } from "./lib/table.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const REPLICAS = 4;
/** Bound on each step of starting a floor (listen, connect, report). */
const STEP_TIMEOUT_MS = 60_000;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}

/** One run's figures: a floor variant's or the node's. */
export interface FloorRun {
  label: string;
  round: number;
  requests: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  heightsPerS: number;
  /** Requests (transactions) committed per second. */
  achievedTps: number;
  /** Process CPU (all threads) per committed height, averaged over the replicas. */
  cpuMsPerHeightPerReplica: number;
  /** Process CPU of all replicas per committed request (transaction). */
  cpuMsPerTx: number;
  loadAverage1m: number;
}

export interface Variant {
  label: string;
  transport: "grpc" | "socket";
  tls: boolean;
  /** No sync, fdatasync on the thread pool (the node's way), or on the main thread. */
  sync: "none" | "pool" | "inline";
}

const SYNC_MODES = { nosync: "none", sync: "pool", isync: "inline" } as const;

/**
 * `[socket-]tls|plain+nosync|sync|isync`: grpc-js peer links unless `socket-`; `sync` syncs on the
 * thread pool as the node does, `isync` on the main thread.
 */
export function parseVariant(s: string): Variant {
  const socket = s.startsWith("socket-");
  const [t, y] = (socket ? s.slice("socket-".length) : s).split("+");
  if ((t !== "tls" && t !== "plain") || y === undefined || !Object.hasOwn(SYNC_MODES, y)) {
    throw new Error(`--floors entry '${s}': expected [socket-]tls|plain+nosync|sync|isync, e.g. tls+sync`);
  }
  return {
    label: `floor ${s}`,
    transport: socket ? "socket" : "grpc",
    tls: t === "tls",
    sync: SYNC_MODES[y as keyof typeof SYNC_MODES],
  };
}

/** Lines of a child's stdout, awaited one predicate at a time. */
class Lines {
  private readonly seen: string[] = [];
  private readonly waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  constructor(child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (l) => {
      const w = this.waiters.findIndex((x) => x.test(l));
      if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(l);
      else this.seen.push(l);
    });
  }
  next(test: (l: string) => boolean, what: string): Promise<string> {
    const i = this.seen.findIndex(test);
    if (i >= 0) return Promise.resolve(this.seen.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${what} within ${STEP_TIMEOUT_MS} ms`)),
        STEP_TIMEOUT_MS,
      );
      this.waiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }
}

/** A floor variant's run: a closed loop of one client, or an open loop at `rate` requests/s. */
export async function runFloor(
  v: Variant,
  round: number,
  warmupS: number,
  seconds: number,
  rate?: number,
): Promise<FloorRun> {
  const dir = await mkdtemp(path.join(tmpdir(), "parabft-floor-"));
  const keys = Array.from({ length: REPLICAS }, () => generateKeyPair());
  const ports = await freePorts(REPLICAS + 1);
  const children: ChildProcess[] = [];
  const api = new grpc.Client(`127.0.0.1:${ports[REPLICAS]}`, grpc.credentials.createInsecure());
  try {
    for (let id = 0; id < REPLICAS; id++) {
      const kp = keys[id]!;
      const cfg: FloorConfig = {
        id,
        transport: v.transport,
        peerPorts: ports.slice(0, REPLICAS),
        apiPort: ports[REPLICAS]!,
        secretKeyHex: toHex(kp.secretKey),
        publicKeysHex: keys.map((k) => toHex(k.publicKey)),
        ...(v.tls
          ? {
              tls: {
                certPem: await createValidatorCertificate(kp.secretKey),
                keyPem: ed25519PrivateKeyPem(kp.secretKey),
              },
            }
          : {}),
        ...(v.sync !== "none" ? { syncFile: path.join(dir, `replica-${id}.sync`), syncMode: v.sync } : {}),
      };
      children.push(
        spawn(process.execPath, [path.join(here, "floor", "process.js")], {
          env: { ...process.env, FLOOR_CONFIG: JSON.stringify(cfg) },
          stdio: ["pipe", "pipe", "inherit"],
        }),
      );
    }
    const lines = children.map((c) => new Lines(c));
    const tell = (cmd: string) => {
      for (const c of children) c.stdin!.write(`${cmd}\n`);
    };
    await Promise.all(lines.map((l) => l.next((x) => x === "LISTENING", "LISTENING")));
    tell("DIAL");
    await Promise.all(lines.map((l) => l.next((x) => x === "CONNECTED", "CONNECTED")));

    const client = generateKeyPair();
    const signer = new NodeSigner(client.secretKey);
    let nonce = 0;
    const request = (): Buffer => {
      const req = Buffer.alloc(REQUEST_BYTES);
      req.set(client.publicKey, 0);
      req.writeUInt32BE(nonce++, 32);
      req.set(signer.sign(req.subarray(0, REQUEST_SIGNED_BYTES)), REQUEST_SIGNED_BYTES);
      return req;
    };
    /** Submits whole requests in one call; resolves when replica 0 committed them. */
    const submit = (blob: Buffer): Promise<void> =>
      new Promise((resolve, reject) =>
        api.makeUnaryRequest(
          SUBMIT_PATH,
          (b: Buffer) => b,
          (b: Buffer) => b,
          blob,
          { deadline: Date.now() + STEP_TIMEOUT_MS },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    const latencies =
      rate === undefined
        ? await closedLoop(submit, request, warmupS, seconds, () => tell("MARK"))
        : await openLoop(submit, request, rate, warmupS, seconds, () => tell("MARK"));
    tell("REPORT");
    const reports = (await Promise.all(lines.map((l) => l.next((x) => x.startsWith("{"), "REPORT")))).map(
      (l) => JSON.parse(l) as { cpuMs: number; committed: number; requests: number; wallMs: number },
    );
    const wallS = reports[0]!.wallMs / 1000;
    const heights = reports[0]!.committed;
    const committed = reports[0]!.requests;
    const cpuMs = reports.reduce((a, r) => a + r.cpuMs, 0);
    return {
      label: v.label,
      round,
      requests: latencies.length,
      p50Ms: round3(quantile(latencies, 0.5)),
      p90Ms: round3(quantile(latencies, 0.9)),
      p99Ms: round3(quantile(latencies, 0.99)),
      heightsPerS: round3(heights / wallS),
      achievedTps: round3(committed / wallS),
      cpuMsPerHeightPerReplica: round3(cpuMs / REPLICAS / Math.max(1, heights)),
      cpuMsPerTx: round3(cpuMs / Math.max(1, committed)),
      loadAverage1m: machineInfo().loadAverage1m,
    };
  } finally {
    api.close();
    for (const c of children) {
      c.stdin?.end("EXIT\n");
    }
    await Promise.all(children.map((c) => exited(c, 5_000)));
    await rm(dir, { recursive: true, force: true });
  }
}

type Submit = (blob: Buffer) => Promise<void>;

/** One client, each request sent when the previous one committed; latency per request. */
async function closedLoop(
  submit: Submit,
  request: () => Buffer,
  warmupS: number,
  seconds: number,
  mark: () => void,
): Promise<number[]> {
  const warmEnd = performance.now() + warmupS * 1000;
  while (performance.now() < warmEnd) await submit(request());
  mark();
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await submit(request());
    latencies.push(performance.now() - t0);
  }
  return latencies;
}

/** Requests per tick of the open loop's schedule at most, so a late tick cannot send a burst. */
const OPEN_LOOP_TICK_MS = 5;

/**
 * An open loop at `rate` requests/s, signed before the schedule starts: every tick sends the
 * requests whose time has come in one call. Latency runs from each request's scheduled time to
 * its commit at replica 0, for requests scheduled after the warm-up; waits for every answer.
 */
async function openLoop(
  submit: Submit,
  request: () => Buffer,
  rate: number,
  warmupS: number,
  seconds: number,
  mark: () => void,
): Promise<number[]> {
  const total = Math.ceil(rate * (warmupS + seconds));
  const signed = Array.from({ length: total }, request);
  const latencies: number[] = [];
  const answers: Promise<void>[] = [];
  const start = performance.now();
  const warmEnd = start + warmupS * 1000;
  let marked = false;
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    if (!marked && now >= warmEnd) {
      marked = true;
      mark();
    }
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate));
    if (due > sent) {
      const first = sent;
      const scheduled = (i: number) => start + (i / rate) * 1000;
      answers.push(
        submit(Buffer.concat(signed.slice(first, due))).then(() => {
          const t = performance.now();
          for (let i = first; i < due; i++) if (scheduled(i) >= warmEnd) latencies.push(t - scheduled(i));
        }),
      );
      sent = due;
    }
    await new Promise((r) => setTimeout(r, OPEN_LOOP_TICK_MS));
  }
  await Promise.all(answers);
  return latencies;
}

/** Waits for a child to exit, killing it after `ms`. */
function exited(c: ChildProcess, ms: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => c.kill("SIGKILL"), ms);
    c.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function round3(x: number): number {
  return round(x, 3);
}

/**
 * `parabft bench cluster` of this tree, as a FloorRun: `--closed-loop 1`, or with `rate` an open
 * loop ramped up over its warm-up (`--warmup-ramp`).
 */
async function runCluster(round: number, warmupS: number, seconds: number, rate?: number): Promise<FloorRun> {
  const main = path.join(here, "..", "src", "cli", "main.js");
  const args = [main, "bench", "cluster", "--validators", "4", "--no-write", "--json", "--quiet"];
  if (rate === undefined) args.push("--closed-loop", "1");
  else args.push("--rate", String(rate), "--warmup-ramp");
  args.push("--duration", String(seconds), "--warmup", String(warmupS));
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bench cluster exited with ${code}`);
  const report = JSON.parse(out) as {
    runs: {
      /** An unjudged warm-up step (an open loop's --warmup-ramp steps come first). */
      warmup?: boolean;
      finalityMs: { count: number; p50: number; p90: number; p99: number };
      achievedTps: number;
      stages?: { cpuPerHeightMsPerValidator?: number; cpuPerTxMs?: number; heights?: number };
    }[];
  };
  const r = report.runs.filter((x) => !x.warmup).at(-1);
  if (r === undefined) throw new Error("bench cluster reported no judged run");
  return {
    label: "node (bench cluster)",
    round,
    requests: r.finalityMs.count,
    p50Ms: r.finalityMs.p50,
    p90Ms: r.finalityMs.p90,
    p99Ms: r.finalityMs.p99,
    heightsPerS: round3((r.stages?.heights ?? Number.NaN) / seconds),
    achievedTps: r.achievedTps,
    cpuMsPerHeightPerReplica: r.stages?.cpuPerHeightMsPerValidator ?? Number.NaN,
    cpuMsPerTx: r.stages?.cpuPerTxMs ?? Number.NaN,
    loadAverage1m: machineInfo().loadAverage1m,
  };
}

/** Medians per label, in first-seen order. */
export function summarize(runs: readonly FloorRun[]): FloorRun[] {
  const labels = [...new Set(runs.map((r) => r.label))];
  return labels.map((label) => {
    const rs = runs.filter((r) => r.label === label);
    const m = (f: (r: FloorRun) => number) => round3(median(rs.map(f)));
    return {
      label,
      round: rs.length,
      requests: m((r) => r.requests),
      p50Ms: m((r) => r.p50Ms),
      p90Ms: m((r) => r.p90Ms),
      p99Ms: m((r) => r.p99Ms),
      heightsPerS: m((r) => r.heightsPerS),
      achievedTps: m((r) => r.achievedTps),
      cpuMsPerHeightPerReplica: m((r) => r.cpuMsPerHeightPerReplica),
      cpuMsPerTx: m((r) => r.cpuMsPerTx),
      loadAverage1m: m((r) => r.loadAverage1m),
    };
  });
}

async function main(): Promise<void> {
  const rounds = Number(arg("rounds", "3"));
  const seconds = Number(arg("seconds", "15"));
  const warmupS = Number(arg("warmup", "5"));
  const clusterWarmupS = Number(arg("cluster-warmup", "20"));
  const rateArg = arg("rate", "");
  const rate = rateArg === "" ? undefined : Number(rateArg);
  if (rate !== undefined && !(rate > 0))
    throw new Error(`--rate '${rateArg}': expected requests per second > 0`);
  const shape = rate === undefined ? "closed loop ×1" : `open loop at ${rate} tx/s`;
  const variants = arg("floors", "tls+sync,tls+nosync,plain+sync,plain+nosync").split(",").map(parseVariant);
  const withCluster = !process.argv.includes("--no-cluster");
  const outDir = arg("out", "bench/results");
  const name = arg("name", "stack-floor");
  const machine = machineInfo();
  type Job = () => Promise<FloorRun>;
  const runs: FloorRun[] = [];
  for (let r = 1; r <= rounds; r++) {
    const jobs: [string, Job][] = variants.map((v) => [
      v.label,
      () => runFloor(v, r, warmupS, seconds, rate),
    ]);
    if (withCluster) jobs.push(["node (bench cluster)", () => runCluster(r, clusterWarmupS, seconds, rate)]);
    for (let k = 0; k < jobs.length; k++) {
      const [label, job] = jobs[(k + r - 1) % jobs.length]!;
      progress(`round ${r}/${rounds}: ${label}…`);
      const run = await job();
      progress(
        `  p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ${run.achievedTps} tx/s, ${run.heightsPerS} heights/s, ${run.cpuMsPerHeightPerReplica} ms CPU per height per replica, ${run.cpuMsPerTx} ms cluster CPU per tx (load ${run.loadAverage1m})`,
      );
      runs.push(run);
    }
  }
  const medians = summarize(runs);
  const columns = [
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "tx/s",
    "heights/s",
    "CPU ms/height/replica",
    "cluster CPU ms/tx",
  ];
  const row = (r: FloorRun) => [
    r.label,
    r.round,
    r.p50Ms,
    r.p90Ms,
    r.p99Ms,
    r.achievedTps,
    r.heightsPerS,
    r.cpuMsPerHeightPerReplica,
    r.cpuMsPerTx,
  ];
  const table = [
    `Stack floor: ${shape}, ${REPLICAS} replicas on 127.0.0.1, ${seconds} s per run after warm-up, medians of ${rounds} rounds (rotated order). ${machine.cores} cores, ${machine.cpuModel}, load ${machine.loadAverage1m} at start.`,
    formatTable(["", "runs", ...columns], medians.map(row)),
    "",
    "Every run:",
    formatTable(["", "round", ...columns], runs.map(row)),
  ].join("\n");
  const svg = barChartSvg({
    title: `${shape} on ${machine.cores} cores: the node against the bare stack (medians of ${rounds})`,
    categories: medians.map((m) => m.label),
    series: [
      { name: "p50 ms", values: medians.map((m) => m.p50Ms) },
      { name: "p99 ms", values: medians.map((m) => m.p99Ms) },
      rate === undefined
        ? { name: "CPU ms per height per replica", values: medians.map((m) => m.cpuMsPerHeightPerReplica) }
        : { name: "cluster CPU ms per tx", values: medians.map((m) => m.cpuMsPerTx) },
    ],
    yLabel: rate === undefined ? "ms" : "ms (log)",
    ...(rate === undefined ? {} : { logScale: true }),
    referenceLine:
      rate === undefined
        ? { value: 5, label: "issue 14 p50 goal, 5 ms" }
        : { value: 100, label: "issue 14 p99 goal at 1,500 tx/s, 100 ms" },
  });
  const files = writeResultFiles(
    outDir,
    name,
    {
      kind: "parabft-stack-floor",
      machine,
      shape,
      rate,
      rounds,
      seconds,
      warmupS,
      clusterWarmupS,
      medians,
      runs,
    },
    table,
    svg,
  );
  console.log(table);
  progress(`wrote ${files.json}, ${files.table}, ${files.svg}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
