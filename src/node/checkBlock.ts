// The node's stateless check of a proposed block's transactions (the core's validateBlock hook):
// count, sizes, encoding, chain id, duplicates and signatures. State (nonces, balances) is the
// executor's business: a block may carry a transaction that fails there and pays its fee.
import { fromBinary } from "@bufbuild/protobuf";
import type { Verdict } from "../consensus/pbft/types.js";
import { nativeTxHash } from "../crypto/index.js";
import { type Block, type SignedTx, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import type { ChainParams } from "../params/index.js";
import { toHex } from "../types/bytes.js";

export interface BlockCheckContext {
  chainId: string;
  limits: Pick<ChainParams["limits"], "maxTxBytes">;
  consensus: Pick<ChainParams["consensus"], "maxBlockTxs" | "maxBlockBytes">;
  /** Signature checks, one verdict per transaction (the verify pool). */
  verifyTxs(txs: SignedTx[], hashes: Uint8Array[]): Promise<boolean[]>;
}

/** Rejects with BAD_BLOCK (format, chain id, sizes, duplicates) or BAD_SIGNATURE; else accepts. */
export async function checkBlockTxs(block: Block, ctx: BlockCheckContext): Promise<Verdict> {
  const c = ctx.consensus;
  if (block.txs.length > c.maxBlockTxs) return { kind: "reject", reason: "BAD_BLOCK" };
  const hashes: Uint8Array[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  for (const tx of block.txs) {
    bytes += tx.body.length + tx.signature.length;
    if (tx.body.length + tx.signature.length > ctx.limits.maxTxBytes)
      return { kind: "reject", reason: "BAD_BLOCK" };
    let chainId: string;
    try {
      chainId = fromBinary(TxBodySchema, tx.body).chainId;
    } catch {
      return { kind: "reject", reason: "BAD_BLOCK" };
    }
    if (chainId !== ctx.chainId) return { kind: "reject", reason: "BAD_BLOCK" };
    const h = nativeTxHash(tx);
    const hex = toHex(h);
    if (seen.has(hex)) return { kind: "reject", reason: "BAD_BLOCK" };
    seen.add(hex);
    hashes.push(h);
  }
  // txsRoot and lastCommitHash were checked with the digest by the envelope check.
  if (bytes > c.maxBlockBytes) return { kind: "reject", reason: "BAD_BLOCK" };
  const ok = await ctx.verifyTxs(block.txs, hashes);
  return ok.every(Boolean) ? { kind: "accept" } : { kind: "reject", reason: "BAD_SIGNATURE" };
}
