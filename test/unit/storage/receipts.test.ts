// The receipts value (src/storage/execLog.ts): a successful transfer's receipt is stored in the
// compact entry (execution layout 3) and decodes to the same Receipt; anything that differs from
// that shape in any field keeps the general entry, and decodes exactly too.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Receipt, TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { decodeReceiptAt, encodeReceipts } from "../../../src/storage/execLog.js";

function transfer(over: Partial<Receipt> = {}, attrs?: Record<string, string>): Receipt {
  return {
    $typeName: "parabft.v1.Receipt",
    txHash: new Uint8Array(32).fill(7),
    height: 9n,
    index: 0,
    status: TxStatus.OK,
    gasUsed: 1500n,
    error: "",
    events: [
      {
        $typeName: "parabft.v1.TxEvent",
        kind: "bank.transfer",
        attributes: attrs ?? { from: "ab".repeat(20), to: "0c".repeat(20), amount: "12345" },
      },
    ],
    ...over,
  };
}

describe("receipts value", () => {
  it("stores a successful transfer compactly and any near miss in full, each decoding to itself", () => {
    const cases: Receipt[] = [
      transfer(),
      transfer({}, { from: "ab".repeat(20), to: "0c".repeat(20), amount: "9".repeat(64) }),
      transfer({ gasUsed: 1501n }),
      transfer({ status: TxStatus.FAILED, error: "INSUFFICIENT_FUNDS", events: [] }),
      transfer({ error: "x" }),
      transfer({}, { from: "AB".repeat(20), to: "0c".repeat(20), amount: "1" }),
      transfer({}, { to: "0c".repeat(20), from: "ab".repeat(20), amount: "1" }),
      transfer({}, { from: "ab".repeat(20), to: "0c".repeat(20), amount: "1", memo: "m" }),
      transfer({}, { from: "ab".repeat(20), to: "0c".repeat(19), amount: "1" }),
      transfer({}, { from: "ab".repeat(20), to: "0c".repeat(20), amount: "-1" }),
      transfer({}, { from: "ab".repeat(20), to: "0c".repeat(20), amount: "9".repeat(65) }),
      transfer({ events: [] }),
    ];
    const value = encodeReceipts(cases.map((r, index) => ({ ...r, index })));
    for (let i = 0; i < cases.length; i++) {
      assert.deepEqual(decodeReceiptAt(value, 9n, i), { ...cases[i]!, index: i }, `case ${i}`);
    }
    // The compact entries (status byte 0xFE) are 74 bytes + the amount's digits.
    const start = (i: number) => value.readUInt32BE(4 + 4 * i);
    const size = (i: number) => value.readUInt32BE(8 + 4 * i) - start(i);
    assert.equal(size(0), 74 + 5);
    assert.equal(size(1), 74 + 64);
    for (let i = 0; i < cases.length; i++) assert.equal(value[start(i) + 32] === 0xfe, i < 2, `case ${i}`);
  });

  it("a corrupt compact entry is CORRUPT_RECORD, never a wrong receipt", () => {
    const value = Buffer.from(encodeReceipts([transfer()]));
    const bad = Buffer.from(value);
    bad[bad.length - 1] = 0x41; // a non-digit in the amount
    assert.throws(
      () => decodeReceiptAt(bad, 9n, 0),
      (e: unknown) => (e as { code?: string }).code === "CORRUPT_RECORD",
    );
    const short = Buffer.from(value);
    short[4 + 8 + 73] = 9; // the amount's length past the entry
    assert.throws(
      () => decodeReceiptAt(short, 9n, 0),
      (e: unknown) => (e as { code?: string }).code === "CORRUPT_RECORD",
    );
  });
});
