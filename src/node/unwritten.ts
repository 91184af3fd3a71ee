// Blocks whose clients were answered at certificate time and whose commit batch is not durable
// yet (issue 14: a block with a commit certificate is final, so its waiters are answered before
// the synced write). Until a block's batch lands, queries answer from here: a client told
// "committed at h" must find its transaction and its block at once. Owns only this memory;
// CommitPath (commitPath.ts) decides when a block is answered (answerCommitted) and when it is
// written (commitOne).
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Hash } from "../types/hash.js";
import type { Delivered } from "./driver.js";

/** A delivered block with its transaction ids (blockTxIds: hashed once per block). */
export type HashedDelivery = Delivered & { txHashes: readonly Hash[]; txHexes: readonly string[] };

export class UnwrittenBlocks {
  private readonly byHeight = new Map<bigint, HashedDelivery>();
  /** Transaction id (hex) → the height it was answered at. */
  private readonly heightOfTx = new Map<string, bigint>();

  /** `d`'s clients are being answered: its transactions count as committed at d.height. */
  answered(d: HashedDelivery): void {
    this.byHeight.set(d.height, d);
    for (const hex of d.txHexes) this.heightOfTx.set(hex, d.height);
  }

  /** `d`'s commit batch is durable: storage answers for it from now on. */
  written(d: HashedDelivery): void {
    // A later unwritten block's copy of the same tx (a DUPLICATE re-inclusion) keeps its entry.
    for (const hex of d.txHexes) if (this.heightOfTx.get(hex) === d.height) this.heightOfTx.delete(hex);
    this.byHeight.delete(d.height);
  }

  /** The height an unwritten block answered transaction `hex` at. */
  heightOf(hex: string): bigint | undefined {
    return this.heightOfTx.get(hex);
  }

  /** The unwritten block at `height`. */
  block(height: bigint): HashedDelivery | undefined {
    return this.byHeight.get(height);
  }

  /** Transaction `hex` in the unwritten block that answered it, with its place; null if none. */
  findTx(hex: string): { tx: SignedTx; height: bigint; index: number } | null {
    const height = this.heightOfTx.get(hex);
    const d = height === undefined ? undefined : this.byHeight.get(height);
    const index = d?.txHexes.indexOf(hex) ?? -1;
    const tx = index >= 0 ? d?.block?.txs[index] : undefined;
    return d && tx ? { tx, height: d.height, index } : null;
  }

  get size(): number {
    return this.byHeight.size;
  }
}
