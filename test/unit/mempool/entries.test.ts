// PoolEntries keeps the books of the pool's pending transactions (src/mempool/entries.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { statelessCheck } from "../../../src/mempool/admission.js";
import { PoolEntries } from "../../../src/mempool/entries.js";
import { Flights } from "../../../src/mempool/flights.js";
import type { PoolTx } from "../../../src/mempool/types.js";
import { toHex, txHash } from "../../../src/types/index.js";
import { CHAIN, newKey, signedTx } from "./helpers.js";

function poolTx(nonce: bigint): PoolTx {
  const d = statelessCheck(signedTx(newKey(), { nonce }), { maxTxBytes: 16_384, chainId: CHAIN });
  const hash = txHash(d.tx);
  return { ...d, hash, hashHex: toHex(hash) };
}

describe("PoolEntries.add", () => {
  it("the entry carries every field of the admitted transaction, the same values, plus its own", () => {
    const entries = new PoolEntries(new Flights());
    const ptx = poolTx(0n);
    entries.add(ptx, "api", 1234, false, 0n);
    const entry = entries.byHash.get(ptx.hashHex);
    assert.ok(entry);
    for (const [k, v] of Object.entries(ptx))
      assert.equal((entry as unknown as Record<string, unknown>)[k], v, `field ${k}`);
    assert.equal(entry.n, 0);
    assert.equal(entry.origin, "api");
    assert.equal(entry.admittedAt, 1234);
    assert.equal(entry.inFlight, false);
    assert.equal(entries.size, 1);
    assert.equal(entries.bytes, ptx.bytes);
    assert.equal(entries.executableCount, 1);
    assert.equal(entries.minPrice(), ptx.price);
  });

  it("an entry added in flight counts as in flight and is not reapable", () => {
    const entries = new PoolEntries(new Flights());
    const ptx = poolTx(0n);
    entries.add(ptx, "peer", 0, true, 0n);
    assert.equal(entries.inFlight, 1);
    assert.equal(entries.executableCount, 0);
    assert.equal(entries.inRuns, 1);
  });
});
