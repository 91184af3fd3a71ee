// GetTx's storage read (issue 14's profile at 1,200 tx/s: decoding whole stored blocks was 14 % of
// the validators' main-thread samples while the bench's chain check looked transactions up): one
// transaction by hash, read as the API did before (getBlock decodes the whole block, then takes
// txs[index]) and as it does now (ChainDb.getTx decodes only that transaction, blockTxBytesAt).
// Both in one process over one database of committed transfer blocks, in alternated rounds
// (A B B A ...), medians. Two figures per way:
// - decode: the synchronous work on the thread that also runs consensus, timed alone on the same
//   stored bytes (the reads are done before);
// - lookup: the whole async read (tx index, block value, decode) as GetTx does it, the two ways
//   interleaved pick by pick. The RocksDB reads run on the libuv pool and wait for a CPU: on a
//   loaded box this figure is mostly the scheduler's (1-4 ms a lookup at load 6 either way), so
//   read it as a sanity check, not as the change's effect.
//   node dist/bench/getTx.js [--blocks 10] [--txs 2000] [--lookups 2000] [--rounds 4] [--out DIR] [--no-write]
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Rng } from "../src/exec/workload.js";
import {
  BlockSchema,
  CommitCertificateSchema,
  type SignedTx,
  SignedTxSchema,
} from "../src/gen/parabft/v1/types_pb.js";
import { ChainDb } from "../src/storage/index.js";
import { blockDigest, GENESIS_CHAIN_HASH, nextChainHash, txHash } from "../src/types/block.js";
import { blockTxBytesAt } from "../src/types/fastWire.js";
import type { Hash } from "../src/types/hash.js";
import { barChartSvg, formatTable, machineInfo, median, progress, writeResultFiles } from "./lib/index.js";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}

/** Deterministic bytes (the workload's PRNG): the same database and picks on every run. */
function filler(seed: number): (n: number) => Uint8Array {
  const r = new Rng(seed);
  return (n) => Uint8Array.from({ length: n }, () => r.int(256));
}

type Way = "whole block (before)" | "one transaction (getTx)";
const WAYS: Way[] = ["whole block (before)", "one transaction (getTx)"];

/** The synchronous decode of one way: the transaction at `index` of the stored block `body`. */
function decode(way: Way, body: Uint8Array, index: number): SignedTx | undefined {
  if (way === "whole block (before)") return fromBinary(BlockSchema, body).txs[index];
  const bytes = blockTxBytesAt(body, index);
  return bytes === undefined ? undefined : fromBinary(SignedTxSchema, bytes);
}

async function lookup(db: ChainDb, way: Way, hash: Hash): Promise<boolean> {
  if (way === "one transaction (getTx)") return (await db.getTx(hash)) !== undefined;
  const loc = await db.getTxLocation(hash);
  if (loc === undefined) return false;
  return (await db.getBlock(loc.height))?.block?.txs[loc.index] !== undefined;
}

