// Projected accounts (issue 14): the pool keeps a sender's account through its commits (exact
// nonce, balance lower bound) instead of reading storage for its next transaction. Checked in both
// directions against a fake chain that executes by execution's nonce and fee rule: a projection
// never admits a nonce the chain consumed, never refuses the nonce the chain would take, and a
// balance that falls short is read again.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { gasOf } from "../../../src/exec/fees.js";
import {
  DelegateSchema,
  type SignedTx,
  StakingCallSchema,
  TxBodySchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import {
  type AccountState,
  Mempool,
  MempoolError,
  type MempoolErrorCode,
  type MempoolOpts,
} from "../../../src/mempool/index.js";
import { addressOf, toHex } from "../../../src/types/index.js";
import { CHAIN, countingVerifier, newKey, signedTx, type TestKey } from "./helpers.js";

const RICH = 10n ** 18n;

/** A chain whose state moves only when execute() runs a block, by applyTx's nonce and fee rule. */
function fakeChain() {
  const accounts = new Map<string, AccountState>();
  let lookups = 0;
  return {
    accounts,
    lookups: () => lookups,
    lookup: (a: Uint8Array): AccountState | null => {
      lookups++;
      return accounts.get(toHex(a)) ?? null;
    },
    fund(k: TestKey, balance: bigint, nonce = 0n) {
      accounts.set(k.addressHex, { nonce, balance });
    },
    /** src/exec/programs.ts applyTx for transfers: nonce, fee gasUsed × price, then the value. */
    execute(txs: readonly SignedTx[]) {
      for (const tx of txs) {
        const body = fromBinary(TxBodySchema, tx.body);
        const key = toHex(addressOf(body.sender));
        const a = accounts.get(key) ?? { nonce: 0n, balance: 0n };
        if (body.nonce !== a.nonce) continue;
        const call = body.call!.call;
        const fee = BigInt(gasOf(call)) * BigInt(body.fee);
        if (fee > a.balance) {
          accounts.set(key, { nonce: a.nonce + 1n, balance: 0n });
          continue;
        }
        let balance = a.balance - fee;
        if (call.case === "transfer" && BigInt(call.value.amount) <= balance) {
          balance -= BigInt(call.value.amount);
        }
        if (call.case === "staking" && call.value.call.case === "delegate") {
          balance -= BigInt(call.value.call.value.amount);
        }
        accounts.set(key, { nonce: a.nonce + 1n, balance });
      }
    },
  };
}

function chainPool(chain: ReturnType<typeof fakeChain>, over: Partial<MempoolOpts> = {}) {
  return new Mempool(
    {
      chainId: CHAIN,
      maxTxs: 1000,
      maxBytes: 1 << 22,
      maxPerSender: 100,
      maxTxBytes: 16 * 1024,
      maxNonceGap: 4,
      ...over,
    },
    { verifyTxs: countingVerifier().fn, account: chain.lookup, log: silentLogger() },
  );
}

/** A rich sender whose nonce 0 was admitted (one account read). */
async function firstAdmitted() {
  const chain = fakeChain();
  const mp = chainPool(chain);
  const k = newKey();
  chain.fund(k, RICH);
  const tx0 = signedTx(k, { nonce: 0n });
  await mp.add(tx0, "api");
  assert.equal(chain.lookups(), 1);
  return { chain, mp, k, tx0 };
}

/** firstAdmitted, then nonce 0 committed at height 1 and executed. */
async function firstCommitted() {
  const first = await firstAdmitted();
  commitAndExecute(first.mp, first.chain, [first.tx0], 1n);
  return first;
}

async function verdict(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    assert.ok(err instanceof MempoolError, String(err));
    return err.code;
  }
}

async function rejects(p: Promise<unknown>, code: MempoolErrorCode): Promise<void> {
  assert.equal(await verdict(p), code);
}

