// Backpressure: API submissions are refused as OVERLOADED while the pool holds more than
// backlogSeconds of commits at the recent commit rate (and at least minBacklog transactions).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SignedTx } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import {
  Mempool,
  MempoolError,
  type MempoolModules,
  type MempoolOpts,
  mempoolDefaults,
} from "../../../src/mempool/index.js";
import { toHex } from "../../../src/types/index.js";
import { CHAIN, countingVerifier, newKey, signedTx, type TestKey } from "./helpers.js";

function pool(over: Partial<MempoolOpts>, clock: { t: number }, verifyTxs?: MempoolModules["verifyTxs"]) {
  const verifier = countingVerifier();
  const nonces = new Map<string, bigint>();
  const mp = new Mempool(
    {
      chainId: CHAIN,
      maxTxs: 10_000,
      maxBytes: 1 << 24,
      maxPerSender: 1_000,
      maxTxBytes: 16 * 1024,
      maxNonceGap: 10,
      backlogSeconds: 1,
      minBacklog: 4,
      commitRateWindowMs: 2_000,
      ...over,
    },
    {
      verifyTxs: verifyTxs ?? verifier.fn,
      nextNonce: async (address) => nonces.get(toHex(address)) ?? 0n,
      log: silentLogger(),
      now: () => clock.t,
    },
  );
  return { mp, verifier };
}

async function overloaded(p: Promise<unknown>): Promise<MempoolError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MempoolError, `expected MempoolError, got ${String(err)}`);
    assert.equal(err.code, "OVERLOADED", err.message);
    return err;
  }
  assert.fail("expected OVERLOADED, but the transaction was admitted");
}

