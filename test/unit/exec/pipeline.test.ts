import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { strKey } from "../../../src/exec/codec.js";
import { buildGenesis } from "../../../src/exec/genesis.js";
import { ParallelExecutor } from "../../../src/exec/parallel.js";
import { ExecutionPipeline } from "../../../src/exec/pipeline.js";
import { decodeTx, FEE_COLLECTOR_KEY, touchedKeys } from "../../../src/exec/programs.js";
import { openExecution } from "../../../src/exec/recovery.js";
import { initFromResult, ReferenceExecutor } from "../../../src/exec/reference.js";
import type { ExecutableBlock, ExecutionResult } from "../../../src/exec/types.js";
import { genesisFor, makeAccounts, NonceBook, Rng, transferTx } from "../../../src/exec/workload.js";
import { TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { fromHex, toHex } from "../../../src/types/bytes.js";
import { MemoryStore, waitFor } from "./helpers.js";

const accounts = makeAccounts(50, 3);
const genesis = buildGenesis(genesisFor(accounts));

function makeBlocks(n: number, perBlock: number): ExecutableBlock[] {
  const rng = new Rng(11);
  const nonces = new NonceBook();
  return Array.from({ length: n }, (_, h) => ({
    height: BigInt(h + 1),
    timestampMs: BigInt(h),
    txs: Array.from({ length: perBlock }, () => {
      const a = accounts[rng.int(accounts.length)]!;
      return transferTx(a, nonces.take(a), accounts[rng.int(accounts.length)]!.address, 3n);
    }),
  }));
}

/** What the mempool hands over with a committed block: each body decoded, its sender's address. */
const addressOf = new Map(accounts.map((a) => [toHex(a.publicKey), a.address]));
function preDecoded(b: ExecutableBlock): ExecutableBlock {
  return {
    ...b,
    decoded: b.txs.map((t) => {
      const body = fromBinary(TxBodySchema, t.body);
      return { body, address: addressOf.get(toHex(body.sender))! };
    }),
  };
}

/**
 * Runs `blocks` through a pipeline over `store` and returns the executed roots in order;
 * `whileRunning` runs once the pipeline is idle, before it stops. The executor is closed after.
 */
async function runPipeline(
  executor: ParallelExecutor,
  store: MemoryStore,
  blocks: readonly ExecutableBlock[],
  whileRunning?: () => Promise<void>,
): Promise<string[]> {
  const roots: string[] = [];
  const pipeline = new ExecutionPipeline(
    { queueCapacity: 3 },
    { executor, store, log: silentLogger(), onExecuted: (_h, root) => roots.push(toHex(root)) },
  );
  await pipeline.start();
  try {
    for (const b of blocks) await pipeline.submit(b);
    await pipeline.idle();
    await whileRunning?.();
  } finally {
    await pipeline.stop();
    await executor.close();
  }
  return roots;
}

/** The roots equal the reference's for the same blocks, and the store holds its final state. */
async function assertReference(
  blocks: readonly ExecutableBlock[],
  roots: readonly string[],
  store: MemoryStore,
): Promise<void> {
  const ref = new ReferenceExecutor(initFromResult(genesis));
  const expected: string[] = [];
  for (const b of blocks) expected.push(toHex((await ref.executeBlock(b)).stateRoot));
  assert.deepEqual(roots, expected);
  for (const e of ref.entries()) assert.deepEqual(store.state.get(toHex(e.key)), e.value);
}

/** A deliberately slow executor: each block waits until the test releases it. */
class GatedExecutor extends ReferenceExecutor {
  released = 0;
  started = 0;
  override async executeBlock(b: ExecutableBlock): Promise<ExecutionResult> {
    this.started++;
    await waitFor(() => this.released >= Number(b.height), 20_000, `release of ${b.height}`);
    return super.executeBlock(b);
  }
}

describe("execution pipeline", () => {
  it("never holds more than its bound, pushes back on submit, and reports executed heights in order", async () => {
    const executor = new GatedExecutor(initFromResult(genesis));
    const reported: bigint[] = [];
    const store = new MemoryStore();
    const pipeline = new ExecutionPipeline(
      { queueCapacity: 2 },
      { executor, store, log: silentLogger(), onExecuted: (h) => reported.push(h) },
    );
    await pipeline.start();
    const blocks = makeBlocks(12, 20);
    try {
      let accepted = 0;
      const producer = (async () => {
        for (const b of blocks) {
          await pipeline.submit(b);
          accepted++;
        }
      })();
      // With execution stalled, at most: 2 queued for prepare, 1 in prepare, 2 queued for execute
      // and 1 executing can be accepted; the producer must be held back.
      await waitFor(() => pipeline.isBackpressured && executor.started === 1, 20_000, "backpressure");
      assert.ok(accepted <= 2 + 1 + 2 + 1, `accepted ${accepted} blocks while execution was stalled`);
      assert.ok(accepted < blocks.length);
      executor.released = blocks.length;
      await producer;
      await pipeline.idle();
      const stats = pipeline.stats();
      for (const s of stats.stages) assert.ok(s.maxDepth <= s.capacity, `${s.stage} depth ${s.maxDepth}`);
      assert.ok(stats.backpressureWaits > 0, "submit must have waited");
      assert.deepEqual(
        reported,
        blocks.map((b) => b.height),
      );
      assert.equal(stats.stages.find((s) => s.stage === "execute")!.txs, 12 * 20);
      const ref = new ReferenceExecutor(initFromResult(genesis));
      for (const b of blocks) await ref.executeBlock(b);
      assert.equal(toHex(store.root!), toHex(ref.stateRoot));
    } finally {
      executor.released = Number.MAX_SAFE_INTEGER;
      await pipeline.stop();
    }
  });

  it("rejects out-of-order heights and stops accepting after a stage failure", async () => {
    const executor = new ReferenceExecutor(initFromResult(genesis));
    const errors: Error[] = [];
    const failing = {
      ...new MemoryStore(),
      writeExecutionBatch: async () => {
        throw new Error("disk full");
      },
      getState: async () => undefined,
      getExecutedHeight: async () => 0n,
      getStateRoot: async () => undefined,
    };
    const pipeline = new ExecutionPipeline(
      { queueCapacity: 2 },
      { executor, store: failing, log: silentLogger(), onExecuted: () => {}, onError: (e) => errors.push(e) },
    );
    await pipeline.start();
    try {
      const [b1, b2] = makeBlocks(2, 3);
      await assert.rejects(pipeline.submit(b2!), /expects height 1/);
      await pipeline.submit(b1!);
      await assert.rejects(pipeline.idle(), /disk full/);
      assert.equal(errors.length, 1);
      await assert.rejects(pipeline.submit(b2!), /pipeline failed/);
    } finally {
      await pipeline.stop();
    }
  });

  it("drives a parallel executor with prefetch over a store, and recovery resumes from the store", async () => {
    const store = new MemoryStore();
    const blocks = makeBlocks(6, 40);
    const { executor } = await openExecution(store, store, genesis, { workers: 0 });
    const pipeline = new ExecutionPipeline(
      { queueCapacity: 2 },
      { executor, store, log: silentLogger(), onExecuted: () => {} },
    );
    await pipeline.start();
    try {
      for (const b of blocks.slice(0, 4)) {
        store.commit(b);
        await pipeline.submit(b);
      }
      await pipeline.idle();
    } finally {
      await pipeline.stop();
      await executor.close();
    }
    // Blocks 5 and 6 are committed but never executed: a restart must re-execute them.
    for (const b of blocks.slice(4)) store.commit(b);
    const reopened = await openExecution(store, store, genesis, { workers: 0 });
    try {
      assert.deepEqual(reopened.recovered, { from: 5n, to: 6n, blocks: 2 });
      const ref = new ReferenceExecutor(initFromResult(genesis));
      for (const b of blocks) await ref.executeBlock(b);
      assert.equal(toHex(reopened.executor.stateRoot), toHex(ref.stateRoot));
      assert.equal(toHex(store.root!), toHex(ref.stateRoot));
      for (const e of ref.entries()) assert.deepEqual(store.state.get(toHex(e.key)), e.value);
    } finally {
      await reopened.executor.close();
    }
  });

  it("a parallel executor reading through a store with a tiny cache still matches the reference", async () => {
    const store = new MemoryStore();
    await store.writeExecutionBatch(genesis);
    const ex = await ParallelExecutor.open(store, { workers: 2, mode: "always", cacheMaxEntries: 10 });
    try {
      const ref = new ReferenceExecutor(initFromResult(genesis));
      let reloaded = 0;
      for (const b of makeBlocks(8, 8)) {
        const r = await ex.executeBlock(b);
        await store.writeExecutionBatch(r);
        ex.markPersisted(r.height);
        assert.equal(toHex(r.stateRoot), toHex((await ref.executeBlock(b)).stateRoot));
        if (b.height > 1n) reloaded += ex.lastStats?.loadedFromStore ?? 0;
      }
      assert.ok(reloaded > 0, "evicted entries are re-read from the store");
      const warmed = await ParallelExecutor.open(store, { workers: 0 });
      try {
        const all = async function* () {
          for (const [k, v] of store.state) yield [fromHex(k), v] as [Uint8Array, Uint8Array];
        };
        assert.equal(await warmed.warm(all()), store.state.size);
        const b = makeBlocks(9, 8)[8]!;
        const r = await warmed.executeBlock({ ...b, height: 9n });
        // Only keys the store does not hold (a first-time sender's recent-transactions record).
        const absent = new Set<string>();
        for (const t of b.txs) {
          const tx = decodeTx(t.body, new Uint8Array(32));
          for (const k of tx ? touchedKeys(tx).keys : [])
            if (!store.state.has(toHex(strKey(k)))) absent.add(k);
        }
        if (!store.state.has(toHex(strKey(FEE_COLLECTOR_KEY)))) absent.add(FEE_COLLECTOR_KEY);
        assert.equal(warmed.lastStats?.loadedFromStore, absent.size, "a warm cache reads only absent keys");
        assert.equal(r.height, 9n);
      } finally {
        await warmed.close();
      }
    } finally {
      await ex.close();
    }
  });

  for (const mode of ["always", "never"] as const) {
    it(`prefetching ahead through a tiny evicting cache over a store never changes results (mode ${mode})`, async () => {
      const store = new MemoryStore();
      store.slowReads = true;
      const blocks = makeBlocks(12, 30);
      // "never": the inline path, whose pins are the keys it wrote (parallel.ts WrittenKeys).
      const { executor } = await openExecution(store, store, genesis, {
        workers: 2,
        mode,
        cacheMaxEntries: 8,
      });
      await assertReference(blocks, await runPipeline(executor, store, blocks), store);
    });
  }

  it("pre-decoded blocks over a store (the node's) through a tiny evicting cache equal the reference, with look-ahead auto and never", async () => {
    for (const lookAhead of ["auto", "never"] as const) {
      const blocks = makeBlocks(12, 30).map(preDecoded);
      const store = new MemoryStore();
      store.slowReads = true;
      // Mode auto with workers: the cost model's pre-check sends transfers inline, so each block
      // runs fused (decoded just before each tx runs) and its pins are read from its write-set log.
      const { executor } = await openExecution(store, store, genesis, {
        workers: 2,
        cacheMaxEntries: 8,
        lookAhead,
      });
      const roots = await runPipeline(executor, store, blocks, async () => {
        assert.equal(executor.lastStats?.mode, "inline");
        // "never": a pre-decoded block is left to run (nothing kept per tx); one that is not is decoded.
        const next = makeBlocks(13, 30)[12]!;
        const p = await executor.prepare(preDecoded(next));
        if (lookAhead === "never") {
          assert.equal(p.decoded, null);
          assert.ok(p.fused);
        }
        const full = await executor.prepare(next);
        assert.equal(full.decoded?.length, 30);
        assert.equal(full.fused, undefined);
      });
      await assertReference(blocks, roots, store);
    }
  });

  it("a fused block whose keys prepare left to run (none missed lately) loads a missing key at the tx that needs it, and equals the reference", async () => {
    const nonces = new NonceBook();
    const rng = new Rng(5);
    // Transfers from accounts[0..9]; to accounts[0..9] unless `to` says otherwise.
    const block = (
      h: number,
      to: (i: number) => number | undefined,
      from?: (i: number) => number | undefined,
    ) => {
      const txs = Array.from({ length: 40 }, (_, i) => {
        const a = accounts[from?.(i) ?? rng.int(10)]!;
        return transferTx(a, nonces.take(a), accounts[to(i) ?? rng.int(10)]!.address, 2n);
      });
      return preDecoded({ height: BigInt(h), timestampMs: BigInt(h), txs });
    };
    const store = new MemoryStore();
    await store.writeExecutionBatch(genesis);
    const ex = await ParallelExecutor.open(store, { workers: 2 });
    const ref = new ReferenceExecutor(initFromResult(genesis));
    try {
      const run = async (b: ExecutableBlock) => {
        const p = await ex.prepare(b);
        const r = await ex.executePrepared(p);
        await store.writeExecutionBatch(r);
        ex.markPersisted(r.height);
        const want = await ref.executeBlock(b);
        assert.equal(toHex(r.stateRoot), toHex(want.stateRoot), `height ${b.height}`);
        assert.deepEqual(r.writeSet, want.writeSet);
        assert.deepEqual(r.receipts, want.receipts);
        assert.equal(ex.lastStats?.mode, "inline");
        return { p, loaded: ex.lastStats!.loadedFromStore };
      };
      // Among accounts[0..9]: block 1's look-up loads their keys, block 2's finds none missing.
      // Looked up ahead: decoded in prepare (kept); left to run: nothing kept, fused.
      const ahead = (r: { p: { decoded: unknown; fused?: unknown } }) =>
        r.p.decoded !== null && r.p.fused === undefined;
      assert.ok(ahead(await run(block(1, () => undefined))));
      assert.ok(ahead(await run(block(2, () => undefined))));
      assert.ok(!ahead(await run(block(3, () => undefined))));
      // Block 4 pays accounts never loaded from tx 7 on, and tx 20 comes from one (its sender key).
      const fourth = await run(
        block(
          4,
          (i) => (i >= 7 && i % 2 === 1 ? 10 + i : undefined),
          (i) => (i === 20 ? 30 : undefined),
        ),
      );
      assert.ok(!ahead(fourth));
      assert.ok(fourth.loaded >= 17, `${fourth.loaded} keys loaded while running`);
      // Misses seen: the next block's keys are looked up ahead again.
      assert.ok(ahead(await run(block(5, (i) => (i === 3 ? 45 : undefined)))));
    } finally {
      await ex.close();
    }
  });

  it("a fused block runs in groups of 16 and stops exactly at the first tx with a key missing, at a group's first, last or any tx", async () => {
    // Block 4's tx `at` pays an account never loaded (its key is not cached): running it, or any
    // tx after it, before the load would read a key not loaded and fail the block.
    for (const at of [0, 1, 15, 16, 31, 32, 39]) {
      const nonces = new NonceBook();
      const rng = new Rng(at + 1);
      const block = (h: number, pay?: number) =>
        preDecoded({
          height: BigInt(h),
          timestampMs: BigInt(h),
          txs: Array.from({ length: 40 }, (_, i) => {
            const a = accounts[rng.int(10)]!;
            const to = i === pay ? accounts[20 + (at % 20)]! : accounts[rng.int(10)]!;
            return transferTx(a, nonces.take(a), to.address, 2n);
          }),
        });
      const store = new MemoryStore();
      await store.writeExecutionBatch(genesis);
      const ex = await ParallelExecutor.open(store, { workers: 0 });
      const ref = new ReferenceExecutor(initFromResult(genesis));
      try {
        for (const b of [block(1), block(2), block(3), block(4, at), block(5)]) {
          const p = await ex.prepare(b);
          if (b.height === 4n) assert.ok(p.fused !== undefined && p.decoded === null, "block 4 left to run");
          const r = await ex.executePrepared(p);
          await store.writeExecutionBatch(r);
          ex.markPersisted(r.height);
          const want = await ref.executeBlock(b);
          assert.equal(toHex(r.stateRoot), toHex(want.stateRoot), `tx ${at}, height ${b.height}`);
          assert.deepEqual(r.receipts, want.receipts);
          // Block 4 was left to run (blocks 2-3 missed nothing) and loaded the key itself.
          if (b.height === 4n) assert.equal(ex.lastStats?.loadedFromStore, 1, `tx ${at}`);
        }
      } finally {
        await ex.close();
      }
    }
  });

  it("keeps its unpersisted-writes list short even if the caller never calls markPersisted", async () => {
    const store = new MemoryStore();
    await store.writeExecutionBatch(genesis);
    const ex = await ParallelExecutor.open(store, { workers: 0 });
    try {
      for (const b of makeBlocks(20, 5)) await store.writeExecutionBatch(await ex.executeBlock(b));
      const pending = (ex as unknown as { unpersisted: unknown[] }).unpersisted.length;
      assert.ok(pending <= 9, `${pending} blocks still tracked as unpersisted`);
    } finally {
      await ex.close();
    }
  });
});
