// The reference and parallel executors stay byte-identical (receipts, write sets, state roots)
// with staking calls in the mix: registrations, delegations, ballots, unbonding, unjail and
// equivocation evidence, interleaved with transfers and kv writes over the same accounts, with
// honest (over-declared) and under-declared access lists.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { keyStr, strKey } from "../../src/exec/codec.js";
import { diffResults } from "../../src/exec/compare.js";
import { ParallelExecutor } from "../../src/exec/parallel.js";
import { ReferenceExecutor } from "../../src/exec/reference.js";
import type { ExecutableBlock, ExecutionResult, Executor } from "../../src/exec/types.js";
import { ExecWorkerPool } from "../../src/exec/workerPool.js";
import { buildTx, kvPutTx, type TestAccount, transferTx } from "../../src/exec/workload.js";
import type { SignedTx, StakingCall } from "../../src/gen/parabft/v1/types_pb.js";
import {
  type EpochHook,
  type SigningTally,
  StakingStore,
  stakingAccess,
  stakingGenesis,
  stakingKeys,
} from "../../src/staking/index.js";
import { toHex } from "../../src/types/bytes.js";
import { MemoryStore } from "../unit/exec/helpers.js";
import { universe } from "./execGen.js";
import {
  consensusKey,
  delegate,
  equivocation,
  register,
  testRules,
  undelegate,
  unjail,
  vote,
} from "./stakingGen.js";

const SEED = Number(process.env.PARABFT_PROP_SEED ?? 0x5a4e);
const RUNS = Number(process.env.PARABFT_PROP_RUNS ?? 20);
const N_VALIDATORS = 6;

type Intent =
  | { k: "register" | "unjail"; who: number; stake: number }
  | { k: "delegate" | "undelegate"; who: number; amount: number }
  | { k: "vote"; who: number; picks: number[]; amount: number; underDeclare: boolean }
  | { k: "evidence"; who: number; key: number; epoch: number }
  | { k: "transfer" | "kv"; who: number; other: number; amount: number };

const intentArb: fc.Arbitrary<Intent> = fc.oneof(
  fc.record({
    k: fc.constantFrom("register" as const, "unjail" as const),
    who: fc.nat(9),
    stake: fc.integer({ min: 50, max: 5000 }),
  }),
  fc.record({
    k: fc.constantFrom("delegate" as const, "undelegate" as const),
    who: fc.nat(9),
    amount: fc.integer({ min: 0, max: 50_000 }),
  }),
  fc.record({
    k: fc.constant("vote" as const),
    who: fc.nat(9),
    picks: fc.uniqueArray(fc.nat(N_VALIDATORS - 1), { maxLength: 4 }),
    amount: fc.constantFrom(100, 1000, 7000),
    underDeclare: fc.boolean(),
  }),
  fc.record({
    k: fc.constant("evidence" as const),
    who: fc.nat(9),
    key: fc.nat(N_VALIDATORS - 1),
    epoch: fc.nat(1),
  }),
  fc.record({
    k: fc.constantFrom("transfer" as const, "kv" as const),
    who: fc.nat(9),
    other: fc.nat(9),
    amount: fc.nat(5000),
  }),
);