describe("mempool backpressure (OVERLOADED)", () => {
  it("is on by default for the node's pool", () => {
    assert.ok(mempoolDefaults.backlogSeconds > 0);
    assert.ok(mempoolDefaults.minBacklog > 0);
  });

  it("by default bounds the backlog near a second of commits, not a fixed thousand transactions", async () => {
    // Issue 14's overload run: a 1,000-transaction floor at a few hundred tx/s held seconds of
    // transactions, big blocks and view changes. At 100 tx/s of commits the default pool stops
    // API submissions at the 256-transaction floor (2.6 s of commits), long before 1,000.
    const clock = { t: 1_000_000 };
    const { mp } = pool(
      {
        backlogSeconds: mempoolDefaults.backlogSeconds,
        minBacklog: mempoolDefaults.minBacklog,
        commitRateWindowMs: mempoolDefaults.commitRateWindowMs,
      },
      clock,
    );
    const keys: TestKey[] = Array.from({ length: 8 }, () => newKey());
    const committedBody = signedTx(newKey());
    // 300 committed over the 3-s window: 100 tx/s.
    mp.removeCommitted(
      Array.from({ length: 300 }, () => committedBody),
      1n,
    );
    let admitted = 0;
    let refused: MempoolError | null = null;
    for (let n = 0; refused === null && n < 1_000; n++) {
      for (const k of keys) {
        try {
          await mp.add(signedTx(k, { nonce: BigInt(n) }), "api");
          admitted++;
        } catch (err) {
          if (!(err instanceof MempoolError) || err.code !== "OVERLOADED") throw err;
          refused = err;
          break;
        }
      }
    }
    assert.ok(refused !== null, "refused before 1,000");
    assert.equal(admitted, mempoolDefaults.minBacklog);
    assert.ok(mempoolDefaults.minBacklog <= 256, `floor ${mempoolDefaults.minBacklog}`);
    assert.ok(mempoolDefaults.minBacklog >= 100 * mempoolDefaults.backlogSeconds, "above the rate bound");
  });

  it("refuses API submissions past minBacklog before checking their signature, with a retry hint", async () => {
    const clock = { t: 1_000_000 };
    const { mp, verifier } = pool({}, clock);
    const flooder = newKey();
    const keys: TestKey[] = Array.from({ length: 3 }, () => newKey());
    for (let n = 0; n < 4; n++) await mp.add(signedTx(flooder, { nonce: BigInt(n) }), "api");
    assert.equal(mp.size, 4);
    const verifiedBefore = verifier.calls.length;
    const e = await overloaded(mp.add(signedTx(flooder, { nonce: 4n }), "api"));
    assert.equal(e.detail.reason, "backlog");
    assert.ok((e.detail.retryAfterMs ?? 0) > 0, "a retry hint");
    assert.match(e.message, /retry after \d+ ms/);
    assert.equal(verifier.calls.length, verifiedBefore, "no signature check for a refused submission");
    assert.equal(mp.size, 4);
    // A higher gas price than the cheapest pending transaction's still gets in (as eviction ranks
    // it), even when it does not beat every pending one.
    await mp.add(signedTx(flooder, { nonce: 4n, fee: "2" }), "api");
    assert.equal(mp.size, 5);
    await mp.add(signedTx(flooder, { nonce: 5n, fee: "2" }), "api");
    assert.equal(mp.size, 6);
    // Bad input keeps its own code: the stateless checks run first.
    const other = signedTx(keys[1]!, { nonce: 0n, chainId: "another-chain" });
    await assert.rejects(
      mp.add(other, "api"),
      (err: unknown) => err instanceof MempoolError && err.code === "WRONG_CHAIN",
    );
    // Gossip from peers is not refused by backpressure (its entry node already admitted it).
    await mp.addBatch([signedTx(keys[1]!, { nonce: 0n })], "peer");
    assert.equal(mp.size, 7);
  });

  it("still admits senders with nothing pending while one flooder fills the backlog, up to twice the limit", async () => {
    const clock = { t: 1_000_000 };
    const { mp } = pool({}, clock);
    const flooder = newKey();
    for (let n = 0; n < 4; n++) await mp.add(signedTx(flooder, { nonce: BigInt(n) }), "api");
    await overloaded(mp.add(signedTx(flooder, { nonce: 4n }), "api"));
    // An honest sender at the same (minimum) price gets its transaction in: the flooder's queue
    // is not everyone's queue.
    const honest = newKey();
    const { hashHex } = await mp.add(signedTx(honest, { nonce: 0n }), "api");
    assert.ok(mp.has(hashHex));
    assert.equal(mp.size, 5);
    // Its second one waits like everyone else's: it already has a transaction pending.
    await overloaded(mp.add(signedTx(honest, { nonce: 1n }), "api"));
    // Many fresh senders (a flood from many funded keys) stop at twice the limit (8).
    const fresh = Array.from({ length: 4 }, () => newKey());
    for (const k of fresh.slice(0, 3)) await mp.add(signedTx(k, { nonce: 0n }), "api");
    assert.equal(mp.size, 8);
    const e = await overloaded(mp.add(signedTx(fresh[3]!, { nonce: 0n }), "api"));
    assert.match(e.message, /limit 4/);
  });

  it("refuses at once while the pool is half full and an admission waits past its budget", async () => {
    // Issue 14's overload run: admissions queued behind gossip in the verify workers answered
    // their clients after 0.3-0.5 s. A new one is refused before its signature instead.
    const clock = { t: 1_000_000 };
    const holds: (() => void)[] = [];
    const verifier = countingVerifier();
    let holding = true;
    const held = async (txs: readonly SignedTx[]) => {
      if (holding) await new Promise<void>((r) => holds.push(r));
      return verifier.fn(txs);
    };
    /** Releases every admission held in the verifier, once one got there. */
    const release = async () => {
      while (holds.length === 0) await new Promise((r) => setImmediate(r));
      holding = false;
      for (const r of holds.splice(0)) r();
    };
    const { mp } = pool({ minBacklog: 8, admissionBudgetMs: 250 }, clock, held);
    const a = newKey();
    // Light load: one slow admission alone refuses nothing (the pool is not half full).
    const slow = mp.add(signedTx(a, { nonce: 0n }), "api");
    clock.t += 1_000;
    await release();
    await slow;
    const b = newKey();
    for (let n = 0; n < 2; n++) await mp.add(signedTx(b, { nonce: BigInt(n) }), "api");
    assert.equal(mp.size, 3);
    // One more admission in progress: 3 pending + 1 admitting = half the limit of 8.
    holding = true;
    const stuck = mp.add(signedTx(b, { nonce: 2n }), "api");
    while (holds.length === 0) await new Promise((r) => setImmediate(r));
    const c = newKey();
    clock.t += 200;
    // Within the budget: admitted (after the stuck one is released, in the background).
    const inBudget = mp.add(signedTx(c, { nonce: 0n }), "api");
    clock.t += 100;
    const calls = verifier.calls.length;
    const e = await overloaded(mp.add(signedTx(c, { nonce: 1n }), "api"));
    assert.equal(e.detail.reason, "admission");
    assert.equal(e.detail.retryAfterMs, 250);
    assert.match(e.message, /waited 300 ms/);
    assert.equal(verifier.calls.length, calls, "no signature check for the refused submission");
    await release();
    await stuck;
    await inBudget;
    // Nothing waits any more: admitted again.
    await mp.add(signedTx(c, { nonce: 1n }), "api");
    assert.equal(mp.size, 6);
  });

  it("lets the backlog follow the commit rate, and shrinks it again when commits slow", async () => {
    const clock = { t: 1_000_000 };
    const { mp } = pool({ minBacklog: 2 }, clock);
    const a = newKey();
    const b = newKey();
    // 20 commits within the 2 s window: 10 tx/s, so 1 s of backlog is 10 transactions.
    const committed = Array.from({ length: 20 }, (_, i) => signedTx(a, { nonce: BigInt(i) }));
    mp.removeCommitted(committed, 1n);
    assert.equal(mp.commitRate(), 10);
    for (let n = 0; n < 10; n++) await mp.add(signedTx(b, { nonce: BigInt(n) }), "api");
    assert.equal(mp.size, 10);
    const e = await overloaded(mp.add(signedTx(b, { nonce: 10n }), "api"));
    assert.match(e.message, /limit 10/);
    // The window slides past that commit: the rate drops to 0 and the floor (2) applies again.
    clock.t += 2_500;
    assert.equal(mp.commitRate(), 0);
    await overloaded(mp.add(signedTx(b, { nonce: 10n }), "api"));
    // Commits drain the pool: room again.
    const drained = Array.from({ length: 9 }, (_, n) => signedTx(b, { nonce: BigInt(n) }));
    mp.removeCommitted(drained, 2n);
    assert.equal(mp.size, 1);
    await mp.add(signedTx(b, { nonce: 10n }), "api");
    assert.equal(mp.size, 2);
  });

  it("counts API admissions still in progress (account read, signature) as backlog", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    // A slow signature check: admissions pile up behind it.
    const { mp } = pool({ minBacklog: 2 }, { t: 1_000_000 }, async (txs) => {
      await gate;
      return txs.map(() => true);
    });
    const keys = Array.from({ length: 5 }, () => newKey());
    // Four in progress: twice the limit of 2, so even a sender with nothing pending waits.
    const slow = keys.slice(0, 4).map((k) => mp.add(signedTx(k, { nonce: 0n }), "api"));
    // Judged when it arrives (four still in progress); the gate opens before we look, so a pool
    // without the rule admits it instead of hanging.
    const fifth = mp.add(signedTx(keys[4]!, { nonce: 0n }), "api");
    release();
    await overloaded(fifth);
    await Promise.all(slow);
    assert.equal(mp.size, 4);
  });

  it("is off with backlogSeconds 0", async () => {
    const clock = { t: 1_000_000 };
    const { mp } = pool({ backlogSeconds: 0, minBacklog: 1 }, clock);
    const a = newKey();
    for (let n = 0; n < 5; n++) await mp.add(signedTx(a, { nonce: BigInt(n) }), "api");
    assert.equal(mp.size, 5);
  });
});
