// Transactions between proposal and commit stay known to the pool (issue 9 part 5): not proposed
// or admitted as fresh again, and back in the ready set only once their block is abandoned.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SignedTx } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { Mempool } from "../../../src/mempool/index.js";
import { toHex, txHash } from "../../../src/types/index.js";
import { CHAIN, countingVerifier, newKey, signedTx } from "./helpers.js";

function pool() {
  return new Mempool(
    {
      chainId: CHAIN,
      maxTxs: 1000,
      maxBytes: 1 << 20,
      maxPerSender: 100,
      maxTxBytes: 16 * 1024,
      maxNonceGap: 16,
    },
    { verifyTxs: countingVerifier().fn, nextNonce: () => 0n, log: silentLogger() },
  );
}

const digest = (b: number) => new Uint8Array(32).fill(b);
const reapHashes = (mp: Mempool) => mp.reap(100, 1 << 20).hashes.map(toHex);
const hex = (tx: SignedTx) => toHex(txHash(tx));

async function twoSenders(mp: Mempool) {
  const a = newKey();
  const b = newKey();
  const ta = signedTx(a, { nonce: 0n });
  const tb = signedTx(b, { nonce: 0n });
  await mp.add(ta, "peer");
  await mp.add(tb, "peer");
  return { a, b, ta, tb };
}

