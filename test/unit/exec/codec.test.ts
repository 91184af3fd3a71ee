import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import {
  ByteReader,
  ByteWriter,
  consumedAccount,
  consumedSmallInto,
  decodeAccount,
  encodeAccount,
  keyStr,
  keyStr21,
  RECENT_TXS,
  recentlyConsumed,
  StateValue,
  strKey,
  U128_MAX,
  withAccount,
} from "../../../src/exec/codec.js";
import { decodeTx, touchedKeys } from "../../../src/exec/programs.js";
import { sortKeys, toReceipt, toReceiptViaCreate } from "../../../src/exec/result.js";
import { makeAccounts, transferTx } from "../../../src/exec/workload.js";
import { ReceiptSchema, TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { compareBytes } from "../../../src/types/bytes.js";
import { accountKey } from "../../../src/types/stateKeys.js";

describe("exec codecs", () => {
  it("accounts round-trip on the fast and the BigInt path, byte-identical to the DataView layout", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: U128_MAX }),
        (nonce, balance) => {
          const bytes = encodeAccount({ nonce, balance });
          const dv = new DataView(new ArrayBuffer(24));
          dv.setBigUint64(0, nonce);
          dv.setBigUint64(8, balance >> 64n);
          dv.setBigUint64(16, balance & ((1n << 64n) - 1n));
          assert.deepEqual(bytes, new Uint8Array(dv.buffer));
          assert.deepEqual(decodeAccount(bytes), { nonce, balance });
        },
      ),
      { seed: 1, numRuns: 500 },
    );
    assert.deepEqual(decodeAccount(encodeAccount({ nonce: 2n ** 53n, balance: 2n ** 53n - 1n })), {
      nonce: 2n ** 53n,
      balance: 2n ** 53n - 1n,
    });
  });

  it("binary-string keys preserve byte order and round-trip", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 80 }), (a, b) => {
        assert.deepEqual(strKey(keyStr(a)), a);
        const byStr = keyStr(a) < keyStr(b) ? -1 : keyStr(a) > keyStr(b) ? 1 : 0;
        assert.equal(byStr, Math.sign(compareBytes(a, b)));
      }),
      { seed: 2, numRuns: 300 },
    );
  });

  it("21-byte keys (accounts: keyStr's one-call path) are the same strings as the generic form", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 21, maxLength: 21 }), (k) => {
        const generic = String.fromCharCode.apply(null, [...k]);
        assert.equal(keyStr(k), generic);
        assert.equal(keyStr21(k.subarray(1), k[0]!, 0), generic);
        assert.equal(keyStr21(k, k[0]!, 1), generic);
        assert.deepEqual(strKey(keyStr(k)), k);
      }),
      { seed: 7, numRuns: 300 },
    );
    // Every byte value, at both ends (a char above 255 would make a two-byte string).
    for (let b = 0; b < 256; b++) {
      const k = new Uint8Array(21).fill(b);
      assert.deepEqual(strKey(keyStr(k)), k);
    }
  });

  it("the worker wire reader reads what the writer wrote", () => {
    const w = new ByteWriter(4);
    w.u32(7);
    w.uint(2 ** 40 + 3);
    w.str("héllo");
    w.key(keyStr(Uint8Array.of(0, 255, 128)));
    w.optBytes(null);
    w.optBytes(Uint8Array.of(1, 2));
    const r = new ByteReader(w.finish());
    assert.equal(r.u32(), 7);
    assert.equal(r.uint(), 2 ** 40 + 3);
    assert.equal(r.str(), "héllo");
    assert.deepEqual(strKey(r.key()), Uint8Array.of(0, 255, 128));
    assert.equal(r.optBytes(), null);
    assert.deepEqual([...r.optBytes()!], [1, 2]);
    assert.ok(r.done);
  });
});

describe("receipts", () => {
  it("the literal receipt encodes and compares exactly like create()", () => {
    const outcome = {
      status: TxStatus.OK,
      gasUsed: 1500,
      error: "",
      events: [
        {
          kind: "bank.transfer",
          attrs: [
            ["from", "aa"],
            ["to", "bb"],
            ["amount", "5"],
          ] as [string, string][],
        },
      ],
    };
    const a = toReceipt(new Uint8Array(32).fill(1), 7n, 3, outcome);
    const b = toReceiptViaCreate(new Uint8Array(32).fill(1), 7n, 3, outcome);
    assert.deepEqual(toBinary(ReceiptSchema, a), toBinary(ReceiptSchema, b));
    assert.deepEqual(a, b);
    assert.deepEqual(fromBinary(ReceiptSchema, toBinary(ReceiptSchema, a)), b);
    const failed = { status: TxStatus.FAILED, gasUsed: 0, error: "BAD_NONCE: expected 1", events: [] };
    assert.deepEqual(
      toReceipt(new Uint8Array(32), 1n, 0, failed),
      toReceiptViaCreate(new Uint8Array(32), 1n, 0, failed),
    );
  });
});

