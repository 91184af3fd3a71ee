import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { type SignedTx, SignedTxSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import {
  Mempool,
  MempoolError,
  type MempoolErrorCode,
  type MempoolOpts,
  type PoolTx,
  type TxOrigin,
} from "../../../src/mempool/index.js";
import { toHex, txHash } from "../../../src/types/index.js";
import { CHAIN, countingVerifier, newKey, signedTx, type TestKey } from "./helpers.js";

function pool(over: Partial<MempoolOpts> = {}, nonces = new Map<string, bigint>(), now?: () => number) {
  const verifier = countingVerifier();
  const mp = new Mempool(
    {
      chainId: CHAIN,
      maxTxs: 1000,
      maxBytes: 1 << 20,
      maxPerSender: 100,
      maxTxBytes: 16 * 1024,
      maxNonceGap: 10,
      ...over,
    },
    {
      verifyTxs: verifier.fn,
      nextNonce: async (address) => nonces.get(toHex(address)) ?? 0n,
      log: silentLogger(),
      now,
    },
  );
  return { mp, verifier, nonces };
}

async function rejects(p: Promise<unknown>, code: MempoolErrorCode): Promise<MempoolError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MempoolError, `expected MempoolError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but the transaction was admitted`);
}

/**
 * A pool whose account lookup reads `stateNonce` when called, then waits while `gate` is set
 * (until `release()`): lookups racing commits and execution.
 */
function gatedLookupPool(over: Partial<MempoolOpts> = {}) {
  const g = {
    stateNonce: 0n,
    gate: false,
    release: null as (() => void) | null,
    mp: null as unknown as Mempool,
  };
  g.mp = new Mempool(
    {
      chainId: CHAIN,
      maxTxs: 100,
      maxBytes: 1 << 20,
      maxPerSender: 10,
      maxTxBytes: 4096,
      maxNonceGap: 10,
      ...over,
    },
    {
      verifyTxs: countingVerifier().fn,
      nextNonce: async () => {
        const seen = g.stateNonce;
        if (g.gate) await new Promise<void>((r) => (g.release = r));
        return seen;
      },
      log: silentLogger(),
    },
  );
  return g;
}

const nonceOf = (mp: Mempool, hashes: Uint8Array[]) => hashes.map((h) => mp.get(h)!.nonce);