function toBlocks(accounts: TestAccount[], intents: Intent[][]): ExecutableBlock[] {
  const nonces = new Map<TestAccount, bigint>();
  const take = (a: TestAccount) => {
    const n = nonces.get(a) ?? 0n;
    nonces.set(a, n + 1n);
    return n;
  };
  const everyValidator = accounts.slice(0, N_VALIDATORS).map((a) => a.address);
  const staking = (
    from: TestAccount,
    c: StakingCall,
    hints = {},
    access?: { reads: Uint8Array[]; writes: Uint8Array[] },
  ) => {
    const acc = access ?? stakingAccess(from.address, c, hints);
    return buildTx({
      sender: from,
      nonce: take(from),
      call: { case: "staking", value: c },
      reads: acc.reads,
      writes: acc.writes,
    });
  };
  return intents.map((block, bi) => {
    const txs: SignedTx[] = block.map((it) => {
      const from = accounts[it.who % accounts.length]!;
      switch (it.k) {
        case "register":
          return staking(from, register(consensusKey(it.who).publicKey, BigInt(it.stake)));
        case "unjail":
          return staking(from, unjail());
        case "delegate":
          return staking(from, delegate(BigInt(it.amount)), { ballot: everyValidator });
        case "undelegate":
          return staking(from, undelegate(BigInt(it.amount)), { ballot: everyValidator });
        case "vote": {
          const c = vote(
            it.picks.map((p) => ({ validator: accounts[p]!.address, amount: BigInt(it.amount) })),
          );
          // Honest clients declare the old ballot too; over-declaring every validator covers it.
          return it.underDeclare
            ? staking(
                from,
                c,
                {},
                { reads: [stakingKeys.meta()], writes: [stakingKeys.delegator(from.address)] },
              )
            : staking(from, c, { ballot: everyValidator });
        }
        case "evidence":
          return staking(from, equivocation(consensusKey(it.key), BigInt(it.epoch), 3n), {
            evidenceOperator: accounts[it.key]!.address,
          });
        case "transfer":
          return transferTx(
            from,
            take(from),
            accounts[it.other % accounts.length]!.address,
            BigInt(it.amount),
          );
        default:
          return kvPutTx(from, take(from), Uint8Array.of(it.other), Uint8Array.of(it.amount & 255));
      }
    });
    return { height: BigInt(bi + 1), timestampMs: BigInt(1000 * (bi + 1)), txs };
  });
}

async function runAll(ex: Executor, blocks: ExecutableBlock[]): Promise<ExecutionResult[]> {
  const out: ExecutionResult[] = [];
  for (const b of blocks) out.push(await ex.executeBlock(b));
  return out;
}

describe("parallel executor equals the reference executor with staking calls", () => {
  const pools = new Map<number, ExecWorkerPool>();
  before(() => {
    for (const n of [1, 2]) pools.set(n, new ExecWorkerPool(n));
  });
  after(async () => {
    for (const p of pools.values()) await p.close();
  });

  it("on random blocks mixing staking, transfers and kv writes", async () => {
    const u = universe(10);
    const state = new Map(u.state);
    stakingGenesis({ read: (k) => state.get(k) ?? null, write: (k, v) => state.set(k, v) }, testRules(), []);
    const init = { height: 0n, stateRoot: u.genesis.stateRoot, state };
    let okStaking = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(intentArb, { maxLength: 60 }), { minLength: 1, maxLength: 4 }),
        async (intents) => {
          const blocks = toBlocks(u.accounts, intents);
          const expected = await runAll(new ReferenceExecutor(init), blocks);
          for (const r of expected) {
            for (const rc of r.receipts)
              if (rc.status === 1 && rc.events.some((e) => e.kind.startsWith("staking."))) okStaking++;
          }
          for (const [name, ex] of [
            [
              "parallel(1, forced)",
              new ParallelExecutor(init, { workers: 1, mode: "always", pool: pools.get(1)! }),
            ],
            [
              "parallel(2, forced)",
              new ParallelExecutor(init, { workers: 2, mode: "always", pool: pools.get(2)! }),
            ],
          ] as const) {
            const got = await runAll(ex, blocks);
            for (let i = 0; i < expected.length; i++) {
              assert.equal(diffResults(expected[i]!, got[i]!), null, `${name}, block ${i + 1}`);
            }
          }
        },
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    assert.ok(okStaking > 50, `staking calls must succeed often enough to matter (${okStaking})`);
  });
});

