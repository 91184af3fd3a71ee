// Issue 13's hot path must not change results: the transfer fast path (applyTxFast) against the
// generic frame (applyTx) on every edge a transfer has, and blocks handed over pre-decoded (the
// node reuses the mempool's bodies) against the same blocks decoded by execution.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { StateCache } from "../../../src/exec/cache.js";
import { accountSmallInto, consumedSmallInto, keyStr, StateValue } from "../../../src/exec/codec.js";
import { buildGenesis } from "../../../src/exec/genesis.js";
import { ParallelExecutor } from "../../../src/exec/parallel.js";
import {
  applyTx,
  decodeTx,
  type FeeTotal,
  feeSum,
  newFeeTotal,
  type StateView,
} from "../../../src/exec/programs.js";
import { hashBody, initFromResult, ReferenceExecutor, stateMap } from "../../../src/exec/reference.js";
import { buildResultFromStage, outcomesOf, writeSetLogOf } from "../../../src/exec/result.js";
import { applyTxFast, transferArena } from "../../../src/exec/transfer.js";
import type { ExecutableBlock } from "../../../src/exec/types.js";
import {
  buildTx,
  computeTx,
  genesisFor,
  kvPutTx,
  makeAccounts,
  NonceBook,
  Rng,
  swapTx,
  transferTx,
} from "../../../src/exec/workload.js";
import { WriteStage } from "../../../src/exec/writeStage.js";
import {
  type SignedTx,
  SignedTxSchema,
  TxBodySchema,
  TxStatus,
} from "../../../src/gen/parabft/v1/types_pb.js";
import {
  encodeBlockReceipts,
  encodeReceipts,
  encodeWriteSetLog,
  type ReceiptsScratch,
} from "../../../src/storage/execLog.js";
import { accountKey } from "../../../src/types/stateKeys.js";
import { hashedBlock } from "./helpers.js";

const accts = makeAccounts(4, 13);
const [alice, bob, carol] = accts as [(typeof accts)[0], (typeof accts)[0], (typeof accts)[0]];
const U128_MAX = (1n << 128n) - 1n;

const transfer = (to: Uint8Array, amount: string) => ({
  case: "transfer" as const,
  value: { $typeName: "parabft.v1.BankTransfer" as const, to, amount },
});

/** Runs one tx through both paths over copies of the same state; returns both outcomes and writes. */
function both(tx: SignedTx, state: Map<string, Uint8Array | null>) {
  const run = (f: typeof applyTx) => {
    const s = new Map(state);
    const writes: [string, Uint8Array | null][] = [];
    const view: StateView = {
      get: (k) => s.get(k) ?? null,
      set: (k, v) => {
        s.set(k, v);
        // The bytes at this write (the hot path rewrites its own values in place later), as a
        // plain Uint8Array (the hot path's values are codec.StateValues).
        writes.push([k, v === null ? null : new Uint8Array(v)]);
      },
    };
    const fees: FeeTotal = newFeeTotal();
    const d = decodeTx(tx.body, hashBody(tx.body));
    assert.ok(d);
    const o = f(view, d, fees);
    // As a receipt reads it (a hot-path success is a TransferOk whose event is built on read).
    const outcome = { status: o.status, gasUsed: o.gasUsed, error: o.error, events: o.events };
    // Last value wins: the write set a block would get.
    const final = new Map(writes);
    return {
      outcome,
      writes: [...final].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      fees: feeSum(fees),
    };
  };
  return { slow: run(applyTx), fast: run(applyTxFast), arena: runArena(tx, state) };
}

/**
 * The inline path as applyInline runs it (round 16 holds the arena's implementation of the
 * transfer checks to the same cases): transferArena on a StateCache's arena, staging into a
 * WriteStage, and applyTxFast on a view of the cache when it refuses. `inArena` says which ran.
 */
function runArena(tx: SignedTx, state: Map<string, Uint8Array | null>) {
  const cache = new StateCache(null);
  for (const [k, v] of state) cache.seed(k, v);
  const stage = new WriteStage();
  const writes: [string, Uint8Array | null][] = [];
  const view: StateView = {
    get: (k) => cache.peek(k) ?? null,
    set: (k, v) => {
      cache.seed(k, v);
      writes.push([k, v === null ? null : new Uint8Array(v)]);
    },
  };
  const fees: FeeTotal = newFeeTotal();
  const d = decodeTx(tx.body, hashBody(tx.body));
  assert.ok(d);
  let o = transferArena(cache.arena, d, fees, stage);
  const inArena = o !== null;
  if (o === null) o = applyTxFast(view, d, fees);
  if (inArena) assert.equal(writes.length, 0, "the arena path wrote through the view");
  for (const w of buildResultFromStage(1n, new Uint8Array(32), stage, []).writeSet) {
    writes.push([keyStr(w.key), w.value === null ? null : new Uint8Array(w.value)]);
  }
  const outcome = { status: o.status, gasUsed: o.gasUsed, error: o.error, events: o.events };
  const final = new Map(writes);
  return {
    outcome,
    writes: [...final].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    fees: feeSum(fees),
    inArena,
  };
}

