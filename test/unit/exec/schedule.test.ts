import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeTx } from "../../../src/exec/programs.js";
import { hashBody } from "../../../src/exec/reference.js";
import { buildLanes, DEFAULT_COST_MODEL, plan } from "../../../src/exec/schedule.js";
import { buildTx, computeTx, makeAccounts, transferTx } from "../../../src/exec/workload.js";
import { accountKey, kvKey } from "../../../src/types/stateKeys.js";

const acc = makeAccounts(8, 5);
const decode = (txs: ReturnType<typeof transferTx>[]) => txs.map((t) => decodeTx(t.body, hashBody(t.body)));
const m = DEFAULT_COST_MODEL;

describe("lane scheduling", () => {
  it("splits disjoint transfers, joins a shared written key, keeps block order in a lane", () => {
    const txs = decode([
      transferTx(acc[0]!, 0n, acc[1]!.address, 1n),
      transferTx(acc[2]!, 0n, acc[3]!.address, 1n),
      transferTx(acc[4]!, 0n, acc[1]!.address, 1n),
    ]);
    const lanes = buildLanes(txs, m).map((l) => l.txs);
    assert.deepEqual(lanes, [[0, 2], [1]]);
  });

  it("does not join transactions that only read the same key", () => {
    const reader = (i: number) =>
      buildTx({
        sender: acc[i]!,
        nonce: 0n,
        call: {
          case: "transfer",
          value: { $typeName: "parabft.v1.BankTransfer", to: acc[i]!.address, amount: "0" },
        },
        reads: [kvKey(Uint8Array.of(1))],
        writes: [accountKey(acc[i]!.address)],
      });
    assert.equal(buildLanes(decode([reader(0), reader(1), reader(2)]), m).length, 3);
  });

  it("runs cheap transfers and a single contended lane inline, and heavy independent work in parallel", () => {
    const transfers = decode(acc.map((a, i) => transferTx(a, 0n, acc[(i + 1) % 8]!.address, 1n)));
    assert.equal(plan(transfers, 2, "auto", m).mode, "inline");
    const contended = decode(Array.from({ length: 64 }, (_, i) => computeTx(acc[0]!, BigInt(i), 2_000)));
    const p1 = plan(contended, 2, "auto", m);
    assert.equal(p1.mode, "inline", "one lane cannot be split: shipping it would only add cost");
    const spread = decode(
      Array.from({ length: 64 }, (_, i) => computeTx(makeAccounts(64, 9)[i]!, 0n, 2_000)),
    );
    const p2 = plan(spread, 2, "auto", m);
    assert.equal(p2.mode, "parallel");
    assert.equal(p2.bins.length, 2);
    assert.equal(p2.bins[0]!.length + p2.bins[1]!.length, 64);
    assert.equal(plan(spread, 1, "auto", m).mode, "inline", "one worker never pays");
  });
});