// Blocks that cross epoch ends (epochLength 2: heights 1, 3, 5 end epochs 0, 1, 2): the epoch
// hook (downtime jailing from a signing tally, election of e+2, meta epoch e+1) writes into the
// last block's write set identically in the reference executor, the forced-parallel executors
// and a parallel executor backed by a store (whose hook must load the staking keys it reads).
describe("the epoch hook is identical in the reference and parallel executors", () => {
  const pool = new ExecWorkerPool(2);
  after(() => pool.close());

  it("on random blocks crossing epoch ends, with downtime judged from a signing tally", async () => {
    const u = universe(10);
    const state = new Map(u.state);
    const kv = {
      read: (k: string) => state.get(k) ?? null,
      write: (k: string, v: Uint8Array | null) => state.set(k, v),
    };
    // Genesis validators are accounts 0..3 (registered with their self stake, epochs 0 and 1).
    stakingGenesis(
      kv,
      testRules({ epochLength: 2, minValidators: 2 }),
      [0, 1, 2, 3].map((i) => ({
        operator: u.accounts[i]!.address,
        consensusKey: consensusKey(i).publicKey,
        peerAddress: `127.0.0.1:${7000 + i}`,
        selfStake: 2000n,
      })),
    );
    const init = { height: 0n, stateRoot: u.genesis.stateRoot, state };
    // A deterministic tally: validator key k signed (k * 3 + epoch) % 5 of 4 commits.
    const hook = (): EpochHook => ({
      epochLength: 2,
      signing: async (epoch): Promise<SigningTally> => ({
        total: 4,
        signed: new Map(
          [0, 1, 2, 3, 4, 5].map((k) => [toHex(consensusKey(k).publicKey), (k * 3 + Number(epoch)) % 5]),
        ),
      }),
    });
    let elections = 0;
    let jails = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(intentArb, { maxLength: 40 }), { minLength: 2, maxLength: 6 }),
        async (intents) => {
          const blocks = toBlocks(u.accounts, intents);
          const expected = await runAll(new ReferenceExecutor(init, { epochHook: hook() }), blocks);
          // A store-backed parallel executor: genesis state persisted, nothing cached.
          const store = new MemoryStore();
          await store.writeExecutionBatch({
            height: 0n,
            stateRoot: u.genesis.stateRoot,
            receipts: [],
            writeSet: [...state].map(([k, v]) => ({
              key: strKey(k),
              value: v,
            })),
          });
          for (const [name, ex] of [
            [
              "parallel(2, forced)",
              new ParallelExecutor(init, { workers: 2, mode: "always", pool, epochHook: hook() }),
            ],
            [
              "parallel(inline)",
              new ParallelExecutor(init, { workers: 0, mode: "never", epochHook: hook() }),
            ],
            [
              "parallel(store-backed)",
              new ParallelExecutor(
                { height: 0n, stateRoot: u.genesis.stateRoot },
                { workers: 2, mode: "auto", pool, source: store, epochHook: hook() },
              ),
            ],
          ] as const) {
            const got = await runAll(ex, blocks);
            for (let i = 0; i < expected.length; i++) {
              assert.equal(diffResults(expected[i]!, got[i]!), null, `${name}, block ${i + 1}`);
            }
          }
          // The hook ran: the last block of each epoch wrote the snapshot of e+2 and meta e+1.
          const final = new Map(state);
          for (const r of expected)
            for (const w of r.writeSet) {
              const k = keyStr(w.key);
              if (w.value === null) final.delete(k);
              else final.set(k, w.value);
            }
          const st = new StakingStore({ read: (k) => final.get(k) ?? null, write: () => {} });
          const lastEnded = BigInt(Math.floor((blocks.length - 1) / 2));
          assert.equal(st.meta().epoch, lastEnded + 1n);
          assert.ok(st.snapshot(lastEnded + 2n) !== null, "the set of e+2 is persisted");
          elections++;
          for (const v of st.registry()) if (st.validator(v)?.status === 1) jails++;
        },
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    assert.ok(elections >= RUNS && jails > 0, `downtime jailing must happen (${jails})`);
  });
});