describe("mempool admission", () => {
  it("admits a signed transaction given as bytes or as a message", async () => {
    const { mp } = pool();
    const k = newKey();
    const a = signedTx(k, { nonce: 0n });
    const b = signedTx(k, { nonce: 1n });
    const ra = await mp.add(toBinary(SignedTxSchema, a), "api");
    const rb = await mp.add(b, "peer");
    assert.equal(ra.hashHex, toHex(txHash(a)));
    assert.equal(rb.hashHex, toHex(txHash(b)));
    assert.equal(mp.size, 2);
    assert.ok(mp.bytes >= a.body.length + b.body.length + 128);
    assert.equal(mp.pendingExecutable(), 2);
    assert.ok(mp.hasVerified(a));
    // With the hash the caller already has (bytes or hex): same answer, and only for these
    // very signature bytes.
    const hash = txHash(a);
    assert.ok(mp.hasVerified(a, hash));
    assert.ok(mp.hasVerified(a, toHex(hash)));
    const otherSig = { ...a, signature: a.signature.map((x, i) => (i === 5 ? x ^ 1 : x)) };
    assert.equal(mp.hasVerified(otherSig, toHex(hash)), false);
    assert.equal(mp.hasVerified(a, toHex(new Uint8Array(32))), false);
  });

  it("hands the verifier each tx's hash and its body's sender, so neither is recomputed", async () => {
    const key = newKey();
    const tx = signedTx(key, { nonce: 0n });
    const seen: { hashes: string[]; senders: string[] }[] = [];
    const mp = new Mempool(
      {
        chainId: CHAIN,
        maxTxs: 10,
        maxBytes: 1 << 20,
        maxPerSender: 10,
        maxTxBytes: 16 * 1024,
        maxNonceGap: 10,
      },
      {
        verifyTxs: async (txs, hashes, senders) => {
          seen.push({ hashes: hashes.map((h) => toHex(h)), senders: senders.map((s) => toHex(s)) });
          return txs.map(() => true);
        },
        nextNonce: async () => 0n,
        log: silentLogger(),
      },
    );
    await mp.add(tx, "api");
    assert.deepEqual(seen, [{ hashes: [toHex(txHash(tx))], senders: [toHex(key.publicKey)] }]);
  });

  it("rejects undecodable bytes and bodies as MALFORMED", async () => {
    const { mp } = pool();
    await rejects(mp.add(Uint8Array.of(0xff, 0xff, 0xff), "api"), "MALFORMED");
    const junkBody = create(SignedTxSchema, {
      body: Uint8Array.of(0x0a, 0x05),
      signature: new Uint8Array(64),
    });
    await rejects(mp.add(junkBody, "api"), "MALFORMED");
    const shortSig = signedTx(newKey());
    shortSig.signature = shortSig.signature.slice(0, 10);
    await rejects(mp.add(shortSig, "api"), "MALFORMED");
    assert.equal(mp.size, 0);
  });

  it("rejects transactions over maxTxBytes", async () => {
    const { mp, verifier } = pool({ maxTxBytes: 300 });
    await rejects(mp.add(signedTx(newKey(), { padding: 400 }), "api"), "TX_TOO_LARGE");
    assert.deepEqual(verifier.calls, [], "size is checked before paying for a signature check");
  });

  it("rejects another chain's transactions", async () => {
    const { mp } = pool();
    const err = await rejects(mp.add(signedTx(newKey(), { chainId: "other" }), "api"), "WRONG_CHAIN");
    assert.match(err.message, /other/);
  });

  it("rejects a bad signature", async () => {
    const { mp } = pool();
    const tx = signedTx(newKey());
    tx.signature = Uint8Array.from(tx.signature);
    tx.signature[5]! ^= 1;
    await rejects(mp.add(tx, "api"), "BAD_SIGNATURE");
    // A body signed by another key is also a bad signature.
    const stolen = signedTx(newKey());
    stolen.signature = signedTx(newKey()).signature;
    await rejects(mp.add(stolen, "api"), "BAD_SIGNATURE");
    assert.equal(mp.size, 0);
  });

  it("rejects stale nonces and nonces beyond the gap", async () => {
    const k = newKey();
    const { mp } = pool({ maxNonceGap: 3 }, new Map([[k.addressHex, 5n]]));
    const stale = await rejects(mp.add(signedTx(k, { nonce: 4n }), "api"), "BAD_NONCE");
    assert.equal(stale.detail.expected, "5");
    await rejects(mp.add(signedTx(k, { nonce: 9n }), "api"), "NONCE_GAP");
    await mp.add(signedTx(k, { nonce: 8n }), "api");
    await mp.add(signedTx(k, { nonce: 5n }), "api");
    assert.equal(mp.size, 2);
    assert.equal(mp.pendingExecutable(), 1, "8 waits for 6 and 7");
  });

  it("admits a gossip batch carrying a run of one sender's nonces longer than the gap, in any order", async () => {
    const { mp } = pool({ maxNonceGap: 3 });
    const k = newKey();
    const other = newKey();
    // The origin admitted 0..11 one by one; its gossip batch carries them all (shuffled a little,
    // with another sender in between). Judged against the pool before the batch, 4..11 would be
    // NONCE_GAP and the receiver would never hold them.
    const txs = [2n, 0n, 1n, 3n, 5n, 4n, 6n, 7n, 8n, 10n, 9n, 11n].map((nonce) => signedTx(k, { nonce }));
    txs.splice(6, 0, signedTx(other, { nonce: 0n }));
    const results = await mp.addBatch(txs, "peer");
    assert.deepEqual(
      results.map((r) => (r.ok ? "ok" : r.error.code)),
      txs.map(() => "ok"),
    );
    assert.equal(mp.pendingExecutable(), 13, "every tx is executable");
    // The gap still holds beyond the batch's own run.
    const far = await mp.addBatch([signedTx(k, { nonce: 16n })], "peer");
    assert.equal(far[0]!.ok ? "ok" : far[0]!.error.code, "NONCE_GAP");
  });

  it("hands back its own waiting txs for gossip again once they are stale, and only those", async () => {
    let clock = 1_000;
    const { mp } = pool({}, undefined, () => clock);
    const own = newKey();
    const own0 = signedTx(own, { nonce: 0n });
    const own1 = signedTx(own, { nonce: 1n });
    const own3 = signedTx(own, { nonce: 3n }); // gapped: never gossiped
    for (const tx of [own0, own1, own3]) await mp.add(tx, "api");
    await mp.add(signedTx(newKey(), { nonce: 0n }), "peer"); // another node's tx: its origin repairs it
    const hashes = (txs: SignedTx[]) => txs.map((t) => toHex(txHash(t)));
    assert.deepEqual(mp.staleOwn(3_000, 100), [], "nothing is stale yet");
    clock += 3_000;
    assert.deepEqual(hashes(mp.staleOwn(3_000, 1)), hashes([own0]), "bounded by max, nonce order");
    assert.deepEqual(hashes(mp.staleOwn(3_000, 100)), hashes([own1]));
    assert.deepEqual(mp.staleOwn(3_000, 100), [], "gossiped again just now");
    mp.markProposed([txHash(own0)], 1n);
    clock += 3_000;
    assert.deepEqual(mp.staleOwn(3_000, 100), [], "a second repeat waits twice as long");
    clock += 3_000;
    assert.deepEqual(hashes(mp.staleOwn(3_000, 100)), hashes([own1]), "in flight is not re-gossiped");
    clock += 11_999;
    assert.deepEqual(mp.staleOwn(3_000, 100), [], "then 4× (12 s)");
    clock += 1;
    assert.deepEqual(hashes(mp.staleOwn(3_000, 100)), hashes([own1]));
    // The wait stops growing at 32×.
    for (const wait of [24_000, 48_000, 96_000, 96_000]) {
      clock += wait - 1;
      assert.deepEqual(mp.staleOwn(3_000, 100), [], `not before ${wait} ms`);
      clock += 1;
      assert.deepEqual(hashes(mp.staleOwn(3_000, 100)), hashes([own1]), `after ${wait} ms`);
    }
  });

  it("refuses gossip of a transaction it holds as DUPLICATE before checking its signature again", async () => {
    const { mp, verifier } = pool();
    const verifyCalls = () => verifier.calls.reduce((a, b) => a + b, 0);
    const tx = signedTx(newKey());
    await mp.add(tx, "api");
    const before = verifyCalls();
    const res = await mp.addBatch([tx, tx], "peer");
    assert.deepEqual(
      res.map((r) => (r.ok ? "ok" : r.error.code)),
      ["DUPLICATE", "DUPLICATE"],
    );
    assert.equal(!res[0]!.ok && res[0]!.error.detail.hash, toHex(txHash(tx)));
    assert.equal(verifyCalls(), before, "no signature was checked for them");
    assert.equal(mp.size, 1);
  });

  it("reports a resubmitted transaction as DUPLICATE without changing the pool", async () => {
    const { mp } = pool();
    const tx = signedTx(newKey());
    await mp.add(tx, "api");
    const err = await rejects(mp.add(toBinary(SignedTxSchema, tx), "peer"), "DUPLICATE");
    assert.equal(err.detail.hash, toHex(txHash(tx)));
    assert.equal(mp.size, 1);
  });

  it("admits one of two concurrent submissions of the same transaction", async () => {
    const { mp } = pool();
    const tx = signedTx(newKey());
    const results = await Promise.allSettled([mp.add(tx, "api"), mp.add(tx, "peer")]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    assert.equal(mp.size, 1);
  });

  it("rejects a second transaction for a pending (sender, nonce)", async () => {
    const { mp } = pool();
    const k = newKey();
    await mp.add(signedTx(k, { nonce: 0n, amount: "1" }), "api");
    const err = await rejects(mp.add(signedTx(k, { nonce: 0n, amount: "2" }), "api"), "BAD_NONCE");
    assert.equal(err.detail.reason, "taken");
  });

  it("enforces maxTxs, maxBytes and the per-sender cap with MEMPOOL_FULL", async () => {
    const a = newKey();
    const b = newKey();
    {
      const { mp } = pool({ maxTxs: 2 });
      await mp.add(signedTx(a, { nonce: 0n }), "api");
      await mp.add(signedTx(b, { nonce: 0n }), "api");
      const e = await rejects(mp.add(signedTx(a, { nonce: 1n }), "api"), "MEMPOOL_FULL");
      assert.equal(e.detail.reason, "txs");
    }
    {
      const first = signedTx(a, { nonce: 0n });
      const { mp } = pool({ maxBytes: first.body.length + 100 });
      await mp.add(first, "api");
      const e = await rejects(mp.add(signedTx(b, { nonce: 0n }), "api"), "MEMPOOL_FULL");
      assert.equal(e.detail.reason, "bytes");
    }
    {
      const { mp } = pool({ maxPerSender: 2 });
      await mp.add(signedTx(a, { nonce: 0n }), "api");
      await mp.add(signedTx(a, { nonce: 1n }), "api");
      const e = await rejects(mp.add(signedTx(a, { nonce: 2n }), "api"), "MEMPOOL_FULL");
      assert.equal(e.detail.reason, "sender");
      await mp.add(signedTx(b, { nonce: 0n }), "api");
      assert.equal(mp.size, 3);
    }
  });

  it("checks in the documented order: a wrong-chain tx with a bad signature is WRONG_CHAIN", async () => {
    const { mp, verifier } = pool();
    const tx = signedTx(newKey(), { chainId: "elsewhere" });
    tx.signature = new Uint8Array(64);
    await rejects(mp.add(tx, "api"), "WRONG_CHAIN");
    assert.deepEqual(verifier.calls, []);
  });

  it("refuses work after stop", async () => {
    const { mp } = pool();
    await mp.stop();
    await rejects(mp.add(signedTx(newKey()), "api"), "MEMPOOL_STOPPED");
  });
});

describe("mempool batch admission", () => {
  it("verifies a gossip batch in one verifier call and reports each transaction", async () => {
    const { mp, verifier } = pool();
    const k = newKey();
    const bad = signedTx(k, { nonce: 1n });
    bad.signature = new Uint8Array(64);
    const inputs = [
      signedTx(k, { nonce: 0n }),
      bad,
      Uint8Array.of(1, 2, 3),
      signedTx(k, { nonce: 2n }),
      signedTx(k, { nonce: 0n, chainId: "nope" }),
    ];
    const seen: { txs: readonly PoolTx[]; origin: TxOrigin }[] = [];
    mp.onAdmitted((txs, origin) => seen.push({ txs, origin }));
    const res = await mp.addBatch(inputs, "peer");
    assert.deepEqual(verifier.calls, [3]);
    assert.deepEqual(
      res.map((r) => (r.ok ? "ok" : r.error.code)),
      ["ok", "BAD_SIGNATURE", "MALFORMED", "ok", "WRONG_CHAIN"],
    );
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.origin, "peer");
    // Nonce 2 is admitted but gapped (1 failed): it is announced only once it becomes executable.
    assert.deepEqual(
      seen[0]!.txs.map((t) => t.nonce),
      [0n],
    );
  });
});

