// The primary's side of the consensus driver: when the core asks for the next height's block, when
// to reap it from the pool (batching by pipeline depth), and what an accepted proposal does to the
// pool. The core decides whether a proposal is accepted; this only builds and times them.
import { create } from "@bufbuild/protobuf";
import type { EnvelopeContext } from "../consensus/envelope.js";
import type { ConsensusCore } from "../consensus/pbft/epochReplica.js";
import type { Action } from "../consensus/pbft/types.js";
import {
  type Block,
  BlockHeaderSchema,
  BlockSchema,
  type CommitCertificate,
} from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import type { Mempool } from "../mempool/index.js";
import type { ConsensusParams } from "../params/index.js";
import { commitCertificateHash, txsRoot } from "../types/block.js";
import { blockTxIds, rememberBlockTxIds } from "./blockTxIds.js";

export interface ProposerOpts {
  chainId: string;
  self: number;
  consensus: Pick<ConsensusParams, "proposalDepth" | "maxBatchDelayMs">;
  maxBlockTxs: number;
  maxBlockBytes: number;
}

export interface ProposerModules {
  replica: Pick<ConsensusCore, "committedHeight" | "set"> & { readonly selfIndex?: number | null };
  mempool: Mempool;
  envelopeContext: EnvelopeContext;
  /** Latest commit certificate, carried in each new block as the agreed record of who signed. */
  lastCommit(): CommitCertificate | null;
  log: Logger;
  metrics: { proposal(txs: number): void } | null;
  now(): number;
  /** Whether the driver stopped: nothing is proposed then. */
  stopped(): boolean;
  /** The reaped block, for the core (a proposal event). */
  submit(height: bigint, block: Block): void;
  /** The pool's executable count may have changed; `again`: tell the core even if it did not. */
  notifyPendingWork(again: boolean): void;
}

/**
 * Batching by pipeline depth: the block rate follows the round time, not a clock. With `h` the
 * height the core asks for, the heights below it that are not yet committed (`h − 1 −
 * committed`, by the core's committed height) are the pipeline:
 * - none: propose at once (light load: one round of latency);
 * - `proposalDepth` or more: wait until one commits (the batch grows meanwhile);
 * - fewer: propose `maxBatchDelayMs` after our previous proposal, or at once when one commits;
 * - a full batch (`maxBlockTxs` executable) goes at once whatever the depth (the core still
 *   bounds it by its window).
 * Each block costs every validator a fixed amount of CPU, so under load blocks grow instead of
 * multiplying. A primary that holds back has `proposalDepth` heights in flight, whose commits
 * are the progress that keeps the backups' view timers from firing; a view change drops the
 * held request (the core asks again if it is still primary). An empty pool proposes nothing.
 */
export class Proposer {
  private batchTimer: NodeJS.Timeout | null = null;
  /** The height the core asked for and this node holds back (null: none). */
  private pending: bigint | null = null;
  /** Wall-clock time of our last proposal: batches close maxBatchDelayMs after it. */
  private lastProposalAt = 0;
  /**
   * Proposals this node reaped from its pool (their tx ids are remembered with blockTxIds): their
   * txs are marked in flight only once the core accepts them.
   */
  private readonly reaped = new WeakSet<Block>();

  constructor(
    private readonly opts: ProposerOpts,
    private readonly mod: ProposerModules,
  ) {}

  /** The core asked for `height`'s block (a requestProposal action). */
  schedule(height: bigint): void {
    this.pending = height;
    if (this.batchTimer) {
      clearTimeout(this.batchTimer);
      this.batchTimer = null;
    }
    const wait = this.wait(height);
    if (wait === 0) {
      this.propose();
      return;
    }
    // Infinity: held until a commit (reconsider) or a full batch (poolGrew).
    if (wait === Number.POSITIVE_INFINITY) return;
    this.batchTimer = setTimeout(() => {
      this.batchTimer = null;
      this.propose();
    }, wait);
  }

  /** The pool holds `executable` txs: a request held for depth goes at once when the batch is full. */
  poolGrew(executable: number): void {
    if (executable >= this.opts.maxBlockTxs && this.pending !== null) this.reconsider();
  }

