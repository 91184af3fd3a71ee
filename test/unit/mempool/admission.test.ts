// Paid, bounded admission (issue 10): funded senders, fee fields, u128 amounts, the gapped-nonce
// window and TTL, eviction order, and the two admission rate limits.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { statusForCode } from "../../../src/api/errors.js";
import { U128_MAX } from "../../../src/exec/codec.js";
import { GAS, gasOf } from "../../../src/exec/fees.js";
import { AmmSwapSchema, ComputeWorkSchema, KvPutSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import {
  type AccountState,
  Mempool,
  MempoolError,
  type MempoolErrorCode,
  type MempoolOpts,
  type PoolTx,
} from "../../../src/mempool/index.js";
import { CHAIN, countingVerifier, newKey, signedTx, type TestKey } from "./helpers.js";

const TRANSFER_GAS = BigInt(GAS.base + GAS.transfer);

function paidPool(over: Partial<MempoolOpts> = {}) {
  const accounts = new Map<string, AccountState>();
  let lookups = 0;
  let clock = 1_000_000;
  const verifier = countingVerifier();
  const mp = new Mempool(
    {
      chainId: CHAIN,
      maxTxs: 1000,
      maxBytes: 1 << 20,
      maxPerSender: 100,
      maxTxBytes: 16 * 1024,
      maxNonceGap: 16,
      gappedTtlMs: 10_000,
      ...over,
    },
    {
      verifyTxs: verifier.fn,
      account: (a) => {
        lookups++;
        return accounts.get(Buffer.from(a).toString("hex")) ?? null;
      },
      now: () => clock,
      log: silentLogger(),
    },
  );
  const fund = (k: TestKey, balance: bigint, nonce = 0n) => accounts.set(k.addressHex, { nonce, balance });
  return {
    mp,
    verifier,
    fund,
    accounts,
    lookups: () => lookups,
    advance: (ms: number) => {
      clock += ms;
    },
    now: () => clock,
  };
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

const RICH = 10n ** 18n;

describe("paid admission: accounts and funds", () => {
  it("refuses a sender with no account as UNKNOWN_ACCOUNT", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    await rejects(mp.add(signedTx(k), "api"), "UNKNOWN_ACCOUNT");
    fund(k, RICH);
    await mp.add(signedTx(k), "api");
    assert.equal(mp.size, 1);
  });

  it("refuses unfunded, too-poor and far-future spam before spending a signature check on it", async () => {
    const { mp, fund, verifier } = paidPool();
    const [nobody, poor, rich] = [newKey(), newKey(), newKey()];
    fund(poor, 10n);
    fund(rich, RICH);
    const res = await mp.addBatch(
      [signedTx(nobody), signedTx(poor), signedTx(rich, { nonce: 100n }), signedTx(rich, { nonce: 0n })],
      "peer",
    );
    assert.deepEqual(
      res.map((r) => (r.ok ? "ok" : r.error.code)),
      ["UNKNOWN_ACCOUNT", "INSUFFICIENT_FUNDS", "NONCE_GAP", "ok"],
    );
    assert.deepEqual(verifier.calls, [1]);
  });

  it("needs the balance to cover gasLimit × price + the transferred amount", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    // price 1, gas 1500, amount 100: cost 1600.
    fund(k, 1599n);
    const e = await rejects(mp.add(signedTx(k, { amount: "100" }), "api"), "INSUFFICIENT_FUNDS");
    assert.equal(e.detail.expected, (TRANSFER_GAS + 100n).toString());
    fund(k, 1600n);
    await mp.add(signedTx(k, { amount: "100" }), "api");
  });

  it("counts the sender's other pending transactions against its balance", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    fund(k, 2n * TRANSFER_GAS + 2n);
    await mp.add(signedTx(k, { nonce: 0n, amount: "1" }), "api");
    await mp.add(signedTx(k, { nonce: 1n, amount: "1" }), "api");
    await rejects(mp.add(signedTx(k, { nonce: 2n, amount: "0" }), "api"), "INSUFFICIENT_FUNDS");
    // Gapped transactions count too: they would be paid for once the gap fills.
    await rejects(mp.add(signedTx(k, { nonce: 9n, amount: "0" }), "api"), "INSUFFICIENT_FUNDS");
  });

  it("prices a higher gas price and a larger gas limit into the cost", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    fund(k, 3n * 2000n);
    await rejects(
      mp.add(signedTx(k, { fee: "3", gasLimit: 2001n, amount: "0" }), "api"),
      "INSUFFICIENT_FUNDS",
    );
    await mp.add(signedTx(k, { fee: "3", gasLimit: 2000n, amount: "0" }), "api");
    assert.equal(mp.size, 1);
  });

  it("charges an amm swap's amount_in only when it spends the native token (a_to_b)", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    const gas = BigInt(GAS.base + GAS.ammSwap);
    fund(k, gas + 10n);
    const swap = (aToB: boolean, amountIn: string) => ({
      case: "ammSwap" as const,
      value: create(AmmSwapSchema, { pool: "p", aToB, amountIn, minAmountOut: "1" }),
    });
    await rejects(mp.add(signedTx(k, { call: swap(true, "11") }), "api"), "INSUFFICIENT_FUNDS");
    // b_to_a pays from the pool holding, not the balance: only the fee counts.
    await mp.add(signedTx(k, { nonce: 0n, call: swap(false, "1000000") }), "api");
    assert.equal(mp.size, 1);
  });

  it("makes compute.work pay for its iterations", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    const call = { case: "compute" as const, value: create(ComputeWorkSchema, { iterations: 1_000_000 }) };
    const gas = BigInt(gasOf(call));
    assert.equal(gas, BigInt(GAS.base + GAS.computePerIteration * 1_000_000));
    fund(k, gas - 1n);
    await rejects(mp.add(signedTx(k, { call }), "api"), "INSUFFICIENT_FUNDS");
    fund(k, gas);
    await mp.add(signedTx(k, { call }), "api");
  });
});

