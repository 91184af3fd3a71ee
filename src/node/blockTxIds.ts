// The ids of a block's transactions (txHash and its hex), computed once per Block object. A
// backup's block was hashed at the check, when noted in flight, at delivery and at removal from the
// pool, and each hash hex-encoded again at every step: ~4 SHA-256 and ~6 hex strings per
// transaction per validator at saturation (issue 14, bench/results/s16-ledger.txt). Blocks are
// never mutated once built or decoded, so the ids of one object stay its ids.
import { nativeTxHash } from "../crypto/index.js";
import type { Block } from "../gen/parabft/v1/types_pb.js";
import { toHex } from "../types/bytes.js";
import type { Hash } from "../types/hash.js";

export interface BlockTxIds {
  /** txHash of each transaction, in block order. */
  readonly hashes: readonly Hash[];
  /** toHex of each hash: how the pool, the waiters and the caches key a transaction. */
  readonly hexes: readonly string[];
}

const memo = new WeakMap<Block, BlockTxIds>();

/** The ids of `block`'s transactions, hashed on first use. */
export function blockTxIds(block: Block): BlockTxIds {
  const known = memo.get(block);
  if (known !== undefined) return known;
  return rememberBlockTxIds(
    block,
    block.txs.map((t) => nativeTxHash(t)),
  );
}

/** Records ids already known for `block` (the primary's reaped hashes, in block order). */
export function rememberBlockTxIds(block: Block, hashes: readonly Hash[]): BlockTxIds {
  const ids: BlockTxIds = { hashes, hexes: hashes.map((h) => toHex(h)) };
  memo.set(block, ids);
  return ids;
}
