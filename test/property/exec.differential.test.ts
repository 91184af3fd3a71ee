// Differential property tests (DESIGN §5): the parallel executor must produce byte-identical
// receipts, write sets and state roots to the sequential reference, over random blocks.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { decodeAccount, decodePool, keyStr } from "../../src/exec/codec.js";
import { diffResults } from "../../src/exec/compare.js";
import { FEE_COLLECTOR_ADDRESS } from "../../src/exec/fees.js";
import { ParallelExecutor } from "../../src/exec/parallel.js";
import { initFromResult, ReferenceExecutor } from "../../src/exec/reference.js";
import type { ExecutableBlock, ExecutionResult, Executor, StateWrite } from "../../src/exec/types.js";
import { ExecWorkerPool } from "../../src/exec/workerPool.js";
import { TxBodySchema } from "../../src/gen/parabft/v1/types_pb.js";
import { addressOf } from "../../src/types/block.js";
import { accountKey, StateKeyPrefix } from "../../src/types/stateKeys.js";
import { blocksFromIntents, type Intent, scenarioArb, type Universe, universe } from "./execGen.js";

const SEED = Number(process.env.PARABFT_PROP_SEED ?? 0x5eed);
const RUNS = Number(process.env.PARABFT_PROP_RUNS ?? 25);

/** The block with every body that decodes handed over decoded, with its sender's address. */
function withDecoded(b: ExecutableBlock): ExecutableBlock {
  const decoded = b.txs.map((t) => {
    try {
      const body = fromBinary(TxBodySchema, t.body);
      return { body, address: addressOf(body.sender) };
    } catch {
      return undefined;
    }
  });
  return { ...b, decoded };
}

/**
 * A store holding the genesis state, each block's writes applied once executed: the source of a
 * ParallelExecutor that starts with an empty cache (the node's: misses are read from its ChainDb).
 */
class StateStore {
  private readonly state = new Map<string, Uint8Array>();
  private executed = 0n;
  constructor(genesis: readonly StateWrite[]) {
    for (const w of genesis) if (w.value !== null) this.state.set(keyStr(w.key), w.value);
  }
  async getState(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.state.get(keyStr(key));
  }
  async getExecutedHeight(): Promise<bigint> {
    return this.executed;
  }
  apply(r: ExecutionResult): void {
    for (const w of r.writeSet) {
      if (w.value === null) this.state.delete(keyStr(w.key));
      else this.state.set(keyStr(w.key), w.value.slice());
    }
    this.executed = r.height;
  }
}

async function runAll(ex: Executor, blocks: ExecutableBlock[]): Promise<ExecutionResult[]> {
  const out: ExecutionResult[] = [];
  for (const b of blocks) out.push(await ex.executeBlock(b));
  return out;
}

/**
 * The native token's total: every account balance (the fee collector's included) plus every
 * pool's reserve A (swaps move native balance into pools). Fees move it, never create it.
 */
function bankTotal(state: Iterable<StateWrite>): { total: bigint; collected: bigint } {
  const collectorKey = keyStr(accountKey(FEE_COLLECTOR_ADDRESS));
  let total = 0n;
  let collected = 0n;
  for (const { key, value } of state) {
    if (value === null) continue;
    if (key[0] === StateKeyPrefix.account) {
      const b = decodeAccount(value).balance;
      total += b;
      if (keyStr(key) === collectorKey) collected = b;
    } else if (key[0] === StateKeyPrefix.ammPool && value.length === 34) {
      total += decodePool(value)!.reserveA;
    }
  }
  return { total, collected };
}

/** null when every block's result matches the reference; otherwise the first difference. */
async function differential(
  u: Universe,
  intents: Intent[][],
  candidates: { name: string; make: () => Executor & { close?: () => Promise<void> } }[],
): Promise<string | null> {
  const blocks = blocksFromIntents(u, intents);
  const ref = new ReferenceExecutor({ height: 0n, stateRoot: u.genesis.stateRoot, state: u.state });
  const expected = await runAll(ref, blocks);
  // Conservation, fees included: what senders paid is exactly what the collector holds.
  const before = bankTotal(u.genesis.writeSet);
  const after = bankTotal(ref.entries());
  if (after.total !== before.total) return `bank total ${before.total} -> ${after.total}`;
  feesSeen.collected += after.collected;
  for (const c of candidates) {
    const ex = c.make();
    try {
      const got = await runAll(ex, blocks);
      for (let i = 0; i < expected.length; i++) {
        const d = diffResults(expected[i]!, got[i]!);
        if (d !== null) return `${c.name}: ${d}`;
      }
    } finally {
      await ex.close?.();
    }
  }
  return null;
}

