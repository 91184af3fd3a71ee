// The node's stateless block check (checkBlockTxs): each rule refuses with its reason, and the
// signature check sees exactly the block's transactions and their hashes; what the pool holds
// verified (same hash, same signature bytes) is neither decoded nor verified again.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { nativeTxHash } from "../../../src/crypto/index.js";
import { BlockSchema, KvPutSchema, type SignedTx } from "../../../src/gen/parabft/v1/types_pb.js";
import { type BlockCheckContext, checkBlockTxs } from "../../../src/node/checkBlock.js";
import { toHex } from "../../../src/types/bytes.js";
import { CHAIN, newKey, signedTx } from "../mempool/helpers.js";

function context(verdicts?: (txs: SignedTx[]) => boolean[]): BlockCheckContext & { seen: string[][] } {
  const seen: string[][] = [];
  return {
    chainId: CHAIN,
    limits: { maxTxBytes: 4096 },
    consensus: { maxBlockTxs: 3, maxBlockBytes: 8192 },
    seen,
    verifyTxs: async (txs, hashes) => {
      seen.push(hashes.map(toHex));
      return verdicts?.(txs) ?? txs.map(() => true);
    },
  };
}

const block = (txs: SignedTx[]) => create(BlockSchema, { txs });

describe("checkBlockTxs", () => {
  const key = newKey();
  const a = signedTx(key, { nonce: 0n });
  const b = signedTx(key, { nonce: 1n });

  it("accepts valid transactions after verifying each one's signature with its hash", async () => {
    const ctx = context();
    assert.deepEqual(await checkBlockTxs(block([a, b]), ctx), { kind: "accept" });
    assert.deepEqual(ctx.seen, [[toHex(nativeTxHash(a)), toHex(nativeTxHash(b))]]);
  });

  it("refuses a bad signature with BAD_SIGNATURE", async () => {
    const ctx = context((txs) => txs.map((t) => t !== b));
    assert.deepEqual(await checkBlockTxs(block([a, b]), ctx), { kind: "reject", reason: "BAD_SIGNATURE" });
  });

  it("refuses format, chain id, size, count and duplicates with BAD_BLOCK, before any signature check", async () => {
    const bad = { kind: "reject", reason: "BAD_BLOCK" };
    const cases: [string, SignedTx[], Partial<BlockCheckContext>][] = [
      ["another chain", [signedTx(key, { chainId: "other" })], {}],
      [
        "another chain, not a transfer (fromBinary's decode)",
        [
          signedTx(key, {
            chainId: "other",
            call: {
              case: "kvPut",
              value: create(KvPutSchema, { key: Uint8Array.of(1), value: Uint8Array.of(2) }),
            },
          }),
        ],
        {},
      ],
      ["a truncated transfer body", [{ ...a, body: a.body.subarray(0, a.body.length - 3) }], {}],
      ["undecodable body", [{ ...a, body: new Uint8Array([0xff, 0xff, 0xff]) }], {}],
      ["a duplicate", [a, a], {}],
      ["too many txs", [a, b, signedTx(key, { nonce: 2n }), signedTx(key, { nonce: 3n })], {}],
      ["a tx over maxTxBytes", [signedTx(key, { padding: 5000 })], {}],
      ["a block over maxBlockBytes", [a, b], { consensus: { maxBlockTxs: 3, maxBlockBytes: 100 } }],
    ];
    for (const [name, txs, over] of cases) {
      const ctx = { ...context(), ...over };
      const seen = (ctx as { seen: string[][] }).seen;
      assert.deepEqual(await checkBlockTxs(block(txs), ctx), bad, name);
      assert.equal(seen.length, 0, `${name}: no signature check`);
    }
  });

  it("skips the signature check of transactions the pool holds verified, and only those", async () => {
    const c = signedTx(key, { nonce: 2n });
    const pooled = new Map([a, b].map((t) => [toHex(nativeTxHash(t)), t]));
    const asked: string[] = [];
    const ctx: BlockCheckContext & { seen: string[][] } = {
      ...context(),
      pooledVerified: (tx, hex) => {
        asked.push(hex);
        const held = pooled.get(hex);
        return held !== undefined && toHex(held.signature) === toHex(tx.signature);
      },
    };
    assert.deepEqual(await checkBlockTxs(block([a, c, b]), ctx), { kind: "accept" });
    assert.deepEqual(
      asked,
      [a, c, b].map((t) => toHex(nativeTxHash(t))),
      "asked with each tx's hash",
    );
    assert.deepEqual(ctx.seen, [[toHex(nativeTxHash(c))]], "only the unpooled tx is verified");

    // All pooled: no verify call at all.
    const all = { ...ctx, seen: [] as string[][] };
    assert.deepEqual(await checkBlockTxs(block([a, b]), all), { kind: "accept" });
    assert.equal(all.seen.length, 0);
  });

  it("verifies a pooled body carried with other signature bytes (the pool vouches for its own)", async () => {
    const forged: SignedTx = { ...a, signature: a.signature.map((x, i) => (i === 0 ? x ^ 1 : x)) };
    const ctx: BlockCheckContext & { seen: string[][] } = {
      ...context((txs) => txs.map((t) => t !== forged)),
      pooledVerified: (tx) => toHex(tx.signature) === toHex(a.signature),
    };
    assert.deepEqual(await checkBlockTxs(block([forged]), ctx), { kind: "reject", reason: "BAD_SIGNATURE" });
    assert.deepEqual(ctx.seen, [[toHex(nativeTxHash(a))]]);
  });

  it("still refuses duplicates of a pooled transaction with BAD_BLOCK", async () => {
    const ctx: BlockCheckContext & { seen: string[][] } = { ...context(), pooledVerified: () => true };
    assert.deepEqual(await checkBlockTxs(block([a, a]), ctx), { kind: "reject", reason: "BAD_BLOCK" });
  });
});
