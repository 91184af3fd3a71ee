// Client transactions reach every peer validator in TxBatch envelopes, so backups have verified
// them before they see the block; own transactions still pending after a while are gossiped again
// (lost gossip repair). Owns the batching and the re-gossip timer; not what is admitted (the
// mempool) nor how envelopes travel (src/net).
import { create } from "@bufbuild/protobuf";
import { sealGossip } from "../consensus/envelope.js";
import { PeerMessageSchema, TxBatchSchema } from "../gen/parabft/v1/consensus_pb.js";
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Counter } from "../metrics/types.js";

/** Transactions per TxBatch envelope. */
export const GOSSIP_BATCH_TXS = 256;
/** A busy node batches admissions for this long before sending. */
const GOSSIP_FLUSH_MS = 2;
/** Own transactions still waiting this long after their last gossip are gossiped again. */
const REGOSSIP_AFTER_MS = 3_000;

export interface TxGossipOptions {
  chainId: string;
}

export interface TxGossipModules {
  /** This validator's index in the current epoch's set and that epoch; null self = a follower. */
  sender(): { self: number | null; epoch: bigint };
  /** Sends encoded envelope bytes to every connected peer. */
  broadcast(bytes: Uint8Array): void;
  /** Own transactions whose last gossip is older than `olderThanMs` (Mempool.staleOwn). */
  staleOwn(olderThanMs: number, max: number): SignedTx[];
  regossiped: Counter;
}

/**
 * One TxBatch envelope per GOSSIP_BATCH_TXS transactions or GOSSIP_FLUSH_MS. The envelope is
 * unsigned (sealGossip): every tx is signed and the authenticated peer stream names the sender.
 * An idle node sends at once (end of the current event-loop turn) instead of waiting out the timer.
 */
export class TxGossip {
  private readonly buffer: SignedTx[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** A flush is queued with setImmediate (idle path). */
  private soon = false;
  private lastSentAt = 0;
  private regossipTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: TxGossipOptions,
    private readonly modules: TxGossipModules,
  ) {}

  /** Starts the lost-gossip repair: see Mempool.staleOwn. */
  start(): void {
    this.regossipTimer = setInterval(() => {
      const txs = this.modules.staleOwn(REGOSSIP_AFTER_MS, 4 * GOSSIP_BATCH_TXS);
      if (txs.length === 0) return;
      this.modules.regossiped.inc(txs.length);
      this.queue(txs);
    }, REGOSSIP_AFTER_MS / 2);
    this.regossipTimer.unref();
  }

  /** Stops the timers; what is still buffered is dropped (the pool still holds those txs). */
  stop(): void {
    if (this.regossipTimer) clearInterval(this.regossipTimer);
    this.regossipTimer = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.buffer.length = 0;
  }

  queue(txs: SignedTx[]): void {
    this.buffer.push(...txs);
    if (this.buffer.length >= GOSSIP_BATCH_TXS) this.flush();
    else if (this.timer === null && !this.soon) {
      // Idle (no envelope in the last GOSSIP_FLUSH_MS): at the end of this turn of the event loop,
      // so admissions of the same turn share an envelope. Busy: batch for GOSSIP_FLUSH_MS.
      if (performance.now() - this.lastSentAt >= GOSSIP_FLUSH_MS) {
        this.soon = true;
        setImmediate(() => this.flush());
      } else this.timer = setTimeout(() => this.flush(), GOSSIP_FLUSH_MS);
    }
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.soon = false;
    if (this.buffer.length > 0) this.lastSentAt = performance.now();
    // DPoS: gossip names the sender by its index in the current epoch's set; a follower has none
    // and does not gossip (its API refuses client transactions: NOT_A_VALIDATOR).
    const { self, epoch } = this.modules.sender();
    if (self === null) {
      this.buffer.length = 0;
      return;
    }
    while (this.buffer.length > 0) {
      const txs = this.buffer.splice(0, GOSSIP_BATCH_TXS);
      const msg = sealGossip(
        this.opts.chainId,
        epoch,
        self,
        create(PeerMessageSchema, { kind: { case: "txBatch", value: create(TxBatchSchema, { txs }) } }),
      );
      this.modules.broadcast(msg.bytes);
    }
  }
}
