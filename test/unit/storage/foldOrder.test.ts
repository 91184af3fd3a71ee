// foldOrder (src/storage/execLog.ts, issue 13 round 4): the fold's k-way merge of the sorted
// write-set logs takes every key once, from the newest log holding it, in key order; the same
// entries as deduping newest first by a Set (the previous fold), and null for an unsorted log.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import type { StateWrite } from "../../../src/exec/types.js";
import { encodeWriteSetLog, foldOrder, logOffsets } from "../../../src/storage/execLog.js";
import { ChainDb } from "../../../src/storage/index.js";
import { keyPool, pick, rng } from "../exec/randomWrites.js";
import { removeDir, tempDir } from "./helpers.js";

/** Logs over a small key pool (many repeats across logs), keys of 1-4 bytes (prefix cases). */
function randomLogs(seed: number, count: number, maxLen: number | "zeros" = 4) {
  const r = rng(seed);
  // "zeros": keys of 0-30 zero bytes then 0-4 bytes of 0/1: equal 6-byte chunks past the 24
  // bytes foldOrder compares as numbers, and short keys that pad to the same chunks as longer ones.
  const pool =
    maxLen === "zeros"
      ? keyPool(r, 60, 4, [0, 1]).map((tail) =>
          Uint8Array.from([...new Uint8Array(Math.floor(r() * 31)), ...tail.subarray(Math.floor(r() * 2))]),
        )
      : keyPool(r, 60, maxLen, [0, 1, 2, 3]);
  const logs = [];
  for (let b = 0; b < count; b++) {
    const m = new Map<string, StateWrite>();
    const n = Math.floor(r() * 30);
    for (let i = 0; i < n; i++) {
      const key = pick(pool, r);
      m.set(Buffer.from(key).toString("hex"), { key, value: r() < 0.2 ? null : Uint8Array.of(b, i) });
    }
    const ws = [...m.values()].sort((x, y) => Buffer.compare(x.key, y.key));
    const log = encodeWriteSetLog(ws);
    logs.push({ log, offsets: logOffsets(log, BigInt(b + 1)) });
  }
  return logs;
}

/** The previous fold: logs newest first, a key taken once. */
function bySet(logs: { log: Buffer; offsets: Uint32Array }[]): [number, number][] {
  const seen = new Set<string>();
  const out: [number, number][] = [];
  for (let b = logs.length - 1; b >= 0; b--) {
    const { log, offsets } = logs[b]!;
    for (let e = 0; e < offsets.length; e++) {
      const off = offsets[e]!;
      const id = log.toString("latin1", off + 2, off + 2 + log.readUInt16BE(off));
      if (seen.has(id)) continue;
      seen.add(id);
      out.push([b, e]);
    }
  }
  return out;
}

const keyOf = (logs: { log: Buffer; offsets: Uint32Array }[], b: number, e: number) => {
  const { log, offsets } = logs[b]!;
  const off = offsets[e]!;
  return log.subarray(off + 2, off + 2 + log.readUInt16BE(off));
};