  /** A request held for depth belongs to the old view; the core asks again if still primary. */
  dropHeld(): void {
    this.pending = null;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
  }

  /** A height committed or the pool filled: a request held for depth may go now. */
  reconsider(): void {
    const height = this.pending;
    if (height === null || this.mod.stopped()) return;
    if (this.batchTimer === null || this.wait(height) === 0) this.schedule(height);
  }

  /** The driver stops: no held request fires. */
  stop(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
  }

  /**
   * The core may drop a proposal (a request it re-issued was answered twice, the view moved, the
   * window filled). Only an accepted one, which it broadcasts as a PRE-PREPARE, takes its
   * transactions out of the pool; a dropped one leaves them to be proposed again, so no nonce is
   * stranded in flight while later ones of the same sender are proposed past it.
   */
  settle(block: Block, actions: readonly Action[]): void {
    if (!this.reaped.has(block)) return;
    const accepted = actions.some((a) => a.kind === "broadcast" && a.msg.kind === "prePrepare");
    if (!accepted) {
      this.mod.log.debug({ height: String(block.header?.height) }, "proposal dropped by the core");
      return;
    }
    this.lastProposalAt = this.mod.now();
    const height = block.header?.height ?? 0n;
    const pp = actions.find((a) => a.kind === "persist" && a.record.kind === "prePrepare");
    const { hexes } = blockTxIds(block);
    if (pp?.kind === "persist" && pp.record.kind === "prePrepare")
      this.mod.mempool.noteBlock(pp.record.digest, height, block.txs, hexes);
    this.mod.mempool.markProposed(hexes, height);
    this.mod.notifyPendingWork(false);
  }

  /** Milliseconds before proposing `height`: 0 = now, Infinity = until a height commits. */
  private wait(height: bigint): number {
    if (this.mod.mempool.pendingExecutable() >= this.opts.maxBlockTxs) return 0;
    const inPipeline = height - 1n - this.mod.replica.committedHeight;
    if (inPipeline <= 0n) return 0;
    if (inPipeline >= BigInt(this.opts.consensus.proposalDepth)) return Number.POSITIVE_INFINITY;
    // At most maxBatchDelayMs even when the wall clock stepped back since the last proposal.
    const delay = this.opts.consensus.maxBatchDelayMs;
    return Math.max(0, Math.min(delay, this.lastProposalAt + delay - this.mod.now()));
  }

  private propose(): void {
    const height = this.pending;
    this.pending = null;
    if (height === null || this.mod.stopped()) return;
    const reaped = this.mod.mempool.reap(this.opts.maxBlockTxs, this.opts.maxBlockBytes, height);
    if (reaped.txs.length === 0) {
      // Executable txs that wait behind one in flight at this height or above are not proposable
      // yet: the core asks again on its next tick rather than at once.
      if (this.mod.mempool.pendingExecutable() > 0) return;
      this.mod.notifyPendingWork(true);
      return;
    }
    const set = this.mod.envelopeContext.sets.get(this.mod.replica.set.epoch)!;
    const lastCommit = this.mod.lastCommit();
    const block = create(BlockSchema, {
      header: create(BlockHeaderSchema, {
        chainId: this.opts.chainId,
        height,
        epoch: set.epoch,
        txsRoot: txsRoot(reaped.hashes),
        validatorsHash: set.hash,
        proposer: this.mod.replica.selfIndex ?? this.opts.self,
        timestampMs: BigInt(this.mod.now()),
        lastCommitHash: lastCommit ? commitCertificateHash(lastCommit) : new Uint8Array(),
      }),
      txs: reaped.txs,
      lastCommit: lastCommit ?? undefined,
    });
    this.mod.log.debug({ height: String(height), txs: reaped.txs.length }, "proposing");
    this.reaped.add(block);
    rememberBlockTxIds(block, reaped.hashes);
    this.mod.metrics?.proposal(reaped.txs.length);
    this.mod.submit(height, block);
  }
}
