// Interleaved pairs of two builds on the execution stage (issue 13): each run a fresh process of
// one build's compiled modules (dist/), on the bench's code path (`parabft bench exec`: pipeline,
// ChainDb in that build's execution layout, a fresh directory per run, so builds of different
// layouts pair; parallel executor with 2 workers started before the clock), 10k-transfer
// blocks over 100k accounts, timed to the end of the fold. Order swapped each pair; each run's
// tx/s, CPU µs/tx (process.cpuUsage, all threads), GC share, keys per tx, state root and load
// average; medians per build. A run imports only modules both builds have, so a build from
// before this file (e.g. main) can be the baseline.
//   node dist/bench/execPairs.js A_ROOT B_ROOT [--pairs N] [--mode persisted|exec|compute] [--blocks N]
//     [--accounts N] [--block-size N] [--json]
//   node dist/bench/execPairs.js --run ROOT MODE BLOCKS ACCOUNTS BLOCK_SIZE   (one run, JSON line)
// ROOT is a worktree with a built dist/ (npx tsc -p tsconfig.json). EXECPAIRS_PROFILE=FILE with
// --run writes a main-thread CPU profile of the timed part only (no setup, no warm-up block).
// EXECPAIRS_SOURCE=1 (persisted) gives the executor the ChainDb as its source, as in the node.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface PairRun {
  root: string;
  mode: "persisted" | "exec" | "compute";
  txs: number;
  txPerSec: number;
  cpuUsPerTx: number;
  gcShare: number;
  keysPerTx: number;
  /** persisted: wall ms of the folds of the write-set logs into the state bucket in the timed part (ChainDb onWrite "state"). */
  foldMs?: number;
  stateRoot: string;
  load1m: [number, number];
  /** CPU ms of each thread that used > 5 ms in the timed part (compute: the parallel calls), from /proc. */
  threads?: { tid: number; name: string; cpuMs: number }[];
  /** compute mode: the reference executor's tx/s on the same blocks, interleaved block by block. */
  referenceTxPerSec?: number;
  /** compute mode: the parallel executor's mode/lanes per block. */
  executorModes?: string[];
}

