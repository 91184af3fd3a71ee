import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  accessList,
  ammSwapTx,
  ClientError,
  computeWorkTx,
  kvCasTx,
  kvPutTx,
  NonceManager,
  RpcError,
  signTx,
  TxSigner,
  toHex,
  transferTx,
  verifyTxSignature,
} from "../../../src/client/index.js";
import { SignedTxSchema, TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";
import {
  accountKey,
  addressOf,
  ammHoldingKey,
  ammPoolKey,
  bytesEqual,
  computeKey,
  kvKey,
  sha256,
  txHash,
  txSignBytes,
} from "../../../src/types/index.js";
import { nodeVerify, seededSigner } from "./helpers.js";

const chainId = "sdk-test";

const hasKey = (keys: Uint8Array[], k: Uint8Array) => keys.some((x) => bytesEqual(x, k));

describe("transaction signing", () => {
  it("signs the encoded body once: bytes, hash and signature round-trip through the wire format", () => {
    const alice = seededSigner(1);
    const bob = seededSigner(2);
    const prepared = signTx(
      transferTx({ chainId, sender: alice.publicKey, nonce: 5n }, bob.address, 1234n),
      alice,
    );
    const wire = toBinary(SignedTxSchema, prepared.tx);
    const back = fromBinary(SignedTxSchema, wire);
    assert.deepEqual(back.body, prepared.tx.body);
    assert.equal(toHex(txHash(back)), toHex(prepared.hash));
    assert.equal(toHex(prepared.hash), toHex(sha256(back.body)));
    const body = fromBinary(TxBodySchema, back.body);
    assert.equal(body.chainId, chainId);
    assert.equal(body.nonce, 5n);
    assert.equal(toHex(body.sender), toHex(alice.publicKey));
    assert.equal(body.call?.call.case, "transfer");
    if (body.call?.call.case === "transfer") {
      assert.equal(body.call.call.value.amount, "1234");
      assert.equal(toHex(body.call.call.value.to), toHex(bob.address));
    }
    assert.equal(verifyTxSignature(back), true);
  });

  it("produces signatures the node rule (node:crypto) accepts, and it rejects tampered bodies", () => {
    for (let i = 0; i < 8; i++) {
      const s = seededSigner(100 + i);
      const p = signTx(
        kvPutTx({ chainId, sender: s.publicKey, nonce: BigInt(i) }, Uint8Array.of(i), Uint8Array.of(1)),
        s,
      );
      assert.equal(nodeVerify(p.tx.signature, txSignBytes(p.tx.body), s.publicKey), true);
      const tampered = Uint8Array.from(p.tx.body);
      tampered[tampered.length - 1]! ^= 1;
      assert.equal(nodeVerify(p.tx.signature, txSignBytes(tampered), s.publicKey), false);
      assert.equal(
        verifyTxSignature(create(SignedTxSchema, { body: tampered, signature: p.tx.signature })),
        false,
      );
    }
  });

  it("refuses a key file whose public key does not match its secret key", () => {
    const s = seededSigner(3);
    const other = seededSigner(4);
    const good = TxSigner.fromKeyJson({ secretKey: toHex(new Uint8Array(32).fill(9)) });
    assert.equal(good.address.length, 20);
    assert.throws(
      () => TxSigner.fromKeyJson({ secretKey: "zz", publicKey: toHex(s.publicKey) }),
      (e: unknown) => e instanceof ClientError && e.code === "BAD_KEY",
    );
    const sk = new Uint8Array(32).fill(9);
    assert.throws(
      () => TxSigner.fromKeyJson({ secretKey: toHex(sk), publicKey: toHex(other.publicKey) }),
      /does not match/,
    );
  });
});

describe("transaction builders", () => {
  const s = seededSigner(7);
  const c = { chainId, sender: s.publicKey, nonce: 0n };
  const own = accountKey(addressOf(s.publicKey));

  it("declares the sender's account and every touched key for each program", () => {
    const to = seededSigner(8).address;
    const cases = [
      { body: transferTx(c, to, 1n), keys: [accountKey(to)] },
      { body: kvPutTx(c, Uint8Array.of(1, 2), Uint8Array.of(3)), keys: [kvKey(Uint8Array.of(1, 2))] },
      { body: kvCasTx(c, Uint8Array.of(9), null, Uint8Array.of(3)), keys: [kvKey(Uint8Array.of(9))] },
      {
        body: ammSwapTx(c, "pool-x", true, 10n, 1n),
        keys: [ammPoolKey("pool-x"), ammHoldingKey("pool-x", s.address)],
      },
      { body: computeWorkTx(c, 100), keys: [computeKey(s.address)] },
    ];
    for (const { body, keys } of cases) {
      const a = body.access!;
      assert.ok(hasKey(a.writes, own), `${body.call?.call.case}: sender account written`);
      for (const k of keys) {
        assert.ok(hasKey(a.writes, k), `${body.call?.call.case}: writes ${toHex(k)}`);
      }
    }
  });

  it("lists a self-transfer's account once, keeps lists sorted, and never repeats a written key as read", () => {
    assert.equal(accessList(s.publicKey, [own, kvKey(Uint8Array.of(5))], []).reads.length, 1);
    const body = transferTx(c, s.address, 1n);
    assert.equal(body.access!.writes.length, 1);
    const b = transferTx(c, seededSigner(9).address, 1n).access!.writes;
    assert.ok(toHex(b[0]!) < toHex(b[1]!));
  });

  it("encodes a compare-and-set on an absent register distinctly from one expecting empty bytes", () => {
    const absent = kvCasTx(c, Uint8Array.of(1), null, Uint8Array.of(2));
    const empty = kvCasTx(c, Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2));
    assert.equal(absent.call?.call.case === "kvCas" && absent.call.call.value.expectAbsent, true);
    assert.equal(empty.call?.call.case === "kvCas" && empty.call.call.value.expectAbsent, false);
  });

  it("rejects bad arguments with a typed error naming the field", () => {
    const field = (fn: () => unknown, name: string) =>
      assert.throws(
        fn,
        (e: unknown) => e instanceof ClientError && (e.detail as { field: string }).field === name,
      );
    field(() => transferTx(c, new Uint8Array(19), 1n), "to");
    field(() => transferTx(c, s.address, -1n), "amount");
    field(() => transferTx(c, s.address, "1.5"), "amount");
    field(() => transferTx({ ...c, sender: new Uint8Array(31) }, s.address, 1n), "sender");
    field(() => computeWorkTx(c, -1), "iterations");
  });
});