/** Commits `txs` at `height` and executes them (state, then markExecuted), as the node does. */
function commitAndExecute(
  mp: Mempool,
  chain: ReturnType<typeof fakeChain>,
  txs: readonly SignedTx[],
  height: bigint,
) {
  mp.removeCommitted(txs, height);
  chain.execute(txs);
  mp.markExecuted(height);
}

describe("projected accounts", () => {
  it("admits a sender's next transaction after its commit without a storage read", async () => {
    const { chain, mp, k } = await firstCommitted();
    assert.equal(mp.size, 0);
    // Before and after execution the projection says nonce 1: 0 is consumed, 1 is next.
    await rejects(mp.add(signedTx(k, { nonce: 0n, amount: "2" }), "api"), "BAD_NONCE");
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    await rejects(mp.add(signedTx(k, { nonce: 7n }), "api"), "NONCE_GAP");
    assert.equal(chain.lookups(), 1);
  });

  it("applies a commit the pool never admitted: the consumed nonce is refused, the next admitted", async () => {
    const { chain, mp, k } = await firstCommitted();
    // Another validator's block carries the sender's nonce 1, submitted there only.
    const foreign = signedTx(k, { nonce: 1n, amount: "5" });
    mp.removeCommitted([foreign], 2n);
    await rejects(mp.add(signedTx(k, { nonce: 1n }), "api"), "BAD_NONCE");
    chain.execute([foreign]);
    mp.markExecuted(2n);
    await rejects(mp.add(signedTx(k, { nonce: 1n }), "api"), "BAD_NONCE");
    await mp.add(signedTx(k, { nonce: 2n }), "api");
    assert.equal(chain.lookups(), 1);
  });

  it("does not refuse the nonce the chain would take after a committed tx that executes as BAD_NONCE", async () => {
    const { chain, mp, k } = await firstCommitted();
    // A block carries the sender's nonce 3 while the chain is at 1: execution takes nothing.
    commitAndExecute(mp, chain, [signedTx(k, { nonce: 3n })], 2n);
    assert.equal(chain.accounts.get(k.addressHex)!.nonce, 1n);
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    assert.deepEqual(
      mp.reap(10, 1 << 20).txs.map((t) => fromBinary(TxBodySchema, t.body).nonce),
      [1n],
    );
  });

  it("a re-included committed tx (DUPLICATE in execution) does not move the projection", async () => {
    const { chain, mp, k, tx0 } = await firstCommitted();
    commitAndExecute(mp, chain, [tx0], 2n);
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    await rejects(mp.add(signedTx(k, { nonce: 0n, amount: "3" }), "api"), "BAD_NONCE");
  });

  it("lowers the balance by each commit's cost and reads again when that falls short", async () => {
    const chain = fakeChain();
    const mp = chainPool(chain);
    const k = newKey();
    const cost = BigInt(gasOf(signedTxCall())) + 1n;
    chain.fund(k, 2n * cost);
    const tx0 = signedTx(k, { nonce: 0n });
    await mp.add(tx0, "api");
    commitAndExecute(mp, chain, [tx0], 1n);
    const tx1 = signedTx(k, { nonce: 1n });
    await mp.add(tx1, "api");
    commitAndExecute(mp, chain, [tx1], 2n);
    assert.equal(chain.lookups(), 1);
    // The projection is 0 now: nonce 2 costs a read, which finds nothing more and refuses it.
    await rejects(mp.add(signedTx(k, { nonce: 2n }), "api"), "INSUFFICIENT_FUNDS");
    assert.equal(chain.lookups(), 2);
    // Credited by someone else: the read finds it, and admits.
    chain.fund(k, cost, 2n);
    await mp.add(signedTx(k, { nonce: 2n }), "api");
    assert.equal(chain.lookups(), 3);
  });

  it("reads again after a staking call commits (it moves balance into stake beyond its cost)", async () => {
    const { chain, mp, k, tx0 } = await firstAdmitted();
    const stake = signedTx(k, {
      nonce: 1n,
      call: {
        case: "staking",
        value: create(StakingCallSchema, {
          call: {
            case: "delegate",
            value: create(DelegateSchema, { amount: (RICH - 10n ** 9n).toString() }),
          },
        }),
      },
    });
    await mp.add(stake, "api");
    commitAndExecute(mp, chain, [tx0, stake], 1n);
    const before = chain.lookups();
    // What is left (~10^9) does not cover a transfer of 2·10^9: refused on the balance read now.
    await rejects(
      mp.add(signedTx(k, { nonce: 2n, amount: (2n * 10n ** 9n).toString() }), "api"),
      "INSUFFICIENT_FUNDS",
    );
    assert.equal(chain.lookups(), before + 1);
  });

  it("a projection taken by an admission whose sender commits meanwhile is taken again, current", async () => {
    const chain = fakeChain();
    let gate: (() => void) | null = null;
    let gated = false;
    const verifier = countingVerifier();
    const mp = new Mempool(
      { chainId: CHAIN, maxTxs: 100, maxBytes: 1 << 20, maxPerSender: 10, maxTxBytes: 4096, maxNonceGap: 4 },
      {
        verifyTxs: async (txs) => {
          if (gated) await new Promise<void>((r) => (gate = r));
          return verifier.fn(txs);
        },
        account: chain.lookup,
        log: silentLogger(),
      },
    );
    const k = newKey();
    chain.fund(k, RICH);
    const tx0 = signedTx(k, { nonce: 0n });
    await mp.add(tx0, "api");
    commitAndExecute(mp, chain, [tx0], 1n);
    gated = true;
    // Nonce 1 from the API, checked against the projection (next 1) and sent to verify ...
    const pending = verdict(mp.add(signedTx(k, { nonce: 1n, amount: "4" }), "api"));
    for (let i = 0; i < 500 && gate === null; i++) await new Promise((r) => setTimeout(r, 2));
    assert.ok(gate !== null, "the verifier was never called");
    // ... while another validator's nonce 1 of the sender commits.
    commitAndExecute(mp, chain, [signedTx(k, { nonce: 1n })], 2n);
    gated = false;
    (gate as () => void)();
    assert.equal(await pending, "BAD_NONCE");
    await mp.add(signedTx(k, { nonce: 2n }), "api");
    assert.equal(chain.lookups(), 1);
  });

  it("starts no projection from a read taken while one of the sender's commits awaits execution", async () => {
    // That read predates the commit's debit: kept through the execution as if exact, its balance
    // would admit what the sender can no longer pay.
    const chain = fakeChain();
    const mp = chainPool(chain, { maxIdleAccounts: 1 });
    const [k, other] = [newKey(), newKey()];
    const cost = BigInt(gasOf(signedTxCall())) + 1n;
    chain.fund(k, 3n * cost);
    chain.fund(other, RICH);
    const tx0 = signedTx(k, { nonce: 0n });
    await mp.add(tx0, "api");
    mp.removeCommitted([tx0], 1n);
    // Another sender's commit pushes k's projection out of the idle LRU (capacity 1).
    const o0 = signedTx(other, { nonce: 0n });
    await mp.add(o0, "api");
    mp.removeCommitted([o0], 2n);
    // k's next tx reads the account: nonce 0 and the whole balance, tx0 not yet executed.
    const before = chain.lookups();
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    assert.equal(chain.lookups(), before + 1);
    chain.execute([tx0, o0]);
    mp.markExecuted(2n);
    // 2 × cost are left; tx1 pending takes one: nonce 2 must be refused (read again), not
    // admitted on the stale 3 × cost.
    await rejects(mp.add(signedTx(k, { nonce: 2n, amount: "2" }), "api"), "INSUFFICIENT_FUNDS");
    assert.equal(chain.lookups(), before + 2);
  });

  it("a read overtaken by other senders' commits is kept (no second read); one overtaken by its own is read again", async () => {
    const chain = fakeChain();
    let gate: (() => void) | null = null;
    let gated = false;
    const mp = new Mempool(
      { chainId: CHAIN, maxTxs: 100, maxBytes: 1 << 20, maxPerSender: 10, maxTxBytes: 4096, maxNonceGap: 4 },
      {
        verifyTxs: countingVerifier().fn,
        account: async (a) => {
          const seen = chain.lookup(a);
          if (gated) await new Promise<void>((r) => (gate = r));
          return seen;
        },
        log: silentLogger(),
      },
    );
    const [k, other] = [newKey(), newKey()];
    chain.fund(k, RICH);
    chain.fund(other, RICH);
    const o0 = signedTx(other, { nonce: 0n });
    await mp.add(o0, "api");
    const waitGate = async () => {
      for (let i = 0; i < 500 && gate === null; i++) await new Promise((r) => setTimeout(r, 2));
      assert.ok(gate !== null, "the lookup was never made");
      gated = false;
      const g = gate as () => void;
      gate = null;
      g();
    };
    // k's first read is out while another sender's tx commits and executes.
    gated = true;
    const first = mp.add(signedTx(k, { nonce: 0n }), "api");
    for (let i = 0; i < 500 && gate === null; i++) await new Promise((r) => setTimeout(r, 2));
    commitAndExecute(mp, chain, [o0], 1n);
    await waitGate();
    await first;
    assert.equal(chain.lookups(), 2, "one read for other, one for k: k's was not read again");
    // It became k's projection: after its commit, k's next tx costs no read.
    const k0 = mp.reap(10, 1 << 20).txs;
    commitAndExecute(mp, chain, k0, 2n);
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    assert.equal(chain.lookups(), 2);
    // A read of a new sender overtaken by that sender's own commit (its tx sent elsewhere) is read again.
    const n = newKey();
    chain.fund(n, RICH);
    gated = true;
    const late = verdict(mp.add(signedTx(n, { nonce: 0n, amount: "3" }), "api"));
    for (let i = 0; i < 500 && gate === null; i++) await new Promise((r) => setTimeout(r, 2));
    commitAndExecute(mp, chain, [signedTx(n, { nonce: 0n })], 3n);
    await waitGate();
    assert.equal(await late, "BAD_NONCE");
    assert.equal(chain.lookups(), 4, "n was read twice");
  });

  it("with maxIdleAccounts 0, reads the account again after every commit of its sender", async () => {
    const chain = fakeChain();
    const mp = chainPool(chain, { maxIdleAccounts: 0 });
    const k = newKey();
    chain.fund(k, RICH);
    for (let n = 0n; n < 3n; n++) {
      const tx = signedTx(k, { nonce: n });
      await mp.add(tx, "api");
      commitAndExecute(mp, chain, [tx], n + 1n);
    }
    assert.equal(chain.lookups(), 3);
  });

  it("keeps at most maxIdleAccounts idle senders (least recently used go first)", async () => {
    const chain = fakeChain();
    const mp = chainPool(chain, { maxIdleAccounts: 2 });
    const keys = [newKey(), newKey(), newKey()];
    let h = 0n;
    for (const k of keys) {
      chain.fund(k, RICH);
      const tx = signedTx(k, { nonce: 0n });
      await mp.add(tx, "api");
      commitAndExecute(mp, chain, [tx], ++h);
    }
    assert.equal(chain.lookups(), 3);
    // keys[0] was evicted: its next tx reads; keys[2] still has its projection.
    await mp.add(signedTx(keys[2]!, { nonce: 1n }), "api");
    assert.equal(chain.lookups(), 3);
    await mp.add(signedTx(keys[0]!, { nonce: 1n }), "api");
    assert.equal(chain.lookups(), 4);
  });

  it("gives the same verdicts as reading the account each time, over random commits and executions", async () => {
    // Differential: `proj` keeps projections, `legacy` (maxIdleAccounts 0) reads after every
    // commit. Same submissions, same blocks (reaped from proj, plus foreign txs with gaps and
    // re-inclusions), same executions in lagging batches. Every verdict must agree and both pools
    // must reap the same transactions; proj must read less (it reads again where a projection
    // cannot follow: a foreign tx that executes as BAD_NONCE, a poor sender's short balance, a read
    // while one of the sender's commits awaits execution).
    let seed = 0x5eed_c26;
    const rand = (n: number) => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return seed % n;
    };
    const chainP = fakeChain();
    const chainL = fakeChain();
    const proj = chainPool(chainP);
    const legacy = chainPool(chainL, { maxIdleAccounts: 0 });
    const cost = BigInt(gasOf(signedTxCall())) + 1n;
    const keys = Array.from({ length: 6 }, () => newKey());
    keys.forEach((k, i) => {
      // Two poor senders (a few transfers' worth), the rest rich.
      const balance = i < 2 ? 3n * cost + 1n : RICH;
      chainP.fund(k, balance);
      chainL.fund(k, balance);
    });
    /** The next nonce once every committed block has executed. */
    const committedNext = new Map<string, bigint>(keys.map((k) => [k.addressHex, 0n]));
    let height = 0n;
    let executed = 0n;
    const unexecuted: { height: bigint; txs: SignedTx[] }[] = [];
    let verdicts = 0;
    for (let step = 0; step < 600; step++) {
      const op = rand(10);
      if (op < 6) {
        const k = keys[rand(keys.length)]!;
        const nonce = committedNext.get(k.addressHex)! + BigInt(rand(8)) - 2n;
        if (nonce < 0n) continue;
        const tx = signedTx(k, { nonce, amount: String(rand(3)) });
        const [a, b] = await Promise.all([verdict(proj.add(tx, "api")), verdict(legacy.add(tx, "api"))]);
        assert.equal(a, b, `step ${step}: nonce ${nonce} of sender ${keys.indexOf(k)}`);
        // Never admits a nonce the committed blocks consume.
        if (a === "ok")
          assert.ok(nonce >= committedNext.get(k.addressHex)!, `step ${step}: stale nonce admitted`);
        verdicts++;
      } else if (op < 8) {
        const block = proj.reap(1 + rand(4), 1 << 20, height + 1n).txs;
        if (rand(3) === 0) {
          // A foreign tx: the sender's next committed nonce, a gap past it, or a stale one.
          const k = keys[rand(keys.length)]!;
          const next = committedNext.get(k.addressHex)!;
          const nonce = [next, next + 2n, next > 0n ? next - 1n : next][rand(3)]!;
          block.push(signedTx(k, { nonce, amount: "0" }));
        }
        if (block.length === 0) continue;
        height++;
        proj.removeCommitted(block, height);
        legacy.removeCommitted(block, height);
        unexecuted.push({ height, txs: block });
        // The nonce the chain will be at: execution's rule over the block, in order.
        for (const tx of block) {
          const body = fromBinary(TxBodySchema, tx.body);
          const key = toHex(addressOf(body.sender));
          if (body.nonce === committedNext.get(key)) committedNext.set(key, body.nonce + 1n);
        }
      } else {
        // Execution catches up by one or more heights.
        for (let n = 1 + rand(2); n > 0 && unexecuted.length > 0; n--) {
          const b = unexecuted.shift()!;
          chainP.execute(b.txs);
          chainL.execute(b.txs);
          executed = b.height;
          proj.markExecuted(executed);
          legacy.markExecuted(executed);
        }
      }
      assert.deepEqual(
        proj
          .reap(1000, 1 << 22, height + 1n)
          .hashes.map(toHex)
          .sort(),
        legacy
          .reap(1000, 1 << 22, height + 1n)
          .hashes.map(toHex)
          .sort(),
        `step ${step}: the pools hold different executable txs`,
      );
    }
    assert.ok(verdicts > 200);
    assert.ok(height > 50n);
    assert.ok(
      chainP.lookups() < chainL.lookups(),
      `projections read ${chainP.lookups()} times, reads after each commit ${chainL.lookups()}`,
    );
  });
});

function signedTxCall() {
  return fromBinary(TxBodySchema, signedTx(newKey()).body).call!.call;
}