const feesSeen = { collected: 0n };

describe("parallel executor equals the reference executor", () => {
  const pools = new Map<number, ExecWorkerPool>();
  before(() => {
    for (const n of [1, 2, 4]) pools.set(n, new ExecWorkerPool(n));
  });
  after(async () => {
    for (const p of pools.values()) await p.close();
  });

  const candidates = (u: Universe) => [
    ...[1, 2, 4].map((w) => ({
      name: `parallel(${w} workers, forced)`,
      make: () =>
        new ParallelExecutor(
          { height: 0n, stateRoot: u.genesis.stateRoot, state: u.state },
          { workers: w, mode: "always" as const, pool: pools.get(w)! },
        ),
    })),
    {
      name: "parallel(2 workers, cost model)",
      make: () =>
        new ParallelExecutor(
          { height: 0n, stateRoot: u.genesis.stateRoot, state: u.state },
          { workers: 2, pool: pools.get(2)!, costModel: { minTxs: 1, fixedUs: 0 } },
        ),
    },
    {
      // Every body handed over decoded, as the node hands the mempool's: transfer, kv and swap
      // blocks then decode each tx just before it runs (round 11's fused inline path).
      name: "parallel(2 workers, default cost model, bodies pre-decoded)",
      make: () => {
        const ex = new ParallelExecutor(
          { height: 0n, stateRoot: u.genesis.stateRoot, state: u.state },
          { workers: 2, pool: pools.get(2)! },
        );
        return {
          executeBlock: (b: ExecutableBlock) => ex.executeBlock(withDecoded(b)),
          get stateRoot() {
            return ex.stateRoot;
          },
          get executedHeight() {
            return ex.executedHeight;
          },
          close: () => ex.close(),
        };
      },
    },
    ...(["auto", "never"] as const).map((lookAhead) => ({
      // The node's path: over a store, from an empty cache that evicts, bodies pre-decoded. Fused
      // blocks' keys are looked up by prepare after misses, else checked tx by tx as they run,
      // with loads at the tx that misses (round 13); "never": every fused block the second way.
      name: `parallel(2 workers, default cost model, bodies pre-decoded, over a store, small cache, look-ahead ${lookAhead})`,
      make: () => {
        const store = new StateStore(u.genesis.writeSet);
        const ex = new ParallelExecutor(
          { height: 0n, stateRoot: u.genesis.stateRoot },
          { workers: 2, pool: pools.get(2)!, source: store, cacheMaxEntries: 64, lookAhead },
        );
        return {
          executeBlock: async (b: ExecutableBlock) => {
            const r = await ex.executeBlock(withDecoded(b));
            store.apply(r);
            ex.markPersisted(r.height);
            return r;
          },
          get stateRoot() {
            return ex.stateRoot;
          },
          get executedHeight() {
            return ex.executedHeight;
          },
          close: () => ex.close(),
        };
      },
    })),
  ];

  it("on random blocks over 2 to 10,000 accounts with hot spots, failures and duplicates", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb([2, 10, 100, 10_000], 120), async (s) => {
        const u = universe(s.size);
        const d = await differential(u, s.blocks, candidates(u));
        assert.equal(d, null);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    assert.ok(feesSeen.collected > 0n, "the generated blocks must charge fees");
  });

  it("on random blocks over 200,000 accounts", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb([200_000], 300), async (s) => {
        const u = universe(s.size);
        const d = await differential(u, s.blocks, candidates(u));
        assert.equal(d, null);
      }),
      { seed: SEED + 1, numRuns: 2, endOnFailure: true },
    );
  });

  it("detects a deliberately different executor (the oracle is not vacuous)", async () => {
    // Runs same-sender transactions in reverse block order: nonces then fail differently.
    class ReversingExecutor extends ReferenceExecutor {
      override executeBlock(block: ExecutableBlock): Promise<ExecutionResult> {
        return super.executeBlock({ ...block, txs: [...block.txs].reverse() });
      }
    }
    const out = await fc.check(
      fc.asyncProperty(scenarioArb([2, 10], 40), async (s) => {
        const u = universe(s.size);
        const d = await differential(u, s.blocks, [
          { name: "reversing", make: () => new ReversingExecutor(initFromResult(u.genesis)) },
        ]);
        assert.equal(d, null);
      }),
      { seed: SEED, numRuns: 50 },
    );
    assert.equal(out.failed, true, "the comparison must catch an executor with different semantics");
  });
});