describe("transfer hot path (applyTxFast) equals the generic frame (applyTx)", () => {
  const genesis = buildGenesis(genesisFor(accts, 10_000n));
  const base = stateMap(genesis.writeSet);
  const rich = new Map(base);
  // carol holds almost u128 max: crediting her overflows.
  const richGenesis = buildGenesis({
    pools: [],
    accounts: [{ address: carol.address, balance: U128_MAX - 5n, holdings: {} }],
  });
  for (const w of richGenesis.writeSet) rich.set(keyStr(w.key), w.value);
  const wr = (a: Uint8Array) => accountKey(a);
  const cases: [string, SignedTx, Map<string, Uint8Array | null>][] = [
    ["ok", transferTx(alice, 0n, bob.address, 10n), base],
    ["ok, zero price", transferTx(alice, 0n, bob.address, 10n, 0n), base],
    ["ok, high price", transferTx(alice, 0n, bob.address, 10n, 3n), base],
    ["to oneself", transferTx(alice, 0n, alice.address, 10n), base],
    ["insufficient funds", transferTx(alice, 0n, bob.address, 9_000n), base],
    ["insufficient fee", transferTx(alice, 0n, bob.address, 1n, 100n), base],
    ["bad nonce (high)", transferTx(alice, 5n, bob.address, 1n), base],
    ["overflow at the recipient", transferTx(alice, 0n, carol.address, 10n), rich],
    [
      "recipient not declared",
      buildTx({ sender: alice, nonce: 0n, call: transfer(bob.address, "1"), writes: [wr(alice.address)] }),
      base,
    ],
    [
      "recipient declared read-only",
      buildTx({
        sender: alice,
        nonce: 0n,
        call: transfer(bob.address, "1"),
        reads: [wr(bob.address)],
        writes: [wr(alice.address)],
      }),
      base,
    ],
    [
      "recipient not 20 bytes",
      buildTx({ sender: alice, nonce: 0n, call: transfer(bob.address.subarray(0, 19), "1") }),
      base,
    ],
    [
      "amount with a leading zero",
      buildTx({
        sender: alice,
        nonce: 0n,
        call: transfer(bob.address, "01"),
        writes: [wr(alice.address), wr(bob.address)],
      }),
      base,
    ],
    [
      "amount above u128",
      buildTx({
        sender: alice,
        nonce: 0n,
        call: transfer(bob.address, (U128_MAX + 1n).toString()),
        writes: [wr(alice.address), wr(bob.address)],
      }),
      base,
    ],
    [
      "out of gas",
      buildTx({
        sender: alice,
        nonce: 0n,
        call: transfer(bob.address, "1"),
        gasLimit: 10n,
        writes: [wr(alice.address), wr(bob.address)],
      }),
      base,
    ],
    [
      "fee not a number",
      buildTx({
        sender: alice,
        nonce: 0n,
        call: transfer(bob.address, "1"),
        rawFee: "x",
        writes: [wr(alice.address), wr(bob.address)],
      }),
      base,
    ],
    ["a new recipient", transferTx(alice, 0n, new Uint8Array(20).fill(9), 10n), base],
    // Beyond the double-only path (values >= 2^53, long prices and amounts): BigInt decides.
    ["a sender above 2^53", transferTx(carol, 0n, bob.address, 10n), rich],
    ["a 10-digit price", transferTx(carol, 0n, bob.address, 10n, 1_000_000_000n), rich],
    ["a 16-digit amount", transferTx(carol, 0n, bob.address, 10n ** 15n), rich],
    ["a zero amount", transferTx(alice, 0n, bob.address, 0n), base],
    [
      "gas limit exactly the gas",
      buildTx({
        sender: alice,
        nonce: 0n,
        call: transfer(bob.address, "5"),
        gasLimit: 1500n,
        writes: [wr(alice.address), wr(bob.address)],
      }),
      base,
    ],
    [
      "gas limit 0 (unlimited)",
      buildTx({
        sender: alice,
        nonce: 0n,
        call: transfer(bob.address, "5"),
        gasLimit: 0n,
        writes: [wr(alice.address), wr(bob.address)],
      }),
      base,
    ],
  ];
  for (const [name, tx, state] of cases) {
    it(name, () => {
      const { slow, fast, arena } = both(tx, state);
      assert.deepEqual(fast, slow);
      const { inArena: _, ...onArena } = arena;
      assert.deepEqual(onArena, slow, "the arena path (transferArena, else applyTxFast) differs");
    });
  }

  it("the arena runs the double-only cases itself: success, to oneself, and each check's refusal", () => {
    const ran = new Set(cases.filter(([, tx, s]) => both(tx, s).arena.inArena).map(([name]) => name));
    for (const name of ["ok", "ok, zero price", "ok, high price", "to oneself", "a zero amount"]) {
      assert.ok(ran.has(name), `${name} did not run on the arena`);
    }
    for (const name of [
      "insufficient funds",
      "recipient not declared",
      "a new recipient",
      "a sender above 2^53",
    ]) {
      assert.ok(!ran.has(name), `${name} ran on the arena`);
    }
  });

  it("the cases cover success and failure", () => {
    const statuses = new Set(cases.map(([, tx, s]) => both(tx, s).slow.outcome.error.split(":")[0]));
    for (const code of [
      "",
      "INSUFFICIENT_FUNDS",
      "OVERFLOW",
      "ACCESS_VIOLATION",
      "MALFORMED",
      "OUT_OF_GAS",
      "BAD_NONCE",
      "INSUFFICIENT_FEE",
    ]) {
      assert.ok(statuses.has(code), `no case ends with ${code || "OK"}`);
    }
  });

  it("a duplicate in the same block is DUPLICATE on both paths", () => {
    const tx = transferTx(alice, 0n, bob.address, 1n);
    const d = decodeTx(tx.body, hashBody(tx.body))!;
    const outcomes = [applyTx, applyTxFast].map((f) => {
      const s = new Map(base);
      const view: StateView = { get: (k) => s.get(k) ?? null, set: (k, v) => void s.set(k, v) };
      const fees: FeeTotal = newFeeTotal();
      f(view, d, fees);
      return f(view, d, fees);
    });
    assert.deepEqual(outcomes[1], outcomes[0]);
    assert.equal(outcomes[0]!.status, TxStatus.DUPLICATE);
  });

  it("fees summed in doubles stay exact past 2^53 (the hot path moves them into the BigInt first)", () => {
    const s = new Map(base);
    const view: StateView = { get: (k) => s.get(k) ?? null, set: (k, v) => void s.set(k, v) };
    // 1,500 gas at price 1: a fee of 1,500, added to a double 2 below 2^53 - 1.
    const start = Number.MAX_SAFE_INTEGER - 2;
    const fees: FeeTotal = { total: 3n, small: start };
    let nonce = 0n;
    for (let i = 0; i < 3; i++) {
      const tx = transferTx(alice, nonce++, bob.address, 1n, 1n);
      const o = applyTxFast(view, decodeTx(tx.body, hashBody(tx.body))!, fees);
      assert.equal(o.status, TxStatus.OK);
      assert.ok(fees.small <= Number.MAX_SAFE_INTEGER);
    }
    assert.equal(feeSum(fees), 3n + BigInt(start) + 3n * 1_500n);
  });
});

