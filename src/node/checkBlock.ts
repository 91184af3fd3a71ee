// The node's stateless check of a proposed block's transactions (the core's validateBlock hook):
// count, sizes, encoding, chain id, duplicates and signatures. State (nonces, balances) is the
// executor's business: a block may carry a transaction that fails there and pays its fee.
// A transaction the pool holds with these very signature bytes was decoded, checked for this chain
// and verified at admission: it is neither decoded nor sent to the verify pool again (issue 14:
// at saturation nearly every block transaction is one this backup admitted from gossip).
import { fromBinary } from "@bufbuild/protobuf";
import type { Verdict } from "../consensus/pbft/types.js";
import { fastDecodeTxBody } from "../exec/txDecode.js";
import { type Block, type SignedTx, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import type { ChainParams } from "../params/index.js";
import { blockTxIds } from "./blockTxIds.js";

export interface BlockCheckContext {
  chainId: string;
  limits: Pick<ChainParams["limits"], "maxTxBytes">;
  consensus: Pick<ChainParams["consensus"], "maxBlockTxs" | "maxBlockBytes">;
  /** Signature checks, one verdict per transaction (the verify pool). */
  verifyTxs(txs: SignedTx[], hashes: Uint8Array[]): Promise<boolean[]>;
  /**
   * Whether the pool holds this exact transaction (same body hash, same signature bytes): admitted,
   * so decoded with this chain id and verified (Mempool.hasVerified).
   */
  pooledVerified?(tx: SignedTx, hashHex: string): boolean;
}

/** Rejects with BAD_BLOCK (format, chain id, sizes, duplicates) or BAD_SIGNATURE; else accepts. */
export async function checkBlockTxs(block: Block, ctx: BlockCheckContext): Promise<Verdict> {
  const c = ctx.consensus;
  if (block.txs.length > c.maxBlockTxs) return { kind: "reject", reason: "BAD_BLOCK" };
  const ids = blockTxIds(block);
  // What the pool does not vouch for: decoded and verified here.
  const unknownTxs: SignedTx[] = [];
  const unknownHashes: Uint8Array[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < block.txs.length; i++) {
    const tx = block.txs[i]!;
    bytes += tx.body.length + tx.signature.length;
    if (tx.body.length + tx.signature.length > ctx.limits.maxTxBytes)
      return { kind: "reject", reason: "BAD_BLOCK" };
    const hex = ids.hexes[i]!;
    if (seen.has(hex)) return { kind: "reject", reason: "BAD_BLOCK" };
    seen.add(hex);
    if (ctx.pooledVerified?.(tx, hex) === true) continue;
    let chainId: string;
    try {
      // A transfer by hand (what fromBinary builds, src/exec/txDecode.ts), anything else by fromBinary.
      chainId = (fastDecodeTxBody(tx.body) ?? fromBinary(TxBodySchema, tx.body)).chainId;
    } catch {
      return { kind: "reject", reason: "BAD_BLOCK" };
    }
    if (chainId !== ctx.chainId) return { kind: "reject", reason: "BAD_BLOCK" };
    unknownTxs.push(tx);
    unknownHashes.push(ids.hashes[i]!);
  }
  // txsRoot and lastCommitHash were checked with the digest by the envelope check.
  if (bytes > c.maxBlockBytes) return { kind: "reject", reason: "BAD_BLOCK" };
  if (unknownTxs.length === 0) return { kind: "accept" };
  const ok = await ctx.verifyTxs(unknownTxs, unknownHashes);
  return ok.every(Boolean) ? { kind: "accept" } : { kind: "reject", reason: "BAD_SIGNATURE" };
}