describe("paid admission: fee fields and amounts", () => {
  it("refuses a malformed gas price as BAD_FEE and one below the minimum as FEE_TOO_LOW", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    fund(k, RICH);
    for (const fee of ["x", "-1", "1.5", "01", " 1", `${U128_MAX + 1n}`]) {
      await rejects(mp.add(signedTx(k, { fee }), "api"), "BAD_FEE");
    }
    for (const fee of ["", "0"]) await rejects(mp.add(signedTx(k, { fee }), "api"), "FEE_TOO_LOW");
    assert.equal(mp.size, 0);
  });

  it("needs a nonzero gas limit that covers gasOf(call)", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    fund(k, RICH);
    const put = {
      case: "kvPut" as const,
      value: create(KvPutSchema, { key: new Uint8Array(10), value: new Uint8Array(100) }),
    };
    const need = BigInt(gasOf(put));
    assert.equal(need, BigInt(GAS.base + GAS.kvPut + GAS.perByte * 110));
    await rejects(mp.add(signedTx(k, { call: put, gasLimit: 0n }), "api"), "GAS_LIMIT_TOO_LOW");
    const e = await rejects(
      mp.add(signedTx(k, { call: put, gasLimit: need - 1n }), "api"),
      "GAS_LIMIT_TOO_LOW",
    );
    assert.equal(e.detail.expected, need.toString());
    await mp.add(signedTx(k, { call: put, gasLimit: need }), "api");
  });

  it("bounds amounts to u128 (the 2^200 transfer) and refuses non-decimal amounts", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    fund(k, U128_MAX);
    await rejects(mp.add(signedTx(k, { amount: (1n << 200n).toString() }), "api"), "AMOUNT_OUT_OF_RANGE");
    await rejects(mp.add(signedTx(k, { amount: (U128_MAX + 1n).toString() }), "api"), "AMOUNT_OUT_OF_RANGE");
    await rejects(mp.add(signedTx(k, { amount: "9".repeat(5000) }), "api"), "AMOUNT_OUT_OF_RANGE");
    await rejects(mp.add(signedTx(k, { amount: "0x10" }), "api"), "MALFORMED");
    await rejects(mp.add(signedTx(k, { amount: "" }), "api"), "MALFORMED");
    // The value fits, but fee + value does not.
    await rejects(mp.add(signedTx(k, { amount: U128_MAX.toString() }), "api"), "AMOUNT_OUT_OF_RANGE");
    await rejects(
      mp.add(signedTx(k, { amount: "0", fee: U128_MAX.toString(), gasLimit: 2000n }), "api"),
      "AMOUNT_OUT_OF_RANGE",
    );
    const swap = {
      case: "ammSwap" as const,
      value: create(AmmSwapSchema, { pool: "p", aToB: false, amountIn: "1", minAmountOut: `${1n << 129n}` }),
    };
    await rejects(mp.add(signedTx(k, { call: swap }), "api"), "AMOUNT_OUT_OF_RANGE");
    assert.equal(mp.size, 0);
  });

  it("maps every admission code to a gRPC status", () => {
    const expected: [MempoolErrorCode, status][] = [
      ["CONNECTION_RATE_LIMITED", status.RESOURCE_EXHAUSTED],
      ["SENDER_RATE_LIMITED", status.RESOURCE_EXHAUSTED],
      ["BAD_FEE", status.INVALID_ARGUMENT],
      ["FEE_TOO_LOW", status.INVALID_ARGUMENT],
      ["GAS_LIMIT_TOO_LOW", status.INVALID_ARGUMENT],
      ["AMOUNT_OUT_OF_RANGE", status.OUT_OF_RANGE],
      ["UNKNOWN_ACCOUNT", status.FAILED_PRECONDITION],
      ["INSUFFICIENT_FUNDS", status.FAILED_PRECONDITION],
    ];
    for (const [code, s] of expected) assert.equal(statusForCode(code), s, code);
  });
});