describe("decode once, all pre-decoded: each tx decoded just before it runs", () => {
  it("same results as the reference and as blocks decoded up front, a sender that is no key included", async () => {
    const many = makeAccounts(40, 22);
    const genesis = buildGenesis(genesisFor(many, 1_000_000n));
    const blocks = transferBlocks(4, 3, 150, (_txs, _i, _h, rng, nonces) => {
      const a = many[rng.int(many.length)]!;
      return transferTx(a, nonces.take(a), many[rng.int(many.length)]!.address, BigInt(rng.int(5000)));
    });
    // Workers present: the cost model's pre-check (not the lack of workers) sends these inline.
    const plain = new ParallelExecutor(initFromResult(genesis), { workers: 2 });
    const pre = new ParallelExecutor(initFromResult(genesis), { workers: 2 });
    const ref = new ReferenceExecutor(initFromResult(genesis));
    try {
      for (const b of blocks) {
        const txs = [...b.txs];
        // A body that decodes but whose sender is not a 32-byte key: MALFORMED on every path.
        const bad = fromBinary(TxBodySchema, txs[5]!.body);
        bad.sender = bad.sender.subarray(0, 31);
        txs[5] = create(SignedTxSchema, { body: toBinary(TxBodySchema, bad), signature: new Uint8Array(64) });
        const block = { ...b, txs, txHashes: txs.map((t) => hashBody(t.body)) };
        const decoded = txs.map((t) => {
          const body = fromBinary(TxBodySchema, t.body);
          const who = many.find((a) => a.publicKey.every((x, j) => x === body.sender[j]));
          return { body, address: who?.address ?? new Uint8Array(20) };
        });
        const a = await plain.executeBlock(block);
        const p = await pre.executeBlock({ ...block, decoded });
        const r = await ref.executeBlock(block);
        assert.equal(pre.lastStats?.mode, "inline");
        assert.equal(pre.lastStats?.txs, txs.length);
        assert.deepEqual(p, a);
        assert.deepEqual(p, r);
        assert.equal(r.receipts[5]!.error.startsWith("MALFORMED"), true);
        const log = writeSetLogOf(p);
        assert.ok(log);
        assert.ok(Buffer.from(log).equals(encodeWriteSetLog(r.writeSet)));
        assert.ok(Buffer.from(encodeBlockReceipts(outcomesOf(p)!)).equals(encodeReceipts(r.receipts)));
      }
    } finally {
      await plain.close();
      await pre.close();
    }
  });
});

