// blockTxIds: a block's transaction ids, hashed once per Block object and equal to txHash / toHex.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { BlockSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { blockTxIds, rememberBlockTxIds } from "../../../src/node/blockTxIds.js";
import { toHex } from "../../../src/types/bytes.js";
import { txHash } from "../../../src/types/index.js";
import { newKey, signedTx } from "../mempool/helpers.js";

describe("blockTxIds", () => {
  const key = newKey();
  const txs = [0n, 1n, 2n].map((nonce) => signedTx(key, { nonce }));

  it("equals txHash and its hex, in block order, and is computed once per block object", () => {
    const block = create(BlockSchema, { txs });
    const ids = blockTxIds(block);
    assert.deepEqual(
      ids.hashes.map((h) => toHex(h)),
      txs.map((t) => toHex(txHash(t))),
    );
    assert.deepEqual(
      ids.hexes,
      txs.map((t) => toHex(txHash(t))),
    );
    assert.equal(blockTxIds(block), ids, "memoised");
    // Another object with the same transactions gets its own (equal) ids.
    const again = blockTxIds(create(BlockSchema, { txs }));
    assert.notEqual(again, ids);
    assert.deepEqual(again.hexes, ids.hexes);
  });

  it("an empty block has no ids", () => {
    const ids = blockTxIds(create(BlockSchema, {}));
    assert.deepEqual([ids.hashes.length, ids.hexes.length], [0, 0]);
  });

  it("takes the proposer's reaped hashes as the block's ids", () => {
    const block = create(BlockSchema, { txs });
    const hashes = txs.map((t) => txHash(t));
    const ids = rememberBlockTxIds(block, hashes);
    assert.equal(blockTxIds(block), ids);
    assert.deepEqual(
      ids.hexes,
      hashes.map((h) => toHex(h)),
    );
  });
});
