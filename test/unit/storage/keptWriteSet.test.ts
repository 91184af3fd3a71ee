// The epochWriteSet bucket (DPoS light-client proofs, issue 11): the write set of the heights
// ChainDbOpts.keepWriteSetOf names is kept with the state root before it, in the execution batch,
// and survives the fold of the write-set logs into the state bucket and a reopen. A deterministic
// re-execution of the executed height keeps the first record.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { proofStateRoot } from "../../../src/client/epochChain.js";
import { buildResult, ZERO_ROOT } from "../../../src/exec/result.js";
import type { ExecutionResult } from "../../../src/exec/types.js";
import { ChainDb } from "../../../src/storage/index.js";
import { bytesEqual, utf8Bytes } from "../../../src/types/bytes.js";
import { removeDir, tempDir } from "./helpers.js";

function chain(n: number): ExecutionResult[] {
  const out: ExecutionResult[] = [];
  let root = ZERO_ROOT;
  for (let h = 0; h <= n; h++) {
    const writes = new Map<string, Uint8Array | null>([
      [`k${h}`, utf8Bytes(`v${h}`)],
      [`shared`, utf8Bytes(`s${h}`)],
    ]);
    if (h > 1) writes.set(`k${h - 2}`, null);
    const r = buildResult(BigInt(h), root, writes, []);
    out.push(r);
    root = r.stateRoot;
  }
  return out;
}

describe("ChainDb: kept write sets (epochWriteSet bucket)", () => {
  let root: string;
  before(async () => {
    root = await tempDir("kept");
  });
  after(async () => {
    await removeDir(root);
  });

  it("keeps the named heights' write sets and previous roots across a fold and a reopen", async () => {
    const dir = path.join(root, "keep");
    const results = chain(7);
    const keep = (h: bigint) => h % 3n === 2n; // 2 and 5
    const db = await ChainDb.open(dir, { keepWriteSetOf: keep, stateApplyEntries: 1 });
    try {
      for (const r of results) await db.writeExecutionBatch(r);
      await db.writeExecutionBatch(results[7]!); // a redo of the executed height
      await db.flushState();
      assert.equal(await db.getKeptWriteSet(3n), undefined, "only the named heights");
    } finally {
      await db.close();
    }
    const again = await ChainDb.open(dir, { keepWriteSetOf: keep });
    try {
      for (const h of [2, 5]) {
        const kept = await again.getKeptWriteSet(BigInt(h));
        assert.ok(kept, `height ${h} kept`);
        assert.ok(bytesEqual(kept.previousRoot, results[h - 1]!.stateRoot), `previous root of ${h}`);
        assert.equal(kept.writeSet.length, results[h]!.writeSet.length);
        // The kept write set chains the previous root to the height's own root.
        assert.ok(bytesEqual(proofStateRoot(kept.previousRoot, kept.writeSet), results[h]!.stateRoot));
        assert.ok(
          kept.writeSet.some((w) => w.value === null),
          "deletions are kept as deletions",
        );
      }
      assert.equal(await again.getKeptWriteSet(7n), undefined);
    } finally {
      await again.close();
    }
  });

  it("a redo of the executed kept height keeps its first record", async () => {
    const dir = path.join(root, "redo");
    const results = chain(2);
    const db = await ChainDb.open(dir, { keepWriteSetOf: (h) => h === 2n });
    try {
      for (const r of results) await db.writeExecutionBatch(r);
      await db.writeExecutionBatch(results[2]!);
      const kept = await db.getKeptWriteSet(2n);
      assert.ok(kept && bytesEqual(kept.previousRoot, results[1]!.stateRoot));
    } finally {
      await db.close();
    }
  });
});