/**
 * `count` blocks (heights 1..count) of `perBlock` txs, each from `next` (the block so far,
 * its index, the height, a seeded PRNG and the nonce book), then `end` may append to the block.
 */
function transferBlocks(
  seed: number,
  count: number,
  perBlock: number,
  next: (txs: SignedTx[], i: number, h: bigint, rng: Rng, nonces: NonceBook) => SignedTx,
  end?: (txs: SignedTx[]) => void,
): ExecutableBlock[] {
  const rng = new Rng(seed);
  const nonces = new NonceBook();
  const blocks: ExecutableBlock[] = [];
  for (let h = 1n; h <= BigInt(count); h++) {
    const txs: SignedTx[] = [];
    for (let i = 0; i < perBlock; i++) txs.push(next(txs, i, h, rng, nonces));
    end?.(txs);
    blocks.push(hashedBlock(h, txs));
  }
  return blocks;
}

describe("decode once: a block handed over pre-decoded executes exactly as one decoded here", () => {
  it("same results (state roots, write sets, receipts) over 3 blocks, with a tx left for execution to decode", async () => {
    const many = makeAccounts(50, 21);
    const genesis = buildGenesis(genesisFor(many, 1_000_000n));
    const blocks = transferBlocks(
      5,
      3,
      200,
      (_txs, _i, _h, rng, nonces) => {
        const a = many[rng.int(many.length)]!;
        return transferTx(a, nonces.take(a), many[rng.int(many.length)]!.address, BigInt(rng.int(5000)));
      },
      // An undecodable body: the pre-decoded list has no entry for it.
      (txs) =>
        txs.push(create(SignedTxSchema, { body: Uint8Array.of(0xff, 0x01), signature: new Uint8Array(64) })),
    );
    const plain = new ParallelExecutor(initFromResult(genesis), { workers: 0 });
    const pre = new ParallelExecutor(initFromResult(genesis), { workers: 0 });
    const ref = new ReferenceExecutor(initFromResult(genesis));
    try {
      for (const b of blocks) {
        const decoded = b.txs.map((t, i) => {
          if (i === b.txs.length - 1 || i % 7 === 0) return undefined; // left to execution
          const body = fromBinary(TxBodySchema, t.body);
          return {
            body,
            address: many.find((a) => a.publicKey.every((x, j) => x === body.sender[j]))!.address,
          };
        });
        const a = await plain.executeBlock(b);
        const p = await pre.executeBlock({ ...b, decoded });
        const r = await ref.executeBlock(b);
        assert.deepEqual(p, a);
        assert.deepEqual(p, r);
        // The log encoded in the same pass is exactly what the store would encode.
        const log = writeSetLogOf(p);
        assert.ok(log);
        assert.ok(Buffer.from(log).equals(encodeWriteSetLog(r.writeSet)));
      }
    } finally {
      await plain.close();
      await pre.close();
    }
  });
});