/** CPU ms per thread of this process (utime + stime from /proc/self/task; empty elsewhere). */
function threadCpu(): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  try {
    const tick = 10; // USER_HZ 100 on Linux
    for (const t of readdirSync("/proc/self/task")) {
      try {
        const stat = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const name = readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim();
        out.set(+t, { name, ms: (+f[11]! + +f[12]!) * tick });
      } catch {
        // the thread ended
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/** CPU ms per thread since `before` (threads over 5 ms; this process's main thread named "main"). */
function threadsSince(before: Map<number, { name: string; ms: number }>): NonNullable<PairRun["threads"]> {
  return [...threadCpu()]
    .map(([tid, t]) => ({
      tid,
      name: tid === process.pid ? "main" : t.name,
      cpuMs: t.ms - (before.get(tid)?.ms ?? 0),
    }))
    .filter((t) => t.cpuMs > 5)
    .sort((a, b) => b.cpuMs - a.cpuMs);
}

const load1 = () => Math.round(loadavg()[0]! * 100) / 100;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

// biome-ignore lint/suspicious/noExplicitAny: modules of another build, loaded by path
type Any = any;

/**
 * The main thread's CPU profile of the timed part, when EXECPAIRS_PROFILE names a file; and/or
 * `perf record --control fifo:FIFO --delay=-1` switched on for the timed part only, when
 * EXECPAIRS_PERF_CTL names perf's control FIFO (all threads, native frames, page faults).
 */
function timedProfiler() {
  const file = process.env.EXECPAIRS_PROFILE;
  const perfCtl = process.env.EXECPAIRS_PERF_CTL;
  const session = file ? new Session() : null;
  return {
    async start() {
      if (perfCtl) writeFileSync(perfCtl, "enable\n");
      if (!session) return;
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 500 });
      await session.post("Profiler.start");
    },
    async stop() {
      if (perfCtl) writeFileSync(perfCtl, "disable\n");
      if (!session || !file) return;
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

async function runOne(
  root: string,
  mode: PairRun["mode"],
  count: number,
  accounts: number,
  blockSize: number,
) {
  const mod = (p: string): Promise<Any> => import(pathToFileURL(join(root, "dist", p)).href);
  const [bench, par, pipe, store, log, bytes] = await Promise.all([
    mod("bench/exec.js"),
    mod("src/exec/parallel.js"),
    mod("src/exec/pipeline.js"),
    mod("src/storage/index.js"),
    mod("src/logger/index.js"),
    mod("src/types/bytes.js"),
  ]);
  const l0 = load1();
  const profiler = timedProfiler();
  if (mode === "compute") return runCompute(root, bench, par, bytes, count, blockSize);
  const { u, blocks } = bench.makeBlocks({ name: "", workload: "transfer", accounts, blockSize }, count + 1);
  const warm = blocks.shift();
  const dir = mkdtempSync(join(tmpdir(), "parabft-execpairs-"));
  let keys = 0;
  let foldMs = 0;
  const persisted = mode === "persisted";
  const chain = persisted
    ? await store.ChainDb.open(dir, {
        onWrite: (kind: string, ms: number, ops: number) => {
          keys += ops;
          if (kind === "state") foldMs += ms;
        },
      })
    : null;
  try {
    const init = { height: 0n, stateRoot: u.genesis.stateRoot, state: u.state };
    // EXECPAIRS_SOURCE=1 (persisted): the executor reads misses from the ChainDb, as the node's
    // does (ParallelExecutor.open): prepare decodes and prefetches each block ahead of execution,
    // and written keys stay pinned until persisted. The state is still seeded, so nothing misses.
    const withSource = chain !== null && process.env.EXECPAIRS_SOURCE === "1";
    // EXECPAIRS_COLD=1 (with EXECPAIRS_SOURCE=1): nothing seeded, so every block's keys miss until
    // loaded from the ChainDb (a restart without warm): prepare looks every block up ahead and
    // runs it from its decoded txs (the look-ahead path).
    const cold = withSource && process.env.EXECPAIRS_COLD === "1";
    const ex = new par.ParallelExecutor(cold ? { height: init.height, stateRoot: init.stateRoot } : init, {
      workers: 2,
      ...(withSource ? { source: chain } : {}),
    });
    await ex.ready();
    let sr = "";
    let gcMs = 0;
    const gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcMs += e.duration;
    });
    let c0: NodeJS.CpuUsage;
    let t0: number;
    let th0 = new Map<number, { name: string; ms: number }>();
    try {
      if (chain) {
        await chain.writeExecutionBatch(u.genesis);
        await chain.flushState();
        const pipeline = new pipe.ExecutionPipeline(
          { queueCapacity: 4 },
          {
            executor: ex,
            store: chain,
            log: log.silentLogger(),
            onExecuted: (_h: bigint, stateRoot: Uint8Array) => {
              sr = bytes.toHex(stateRoot);
            },
          },
        );
        await pipeline.start();
        // The warm-up block (JIT, worker start) runs through the same path, untimed.
        await pipeline.submit(warm);
        await pipeline.idle();
        await chain.flushState();
        keys = 0;
        foldMs = 0;
        await profiler.start();
        gc.observe({ entryTypes: ["gc"] });
        th0 = threadCpu();
        c0 = process.cpuUsage();
        t0 = performance.now();
        try {
          for (const b of blocks) await pipeline.submit(b);
          await pipeline.idle();
          await chain.flushState();
        } finally {
          await pipeline.stop();
        }
      } else {
        await ex.executeBlock(warm);
        await profiler.start();
        gc.observe({ entryTypes: ["gc"] });
        th0 = threadCpu();
        c0 = process.cpuUsage();
        t0 = performance.now();
        for (const b of blocks) sr = bytes.toHex((await ex.executeBlock(b)).stateRoot);
      }
    } finally {
      await ex.close();
    }
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const threads = threadsSince(th0);
    await profiler.stop();
    // GC entries are delivered on a later turn of the event loop: let them in before counting.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
    gc.disconnect();
    const txs = count * blockSize;
    const r: PairRun = {
      root,
      mode,
      txs,
      txPerSec: Math.round((txs / ms) * 1000),
      cpuUsPerTx: round((c.user + c.system) / txs),
      gcShare: round(gcMs / ms, 3),
      keysPerTx: round(keys / txs, 3),
      ...(persisted ? { foldMs: Math.round(foldMs) } : {}),
      stateRoot: sr,
      load1m: [l0, load1()],
      threads,
    };
    return r;
  } finally {
    await chain?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * compute-high (1,500 compute.work iterations per tx, one sender per tx): the parallel executor
 * with 2 workers against the reference, block by block, and how much CPU each thread used, to
 * see whether the two workers really ran side by side and what the main thread spent shipping.
 */
async function runCompute(root: string, bench: Any, par: Any, bytes: Any, count: number, blockSize: number) {
  const l0 = load1();
  const s = { name: "", workload: "compute-high", accounts: blockSize, blockSize, iterations: 1500 };
  const { u, blocks } = bench.makeBlocks(s, count + 1);
  const ref = await import(pathToFileURL(join(root, "dist", "src/exec/reference.js")).href);
  const init = { height: 0n, stateRoot: u.genesis.stateRoot, state: u.state };
  const ex = new par.ParallelExecutor(init, { workers: 2 });
  const rx = new ref.ReferenceExecutor({ ...init, state: new Map(u.state) });
  await ex.ready();
  let ms = 0;
  let refMs = 0;
  let sr = "";
  let c = { user: 0, system: 0 };
  // Per thread, summed over the timed parallel calls only (the reference runs on the main thread).
  const used = new Map<number, { name: string; ms: number }>();
  const modes = new Set<string>();
  // EXECPAIRS_PERF_CTL: perf records the timed parallel calls only (not the reference's blocks).
  const perfCtl = process.env.EXECPAIRS_PERF_CTL;
  try {
    for (const [i, b] of blocks.entries()) {
      if (perfCtl && i > 0) writeFileSync(perfCtl, "enable\n");
      const th0 = threadCpu();
      const c0 = process.cpuUsage();
      const a = performance.now();
      sr = bytes.toHex((await ex.executeBlock(b)).stateRoot);
      const d = performance.now() - a;
      const cd = process.cpuUsage(c0);
      if (perfCtl && i > 0) writeFileSync(perfCtl, "disable\n");
      if (i > 0) {
        for (const [tid, t] of threadCpu()) {
          const was = used.get(tid)?.ms ?? 0;
          used.set(tid, { name: t.name, ms: was + t.ms - (th0.get(tid)?.ms ?? t.ms) });
        }
      }
      if (ex.lastStats) modes.add(`${ex.lastStats.mode}/${ex.lastStats.lanes}`);
      const r0 = performance.now();
      const rr = bytes.toHex((await rx.executeBlock(b)).stateRoot);
      if (rr !== sr) throw new Error(`state root differs from the reference at block ${i + 1}`);
      if (i === 0) continue; // warm-up: JIT and worker start
      ms += d;
      refMs += performance.now() - r0;
      c = { user: c.user + cd.user, system: c.system + cd.system };
    }
  } finally {
    await ex.close();
  }
  const threads = [...used]
    .map(([tid, t]) => ({ tid, name: tid === process.pid ? "main" : t.name, cpuMs: t.ms }))
    .filter((t) => t.cpuMs > 5)
    .sort((a, b) => b.cpuMs - a.cpuMs);
  const txs = count * blockSize;
  const r: PairRun = {
    root,
    mode: "compute",
    txs,
    txPerSec: Math.round((txs / ms) * 1000),
    cpuUsPerTx: round((c.user + c.system) / txs),
    gcShare: 0,
    keysPerTx: 0,
    stateRoot: sr,
    load1m: [l0, load1()],
    threads,
    referenceTxPerSec: Math.round((txs / refMs) * 1000),
    executorModes: [...modes],
  };
  return r;
}

function flag(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

async function main(args: string[]) {
  if (args[0] === "--run") {
    const [, root, mode, count, accounts, size] = args;
    const r = await runOne(resolve(root!), mode as PairRun["mode"], +count!, +accounts!, +size!);
    r.root = resolve(root!);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const [a, b] = [resolve(args[0] ?? ""), resolve(args[1] ?? "")];
  if (!args[0] || !args[1] || args[0].startsWith("--")) {
    process.stderr.write(
      "usage: node dist/bench/execPairs.js A_ROOT B_ROOT [--pairs N] [--mode persisted|exec|compute] [--blocks N] [--accounts N] [--block-size N] [--json]\n",
    );
    process.exitCode = 2;
    return;
  }
  const pairs = +flag(args, "--pairs", "3");
  const mode = flag(args, "--mode", "persisted");
  // compute-high blocks of 10k txs take ~13 s each: its defaults are 3 blocks of 1,000.
  const count = flag(args, "--blocks", mode === "compute" ? "3" : "10");
  const accounts = flag(args, "--accounts", "100000");
  const size = flag(args, "--block-size", mode === "compute" ? "1000" : "10000");
  const self = fileURLToPath(import.meta.url);
  const runs: PairRun[] = [];
  for (let i = 0; i < pairs; i++) {
    for (const root of i % 2 === 0 ? [a, b] : [b, a]) {
      const out = execFileSync(process.execPath, [self, "--run", root, mode, count, accounts, size], {
        encoding: "utf8",
        maxBuffer: 1 << 20,
      });
      const r = JSON.parse(out.trim().split("\n").pop()!) as PairRun;
      runs.push(r);
      process.stderr.write(
        `pair ${i + 1} ${root}: ${r.txPerSec} tx/s, ${r.cpuUsPerTx} µs CPU/tx, GC ${r.gcShare}, keys/tx ${r.keysPerTx}${r.foldMs !== undefined ? `, fold ${r.foldMs} ms` : ""}, load ${r.load1m.join("→")}, root ${r.stateRoot.slice(0, 8)}\n`,
      );
    }
  }
  const of = (root: string) => runs.filter((r) => r.root === root);
  const summary = [a, b].map((root) => ({
    root,
    txPerSec: of(root).map((r) => r.txPerSec),
    cpuUsPerTx: of(root).map((r) => r.cpuUsPerTx),
    medianTxPerSec: median(of(root).map((r) => r.txPerSec)),
    medianCpuUsPerTx: median(of(root).map((r) => r.cpuUsPerTx)),
    medianGcShare: median(of(root).map((r) => r.gcShare)),
    keysPerTx: median(of(root).map((r) => r.keysPerTx)),
    ...(mode === "persisted" ? { medianFoldMs: median(of(root).map((r) => r.foldMs ?? 0)) } : {}),
  }));
  // Each tree must end every run on one state root (determinism); the two trees' roots differ
  // when their layouts do (layout 3 writes other account values than layout 2).
  const rootsMatch = [a, b].every((root) => new Set(of(root).map((r) => r.stateRoot)).size === 1);
  const sameRootBothTrees = new Set(runs.map((r) => r.stateRoot)).size === 1;
  if (args.includes("--json")) {
    process.stdout.write(
      `${JSON.stringify({ mode, pairs, runs, summary, rootsMatch, sameRootBothTrees }, null, 2)}\n`,
    );
    return;
  }
  for (const s of summary) {
    process.stdout.write(
      `${s.root}: tx/s ${s.txPerSec.join(" / ")} (med ${s.medianTxPerSec}); CPU µs/tx ${s.cpuUsPerTx.join(" / ")} (med ${s.medianCpuUsPerTx}); GC ${s.medianGcShare}; keys/tx ${s.keysPerTx}\n`,
    );
  }
  process.stdout.write(
    `each tree's runs end on one state root: ${rootsMatch}; both trees on the same root: ${sameRootBothTrees}\n`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
