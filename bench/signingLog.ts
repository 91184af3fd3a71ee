// The signing-state log alone (issue 14 direction 1): CPU and wall time per synced batch, this
// build's preallocated binary log against another build's (e.g. the JSON-lines log of the
// baseline worktree), run alternately in one process (A B B A ...), medians. Records are shaped
// like a validator's per height: a PREPARE with a ~300-byte body, then a COMMIT with its prepared
// certificate (3 signatures), as 2 batches, plus a checkpoint every 10 heights.
//   node dist/bench/signingLog.js [--base DIST_STORAGE_INDEX_JS] [--heights N] [--rounds R] [--out DIR] [--no-write]
// CPU is process.cpuUsage (user + system, every thread: the fdatasync runs on the libuv pool).
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { applySigningRecord, emptyPersistedState } from "../src/consensus/pbft/persist.js";
import type { SigningRecord } from "../src/consensus/pbft/types.js";
import * as storage from "../src/storage/index.js";
import {
  barChartSvg,
  formatTable,
  machineInfo,
  median,
  progress,
  quantile,
  writeResultFiles,
} from "./lib/index.js";

interface LogLike {
  open(): Promise<unknown>;
  append(...records: SigningRecord[]): Promise<void>;
  close(): Promise<void>;
}
type LogCtor = new (
  dir: string,
  opts: { fold: typeof applySigningRecord; initial: typeof emptyPersistedState },
) => LogLike;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

function heightRecords(h: bigint): SigningRecord[][] {
  const digest = bytes(32, Number(h % 251n));
  const prepare: SigningRecord = {
    kind: "prepare",
    epoch: 0n,
    view: 0n,
    height: h,
    digest,
    body: bytes(300, 7),
  };
  const prepared = {
    $typeName: "parabft.v1.PreparedCertificate",
    view: 0n,
    height: h,
    blockDigest: digest,
    prepares: [0, 1, 2].map((i) => ({
      $typeName: "parabft.v1.VoteSignature",
      validator: i,
      signature: bytes(64, i),
    })),
  } as unknown as Extract<SigningRecord, { kind: "commit" }>["prepared"];
  const commit: SigningRecord = { kind: "commit", epoch: 0n, view: 0n, height: h, digest, prepared };
  const batches: SigningRecord[][] = [[prepare], [commit]];
  if (h % 10n === 0n) {
    batches.push([{ kind: "checkpoint", epoch: 0n, height: h, chainHash: digest, stateRoot: digest }]);
    batches.push([{ kind: "stable", epoch: 0n, height: h - 10n }]);
  }
  return batches;
}

async function runOnce(Log: LogCtor, dir: string, heights: number) {
  await fs.rm(dir, { recursive: true, force: true });
  const log = new Log(dir, { fold: applySigningRecord, initial: emptyPersistedState });
  await log.open();
  const walls: number[] = [];
  let batches = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let h = 1n; h <= BigInt(heights); h++) {
    for (const b of heightRecords(h)) {
      const w0 = performance.now();
      await log.append(...b);
      walls.push(performance.now() - w0);
      batches++;
    }
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await log.close();
  return {
    batches,
    cpuUsPerBatch: (cpu.user + cpu.system) / batches,
    userUsPerBatch: cpu.user / batches,
    systemUsPerBatch: cpu.system / batches,
    wallMsPerBatch: wall / batches,
    p50Ms: quantile(walls, 0.5),
    p99Ms: quantile(walls, 0.99),
  };
}

async function main(): Promise<void> {
  const heights = Number(arg("heights") ?? "300");
  const rounds = Number(arg("rounds") ?? "3");
  const builds: { label: string; Log: LogCtor }[] = [
    { label: "new (binary, preallocated)", Log: storage.SigningStateLog as unknown as LogCtor },
  ];
  const base = arg("base");
  if (base !== undefined) {
    const mod = (await import(pathToFileURL(path.resolve(base)).href)) as { SigningStateLog: LogCtor };
    builds.unshift({ label: "base (JSON lines)", Log: mod.SigningStateLog });
  }
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "parabft-signlog-bench-"));
  const runs: { build: string; round: number; load1m: number; r: Awaited<ReturnType<typeof runOnce>> }[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      for (const b of order) {
        const r = await runOnce(b.Log, path.join(root, `r${round}`), heights);
        runs.push({ build: b.label, round, load1m: os.loadavg()[0]!, r });
        progress(
          `${b.label} round ${round}: ${r.cpuUsPerBatch.toFixed(0)} µs CPU/batch, p50 ${r.p50Ms.toFixed(2)} ms`,
        );
      }
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
  const rows = builds.map((b) => {
    const mine = runs.filter((x) => x.build === b.label).map((x) => x.r);
    const m = (f: (r: (typeof mine)[0]) => number) => Math.round(median(mine.map(f)) * 100) / 100;
    return {
      build: b.label,
      runs: mine.length,
      cpuUsPerBatch: m((r) => r.cpuUsPerBatch),
      userUsPerBatch: m((r) => r.userUsPerBatch),
      systemUsPerBatch: m((r) => r.systemUsPerBatch),
      wallMsPerBatch: m((r) => r.wallMsPerBatch),
      p50Ms: m((r) => r.p50Ms),
      p99Ms: m((r) => r.p99Ms),
    };
  });
  const table = formatTable(
    ["build", "runs", "CPU µs/batch", "user µs", "system µs", "wall ms/batch", "p50 ms", "p99 ms"],
    rows.map((r) => [
      r.build,
      r.runs,
      r.cpuUsPerBatch,
      r.userUsPerBatch,
      r.systemUsPerBatch,
      r.wallMsPerBatch,
      r.p50Ms,
      r.p99Ms,
    ]),
  );
  const machine = machineInfo();
  const text = `signing-state log: ${heights} heights × (PREPARE, COMMIT, + checkpoint/stable every 10) per run, medians of ${rounds} alternated rounds; load 1m ${runs.map((r) => r.load1m.toFixed(1)).join(" ")}\n\n${table}`;
  console.log(text);
  if (!process.argv.includes("--no-write")) {
    const svg = barChartSvg({
      title: "signing-state log: CPU per synced batch (µs, all threads)",
      categories: ["CPU µs/batch", "user µs", "system µs"],
      series: rows.map((r) => ({
        name: r.build,
        values: [r.cpuUsPerBatch, r.userUsPerBatch, r.systemUsPerBatch],
      })),
      yLabel: "µs",
    });
    writeResultFiles(
      arg("out") ?? "bench/results",
      "signing-log",
      { kind: "parabft-signing-log", machine, heights, rounds, rows, runs },
      text,
      svg,
    );
  }
}

await main();