describe("receipts encoded straight from the outcomes", () => {
  it("are the bytes of the Receipt messages, for every kind of outcome, inline and on workers", async () => {
    const many = makeAccounts(30, 8);
    const genesis = buildGenesis(genesisFor(many, 1_000_000_000n, ["p"]));
    const rng = new Rng(11);
    const nonces = new NonceBook();
    const blocks: ExecutableBlock[] = [];
    for (let h = 1n; h <= 2n; h++) {
      const txs: SignedTx[] = [];
      for (let i = 0; i < 120; i++) {
        const a = many[rng.int(many.length)]!;
        const to = many[rng.int(many.length)]!.address;
        switch (i % 8) {
          case 0: // more than the balance: INSUFFICIENT_FUNDS
            txs.push(transferTx(a, nonces.take(a), to, 10n ** 12n));
            break;
          case 1:
            txs.push(swapTx(a, nonces.take(a), "p", rng.int(2) === 0, 1_000n));
            break;
          case 2:
            txs.push(computeTx(a, nonces.take(a), 3));
            break;
          case 3:
            txs.push(kvPutTx(a, nonces.take(a), Uint8Array.of(i), Uint8Array.of(1, 2, 3)));
            break;
          case 4: // a re-inclusion of the previous tx: DUPLICATE (or BAD_NONCE)
            txs.push(txs[i - 1]!);
            break;
          case 5: // a big amount (the BigInt frame) to oneself
            txs.push(transferTx(a, nonces.take(a), a.address, 2n ** 60n));
            break;
          default:
            txs.push(transferTx(a, nonces.take(a), to, BigInt(rng.int(10_000))));
        }
      }
      blocks.push(hashedBlock(h, txs));
    }
    const scratch: ReceiptsScratch = { buf: Buffer.allocUnsafeSlow(1) };
    for (const mode of ["never", "always"] as const) {
      const ex = new ParallelExecutor(initFromResult(genesis), { workers: 2, mode });
      const ref = new ReferenceExecutor(initFromResult(genesis));
      try {
        const statuses = new Set<string>();
        for (const b of blocks) {
          const p = await ex.executeBlock(b);
          const r = await ref.executeBlock(b);
          const src = outcomesOf(p);
          assert.ok(src, "the parallel executor keeps the outcomes");
          const fromOutcomes = encodeBlockReceipts(src);
          assert.ok(fromOutcomes.equals(encodeReceipts(r.receipts)), `${mode}: height ${b.height}`);
          assert.ok(fromOutcomes.equals(encodeReceipts(p.receipts)));
          // ChainDb's way: one scratch buffer reused by every block (the first, a 1-byte one, too
          // small), then a shorter value in the same buffer, whose stale tail must not leak in.
          const viaScratch = encodeBlockReceipts(src, scratch);
          assert.ok(viaScratch.equals(fromOutcomes));
          assert.equal(viaScratch.buffer, scratch.buf!.buffer, "the value is a view of the scratch");
          const kept = scratch.buf;
          const short = { ...src, hashes: src.hashes.slice(0, 3), outcomes: src.outcomes.slice(0, 3) };
          const shortValue = encodeBlockReceipts(short, scratch);
          assert.equal(scratch.buf, kept, "a value that fits reuses the scratch");
          assert.ok(shortValue.equals(encodeBlockReceipts(short)));
          for (const x of r.receipts) {
            statuses.add(TxStatus[x.status]);
            for (const e of x.events) statuses.add(e.kind);
          }
        }
        // The blocks exercise successes, failures and duplicates, not only the transfer hot path.
        for (const s of ["OK", "FAILED", "DUPLICATE", "bank.transfer", "amm.swap", "compute.work"])
          assert.ok(statuses.has(s), `${s} missing: ${[...statuses].join()}`);
      } finally {
        await ex.close();
      }
    }
  });
});

describe("sender cache", () => {
  it("keys sharing their first bytes keep their own address and key strings", () => {
    const addressOf = (pk: Uint8Array) => createHash("sha256").update(pk).digest().subarray(0, 20);
    const keys = [0, 1, 2].map((j) => {
      const pk = new Uint8Array(32).fill(7);
      pk[31] = j; // same first 30 bits, different last byte
      if (j === 2) pk[3] = 7 ^ 1; // differs only in the bits the lookup ignores
      return pk;
    });
    for (let round = 0; round < 2; round++) {
      for (const pk of keys) {
        const body = toBinary(TxBodySchema, create(TxBodySchema, { chainId: "t", sender: pk, nonce: 0n }));
        const d = decodeTx(body, hashBody(body));
        assert.ok(d);
        assert.deepEqual([...d.sender], [...addressOf(pk)]);
        assert.equal(d.senderKey, keyStr(accountKey(addressOf(pk))));
      }
    }
  });
});