describe("mempool reap", () => {
  async function fill(mp: Mempool, key: TestKey, from: bigint, count: number) {
    for (let i = 0; i < count; i++) await mp.add(signedTx(key, { nonce: from + BigInt(i) }), "api");
  }

  it("returns each sender's transactions in nonce order, whatever the arrival order", async () => {
    const { mp } = pool();
    const k = newKey();
    for (const n of [3n, 1n, 0n, 2n]) await mp.add(signedTx(k, { nonce: n }), "api");
    const r = mp.reap(10, 1 << 20);
    assert.deepEqual(nonceOf(mp, r.hashes), [0n, 1n, 2n, 3n]);
  });

  it("stops at a nonce gap", async () => {
    const { mp } = pool();
    const k = newKey();
    await mp.add(signedTx(k, { nonce: 0n }), "api");
    await mp.add(signedTx(k, { nonce: 2n }), "api");
    assert.equal(mp.pendingExecutable(), 1);
    assert.deepEqual(nonceOf(mp, mp.reap(10, 1 << 20).hashes), [0n]);
  });

  it("is fair across senders: one per sender per round, oldest sender first", async () => {
    const { mp } = pool();
    const busy = newKey();
    const quiet = newKey();
    await fill(mp, busy, 0n, 6);
    await fill(mp, quiet, 0n, 2);
    const r = mp.reap(4, 1 << 20);
    const who = r.hashes.map((h) => toHex(mp.get(h)!.sender));
    const b = toHex(busy.publicKey);
    const q = toHex(quiet.publicKey);
    assert.deepEqual(who, [b, q, b, q]);
    assert.deepEqual(nonceOf(mp, r.hashes), [0n, 0n, 1n, 1n]);
  });

  it("respects maxBytes without letting a later nonce jump ahead", async () => {
    const { mp } = pool();
    const k = newKey();
    const small = signedTx(k, { nonce: 0n });
    await mp.add(small, "api");
    await mp.add(signedTx(k, { nonce: 1n, padding: 2000 }), "api");
    await mp.add(signedTx(k, { nonce: 2n }), "api");
    const r = mp.reap(10, 1000);
    assert.deepEqual(nonceOf(mp, r.hashes), [0n]);
    assert.ok(r.bytes <= 1000);
  });

  it("holds a sender's next nonce behind its txs in flight until the core commits them; requeueInFlight frees all", async () => {
    const { mp } = pool();
    const k = newKey();
    await fill(mp, k, 0n, 3);
    const first = mp.reap(2, 1 << 20);
    mp.markProposed(first.hashes, 1n);
    assert.equal(mp.inFlightCount, 2);
    // Height 1 may still be abandoned: nonce 2 committed ahead of it would fail BAD_NONCE.
    assert.equal(mp.pendingExecutable(), 0);
    assert.deepEqual(mp.reap(10, 1 << 20, 2n).hashes, []);
    mp.markDelivered(first.hashes, 1n);
    assert.equal(mp.pendingExecutable(), 1);
    assert.deepEqual(nonceOf(mp, mp.reap(10, 1 << 20, 2n).hashes), [2n]);
    assert.equal(mp.requeueInFlight(), 2);
    assert.equal(mp.pendingExecutable(), 3);
    assert.deepEqual(nonceOf(mp, mp.reap(10, 1 << 20).hashes), [0n, 1n, 2n]);
  });

  it("removeCommitted drops the committed txs and the sender's now-stale nonces", async () => {
    // Without projections: this fake's state stays at 0 after execution (a projection would
    // follow execution's rule and keep nonces 0 and 1 used; projection.test.ts).
    const { mp } = pool({ maxIdleAccounts: 0 });
    const k = newKey();
    const other = newKey();
    await fill(mp, k, 0n, 4);
    await fill(mp, other, 0n, 1);
    // Another node's block committed this sender's nonce 0 and 1 with different bodies.
    const foreign = [signedTx(k, { nonce: 0n, amount: "9" }), signedTx(k, { nonce: 1n, amount: "9" })];
    mp.removeCommitted(foreign, 1n);
    assert.equal(mp.size, 3);
    assert.deepEqual(nonceOf(mp, mp.reap(10, 1 << 20).hashes).sort(), [0n, 2n, 3n]);
    // Until execution catches up, the committed nonce stays used even though state says 0.
    await rejects(mp.add(signedTx(k, { nonce: 1n }), "api"), "BAD_NONCE");
    mp.markExecuted(1n);
    // State (still 0 in this fake) is authoritative again once execution passed the commit.
    await mp.add(signedTx(k, { nonce: 1n }), "api");
  });

  it("does not let a nonce lookup that raced a commit move a sender backwards", async () => {
    // Lookups racing commits: without projections, so the next admission after a commit reads.
    const k = newKey();
    const g = gatedLookupPool({ maxIdleAccounts: 0 });
    const mp = g.mp;
    const tx0 = signedTx(k, { nonce: 0n });
    const tx1 = signedTx(k, { nonce: 1n });
    await mp.add(tx0, "api");
    await mp.add(tx1, "api");
    await mp.add(signedTx(k, { nonce: 2n }), "api");
    // A commit of the sender's tx drops its cached account, so the next admission reads again.
    mp.removeCommitted([tx0], 1n);
    g.gate = true;
    const pending = mp.add(signedTx(k, { nonce: 3n }), "api");
    await eventuallyTrue(() => g.release !== null);
    // While that lookup is out (it read nonce 0), nonce 1 commits and both execute.
    mp.removeCommitted([tx1], 2n);
    g.stateNonce = 2n;
    mp.markExecuted(2n);
    // Later lookups answer at once (the pool reads again after a lookup that raced execution).
    g.gate = false;
    g.release!();
    await pending;
    assert.equal(mp.pendingExecutable(), 2);
    assert.deepEqual(nonceOf(mp, mp.reap(10, 1 << 20).hashes), [2n, 3n]);
  });

  it("a sender's next tx, looked up while its previous one executes, is executable (not gapped)", async () => {
    // Lookups racing commits: without projections, so the next admission after a commit reads.
    const k = newKey();
    const g = gatedLookupPool({ maxIdleAccounts: 0 });
    const mp = g.mp;
    const tx0 = signedTx(k, { nonce: 0n });
    await mp.add(tx0, "api");
    // Nonce 0 commits: the sender has nothing pending, its floor says 1 until execution.
    mp.removeCommitted([tx0], 1n);
    g.gate = true;
    const pending = mp.add(signedTx(k, { nonce: 1n }), "api");
    await eventuallyTrue(() => g.release !== null);
    // The lookup read nonce 0; now height 1 executes (state nonce 1) and the floor goes away.
    g.gate = false;
    g.stateNonce = 1n;
    mp.markExecuted(1n);
    g.release!();
    await pending;
    // Placed behind nonce 0 (already executed) it would wait forever: a closed-loop stall.
    assert.equal(mp.pendingExecutable(), 1);
    assert.deepEqual(nonceOf(mp, mp.reap(10, 1 << 20).hashes), [1n]);
  });

  it("removeCommitted clears in-flight accounting for committed proposals", async () => {
    const { mp } = pool();
    const k = newKey();
    await fill(mp, k, 0n, 3);
    const r = mp.reap(2, 1 << 20);
    mp.markProposed(r.hashes);
    mp.removeCommitted(r.txs, 1n);
    assert.equal(mp.size, 1);
    assert.equal(mp.inFlightCount, 0);
    assert.equal(mp.pendingExecutable(), 1);
    assert.equal(mp.requeueInFlight(), 0);
    assert.deepEqual(nonceOf(mp, mp.reap(10, 1 << 20).hashes), [2n]);
  });

  it("respects maxTxs and returns nothing when empty", async () => {
    const { mp } = pool();
    assert.equal(mp.reap(10, 1 << 20).txs.length, 0);
    const a = newKey();
    await fill(mp, a, 0n, 5);
    assert.equal(mp.reap(3, 1 << 20).txs.length, 3);
    assert.equal(mp.reap(0, 1 << 20).txs.length, 0);
  });
});

async function eventuallyTrue(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(check(), "condition not reached");
}