describe("nonce manager", () => {
  it("seeds once per sender under concurrent use, then counts locally", async () => {
    let calls = 0;
    const m = new NonceManager(async () => {
      calls++;
      await new Promise((r) => setImmediate(r));
      return 10n;
    });
    const a = Uint8Array.of(1);
    const got = await Promise.all([m.next(a), m.next(a), m.next(a)]);
    assert.deepEqual(got, [10n, 11n, 12n]);
    assert.equal(await m.next(a), 13n);
    assert.equal(calls, 1);
  });

  it("re-reads the chain after resync and recovers from a failed seed", async () => {
    let chain = 3n;
    let fail = true;
    const m = new NonceManager(async () => {
      if (fail) throw new RpcError(14, "getAccount", "down");
      return chain;
    });
    const a = Uint8Array.of(2);
    await assert.rejects(m.next(a), RpcError);
    fail = false;
    assert.equal(await m.next(a), 3n);
    assert.equal(await m.next(a), 4n);
    chain = 9n;
    m.resync(a);
    assert.equal(await m.next(a), 9n);
  });
});

describe("rpc errors", () => {
  it("carry the gRPC status code, its name and the server message", () => {
    const e = new RpcError(8, "submitTx", "mempool full");
    assert.equal(e.status, 8);
    assert.equal(e.statusName, "RESOURCE_EXHAUSTED");
    assert.equal(e.serverMessage, "mempool full");
    assert.match(e.message, /submitTx: RESOURCE_EXHAUSTED: mempool full/);
  });
});