describe("values the hot path owns are rewritten in place (issue 13, round 4)", () => {
  it("nothing handed out changes afterwards: results, write sets, get(); roots = reference", async () => {
    const few = makeAccounts(3, 17);
    const genesis = buildGenesis(genesisFor(few, 1_000_000n));
    const nonces = new NonceBook();
    const ex = new ParallelExecutor(initFromResult(genesis), { workers: 0 });
    const ref = new ReferenceExecutor(initFromResult(genesis));
    const aliceKey = accountKey(few[0]!.address);
    const held: { bytes: Uint8Array; copy: string }[] = [];
    const hold = (v: Uint8Array | null | undefined) => {
      if (v) held.push({ bytes: v, copy: Buffer.from(v).toString("hex") });
    };
    try {
      // Each sender sends again in every block: account values and full recent records (4
      // hashes from the 5th tx on) are the hot path's own, rewritten in place from block 2 on.
      for (let h = 1n; h <= 6n; h++) {
        const txs: SignedTx[] = [];
        for (let i = 0; i < 6; i++) {
          const a = few[i % 3]!;
          txs.push(transferTx(a, nonces.take(a), few[(i + 1) % 3]!.address, 7n));
        }
        const b = hashedBlock(h, txs);
        const r = await ex.executeBlock(b);
        const want = await ref.executeBlock(b);
        assert.deepEqual(r.stateRoot, want.stateRoot, `height ${h}`);
        for (const w of r.writeSet) hold(w.value);
        hold(writeSetLogOf(r));
        hold(ex.get(aliceKey));
        for (const o of r.receipts) assert.equal(o.status, TxStatus.OK);
      }
      for (const x of held) assert.equal(Buffer.from(x.bytes).toString("hex"), x.copy);
    } finally {
      await ex.close();
    }
  });
});

describe("hot-path account values in shared slab slots (round 7)", () => {
  it("records growing and shifting in their slots never touch another account's bytes", async () => {
    // 120 accounts: several slabs of slots. Senders send 1 to 7 transfers over 4 blocks (a record
    // grows 1 → 4 hashes in its slot, then shifts), some re-included (DUPLICATE reads the record).
    const many = makeAccounts(120, 31);
    const genesis = buildGenesis(genesisFor(many, 1_000_000n));
    const blocks = transferBlocks(17, 4, 150, (txs, i, h, rng, nonces) => {
      if (i % 10 === 9) return txs[rng.int(i)]!; // a re-inclusion from earlier in the block
      const a = many[rng.int(h === 1n ? 40 : many.length)]!;
      return transferTx(a, nonces.take(a), many[rng.int(many.length)]!.address, BigInt(1 + rng.int(900)));
    });
    const par = new ParallelExecutor(initFromResult(genesis), { workers: 0 });
    const ref = new ReferenceExecutor(initFromResult(genesis));
    try {
      for (const b of blocks) {
        const p = await par.executeBlock(b);
        const r = await ref.executeBlock(b);
        assert.deepEqual(p, r);
        assert.ok(p.receipts.some((x) => x.status === TxStatus.DUPLICATE));
        // Every account's value, written this block or not, is the reference's.
        for (const a of many) {
          const k = accountKey(a.address);
          assert.deepEqual(par.get(k), ref.get(k));
        }
      }
    } finally {
      await par.close();
    }
  });
});

describe("StateValue (the hot path's slab slots)", () => {
  it("a copy of one (a StateValue with no slot behind it) grows into a new slot, not past its buffer", () => {
    const hash = new Uint8Array(32).fill(7);
    const inSlot = accountSmallInto(null, 3, 1_000);
    const copy = inSlot.slice();
    assert.ok(copy instanceof StateValue, "slice keeps the subclass (species)");
    const plain = consumedSmallInto(new Uint8Array(inSlot), 4, 900, hash);
    const fromCopy = consumedSmallInto(copy, 4, 900, hash);
    assert.deepEqual([...fromCopy], [...plain]);
    assert.deepEqual([...copy], [...inSlot], "the copy itself is left as it was");
    // A value in its slot grows in place: the same bytes, a longer view.
    const grown = consumedSmallInto(inSlot, 4, 900, hash);
    assert.equal(grown.buffer, inSlot.buffer);
    assert.deepEqual([...grown], [...plain]);
  });
});
