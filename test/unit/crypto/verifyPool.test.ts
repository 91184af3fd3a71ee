import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CryptoError,
  keyPairFromSecret,
  NodeSigner,
  NodeVerifier,
  type VerifyItem,
  VerifyPool,
} from "../../../src/crypto/index.js";
import { type SignedTx, SignedTxSchema, TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { txSignBytes } from "../../../src/types/signing.js";

const signers = [1, 2, 3, 4, 5].map(
  (i) => new NodeSigner(keyPairFromSecret(new Uint8Array(32).fill(i)).secretKey),
);

function makeTx(i: number): SignedTx {
  const signer = signers[i % signers.length]!;
  const body = toBinary(
    TxBodySchema,
    create(TxBodySchema, { chainId: "test", sender: signer.publicKey, nonce: BigInt(i), fee: "1" }),
  );
  return create(SignedTxSchema, { body, signature: signer.sign(txSignBytes(body)) });
}

/** Valid txs mixed with every kind of invalid one, deterministically. */
function mixedTxs(n: number): SignedTx[] {
  const out: SignedTx[] = [];
  for (let i = 0; i < n; i++) {
    const tx = makeTx(i);
    switch (i % 6) {
      case 1: {
        const sig = Uint8Array.from(tx.signature);
        sig[5] = sig[5]! ^ 0xff;
        out.push(create(SignedTxSchema, { body: tx.body, signature: sig }));
        break;
      }
      case 2:
        out.push(create(SignedTxSchema, { body: Uint8Array.of(0xff, 0xff, 0xff), signature: tx.signature }));
        break;
      case 3:
        out.push(create(SignedTxSchema, { body: tx.body, signature: tx.signature.subarray(0, 63) }));
        break;
      case 4: {
        // Signed by someone else than the declared sender.
        const body = tx.body;
        const other = signers[(i + 1) % signers.length]!;
        out.push(create(SignedTxSchema, { body, signature: other.sign(txSignBytes(body)) }));
        break;
      }
      default:
        out.push(tx);
    }
  }
  return out;
}

function inlineExpected(txs: SignedTx[]): boolean[] {
  const v = new NodeVerifier();
  return txs.map((tx) => {
    let sender: Uint8Array;
    try {
      sender = fromBinary(TxBodySchema, tx.body).sender;
    } catch {
      return false;
    }
    return v.verify(sender, txSignBytes(tx.body), tx.signature);
  });
}

describe("VerifyPool", () => {
  it("returns exactly the inline node-rule results, in order, across many batches", async () => {
    const txs = mixedTxs(300);
    const expected = inlineExpected(txs);
    assert.ok(expected.includes(true) && expected.includes(false));
    const pool = new VerifyPool({ size: 2, maxBatch: 64 });
    await pool.start();
    try {
      assert.equal(pool.liveWorkers, 2);
      assert.deepEqual(await pool.verifyTxs(txs), expected);
      assert.ok(pool.stats.batches >= 3, `batches: ${pool.stats.batches}`);
    } finally {
      await pool.stop();
    }
  });

  it("verifyMany matches NodeVerifier for raw items, including bad lengths", async () => {
    const v = new NodeVerifier();
    const items: VerifyItem[] = [];
    for (let i = 0; i < 100; i++) {
      const s = signers[i % signers.length]!;
      const message = Uint8Array.of(i, i + 1);
      const signature = s.sign(message);
      if (i % 4 === 1) signature[0] = signature[0]! ^ 1;
      items.push({
        publicKey: i % 4 === 2 ? s.publicKey.subarray(1) : s.publicKey,
        message: i % 4 === 3 ? Uint8Array.of(0) : message,
        signature,
      });
    }
    const pool = new VerifyPool({ size: 2 });
    await pool.start();
    try {
      assert.deepEqual(
        await pool.verifyMany(items),
        items.map((it) => v.verify(it.publicKey, it.message, it.signature)),
      );
    } finally {
      await pool.stop();
    }
  });

  it("answers a tx seen before from the cache without verifying again", async () => {
    const txs = mixedTxs(60);
    const pool = new VerifyPool({ size: 2 });
    await pool.start();
    try {
      const first = await pool.verifyTxs(txs);
      const verified = pool.stats.verified;
      const hits = pool.stats.cacheHits;
      assert.ok(verified > 0);
      assert.deepEqual(await pool.verifyTxs(txs), first);
      assert.equal(pool.stats.verified, verified, "no signature verified twice");
      assert.equal(pool.stats.cacheHits - hits, txs.filter((t) => t.signature.length === 64).length);
      assert.ok(pool.hasVerdict(txs[0]!));
    } finally {
      await pool.stop();
    }
  });

  it("a cached valid verdict does not vouch for a different signature over the same body", async () => {
    const tx = makeTx(1);
    const forged = Uint8Array.from(tx.signature);
    forged[40] = forged[40]! ^ 0x10;
    const pool = new VerifyPool({ size: 1 });
    await pool.start();
    try {
      assert.deepEqual(await pool.verifyTxs([tx]), [true]);
      assert.deepEqual(await pool.verifyTxs([create(SignedTxSchema, { body: tx.body, signature: forged })]), [
        false,
      ]);
    } finally {
      await pool.stop();
    }
  });

  it("concurrent requests for the same tx share one verification", async () => {
    const tx = makeTx(7);
    const pool = new VerifyPool({ size: 1 });
    await pool.start();
    try {
      const results = await Promise.all([
        pool.verifyTxs([tx]),
        pool.verifyTxs([tx]),
        pool.verifyTxs([tx, tx]),
      ]);
      assert.deepEqual(results, [[true], [true], [true, true]]);
      assert.equal(pool.stats.verified, 1);
    } finally {
      await pool.stop();
    }
  });

  it("verifies a small call inline while the workers are busy, with the node rule's answers", async () => {
    const big = Array.from({ length: 60 }, (_, i) => makeTx(1000 + i));
    const small = mixedTxs(12).slice(6);
    const pool = new VerifyPool({ size: 1, inlineWhenIdle: false, flushMs: 1_000 });
    await pool.start();
    try {
      // 60 txs (under maxBatch 64) wait for the 1 s flush timer before any worker sees them.
      const held = pool.verifyTxs(big);
      const batches = pool.stats.batches;
      // Six txs (bad signature, bad body, short signature, wrong signer, valid ones): answered
      // inline at once, not held for the worker batch's timer.
      assert.deepEqual(await pool.verifyTxs(small), inlineExpected(small));
      assert.equal(pool.stats.batches, batches, "no worker batch for the small call");
      assert.deepEqual(await held, inlineExpected(big));
      // Its verdicts are cached like a worker's.
      const verified = pool.stats.verified;
      assert.deepEqual(await pool.verifyTxs(small), inlineExpected(small));
      assert.equal(pool.stats.verified, verified);
    } finally {
      await pool.stop();
    }
    // inlineMaxTxs 0: the same small call waits for a worker batch.
    const off = new VerifyPool({ size: 1, inlineWhenIdle: false, inlineMaxTxs: 0 });
    await off.start();
    try {
      assert.deepEqual(await off.verifyTxs(small), inlineExpected(small));
      assert.ok(off.stats.batches >= 1);
    } finally {
      await off.stop();
    }
  });

  it("small calls past the inline budget go to the workers, with the same answers", async () => {
    // A budget of 1 signature per second: the bucket (2 × inlineMaxTxs = 12) covers two 6-tx calls
    // made at once; the third finds it short and waits for a worker batch.
    const calls = [mixedTxs(12).slice(6), mixedTxs(24).slice(18), mixedTxs(36).slice(30)];
    const pool = new VerifyPool({ size: 1, inlineWhenIdle: false, inlineMaxTxs: 6, inlineBudgetPerSec: 1 });
    await pool.start();
    try {
      const before = pool.stats.batches;
      assert.deepEqual(await pool.verifyTxs(calls[0]!), inlineExpected(calls[0]!));
      assert.deepEqual(await pool.verifyTxs(calls[1]!), inlineExpected(calls[1]!));
      assert.equal(pool.stats.batches, before, "the bucket's 12 signatures were verified inline");
      assert.deepEqual(await pool.verifyTxs(calls[2]!), inlineExpected(calls[2]!));
      assert.ok(pool.stats.batches > before, "the call past the budget went to a worker batch");
    } finally {
      await pool.stop();
    }
  });

  it("stop() terminates every worker and later calls are rejected", async () => {
    const pool = new VerifyPool({ size: 2 });
    await pool.start();
    assert.equal(pool.liveWorkers, 2);
    await pool.stop();
    assert.equal(pool.liveWorkers, 0);
    assert.equal(pool.workerCount, 0);
    await assert.rejects(
      pool.verifyTxs([makeTx(0)]),
      (err: unknown) => err instanceof CryptoError && err.code === "VERIFY_POOL_STOPPED",
    );
    await pool.stop(); // idempotent
  });

  it("a worker that dies mid-batch is replaced and its batches still get the right answers", async () => {
    const txs = mixedTxs(200);
    const expected = inlineExpected(txs);
    const pool = new VerifyPool({ size: 1 });
    await pool.start();
    try {
      const pending = pool.verifyTxs(txs);
      const internals = pool as unknown as { workers: { worker: { terminate(): Promise<number> } }[] };
      await internals.workers[0]!.worker.terminate();
      assert.deepEqual(await pending, expected);
      for (let i = 0; i < 200 && pool.liveWorkers !== 1; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(pool.liveWorkers, 1);
      assert.equal(pool.stats.respawns, 1);
      assert.deepEqual(await pool.verifyMany([]), []);
      assert.equal((await pool.verifyTxs([makeTx(1000)]))[0], true);
    } finally {
      await pool.stop();
    }
    assert.equal(pool.liveWorkers, 0);
  });

  it("a worker script that cannot start fails start() with a typed error and leaves nothing running", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "parabft-badworker-"));
    const script = path.join(dir, "bad.mjs");
    await fs.writeFile(script, 'throw new Error("cannot load");\n');
    const pool = new VerifyPool({ size: 2, workerUrl: pathToFileURL(script) });
    try {
      await assert.rejects(
        pool.start(),
        (err: unknown) => err instanceof CryptoError && err.code === "VERIFY_WORKER_FAILED",
      );
      assert.equal(pool.liveWorkers, 0);
      assert.equal(pool.workerCount, 0);
    } finally {
      await pool.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("size 0 verifies inline with the same results and no workers", async () => {
    const txs = mixedTxs(30);
    const senders = txs.map((t) => {
      try {
        return fromBinary(TxBodySchema, t.body).sender;
      } catch {
        return new Uint8Array(0);
      }
    });
    const pool = new VerifyPool({ size: 0 });
    await pool.start();
    try {
      assert.equal(pool.liveWorkers, 0);
      assert.deepEqual(await pool.verifyTxs(txs), inlineExpected(txs));
      const again = new VerifyPool({ size: 0 });
      assert.deepEqual(await again.verifyTxs(txs, undefined, senders), inlineExpected(txs));
    } finally {
      await pool.stop();
    }
  });
});
