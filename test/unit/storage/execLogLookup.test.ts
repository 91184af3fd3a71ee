// logLookup (src/storage/execLog.ts): exact answers for every key, and a key no log holds is
// ruled out by the log's filter without a binary search (issue 10: a state read of an unknown
// account visited every pending log, one per block since the last fold).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { encodeWriteSetLog, logKeyHash, logLookup, logOffsets } from "../../../src/storage/execLog.js";

function sortedWrites(n: number) {
  const keys = Array.from({ length: n }, () => randomBytes(21));
  keys.sort(Buffer.compare);
  return keys.map((key, i) => ({ key, value: i % 5 === 0 ? null : Uint8Array.of(i & 255, i >> 8) }));
}

describe("write-set log lookup", () => {
  it("finds every key it holds (value or deletion) and nothing else", () => {
    const writes = sortedWrites(500);
    const log = encodeWriteSetLog(writes);
    const p = { log, offsets: logOffsets(log, 7n) };
    for (const w of writes) {
      const got = logLookup(p, w.key, logKeyHash(w.key));
      if (w.value === null) assert.equal(got, null);
      else assert.deepEqual(got && [...got], [...w.value]);
      // Without a precomputed hash, the same answer.
      assert.deepEqual(logLookup(p, w.key), got);
    }
    for (let i = 0; i < 200; i++) assert.equal(logLookup(p, randomBytes(21)), undefined);
    const empty = encodeWriteSetLog([]);
    assert.equal(logLookup({ log: empty, offsets: logOffsets(empty, 1n) }, randomBytes(21)), undefined);
  });

  it("rules out almost every absent key without searching the log", () => {
    const writes = sortedWrites(300);
    const log = encodeWriteSetLog(writes);
    const offsets = logOffsets(log, 9n);
    let reads = 0;
    const counted = new Proxy(offsets, {
      get(target, prop) {
        if (typeof prop === "string" && /^\d+$/.test(prop)) reads++;
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const p = { log, offsets: counted as Uint32Array };
    logLookup(p, writes[0]!.key); // builds the filter
    reads = 0;
    const absent = 1000;
    for (let i = 0; i < absent; i++) assert.equal(logLookup(p, randomBytes(21)), undefined);
    // A binary search of 300 entries reads ~8 offsets: 1000 unfiltered misses would read ~8000.
    assert.ok(reads < absent / 2, `${reads} offset reads for ${absent} absent keys`);
  });
});