describe("gapped nonces", () => {
  it("accepts at most maxNonceGap past the sender's pending nonce", async () => {
    const { mp, fund } = paidPool({ maxNonceGap: 16 });
    const k = newKey();
    fund(k, RICH, 5n);
    await rejects(mp.add(signedTx(k, { nonce: 22n }), "api"), "NONCE_GAP");
    await mp.add(signedTx(k, { nonce: 21n }), "api");
    // A contiguous run moves the window: 5..9 pending, so up to 10 + 16 is accepted.
    for (let n = 5n; n < 10n; n++) await mp.add(signedTx(k, { nonce: n }), "api");
    await mp.add(signedTx(k, { nonce: 26n }), "api");
    await rejects(mp.add(signedTx(k, { nonce: 27n }), "api"), "NONCE_GAP");
    assert.equal(mp.gappedCount, 2);
    assert.equal(mp.pendingExecutable(), 5);
  });

  it("announces (gossips) a gapped transaction only once it becomes executable", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    fund(k, RICH);
    const seen: PoolTx[] = [];
    mp.onAdmitted((txs) => seen.push(...txs));
    await mp.add(signedTx(k, { nonce: 2n }), "api");
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    assert.equal(seen.length, 0);
    await mp.add(signedTx(k, { nonce: 0n }), "api");
    assert.deepEqual(
      seen.map((t) => t.nonce),
      [0n, 1n, 2n],
    );
    assert.equal(mp.gappedCount, 0);
  });

  it("announces transactions a commit made executable", async () => {
    const { mp, fund } = paidPool();
    const k = newKey();
    fund(k, RICH);
    const seen: bigint[] = [];
    mp.onAdmitted((txs) => seen.push(...txs.map((t) => t.nonce)));
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    // Nonce 0 was committed through another node's block.
    mp.removeCommitted([signedTx(k, { nonce: 0n })], 1n);
    assert.deepEqual(seen, [1n]);
    assert.equal(mp.pendingExecutable(), 1);
  });

  it("expires gapped transactions after the TTL, never executable ones", async () => {
    const { mp, fund, advance, now } = paidPool({ gappedTtlMs: 10_000 });
    const k = newKey();
    fund(k, RICH);
    await mp.add(signedTx(k, { nonce: 0n }), "api");
    await mp.add(signedTx(k, { nonce: 3n }), "api");
    advance(5_000);
    await mp.add(signedTx(k, { nonce: 5n }), "api");
    assert.equal(mp.expireGapped(now()), 0);
    advance(5_000);
    assert.equal(mp.expireGapped(now()), 1);
    assert.equal(mp.size, 2);
    advance(5_000);
    assert.equal(mp.expireGapped(now()), 1);
    assert.equal(mp.size, 1);
    assert.equal(mp.pendingExecutable(), 1);
    advance(60_000);
    assert.equal(mp.expireGapped(now()), 0);
    // The expired nonces are free again.
    await mp.add(signedTx(k, { nonce: 3n, amount: "2" }), "api");
  });
});

