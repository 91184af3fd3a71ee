import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import {
  ByteReader,
  ByteWriter,
  decodeAccount,
  encodeAccount,
  keyStr,
  strKey,
  U128_MAX,
} from "../../../src/exec/codec.js";
import { decodeTx, nextRecentRecord, RECENT_TXS, recentlyConsumed } from "../../../src/exec/programs.js";
import { sortKeys, toReceipt, toReceiptViaCreate } from "../../../src/exec/result.js";
import { makeAccounts, transferTx } from "../../../src/exec/workload.js";
import { ReceiptSchema, TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { compareBytes } from "../../../src/types/bytes.js";
import { recentTxsKey } from "../../../src/types/stateKeys.js";

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

describe("recent-transactions record (duplicate window)", () => {
  it("remembers exactly the hashes of the last RECENT_TXS consumed nonces, for any u64 start", () => {
    const [a] = makeAccounts(1, 3);
    const tx = decodeTx(transferTx(a!, 0n, a!.address, 1n).body, new Uint8Array(32))!;
    assert.equal(tx.recentKey, keyStr(recentTxsKey(a!.address)));
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 20n }),
        fc.integer({ min: 1, max: 9 }),
        (start, n) => {
          const hashes = Array.from({ length: n }, (_, i) => new Uint8Array(32).fill(i + 1));
          let rec: Uint8Array | null = null;
          for (let i = 0; i < n; i++) rec = nextRecentRecord(rec, start + BigInt(i), hashes[i]!);
          assert.equal(rec!.length, 8 + 32 * Math.min(n, RECENT_TXS));
          for (let i = 0; i < n; i++) {
            const held = n - 1 - i < RECENT_TXS;
            assert.equal(recentlyConsumed(rec, start + BigInt(i), hashes[i]!), held, `nonce +${i} of ${n}`);
            if (i > 0) assert.equal(recentlyConsumed(rec, start + BigInt(i), hashes[i - 1]!), false);
          }
          assert.equal(recentlyConsumed(rec, start + BigInt(n), hashes[0]!), false);
        },
      ),
      { seed: 3, numRuns: 300 },
    );
  });

  it("a gap in nonces starts a fresh record", () => {
    const r1 = nextRecentRecord(null, 5n, new Uint8Array(32).fill(1));
    const r2 = nextRecentRecord(r1, 9n, new Uint8Array(32).fill(2));
    assert.equal(r2.length, 40);
    assert.equal(recentlyConsumed(r2, 5n, new Uint8Array(32).fill(1)), false);
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
