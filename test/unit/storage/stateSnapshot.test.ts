// GetState/GetAccount read a value and the executed height from one snapshot (issue 9 part 5):
// reads racing execution batches never pair a value of h+1 with height h.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { ChainDb } from "../../../src/storage/index.js";
import { readU64 } from "../../../src/storage/keys.js";
import { u64be, utf8Bytes } from "../../../src/types/bytes.js";
import { removeDir, tempDir } from "./helpers.js";

describe("ChainDb.getStateSnapshot", () => {
  it("returns values and the executed height from one snapshot while batches land", async () => {
    const root = await tempDir("parabft-snapshot-");
    // A low fold threshold, so reads also race folds of the logs into the state bucket.
    const db = await ChainDb.open(path.join(root, "db"), { stateApplyEntries: 16 });
    try {
      const before = await db.getStateSnapshot([utf8Bytes("k"), utf8Bytes("j")]);
      assert.equal(before.height, 0n);
      assert.deepEqual(before.values, [undefined, undefined]);
      const heights = 300;
      let bad = 0;
      let reads = 0;
      let done = false;
      const readers = Array.from({ length: 4 }, async () => {
        while (!done) {
          const { height, values } = await db.getStateSnapshot([utf8Bytes("k"), utf8Bytes("j")]);
          reads++;
          const k = values[0] === undefined ? 0n : readU64(values[0]);
          const j = values[1] === undefined ? 0n : readU64(values[1]);
          if (k !== height || j !== height * 2n) bad++;
          // A snapshot served from the in-memory logs settles without I/O: yield, as requests
          // arriving over the network do, or the readers starve the writer's callbacks.
          await new Promise(setImmediate);
        }
      });
      for (let h = 1n; h <= BigInt(heights); h++) {
        await db.writeExecutionBatch({
          height: h,
          // Key-sorted, as every executor's write set is (the write-set log is searched by key).
          writeSet: [
            { key: utf8Bytes("j"), value: u64be(h * 2n) },
            { key: utf8Bytes("k"), value: u64be(h) },
          ],
          receipts: [],
          stateRoot: new Uint8Array(32).fill(Number(h % 256n)),
        });
      }
      done = true;
      await Promise.all(readers);
      assert.ok(reads > 0, "no reads ran");
      assert.equal(bad, 0, `${bad} of ${reads} reads paired a value with another height`);
      const last = await db.getStateSnapshot([utf8Bytes("k")]);
      assert.equal(last.height, BigInt(heights));
    } finally {
      await db.close();
      await removeDir(root);
    }
  });
});
