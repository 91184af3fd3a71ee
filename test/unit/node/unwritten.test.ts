// UnwrittenBlocks: what the node answers from between a block's certificate (clients answered) and
// its durable commit batch. A client told "committed at h" must find its tx and block here, a
// written block must leave, and a tx included again in a later unwritten block (a DUPLICATE
// re-inclusion) must keep that later entry when the earlier block is written.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  BlockSchema,
  type CommitCertificate,
  type SignedTx,
  SignedTxSchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { type HashedDelivery, UnwrittenBlocks } from "../../../src/node/unwritten.js";
import { txHash } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";

const tx = (tag: number): SignedTx =>
  create(SignedTxSchema, { body: Uint8Array.of(tag), signature: new Uint8Array(64) });

function delivery(height: bigint, txs: SignedTx[] | null): HashedDelivery {
  const hashes = (txs ?? []).map((t) => txHash(t));
  return {
    height,
    epoch: 0n,
    block: txs === null ? null : create(BlockSchema, { txs }),
    digest: new Uint8Array(32).fill(Number(height)),
    certificate: {} as CommitCertificate,
    chainHash: new Uint8Array(32),
    txHashes: hashes,
    txHexes: hashes.map((h) => toHex(h)),
  };
}

const hex = (t: SignedTx) => toHex(txHash(t));

describe("UnwrittenBlocks", () => {
  it("answers an answered block's txs and block until it is written", () => {
    const u = new UnwrittenBlocks();
    const [a, b] = [tx(1), tx(2)];
    const d = delivery(5n, [a, b]);
    u.answered(d);
    assert.equal(u.heightOf(hex(b)), 5n);
    assert.equal(u.block(5n), d);
    const found = u.findTx(hex(b));
    assert.deepEqual(found && { height: found.height, index: found.index }, { height: 5n, index: 1 });
    assert.equal(found?.tx, b);
    assert.equal(u.findTx(hex(tx(3))), null, "a tx no unwritten block holds");

    u.written(d);
    assert.equal(u.heightOf(hex(a)), undefined);
    assert.equal(u.block(5n), undefined);
    assert.equal(u.findTx(hex(a)), null);
    assert.equal(u.size, 0);
  });

  it("keeps a later block's copy of a tx when the earlier block is written", () => {
    const u = new UnwrittenBlocks();
    const [a, b] = [tx(1), tx(2)];
    const first = delivery(7n, [a]);
    const again = delivery(8n, [b, a]);
    u.answered(first);
    u.answered(again);
    u.written(first);
    assert.equal(u.heightOf(hex(a)), 8n);
    const found = u.findTx(hex(a));
    assert.deepEqual(found && { height: found.height, index: found.index }, { height: 8n, index: 1 });
    u.written(again);
    assert.equal(u.heightOf(hex(a)), undefined);
  });

  it("holds a null block (a view change's gap) by height, with no txs", () => {
    const u = new UnwrittenBlocks();
    const gap = delivery(9n, null);
    u.answered(gap);
    assert.equal(u.block(9n), gap);
    u.written(gap);
    assert.equal(u.size, 0);
  });
});