describe("sortKeys", () => {
  it("orders binary-string keys exactly as Array#sort, shared prefixes and short keys included", () => {
    const keyArb = fc
      .uint8Array({ minLength: 0, maxLength: 8 })
      .map((b) => (b.length > 2 ? Uint8Array.of(1, 0, ...b) : b))
      .map(keyStr);
    fc.assert(
      fc.property(fc.uniqueArray(keyArb, { minLength: 0, maxLength: 400 }), (keys) => {
        assert.deepEqual(sortKeys([...keys]), [...keys].sort());
      }),
      { seed: 5, numRuns: 300 },
    );
  });
});

describe("recent-transactions record inside the account value (layout 3, duplicate window)", () => {
  it("a transfer touches one implicit key: the sender's account, which holds the record", () => {
    const [a] = makeAccounts(1, 3);
    const tx = decodeTx(transferTx(a!, 0n, a!.address, 1n).body, new Uint8Array(32))!;
    assert.equal(tx.senderKey, keyStr(accountKey(a!.address)));
    const t = touchedKeys(tx);
    assert.deepEqual(t.keys, [tx.senderKey]);
    assert.deepEqual(t.writes, [true]);
  });

  it("remembers exactly the hashes of the last RECENT_TXS consumed nonces, for any u64 start; the hot path writes the same bytes", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 20n }),
        fc.integer({ min: 1, max: 9 }),
        fc.bigInt({ min: 0n, max: U128_MAX }),
        (start, n, balance) => {
          const hashes = Array.from({ length: n }, (_, i) => new Uint8Array(32).fill(i + 1));
          let acct: Uint8Array = encodeAccount({ nonce: start, balance });
          // The hot path (safe integers only), rewriting its own StateValues in place.
          const small = start + BigInt(n) <= BigInt(Number.MAX_SAFE_INTEGER) && balance <= 1000n;
          let hot: Uint8Array = encodeAccount({ nonce: start, balance });
          for (let i = 0; i < n; i++) {
            const next = { nonce: start + BigInt(i) + 1n, balance };
            acct = consumedAccount(acct, next, hashes[i]!);
            if (small) hot = consumedSmallInto(hot, Number(next.nonce), Number(balance), hashes[i]!);
          }
          assert.equal(acct.length, 24 + 32 * Math.min(n, RECENT_TXS));
          assert.deepEqual(decodeAccount(acct), { nonce: start + BigInt(n), balance });
          if (small) {
            assert.ok(hot instanceof StateValue);
            assert.deepEqual(new Uint8Array(hot), acct);
          }
          const nonceNow = start + BigInt(n);
          for (let i = 0; i < n; i++) {
            const held = n - 1 - i < RECENT_TXS;
            assert.equal(
              recentlyConsumed(acct, nonceNow, start + BigInt(i), hashes[i]!),
              held,
              `nonce +${i} of ${n}`,
            );
            if (i > 0)
              assert.equal(recentlyConsumed(acct, nonceNow, start + BigInt(i), hashes[i - 1]!), false);
          }
          assert.equal(recentlyConsumed(acct, nonceNow, start + BigInt(n), hashes[0]!), false);
          // A credit or debit (withAccount) keeps the record; decodeAccount reads every length.
          const credited = withAccount(acct, { nonce: nonceNow, balance: 7n });
          assert.deepEqual(credited.subarray(24), acct.subarray(24));
          assert.deepEqual(decodeAccount(credited), { nonce: nonceNow, balance: 7n });
        },
      ),
      { seed: 3, numRuns: 300 },
    );
  });

  it("a malformed account value reads as the empty account and carries no record", () => {
    for (const len of [0, 23, 25, 40, 184]) {
      const v = new Uint8Array(len).fill(1);
      assert.deepEqual(decodeAccount(v), { nonce: 0n, balance: 0n }, `length ${len}`);
      assert.equal(withAccount(v, { nonce: 1n, balance: 2n }).length, 24);
      assert.equal(consumedAccount(v, { nonce: 1n, balance: 2n }, new Uint8Array(32)).length, 56);
    }
  });
});

describe("compute.work hashing", () => {
  it("sha256Iterate equals iterated node:crypto SHA-256 for any seed length and round count", async () => {
    const { sha256Iterate } = await import("../../../src/exec/sha256iter.js");
    const { createHash } = await import("node:crypto");
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 40 }), (seed, n) => {
        let h: Uint8Array = seed;
        for (let i = 0; i < n; i++) h = createHash("sha256").update(h).digest();
        assert.deepEqual([...sha256Iterate(seed, n)], [...h]);
      }),
      { seed: 4, numRuns: 300 },
    );
    let h: Uint8Array = new Uint8Array(32).fill(9);
    for (let i = 0; i < 5000; i++) h = createHash("sha256").update(h).digest();
    assert.deepEqual([...sha256Iterate(new Uint8Array(32).fill(9), 5000)], [...h]);
  });
});
