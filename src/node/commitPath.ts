// The commit path of delivered blocks (README "Commit and execution"): at delivery, in height
// order, the block's clients are answered (it is final); then the commit stage writes the synced
// commit batch and hands the block to the execution pipeline, one block at a time.

import type { BlockRecord } from "../api/backend.js";
import type { SigningRecord } from "../consensus/pbft/types.js";
import type { ExecutionPipeline } from "../exec/pipeline.js";
import type { PreDecodedTx } from "../exec/types.js";
import type { CommitCertificate } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import type { Mempool } from "../mempool/index.js";
import type { ChainDb } from "../storage/index.js";
import { toHex } from "../types/bytes.js";
import { type BlockTxIds, blockTxIds } from "./blockTxIds.js";
import type { EpochTallies } from "./dpos.js";
import type { Delivered } from "./driver.js";
import type { NodeMetrics } from "./metrics.js";
import { OrderedStage } from "./stage.js";
import { holdCommitWritesForTests } from "./testFaults.js";
import { type HashedDelivery, UnwrittenBlocks } from "./unwritten.js";
import type { Waiters } from "./waiters.js";

/** A delivered block whose clients were answered (answerCommitted), for the commit stage. */
interface CommitJob {
  d: HashedDelivery;
  blockTimeMs: bigint;
  decoded: (PreDecodedTx | undefined)[];
  blockBytes: Uint8Array | undefined;
}
/** A null block's (no) transaction ids. */
const NO_TX_IDS: BlockTxIds = { hashes: [], hexes: [] };

const MAX_TRACKED_SUBMITS = 100_000;

/** Where the chain stood in storage when the node started. */
export interface CommitPathOpts {
  committedHeight: bigint;
  lastBlockTimeMs: bigint;
  lastCommitCert: CommitCertificate | null;
}

export interface CommitPathModules {
  db: ChainDb;
  mempool: Mempool;
  execution: ExecutionPipeline;
  /** Signing tallies of the epochs in progress, folded as blocks commit (dpos.ts). */
  tallies: EpochTallies;
  /** The node's commit waiters (SubmitTxAndWait) and StreamBlocks subscribers, answered here. */
  committed: Waiters<bigint>;
  blockListeners: ReadonlySet<(b: BlockRecord) => void>;
  metrics: NodeMetrics;
  log: Logger;
  /** A durable commit batch is news for the driver (the primary may propose again). */
  notifyPendingWork(): void;
  /** A halted node answers nobody. */
  halted(): boolean;
  /** The commit stage failed: the node halts. */
  onFailed(err: unknown): void;
}

export class CommitPath {
  /** The height clients were last answered at (GetStatus, the peer status). */
  private committedHeightValue: bigint;
  private lastCommitCertValue: CommitCertificate | null;
  private lastBlockTimeMs: bigint;
  /** Blocks whose waiters were answered and whose commit batch is not yet durable. */
  readonly unwritten = new UnwrittenBlocks();
  /** Submit time of transactions this node's API admitted, for the finality histogram (bounded). */
  private readonly submittedAt = new Map<string, number>();
  /**
   * Encoded bodies from the signing records (PRE-PREPARE/PREPARE), by digest hex: the commit batch
   * stores these bytes instead of encoding the block again. Taken at commit; bounded.
   */
  private readonly recordedBodies = new Map<string, Uint8Array>();
  /**
   * Delivered blocks, in height order, after answerCommitted answered their clients: commit batch,
   * then (concurrently, one block behind) execution.
   */
  private readonly stage = new OrderedStage<CommitJob>(
    (job) => this.commitOne(job),
    (err) => this.mod.onFailed(err),
  );

  constructor(
    opts: CommitPathOpts,
    private readonly mod: CommitPathModules,
  ) {
    this.committedHeightValue = opts.committedHeight;
    this.lastBlockTimeMs = opts.lastBlockTimeMs;
    this.lastCommitCertValue = opts.lastCommitCert;
  }

  get committedHeight(): bigint {
    return this.committedHeightValue;
  }

  /** The latest commit certificate, carried in the next block this node proposes. */
  get lastCommitCert(): CommitCertificate | null {
    return this.lastCommitCertValue;
  }

  /** Resolves once the block in the commit stage (if any) is durable; queued blocks are dropped. */
  drainAndStop(): Promise<void> {
    return this.stage.drainAndStop();
  }

  /** Bodies from the signing records, by digest hex, for the commit batch (bounded). */
  keepBodies(records: readonly SigningRecord[]): void {
    for (const r of records) {
      if ((r.kind === "prePrepare" || r.kind === "prepare") && r.body !== undefined) {
        this.recordedBodies.set(toHex(r.digest), r.body);
        if (this.recordedBodies.size > 64) {
          const oldest = this.recordedBodies.keys().next().value;
          if (oldest !== undefined) this.recordedBodies.delete(oldest);
        }
      }
    }
  }