async function main(): Promise<void> {
  const blocks = Number(arg("blocks", "10"));
  const txsPerBlock = Number(arg("txs", "2000"));
  const lookups = Number(arg("lookups", "2000"));
  const rounds = Number(arg("rounds", "4"));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "parabft-gettx-bench-"));
  const bytes = filler(7);
  const hashes: Hash[] = [];
  const db = await ChainDb.open(dir);
  const runs: { way: Way; round: number; decodeUs: number; lookupUs: number }[] = [];
  try {
    // Transfer-sized transactions: ~110-byte bodies and 64-byte signatures, as `bench cluster` sends.
    let chain = GENESIS_CHAIN_HASH;
    for (let h = 1n; h <= BigInt(blocks); h++) {
      const txs = Array.from({ length: txsPerBlock }, () =>
        create(SignedTxSchema, { body: bytes(110), signature: bytes(64) }),
      );
      for (const t of txs) hashes.push(txHash(t));
      const block = create(BlockSchema, {
        header: { chainId: "bench", height: h, epoch: 0n, proposer: 0, timestampMs: 1000n + h },
        txs,
      });
      const digest = blockDigest(block.header!);
      chain = nextChainHash(chain, digest);
      await db.writeCommitBatch({
        height: h,
        digest,
        block,
        certificate: create(CommitCertificateSchema, { epoch: 0n, height: h, blockDigest: digest }),
        chainHash: chain,
        blockTimeMs: 1000n + h,
      });
    }
    // The same random picks for both ways in a round; each pick's location and stored bytes read
    // before the timing, so the decode figure holds only the decode.
    const pick = filler(11);
    const bodies = new Map<bigint, Uint8Array>();
    for (let round = 0; round < rounds; round++) {
      const idx = pick(lookups * 4);
      const chosen: { hash: Hash; height: bigint; index: number }[] = [];
      for (let i = 0; i < lookups; i++) {
        const r =
          ((idx[4 * i]! << 24) | (idx[4 * i + 1]! << 16) | (idx[4 * i + 2]! << 8) | idx[4 * i + 3]!) >>> 0;
        const hash = hashes[r % hashes.length]!;
        const loc = (await db.getTxLocation(hash))!;
        if (!bodies.has(loc.height)) bodies.set(loc.height, (await db.getBlockBytes(loc.height))!);
        chosen.push({ hash, ...loc });
      }
      const order = round % 2 === 0 ? WAYS : [...WAYS].reverse();
      const decodeUs = new Map<Way, number>();
      for (const way of order) {
        const t0 = performance.now();
        for (const c of chosen)
          if (decode(way, bodies.get(c.height)!, c.index) === undefined) throw new Error(`${way}: no tx`);
        decodeUs.set(way, ((performance.now() - t0) * 1000) / lookups);
      }
      // The async lookups interleaved (each pick read both ways, the first way alternating), so
      // both see the same moments of a busy scheduler.
      const lookupMs = new Map<Way, number>(WAYS.map((w) => [w, 0]));
      for (let i = 0; i < chosen.length; i++) {
        for (const way of i % 2 === 0 ? WAYS : [...WAYS].reverse()) {
          const t0 = performance.now();
          if (!(await lookup(db, way, chosen[i]!.hash))) throw new Error(`${way}: a lookup missed`);
          lookupMs.set(way, lookupMs.get(way)! + performance.now() - t0);
        }
      }
      for (const way of WAYS) {
        const r = {
          way,
          round,
          decodeUs: decodeUs.get(way)!,
          lookupUs: (lookupMs.get(way)! * 1000) / lookups,
        };
        runs.push(r);
        progress(
          `${way} round ${round}: decode ${r.decodeUs.toFixed(1)} µs, lookup ${r.lookupUs.toFixed(1)} µs`,
        );
      }
    }
  } finally {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
  const med = (way: Way, f: (r: (typeof runs)[number]) => number) =>
    Math.round(median(runs.filter((r) => r.way === way).map(f)) * 10) / 10;
  const rows = WAYS.map((way) => ({
    way,
    runs: runs.filter((r) => r.way === way).length,
    decodeUs: med(way, (r) => r.decodeUs),
    lookupUs: med(way, (r) => r.lookupUs),
  }));
  const base = rows[0]!;
  const ratio = (x: number, b: number) => Math.round((x / b) * 1000) / 1000;
  const table = formatTable(
    ["read", "rounds", "decode µs (main thread)", "× before", "lookup µs (async, whole)", "× before"],
    rows.map((r) => [
      r.way,
      r.runs,
      r.decodeUs,
      ratio(r.decodeUs, base.decodeUs),
      r.lookupUs,
      ratio(r.lookupUs, base.lookupUs),
    ]),
  );
  const machine = machineInfo();
  const text = `GetTx storage read: ${blocks} blocks × ${txsPerBlock} transfers, ${lookups} random lookups per round, medians of ${rounds} alternated rounds; load 1m ${machine.loadAverage1m}\n\n${table}`;
  console.log(text);
  if (!process.argv.includes("--no-write")) {
    const svg = barChartSvg({
      title: `GetTx storage read at ${txsPerBlock}-transaction blocks (µs per lookup)`,
      categories: ["decode (main thread)", "lookup (async, whole)"],
      series: rows.map((r) => ({ name: r.way, values: [r.decodeUs, r.lookupUs] })),
      yLabel: "µs",
      logScale: true,
    });
    writeResultFiles(
      arg("out", "bench/results"),
      "get-tx",
      { kind: "parabft-get-tx", machine, blocks, txsPerBlock, lookups, rounds, rows, runs },
      text,
      svg,
    );
  }
}

await main();
