import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { txBodySender } from "../../../src/crypto/index.js";
import { TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const body = fc.record({
  chainId: fc.string({ maxLength: 12 }),
  sender: bytes(40),
  nonce: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  gasLimit: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fee: fc.string({ maxLength: 8 }),
  access: fc.record({
    reads: fc.array(bytes(24), { maxLength: 3 }),
    writes: fc.array(bytes(24), { maxLength: 3 }),
  }),
  call: fc.oneof(
    fc.constant(undefined),
    fc.record({ to: bytes(20), amount: fc.string({ maxLength: 6 }) }).map((v) => ({
      call: { case: "transfer" as const, value: v },
    })),
    fc
      .record({ key: bytes(8), value: bytes(8) })
      .map((v) => ({ call: { case: "kvPut" as const, value: v } })),
  ),
});

describe("txBodySender", () => {
  it("equals the decoder's TxBody.sender for every encoded body (fixed seed)", () => {
    fc.assert(
      fc.property(body, (b) => {
        const encoded = toBinary(TxBodySchema, create(TxBodySchema, b));
        assert.deepEqual(txBodySender(encoded), fromBinary(TxBodySchema, encoded).sender);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it("never disagrees with the decoder on corrupted bodies it accepts (fixed seed)", () => {
    fc.assert(
      fc.property(
        body,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.nat(),
        (b, flips, cut) => {
          const encoded = Uint8Array.from(toBinary(TxBodySchema, create(TxBodySchema, b)));
          for (const [at, v] of flips) if (encoded.length > 0) encoded[at % encoded.length] = v;
          const mutated = encoded.subarray(0, encoded.length - (cut % 3));
          const mine = txBodySender(mutated);
          let theirs: Uint8Array | undefined;
          try {
            theirs = fromBinary(TxBodySchema, mutated).sender;
          } catch {
            theirs = undefined;
          }
          if (mine !== undefined && theirs !== undefined) assert.deepEqual(mine, theirs);
        },
      ),
      { seed: 7, numRuns: 1000 },
    );
  });

  it("rejects truncation, a non-length-delimited sender and field number 0", () => {
    const enc = toBinary(
      TxBodySchema,
      create(TxBodySchema, { chainId: "c", sender: new Uint8Array(32).fill(1) }),
    );
    assert.equal(txBodySender(enc.subarray(0, enc.length - 1)), undefined);
    assert.equal(txBodySender(Uint8Array.of(0x10, 0x01)), undefined); // field 2 as varint
    assert.equal(txBodySender(Uint8Array.of(0x02, 0x00)), undefined); // field 0
    assert.equal(txBodySender(Uint8Array.of(0x12, 0x05, 1, 2)), undefined); // length past the end
    assert.deepEqual(txBodySender(new Uint8Array(0)), new Uint8Array(0));
    // Last occurrence wins, as in the decoder.
    const twice = Uint8Array.of(0x12, 0x01, 0xaa, 0x12, 0x02, 0xbb, 0xcc);
    assert.deepEqual(txBodySender(twice), Uint8Array.of(0xbb, 0xcc));
    assert.deepEqual(fromBinary(TxBodySchema, twice).sender, Uint8Array.of(0xbb, 0xcc));
  });
});
