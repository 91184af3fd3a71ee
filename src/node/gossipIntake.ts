// Peers' gossip at the consensus driver: each peer's TxBatches wait in a queue of their own and are
// admitted to the pool one admission at a time, in arrival order. Gossip is verified in the pool's
// workers, never on the consensus path.
import type { Verdict } from "../consensus/pbft/types.js";
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import type { Mempool } from "../mempool/index.js";
import type { PeerNetwork } from "../net/index.js";
import { txHash } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { errorMessage } from "../types/errors.js";
import { TRACE, TRACE_ID_HEX, traceAdmitted } from "./trace.js";

/** Mempool rejections no honest gossiping peer can cause (it verifies before it gossips). */
const PROVABLY_INVALID: ReadonlySet<string> = new Set([
  "BAD_SIGNATURE",
  "MALFORMED",
  "WRONG_CHAIN",
  "TX_TOO_LARGE",
]);

/**
 * Gossip batches one peer may have waiting for admission; beyond it a batch is dropped
 * (GOSSIP_BACKLOG). The origin still holds its txs, and the peer rate limit bounds the rest.
 */
const MAX_QUEUED_GOSSIP_BATCHES = 64;
/** Transactions one admission of a peer's queued gossip batches may merge (4 full TxBatches). */
const GOSSIP_MERGE_TXS = 1024;

export interface GossipIntakeModules {
  mempool: Pick<Mempool, "addBatch">;
  net: Pick<PeerNetwork, "penalize">;
  log: Logger;
  metrics: { verdict(kind: Verdict["kind"], reason: string): void } | null;
  /** Whether the driver stopped: a queue then stops admitting. */
  stopped(): boolean;
}

/** One peer's gossip batches waiting for admission, and whether one of its admissions is running. */
interface PeerQueue {
  waiting: SignedTx[][];
  running: boolean;
}

export class GossipIntake {
  private readonly queues = new Map<number, PeerQueue>();

  constructor(private readonly mod: GossipIntakeModules) {}

  /**
   * A peer's TxBatch: queued behind that peer's earlier batches (accept), or dropped when its
   * queue is full (ignore, GOSSIP_BACKLOG). One peer's batches are admitted in arrival order: a
   * batch continues its senders' nonce runs from the previous one, which the pool must hold first
   * or the run's far end is refused as NONCE_GAP.
   */
  offer(from: number, txs: SignedTx[]): Verdict {
    const queue = this.queues.get(from) ?? { waiting: [], running: false };
    if (queue.waiting.length >= MAX_QUEUED_GOSSIP_BATCHES)
      return { kind: "ignore", reason: "GOSSIP_BACKLOG" };
    this.queues.set(from, queue);
    if (TRACE)
      this.mod.log.debug(
        { from, n: txs.length, txs: txs.map((t) => toHex(txHash(t)).slice(0, TRACE_ID_HEX)) },
        "trace gossip in",
      );
    queue.waiting.push(txs);
    if (!queue.running) void this.drain(from, queue);
    return { kind: "accept" };
  }

  /**
   * Admits one peer's gossip batches one admission at a time, in arrival order. The batches that
   * arrived while an admission ran are admitted together, up to GOSSIP_MERGE_TXS (the pool judges
   * a batch in (sender, nonce) order, so the runs continue across them as they did across
   * admissions in a row). p24: one admission per batch, each awaiting its account reads and its
   * signatures, queued batches behind each other for 1.4 s p50 at 200 tx/s on a loaded box.
   */
  private async drain(from: number, queue: PeerQueue): Promise<void> {
    queue.running = true;
    try {
      while (queue.waiting.length > 0 && !this.mod.stopped()) {
        let txs = queue.waiting.shift()!;
        while (queue.waiting.length > 0 && txs.length + queue.waiting[0]!.length <= GOSSIP_MERGE_TXS)
          txs = txs.concat(queue.waiting.shift()!);
        await this.admit(from, txs);
      }
    } finally {
      queue.running = false;
    }
  }

  /** Admits gossiped txs; a provably invalid tx is its sender's fault. */
  private admit(from: number, txs: SignedTx[]): Promise<void> {
    const at0 = TRACE ? Date.now() : 0;
    return this.mod.mempool.addBatch(txs, "peer").then(
      (results) => {
        if (TRACE) traceAdmitted(this.mod.log, "trace gossip admitted", at0, results, from);
        // Honest peers gossip only transactions they verified: one that is provably invalid
        // whatever the state (bad signature, malformed, other chain, too large) is the sender's fault.
        let bad = 0;
        for (const r of results) if (!r.ok && PROVABLY_INVALID.has(r.error.code)) bad++;
        if (bad > 0) {
          this.mod.metrics?.verdict("reject", "TX_BATCH_INVALID");
          this.mod.net.penalize(from, "TX_BATCH_INVALID", bad);
        }
      },
      (err: unknown) => {
        this.mod.log.warn({ err: errorMessage(err) }, "gossiped batch failed");
      },
    );
  }
}
