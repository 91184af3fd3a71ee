import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeAccount, decodePool, decodeU128 } from "../../../src/exec/codec.js";
import { FEE_COLLECTOR_ADDRESS } from "../../../src/exec/fees.js";
import { buildGenesis } from "../../../src/exec/genesis.js";
import { ParallelExecutor } from "../../../src/exec/parallel.js";
import { initFromResult, ReferenceExecutor } from "../../../src/exec/reference.js";
import { nextStateRoot } from "../../../src/exec/result.js";
import {
  buildTx,
  computeTx,
  genesisFor,
  kvPutTx,
  makeAccounts,
  swapTx,
  transferTx,
} from "../../../src/exec/workload.js";
import { TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { bytesEqual } from "../../../src/types/bytes.js";
import { ParabftError } from "../../../src/types/errors.js";
import { accountKey, ammHoldingKey, ammPoolKey, computeKey, kvKey } from "../../../src/types/stateKeys.js";

const [alice, bob, carol] = makeAccounts(3, 7);
const fresh = () =>
  new ReferenceExecutor(initFromResult(buildGenesis(genesisFor([alice!, bob!, carol!], 1000n, ["p"]))));
const acct = (ex: ReferenceExecutor, a = alice!) => decodeAccount(ex.get(accountKey(a.address)) ?? null);
const block = (height: bigint, txs: ReturnType<typeof transferTx>[]) => ({ height, timestampMs: 0n, txs });

describe("programs and the transaction frame", () => {
  it("transfers move balance, bump the nonce and emit an event", async () => {
    const ex = fresh();
    const r = await ex.executeBlock(block(1n, [transferTx(alice!, 0n, bob!.address, 300n, 0n)]));
    assert.equal(r.receipts[0]!.status, TxStatus.OK);
    assert.deepEqual(acct(ex), { nonce: 1n, balance: 700n });
    assert.equal(acct(ex, bob!).balance, 1300n);
    assert.equal(r.receipts[0]!.events[0]!.kind, "bank.transfer");
    assert.equal(r.receipts[0]!.gasUsed, 1500n);
  });

  it("an access violation reverts the program but keeps the nonce bump and gas", async () => {
    const ex = fresh();
    const tx = buildTx({
      sender: alice!,
      nonce: 0n,
      price: 0n,
      call: {
        case: "transfer",
        value: { $typeName: "parabft.v1.BankTransfer", to: bob!.address, amount: "5" },
      },
      writes: [],
    });
    const r = await ex.executeBlock(block(1n, [tx]));
    assert.equal(r.receipts[0]!.status, TxStatus.FAILED);
    assert.match(r.receipts[0]!.error, /^ACCESS_VIOLATION/);
    assert.deepEqual(acct(ex), { nonce: 1n, balance: 1000n });
    assert.equal(acct(ex, bob!).balance, 1000n);
    assert.ok(r.receipts[0]!.gasUsed > 0n);
  });

  it("marks a re-included transaction DUPLICATE, in the same block and in a later one", async () => {
    const ex = fresh();
    const tx = transferTx(alice!, 0n, bob!.address, 1n, 0n);
    const r1 = await ex.executeBlock(block(1n, [tx, tx]));
    assert.deepEqual(
      r1.receipts.map((r) => r.status),
      [TxStatus.OK, TxStatus.DUPLICATE],
    );
    const r2 = await ex.executeBlock(block(2n, [tx, transferTx(alice!, 0n, bob!.address, 2n, 0n)]));
    assert.equal(r2.receipts[0]!.status, TxStatus.DUPLICATE);
    assert.match(
      r2.receipts[1]!.error,
      /^BAD_NONCE/,
      "same nonce, different tx: a bad nonce, not a duplicate",
    );
    assert.equal(acct(ex, bob!).balance, 1001n);
  });

  it("rejects a bad nonce and insufficient funds deterministically", async () => {
    const ex = fresh();
    const r = await ex.executeBlock(
      block(1n, [
        transferTx(alice!, 5n, bob!.address, 1n, 0n),
        transferTx(alice!, 0n, bob!.address, 5000n, 0n),
      ]),
    );
    assert.match(r.receipts[0]!.error, /^BAD_NONCE/);
    assert.equal(r.receipts[0]!.gasUsed, 0n);
    assert.equal(r.receipts[1]!.error, "INSUFFICIENT_FUNDS");
    assert.deepEqual(acct(ex), { nonce: 1n, balance: 1000n });
  });

  it("kv.cas succeeds only on a matching value", async () => {
    const ex = fresh();
    const key = Uint8Array.of(9);
    const cas = (nonce: bigint, expected: Uint8Array, expectAbsent: boolean, value: Uint8Array) =>
      buildTx({
        sender: alice!,
        nonce,
        price: 0n,
        call: { case: "kvCas", value: { $typeName: "parabft.v1.KvCas", key, expected, expectAbsent, value } },
        writes: [kvKey(key)],
      });
    const r = await ex.executeBlock(
      block(1n, [
        cas(0n, new Uint8Array(), true, Uint8Array.of(1)),
        cas(1n, Uint8Array.of(2), false, Uint8Array.of(3)),
        cas(2n, Uint8Array.of(1), false, Uint8Array.of(4)),
        kvPutTx(alice!, 3n, Uint8Array.of(8), Uint8Array.of(5), 0n),
      ]),
    );
    assert.deepEqual(
      r.receipts.map((x) => x.error),
      ["", "CAS_MISMATCH", "", ""],
    );
    assert.deepEqual(ex.get(kvKey(key)), Uint8Array.of(4));
    assert.deepEqual(ex.get(kvKey(Uint8Array.of(8))), Uint8Array.of(5));
  });

  it("amm.swap keeps the constant product and honours min amount out", async () => {
    const ex = fresh();
    const r = await ex.executeBlock(block(1n, [swapTx(alice!, 0n, "p", true, 100n, 0n)]));
    assert.equal(r.receipts[0]!.status, TxStatus.OK);
    const pool = decodePool(ex.get(ammPoolKey("p")) ?? null)!;
    assert.equal(pool.reserveA, 10n ** 12n + 100n);
    assert.ok(pool.reserveA * pool.reserveB >= 10n ** 24n, "k never decreases (fees stay in the pool)");
    const out = 10n ** 12n - pool.reserveB;
    assert.equal(decodeU128(ex.get(ammHoldingKey("p", alice!.address)) ?? null), 1_000_000_000n + out);
    const tooMuch = buildTx({
      sender: alice!,
      nonce: 1n,
      price: 0n,
      call: {
        case: "ammSwap",
        value: {
          $typeName: "parabft.v1.AmmSwap",
          pool: "p",
          aToB: true,
          amountIn: "10",
          minAmountOut: "1000",
        },
      },
      writes: [accountKey(alice!.address), ammPoolKey("p"), ammHoldingKey("p", alice!.address)],
    });
    const r2 = await ex.executeBlock(block(2n, [tooMuch]));
    assert.match(r2.receipts[0]!.error, /^SLIPPAGE/);
  });

  it("compute.work stores iterated SHA-256 and out-of-gas never runs", async () => {
    const ex = fresh();
    const limited = buildTx({
      sender: bob!,
      nonce: 0n,
      price: 0n,
      gasLimit: 1100n,
      call: {
        case: "compute",
        value: { $typeName: "parabft.v1.ComputeWork", iterations: 100, seed: Uint8Array.of(1) },
      },
      writes: [computeKey(bob!.address)],
    });
    const r = await ex.executeBlock(block(1n, [computeTx(alice!, 0n, 3, 0n), limited]));
    assert.equal(r.receipts[0]!.status, TxStatus.OK);
    const { createHash } = await import("node:crypto");
    let h: Uint8Array = alice!.address;
    for (let i = 0; i < 3; i++) h = createHash("sha256").update(h).digest();
    assert.ok(bytesEqual(ex.get(computeKey(alice!.address))!, h));
    assert.equal(r.receipts[1]!.error, "OUT_OF_GAS");
    assert.equal(r.receipts[1]!.gasUsed, 1100n);
    assert.equal(ex.get(computeKey(bob!.address)), undefined);
    assert.equal(acct(ex, bob!).nonce, 1n);
  });

  it("malformed bodies fail with no effect, and the root chains over sorted write sets", async () => {
    const ex = fresh();
    const before = ex.stateRoot;
    const r = await ex.executeBlock(
      block(1n, [{ ...transferTx(alice!, 0n, bob!.address, 1n, 0n), body: Uint8Array.of(0xff) }]),
    );
    assert.match(r.receipts[0]!.error, /^MALFORMED/);
    assert.equal(r.writeSet.length, 0);
    assert.deepEqual(r.stateRoot, nextStateRoot(before, []));
    await assert.rejects(ex.executeBlock(block(3n, [])), (e: unknown) => e instanceof ParabftError);
  });

  it("genesis rejects duplicate accounts and bad pool ids", () => {
    assert.throws(() =>
      buildGenesis({ accounts: [alice!, alice!].map((a) => ({ address: a.address, balance: 1n })) }),
    );
    assert.throws(() =>
      buildGenesis({ accounts: [], pools: [{ id: "bad id", reserveA: 1n, reserveB: 1n, feeBps: 0 }] }),
    );
  });
});

describe("fees (docs/FEES.md)", () => {
  const collector = (ex: ReferenceExecutor) => acct(ex, { address: FEE_COLLECTOR_ADDRESS } as never).balance;

  it("a transaction pays gasUsed × price to the collector, credited once at the end of the block", async () => {
    const ex = new ReferenceExecutor(
      initFromResult(buildGenesis(genesisFor([alice!, bob!, carol!], 100_000n, ["p"]))),
    );
    const r = await ex.executeBlock(
      block(1n, [transferTx(alice!, 0n, bob!.address, 100n, 0n), transferTx(bob!, 0n, carol!.address, 10n)]),
    );
    assert.deepEqual(
      r.receipts.map((x) => [x.status, x.gasUsed]),
      [
        [TxStatus.OK, 1500n],
        [TxStatus.OK, 1500n],
      ],
    );
    assert.equal(acct(ex, alice!).balance, 99_900n, "price 0 pays nothing");
    assert.equal(acct(ex, bob!).balance, 100_000n + 100n - 1500n - 10n);
    assert.equal(collector(ex), 1500n);
    const collectorWrites = r.writeSet.filter((w) => bytesEqual(w.key, accountKey(FEE_COLLECTOR_ADDRESS)));
    assert.equal(collectorWrites.length, 1);
  });

  it("charges before the program runs; a sender who cannot pay fails INSUFFICIENT_FEE and pays all it has", async () => {
    const ex = new ReferenceExecutor(
      initFromResult(buildGenesis(genesisFor([alice!, bob!, carol!], 10_000n, ["p"]))),
    );
    const r = await ex.executeBlock(
      block(1n, [
        transferTx(alice!, 0n, bob!.address, 100n, 2n), // fee 3000
        transferTx(alice!, 1n, bob!.address, 7_000n, 1n), // fee 1500: 6900 left, the transfer fails
        transferTx(carol!, 0n, bob!.address, 1n, 7n), // fee 10500 > 10000
      ]),
    );
    assert.equal(r.receipts[0]!.status, TxStatus.OK);
    assert.equal(r.receipts[1]!.error, "INSUFFICIENT_FUNDS", "fee paid first, then the program fails");
    assert.equal(r.receipts[1]!.gasUsed, 1500n);
    assert.equal(r.receipts[2]!.error, "INSUFFICIENT_FEE: paid 10000 of 10500");
    assert.deepEqual(acct(ex, alice!), { nonce: 2n, balance: 10_000n - 100n - 3000n - 1500n });
    assert.deepEqual(acct(ex, carol!), { nonce: 1n, balance: 0n });
    assert.equal(acct(ex, bob!).balance, 10_100n);
    assert.equal(collector(ex), 3000n + 1500n + 10_000n);
  });

  it("out of gas pays gas_limit × price; a malformed fee pays nothing but consumes the nonce", async () => {
    const ex = fresh();
    const oog = buildTx({
      sender: alice!,
      nonce: 0n,
      gasLimit: 100n,
      price: 3n,
      call: {
        case: "transfer",
        value: { $typeName: "parabft.v1.BankTransfer", to: bob!.address, amount: "1" },
      },
      writes: [accountKey(bob!.address)],
    });
    const bad = buildTx({
      sender: alice!,
      nonce: 1n,
      rawFee: "-1",
      call: {
        case: "transfer",
        value: { $typeName: "parabft.v1.BankTransfer", to: bob!.address, amount: "1" },
      },
      writes: [accountKey(bob!.address)],
    });
    const r = await ex.executeBlock(block(1n, [oog, bad]));
    assert.equal(r.receipts[0]!.error, "OUT_OF_GAS");
    assert.match(r.receipts[1]!.error, /^MALFORMED: fee/);
    assert.deepEqual(acct(ex), { nonce: 2n, balance: 700n });
    assert.equal(collector(ex), 300n);
  });

  it("a transfer to the collector inside the block and the end-of-block credit add up, in both executors", async () => {
    const genesis = buildGenesis(genesisFor([alice!, bob!, carol!], 100_000n, ["p"]));
    const txs = [
      transferTx(alice!, 0n, FEE_COLLECTOR_ADDRESS, 5n),
      transferTx(bob!, 0n, alice!.address, 5n, 4n),
      transferTx(alice!, 1n, FEE_COLLECTOR_ADDRESS, 7n, 2n),
    ];
    const ref = new ReferenceExecutor(initFromResult(genesis));
    const a = await ref.executeBlock(block(1n, txs));
    assert.equal(collector(ref), 5n + 7n + 1500n * (1n + 4n + 2n));
    for (const mode of ["never", "always"] as const) {
      const par = new ParallelExecutor(
        { height: 0n, stateRoot: genesis.stateRoot, state: genesis.writeSet },
        { workers: mode === "never" ? 0 : 2, mode },
      );
      try {
        const b = await par.executeBlock(block(1n, txs));
        assert.deepEqual(b.stateRoot, a.stateRoot, mode);
      } finally {
        await par.close();
      }
    }
  });
});