describe("eviction when full", () => {
  it("evicts gapped transactions first to admit an executable one", async () => {
    const { mp, fund } = paidPool({ maxTxs: 3 });
    const spam = newKey();
    const honest = newKey();
    fund(spam, RICH);
    fund(honest, RICH);
    for (const n of [1n, 2n, 3n]) await mp.add(signedTx(spam, { nonce: n }), "api");
    assert.equal(mp.gappedCount, 3);
    await mp.add(signedTx(honest, { nonce: 0n }), "api");
    await mp.add(signedTx(honest, { nonce: 1n }), "api");
    assert.equal(mp.size, 3);
    assert.equal(mp.gappedCount, 1);
    assert.equal(mp.pendingExecutable(), 2);
  });

  it("a gapped newcomer evicts nothing", async () => {
    const { mp, fund } = paidPool({ maxTxs: 2 });
    const a = newKey();
    const b = newKey();
    fund(a, RICH);
    fund(b, RICH);
    await mp.add(signedTx(a, { nonce: 5n }), "api");
    await mp.add(signedTx(a, { nonce: 0n }), "api");
    const e = await rejects(mp.add(signedTx(b, { nonce: 3n, fee: "100" }), "api"), "MEMPOOL_FULL");
    assert.equal(e.detail.reason, "txs");
    assert.equal(mp.size, 2);
  });

  it("evicts the lowest-fee executable tail, never a higher-fee one or one in flight", async () => {
    const { mp, fund } = paidPool({ maxTxs: 3 });
    const [a, b, c, d] = [newKey(), newKey(), newKey(), newKey()];
    for (const k of [a, b, c, d]) fund(k, RICH);
    await mp.add(signedTx(a, { nonce: 0n, fee: "5" }), "api");
    await mp.add(signedTx(b, { nonce: 0n, fee: "2" }), "api");
    await mp.add(signedTx(c, { nonce: 0n, fee: "3" }), "api");
    // Equal or lower price than the cheapest: refused.
    await rejects(mp.add(signedTx(d, { nonce: 0n, fee: "2" }), "api"), "MEMPOOL_FULL");
    // Higher: the fee-2 transaction goes.
    await mp.add(signedTx(d, { nonce: 0n, fee: "4" }), "api");
    const prices = () => [...mp.reap(10, 1 << 20).hashes].map((h) => mp.get(h)!.price).sort();
    assert.deepEqual(prices(), [3n, 4n, 5n]);
    // The fee-3 one is proposed (in flight): a fee-10 newcomer may only take the fee-4 one.
    const r = mp.reap(10, 1 << 20);
    const cHash = r.hashes.find((h) => mp.get(h)!.price === 3n)!;
    mp.markProposed([cHash]);
    const e = newKey();
    fund(e, RICH);
    await mp.add(signedTx(e, { nonce: 0n, fee: "10" }), "api");
    assert.ok(mp.has(cHash));
    assert.deepEqual(
      [...mp.reap(10, 1 << 20).hashes].map((h) => mp.get(h)!.price).sort((x, y) => Number(x - y)),
      [5n, 10n],
    );
    // Left: fee 5, fee 3 (in flight), fee 10. Nothing evictable is below 4.
    const f = newKey();
    fund(f, RICH);
    await rejects(mp.add(signedTx(f, { nonce: 0n, fee: "4" }), "api"), "MEMPOOL_FULL");
  });

  it("evicts from the end of a sender's run, so no nonce gap opens in front of executable txs", async () => {
    const { mp, fund } = paidPool({ maxTxs: 3 });
    const [a, b] = [newKey(), newKey()];
    fund(a, RICH);
    fund(b, RICH);
    for (const n of [0n, 1n, 2n]) await mp.add(signedTx(a, { nonce: n }), "api");
    await mp.add(signedTx(b, { nonce: 0n, fee: "2" }), "api");
    assert.deepEqual(
      [...mp.reap(10, 1 << 20).txs].length,
      3,
      "a's nonce 2 was evicted; 0 and 1 stay executable",
    );
    assert.equal(mp.gappedCount, 0);
  });
});

