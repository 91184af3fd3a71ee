// decodeInput takes a transfer's body through the hand-written decoder (src/exec/txDecode.ts) and
// anything else through fromBinary: the admitted body and every MALFORMED verdict must be exactly
// what fromBinary alone gives, on valid, other-shaped and broken bodies.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import {
  KvPutSchema,
  type SignedTx,
  SignedTxSchema,
  TxBodySchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { decodeInput } from "../../../src/mempool/decode.js";
import { MempoolError } from "../../../src/mempool/index.js";
import { newKey, signedTx } from "./helpers.js";

/** fromBinary's verdict on a body: the decoded TxBody, or "MALFORMED" (decodeInput's checks). */
function reference(tx: SignedTx): unknown {
  try {
    const body = fromBinary(TxBodySchema, tx.body);
    return body.sender.length === 32 ? body : "MALFORMED";
  } catch {
    return "MALFORMED";
  }
}

function actual(tx: SignedTx): unknown {
  try {
    return decodeInput(tx).body;
  } catch (err) {
    assert.ok(err instanceof MempoolError, String(err));
    assert.equal(err.code, "MALFORMED");
    return "MALFORMED";
  }
}

describe("decodeInput", () => {
  it("builds fromBinary's body for transfers and other calls", () => {
    const k = newKey();
    const txs = [
      signedTx(k, { nonce: 0n }),
      signedTx(k, { nonce: 2n ** 40n, amount: "123456789012345678901234567890", fee: "7" }),
      signedTx(k, { nonce: 3n, padding: 100 }),
      signedTx(k, {
        call: {
          case: "kvPut",
          value: create(KvPutSchema, { key: Uint8Array.of(1), value: Uint8Array.of(2) }),
        },
      }),
    ];
    for (const tx of txs) {
      const body = actual(tx);
      assert.notEqual(body, "MALFORMED");
      assert.deepStrictEqual(body, reference(tx));
    }
  });

  it("gives fromBinary's verdict on every truncation and single-byte change of a transfer body", () => {
    const tx = signedTx(newKey(), { nonce: 300n, amount: "42" });
    let decoded = 0;
    const check = (body: Uint8Array) => {
      const t = create(SignedTxSchema, { body, signature: tx.signature });
      const want = reference(t);
      assert.deepStrictEqual(actual(t), want, `body ${Buffer.from(body).toString("hex")}`);
      if (want !== "MALFORMED") decoded++;
    };
    for (let n = 0; n < tx.body.length; n++) check(tx.body.subarray(0, n));
    for (let i = 0; i < tx.body.length; i++) {
      for (const v of [0x00, 0x01, 0x0a, 0x12, 0x7f, 0x80, 0xff, tx.body[i]! ^ 0x08]) {
        const body = Uint8Array.from(tx.body);
        body[i] = v;
        check(body);
      }
    }
    // Many mutations still decode (a changed nonce, key or amount byte): those bodies match too.
    assert.ok(decoded > 100, `only ${decoded} mutated bodies decoded`);
  });
});