describe("foldOrder", () => {
  // Keys of 1-4, 1-10 and 1-30 bytes, and long runs of zeros: the merge compares keys' first 24
  // bytes as 4 numbers, then lengths (round 12), so keys must meet equal chunks that differ
  // later, keys ending inside a chunk, and keys longer than 24 bytes.
  for (const maxLen of [4, 10, 30, "zeros"] as const)
    it(`takes each key once, from the newest log, in key order (= the Set fold's entries), keys of 1-${maxLen} bytes`, () => {
      for (let seed = 1; seed <= 200; seed++) {
        const logs = randomLogs(seed, 1 + (seed % 9), maxLen);
        const got = foldOrder(logs);
        assert.ok(got !== null);
        const pairs: [number, number][] = [];
        for (let i = 0; i < got.n; i++) pairs.push([got.block[i]!, got.entry[i]!]);
        for (let i = 1; i < pairs.length; i++) {
          const a = keyOf(logs, ...pairs[i - 1]!);
          const b = keyOf(logs, ...pairs[i]!);
          assert.ok(Buffer.compare(a, b) < 0, `seed ${seed}: not strictly increasing at ${i}`);
        }
        const want = bySet(logs).sort((x, y) => Buffer.compare(keyOf(logs, ...x), keyOf(logs, ...y)));
        assert.deepEqual(pairs, want, `seed ${seed}`);
      }
    });

  it("returns null for a log that is not strictly sorted", () => {
    const a = Uint8Array.of(1, 2);
    const b = Uint8Array.of(1, 3);
    const sorted = encodeWriteSetLog([
      { key: a, value: null },
      { key: b, value: a },
    ]);
    const unsorted = encodeWriteSetLog([
      { key: b, value: null },
      { key: a, value: a },
    ]);
    const repeated = encodeWriteSetLog([
      { key: a, value: null },
      { key: a, value: a },
    ]);
    const p = (log: Buffer) => ({ log, offsets: logOffsets(log, 1n) });
    assert.ok(foldOrder([p(sorted), p(sorted)]) !== null);
    assert.equal(foldOrder([p(sorted), p(unsorted)]), null);
    assert.equal(foldOrder([p(repeated), p(sorted)]), null);
  });
});

describe("ChainDb fold", () => {
  // Write sets over a small key pool (repeats across blocks, deletions), unfolded until
  // flushState; afterwards the state bucket alone must hold each key's newest value.
  async function foldedState(sorted: boolean, perBlock = 25, keyBytes = 6): Promise<void> {
    const root = await tempDir("fold");
    const db = await ChainDb.open(path.join(root, "db"), { stateApplyEntries: 1_000_000 });
    try {
      const r = rng(sorted ? 3 : 4);
      const want = new Map<string, string | null>();
      for (let h = 0n; h <= 6n; h++) {
        const m = new Map<string, StateWrite>();
        for (let i = 0; i < perBlock; i++) {
          const key = Uint8Array.of(1, Math.floor(r() * keyBytes), Math.floor(r() * keyBytes));
          const value = r() < 0.2 ? null : Uint8Array.of(Number(h), i & 255, i >> 8);
          m.set(Buffer.from(key).toString("hex"), { key, value });
        }
        const ws = [...m.values()].sort((x, y) => Buffer.compare(x.key, y.key));
        // The fallback: a write set (so a log) out of key order.
        if (!sorted) ws.reverse();
        for (const w of ws)
          want.set(Buffer.from(w.key).toString("hex"), w.value && Buffer.from(w.value).toString("hex"));
        await db.writeExecutionBatch({
          height: h,
          writeSet: ws,
          receipts: [],
          stateRoot: new Uint8Array(32).fill(1),
        });
      }
      assert.ok(db.pendingStateEntries > 0);
      await db.flushState();
      assert.equal(db.pendingStateEntries, 0);
      const got = new Map<string, string>();
      for await (const [k, v] of db.iterateState())
        got.set(Buffer.from(k).toString("hex"), Buffer.from(v).toString("hex"));
      const present = [...want].filter(([, v]) => v !== null);
      assert.deepEqual([...got].sort(), present.sort());
    } finally {
      await db.close();
      await removeDir(root);
    }
  }

  it("writes each key's newest value (merge of sorted logs)", () => foldedState(true));
  it("writes each key's newest value (a log out of key order: the Set fallback)", () => foldedState(false));
  // 7 blocks × 6,000 writes over 48k keys: a fold of several 8,192-put chunks, each written while
  // the next is built (one write in flight), the logs deleted by the last batch.
  it("writes each key's newest value across several chunks (both fold orders)", async () => {
    await foldedState(true, 6_000, 220);
    await foldedState(false, 6_000, 220);
  });
});