describe("mempool: transactions in flight", () => {
  it("a backup keeps the txs of a block it prepared out of its own proposals", async () => {
    const mp = pool();
    const { ta, tb } = await twoSenders(mp);
    mp.noteBlock(digest(1), 5n, [ta]);
    assert.equal(mp.markBlockInFlight(digest(1), 5n), true);
    assert.deepEqual(reapHashes(mp), [hex(tb)]);
    assert.equal(mp.pendingExecutable(), 1);
    assert.equal(mp.inFlightCount, 1);
    // A commit at a lower height settles nothing at 5.
    mp.removeCommitted([], 4n);
    assert.deepEqual(reapHashes(mp), [hex(tb)]);
    // Its block commits: gone for good.
    mp.removeCommitted([ta], 5n);
    assert.equal(mp.has(hex(ta)), false);
    assert.equal(mp.inFlightCount, 0);
  });

  it("returns the txs of a block to the ready set when another block commits at its height", async () => {
    const mp = pool();
    const { ta, tb } = await twoSenders(mp);
    mp.noteBlock(digest(1), 5n, [ta]);
    mp.markBlockInFlight(digest(1), 5n);
    mp.removeCommitted([tb], 5n);
    assert.deepEqual(reapHashes(mp), [hex(ta)]);
    assert.equal(mp.inFlightCount, 0);
  });

  it("does not mark a block that was never noted", async () => {
    const mp = pool();
    const { ta, tb } = await twoSenders(mp);
    assert.equal(mp.markBlockInFlight(digest(9), 5n), false);
    assert.deepEqual(reapHashes(mp).sort(), [hex(ta), hex(tb)].sort());
  });

  it("admits a transaction that arrives after its block straight into flight", async () => {
    const mp = pool();
    const k = newKey();
    const late = signedTx(k, { nonce: 0n });
    mp.noteBlock(digest(2), 7n, [late]);
    mp.markBlockInFlight(digest(2), 7n);
    await mp.add(late, "peer");
    assert.equal(mp.has(hex(late)), true);
    assert.equal(mp.pendingExecutable(), 0);
    assert.deepEqual(reapHashes(mp), []);
    // Abandoned (a null block commits at 7): it may be proposed again.
    mp.removeCommitted([], 7n);
    assert.deepEqual(reapHashes(mp), [hex(late)]);
  });

  it("on a view change releases what the new view did not re-propose, and only that", async () => {
    const mp = pool();
    const { ta, tb } = await twoSenders(mp);
    mp.noteBlock(digest(1), 5n, [ta]);
    mp.noteBlock(digest(2), 6n, [tb]);
    mp.markBlockInFlight(digest(1), 5n);
    mp.markBlockInFlight(digest(2), 6n);
    assert.deepEqual(reapHashes(mp), []);
    mp.beginViewChange();
    // The NEW-VIEW re-proposes the prepared block at 5; 6 was never prepared by a quorum.
    mp.markBlockInFlight(digest(1), 5n);
    assert.equal(mp.endViewChange(), 1);
    assert.deepEqual(reapHashes(mp), [hex(tb)]);
    assert.equal(mp.has(hex(ta)), true);
    assert.equal(mp.inFlightCount, 1);
  });

  it("keeps a block the core committed in flight through a view change until the pool removes it", async () => {
    // The commit stage runs behind the core: a NEW-VIEW re-proposing a height this replica has
    // already committed makes it send no PREPARE (nothing re-marks the block), and releasing
    // its txs would let this replica, as primary, propose them again at a later height (CI saw
    // seven txs committed at 639/640 and again at 642, executed as DUPLICATE).
    const mp = pool();
    const { ta, tb } = await twoSenders(mp);
    mp.noteBlock(digest(1), 5n, [ta]);
    mp.markBlockInFlight(digest(1), 5n);
    mp.markDelivered([txHash(ta)], 5n);
    mp.beginViewChange();
    assert.equal(mp.endViewChange(), 0);
    assert.deepEqual(reapHashes(mp), [hex(tb)]);
    // The commit stage reaches height 5: gone for good.
    mp.removeCommitted([ta], 5n);
    assert.equal(mp.has(hex(ta)), false);
    assert.equal(mp.inFlightCount, 0);
    // Without markDelivered the same view change hands it back (what the fix prevents).
    const bare = pool();
    const two = await twoSenders(bare);
    bare.noteBlock(digest(1), 5n, [two.ta]);
    bare.markBlockInFlight(digest(1), 5n);
    bare.beginViewChange();
    assert.equal(bare.endViewChange(), 1);
    assert.deepEqual(reapHashes(bare).sort(), [hex(two.ta), hex(two.tb)].sort());
  });

  it("keeps this node's own proposal in flight until its height settles", async () => {
    const mp = pool();
    const { ta, tb } = await twoSenders(mp);
    const r = mp.reap(1, 1 << 20);
    mp.markProposed(r.hashes, 3n);
    const other = toHex(r.hashes[0]!) === hex(ta) ? tb : ta;
    assert.deepEqual(reapHashes(mp), [hex(other)]);
    // A different block (a view change's) committed at 3: the proposal was abandoned.
    mp.removeCommitted([other], 3n);
    assert.deepEqual(reapHashes(mp), [toHex(r.hashes[0]!)]);
  });

  it("a tx carried by proposals at two heights stays in flight until the higher one settles", async () => {
    const mp = pool();
    const { ta } = await twoSenders(mp);
    mp.noteBlock(digest(1), 5n, [ta]);
    mp.noteBlock(digest(2), 6n, [ta]);
    mp.markBlockInFlight(digest(1), 5n);
    mp.markBlockInFlight(digest(2), 6n);
    mp.removeCommitted([], 5n);
    assert.equal(reapHashes(mp).includes(hex(ta)), false);
    mp.removeCommitted([], 6n);
    assert.equal(reapHashes(mp).includes(hex(ta)), true);
  });

  it("never proposes a nonce ahead of an earlier one in flight at the same or a higher height", async () => {
    const mp = pool();
    const k = newKey();
    const t0 = signedTx(k, { nonce: 0n });
    const t1 = signedTx(k, { nonce: 1n });
    await mp.add(t0, "peer");
    await mp.add(t1, "peer");
    // Nonce 0 sits in a block prepared at height 83 (say, in an older view).
    mp.noteBlock(digest(3), 83n, [t0]);
    mp.markBlockInFlight(digest(3), 83n);
    assert.deepEqual(mp.reap(10, 1 << 20, 82n).hashes.map(toHex), []);
    assert.deepEqual(mp.reap(10, 1 << 20, 83n).hashes.map(toHex), []);
    // Above it too, while 83 may still be abandoned by a view change.
    assert.deepEqual(mp.reap(10, 1 << 20, 84n).hashes.map(toHex), []);
    // The core committed 83: above it, nonce 1 executes after nonce 0.
    mp.markDelivered([txHash(t0)], 83n);
    assert.deepEqual(mp.reap(10, 1 << 20, 83n).hashes.map(toHex), []);
    assert.deepEqual(mp.reap(10, 1 << 20, 84n).hashes.map(toHex), [hex(t1)]);
  });

  it("keeps a pending nonce whose height a view change abandoned when the next nonce commits above it", async () => {
    // A primary that pipelined a sender (nonce 0 at 5, nonce 1 at 6), then a NEW-VIEW that nulls
    // 5 and re-proposes the prepared 6: nonce 1 commits and fails BAD_NONCE. Nonce 0 must stay
    // (it was dropped as stale before: admitted, then never committed; CI saw 5 of 1,575 lost).
    const mp = pool();
    const k = newKey();
    const t0 = signedTx(k, { nonce: 0n });
    const t1 = signedTx(k, { nonce: 1n });
    await mp.add(t0, "api");
    await mp.add(t1, "api");
    mp.noteBlock(digest(1), 5n, [t0]);
    mp.markBlockInFlight(digest(1), 5n);
    mp.noteBlock(digest(2), 6n, [t1]);
    mp.markBlockInFlight(digest(2), 6n);
    mp.beginViewChange();
    mp.markBlockInFlight(digest(2), 6n);
    assert.equal(mp.endViewChange(), 1);
    mp.removeCommitted([], 5n);
    mp.removeCommitted([t1], 6n);
    assert.equal(mp.has(hex(t0)), true);
    assert.equal(mp.has(hex(t1)), false);
    assert.deepEqual(mp.reap(10, 1 << 20, 7n).hashes.map(toHex), [hex(t0)]);
    // A committed nonce that is the sender's next one still drops a different body for it.
    const other = signedTx(k, { nonce: 0n, amount: "9" });
    mp.removeCommitted([other], 7n);
    assert.equal(mp.has(hex(t0)), false);
  });

  it("holds back proposals above a block prepared without its body until the body arrives", async () => {
    const mp = pool();
    const k = newKey();
    const t0 = signedTx(k, { nonce: 0n });
    const other = signedTx(newKey(), { nonce: 0n });
    await mp.add(t0, "peer");
    await mp.add(other, "peer");
    // A NEW-VIEW re-proposes digest 4 at height 10; this replica never saw its body.
    assert.equal(mp.markBlockInFlight(digest(4), 10n), false);
    assert.deepEqual(mp.reap(10, 1 << 20, 11n).hashes, []);
    // The body arrives: t0 is in it, so only the other tx may be proposed.
    mp.noteBlock(digest(4), 10n, [t0]);
    assert.deepEqual(mp.reap(10, 1 << 20, 11n).hashes.map(toHex), [hex(other)]);
    assert.equal(mp.inFlightCount, 1);
  });

  it("ignores re-proposals of heights already committed, and abandoned bodiless blocks", async () => {
    const mp = pool();
    const t = signedTx(newKey(), { nonce: 0n });
    await mp.add(t, "peer");
    mp.removeCommitted([], 10n);
    assert.equal(mp.markBlockInFlight(digest(5), 9n), false);
    assert.deepEqual(mp.reap(10, 1 << 20, 11n).hashes.map(toHex), [hex(t)]);
    mp.markBlockInFlight(digest(6), 11n);
    assert.deepEqual(mp.reap(10, 1 << 20, 12n).hashes, []);
    // A view change whose NEW-VIEW does not carry it again drops the wait.
    mp.beginViewChange();
    mp.endViewChange();
    assert.deepEqual(mp.reap(10, 1 << 20, 12n).hashes.map(toHex), [hex(t)]);
  });
});