  /** The driver delivered a block (in height order, with its certificate). */
  deliver(d: Delivered): void {
    // The pool keeps these in flight at once: the commit stage may run behind, and a view
    // change meanwhile must not hand them back for a later proposal (a duplicate).
    const { hashes, hexes } = d.block === null ? NO_TX_IDS : blockTxIds(d.block);
    this.mod.mempool.markDelivered(hexes, d.height);
    // A halted node (a failed stage) answers nobody: its commit stage takes nothing more.
    if (this.mod.halted()) return;
    this.stage.push(this.answerCommitted({ ...d, txHashes: hashes, txHexes: hexes }));
  }

  /**
   * At delivery (certificate time, in height order, before the commit stage): commit waiters and
   * block subscribers are answered, the pool forgets the block's txs. The commit stage then writes
   * the synced commit batch and hands the block to execution (`commitOne`).
   */
  private answerCommitted(d: HashedDelivery): CommitJob {
    const txs = d.block?.txs ?? [];
    const { txHashes, txHexes } = d;
    const ts = d.block?.header?.timestampMs ?? 0n;
    const blockTimeMs = ts > this.lastBlockTimeMs ? ts : this.lastBlockTimeMs;
    this.lastBlockTimeMs = blockTimeMs;
    // A block with a commit certificate is final: its waiting clients are answered now, before
    // the commit batch is written, and before the batches of earlier blocks are durable or their
    // execution has room (issue 14: when the commit stage ran behind, each answer waited for
    // every earlier block's synced write and for the execution queue). A crash before the write
    // loses nothing: on restart the block is fetched again with its certificate (state
    // transfer), exactly as any block a node missed. Queries (GetTx, GetBlock) answer from memory
    // until the batch is durable; receipts and wait_executed still wait for execution.
    // Until the batch is durable a later waiter or query finds the block and its txs here.
    this.unwritten.answered(d);
    // The epoch's signing tally, folded as blocks commit (the executor asks at its last block).
    this.mod.tallies.add(d.height, d.block);
    // Status reports the height clients were answered at: a client that got its commit answer
    // and then asks GetStatus sees a committed height that includes its tx.
    this.committedHeightValue = d.height;
    this.lastCommitCertValue = d.certificate;
    const now = performance.now();
    // issue 13 (decode once): the pool decoded and verified these txs; execution reuses its
    // bodies and sender addresses (a tx the pool never saw, e.g. by catch-up, is decoded there).
    const decoded: (PreDecodedTx | undefined)[] = new Array(txs.length);
    for (let i = 0; i < txHashes.length; i++) {
      const hex = txHexes[i]!;
      const pooled = this.mod.mempool.get(hex);
      decoded[i] = pooled && { body: pooled.body, address: pooled.address };
      const t0 = this.submittedAt.get(hex);
      if (t0 !== undefined) {
        this.mod.metrics.finalitySeconds.observe((now - t0) / 1000);
        this.submittedAt.delete(hex);
      }
      this.mod.committed.resolve(hex, d.height);
    }
    // The pool forgets them now too: the next nonce of a sender is proposable at once.
    this.mod.mempool.removeCommitted(txs, d.height, txHexes);
    // StreamBlocks subscribers get the block now too, with its certificate: final, as the commit
    // waiters above (issue 14: the open-loop bench stamps finality at the block's arrival, and
    // waiting for the synced batch added the write to every block's figure). A subscriber that
    // asks for the block meanwhile finds it in `unwritten` (getBlock).
    const record: BlockRecord = {
      height: d.height,
      digest: d.digest,
      block: d.block,
      certificate: d.certificate,
    };
    for (const l of this.mod.blockListeners) l(record);
    // The body this replica recorded for the digest (same block, same encoding), if any.
    const digestHex = toHex(d.digest);
    const blockBytes = d.block === null ? undefined : this.recordedBodies.get(digestHex);
    this.recordedBodies.delete(digestHex);
    return { d, blockTimeMs, decoded, blockBytes };
  }

  /** Commit stage (strictly in height order): the synced commit batch, then execution. */
  private async commitOne(job: CommitJob): Promise<void> {
    const { d, blockTimeMs, decoded, blockBytes } = job;
    const txs = d.block?.txs ?? [];
    const { txHashes } = d;
    const held = holdCommitWritesForTests();
    if (held !== null) await held;
    await this.mod.db.writeCommitBatch({
      height: d.height,
      digest: d.digest,
      block: d.block,
      ...(blockBytes !== undefined ? { blockBytes } : {}),
      txHashes,
      certificate: d.certificate,
      chainHash: d.chainHash,
      blockTimeMs,
    });
    this.mod.log.debug({ height: String(d.height), txs: txs.length }, "commit batch durable");
    this.mod.metrics.committedHeight.set(Number(d.height));
    this.mod.metrics.committedTxs.inc(txs.length);
    this.unwritten.written(d);
    this.mod.notifyPendingWork();
    // Waits while the execution pipeline is full: backpressure reaches consensus through maxExecLag.
    await this.mod.execution.submit({ height: d.height, timestampMs: blockTimeMs, txs, txHashes, decoded });
  }

  /** When this node's API admitted a transaction (api_finality_seconds), the newest few only. */
  noteSubmitted(hashHex: string, at: number): void {
    if (this.submittedAt.size >= MAX_TRACKED_SUBMITS)
      this.submittedAt.delete(this.submittedAt.keys().next().value!);
    this.submittedAt.set(hashHex, at);
  }
}