describe("admission rate limits", () => {
  it("limits API submissions per connection with CONNECTION_RATE_LIMITED", async () => {
    const { mp, fund, advance } = paidPool({ connectionRate: { perSecond: 2, burst: 3 } });
    const k = newKey();
    fund(k, RICH);
    for (let n = 0n; n < 3n; n++) await mp.add(signedTx(k, { nonce: n }), "api", { peer: "ipv4:1.2.3.4:5" });
    await rejects(
      mp.add(signedTx(k, { nonce: 3n }), "api", { peer: "ipv4:1.2.3.4:5" }),
      "CONNECTION_RATE_LIMITED",
    );
    // Another connection, and gossip, are not limited by it.
    await mp.add(signedTx(k, { nonce: 3n }), "api", { peer: "ipv4:1.2.3.4:6" });
    await mp.add(signedTx(k, { nonce: 4n }), "peer", { peer: "ipv4:1.2.3.4:5" });
    advance(500);
    await mp.add(signedTx(k, { nonce: 5n }), "api", { peer: "ipv4:1.2.3.4:5" });
  });

  it("limits API submissions per sender with SENDER_RATE_LIMITED, after the signature check", async () => {
    const { mp, fund, advance } = paidPool({ senderRate: { perSecond: 1, burst: 2 } });
    const [a, b] = [newKey(), newKey()];
    fund(a, RICH);
    fund(b, RICH);
    // Forged transactions in a's name do not spend a's budget.
    for (let i = 0; i < 5; i++) {
      const forged = signedTx(a, { nonce: 0n });
      forged.signature = new Uint8Array(64).fill(i + 1);
      await rejects(mp.add(forged, "api"), "BAD_SIGNATURE");
    }
    await mp.add(signedTx(a, { nonce: 0n }), "api");
    await mp.add(signedTx(a, { nonce: 1n }), "api");
    await rejects(mp.add(signedTx(a, { nonce: 2n }), "api"), "SENDER_RATE_LIMITED");
    await mp.add(signedTx(b, { nonce: 0n }), "api");
    // Gossip is not limited per sender (the origin node limited it).
    await mp.add(signedTx(a, { nonce: 2n }), "peer");
    advance(1_000);
    await mp.add(signedTx(a, { nonce: 3n }), "api");
  });
});

describe("account reads", () => {
  it("reuses a pending sender's account until one of its transactions commits", async () => {
    // Without projections (maxIdleAccounts 0); with them the commit keeps it too (projection.test.ts).
    const { mp, fund, lookups } = paidPool({ maxIdleAccounts: 0 });
    const k = newKey();
    fund(k, RICH);
    const tx0 = signedTx(k, { nonce: 0n });
    await mp.add(tx0, "api");
    assert.equal(lookups(), 1);
    for (let n = 1n; n < 5n; n++) await mp.add(signedTx(k, { nonce: n }), "api");
    assert.equal(lookups(), 1);
    mp.removeCommitted([tx0], 1n);
    await mp.add(signedTx(k, { nonce: 5n }), "api");
    assert.equal(lookups(), 2);
  });

  it("reads again when the cached balance falls short (the sender was credited)", async () => {
    const { mp, fund, lookups } = paidPool();
    const k = newKey();
    fund(k, TRANSFER_GAS + 1n);
    await mp.add(signedTx(k, { nonce: 0n }), "api");
    await rejects(mp.add(signedTx(k, { nonce: 1n }), "api"), "INSUFFICIENT_FUNDS");
    fund(k, RICH);
    await mp.add(signedTx(k, { nonce: 1n }), "api");
    assert.equal(lookups(), 3);
  });
});
