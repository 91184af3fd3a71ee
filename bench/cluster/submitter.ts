// How the bench client submits: one SubmitTx per transaction (`batch` 1, the old path, kept
// measurable), or SubmitTxs batches of up to `batch` transactions, each sender's on its own
// connection (a batch per connection) (issue 14: a unary call per
// transaction was ~32 % of a validator's main thread at saturation, and most of the one-thread
// client's own). A batch gathers only while a call is in flight (for at most `maxDelayMs`, or until
// a call answers): with none in flight, what was submitted goes at the end of the current turn of
// the event loop, so light-load finality does not include a gathering wait. Each transaction's promise settles with
// its own answer either way: resolved when admitted (or already known), rejected with its
// RpcError (OVERLOADED, BAD_NONCE, ...), or with the call's error when the whole call failed.
import type { RpcError } from "../../src/client/node.js";
import type { SignedTx } from "../../src/gen/parabft/v1/types_pb.js";
import type { Connection } from "./load.js";

interface Waiting {
  tx: SignedTx;
  resolve: (conn: number) => void;
  reject: (err: RpcError | unknown) => void;
}

/** The longest a transaction waits for its batch to fill before the batch goes anyway. */
export const SUBMIT_BATCH_DELAY_MS = 5;
/**
 * The overload run's gathering wait (overload.ts): at 2× saturation calls are always in flight,
 * so the 5 ms timer cut the batches at ~35 txs (94 calls/s at 3,350 tx/s offered, quiet s20 run);
 * 20 ms fills them to 64 at that rate. Each call costs the client's grpc-js and the entry
 * validator's API a fixed amount whatever its size; at 2× finality is seconds, so the wait is
 * not what the run measures. The probe's steps keep SUBMIT_BATCH_DELAY_MS.
 */
export const OVERLOAD_BATCH_DELAY_MS = 20;

/** One connection's gathering: its batch being filled and its calls in flight. */
interface Lane {
  pending: Waiting[];
  timer: NodeJS.Timeout | null;
  /** A flush is queued for the end of this turn (no call was in flight). */
  soon: boolean;
  /** SubmitTxs calls sent on this connection and not yet answered. */
  inFlight: number;
}

export class Submitter {
  private readonly lanes: Lane[];
  /** The one gathering lane while `roundRobin` is set; its calls go round-robin. */
  private readonly shared: Lane = { pending: [], timer: null, soon: false, inFlight: 0 };
  private rr = 0;
  /**
   * Batches gather in one lane and go round-robin over the connections, whoever the senders
   * (the overload run, overload.ts: each sender waits for its answer before its next nonce, so
   * its nonces cannot overtake each other, and at 2× saturation one lane fills 64-tx batches
   * where a lane per connection would send a call per handful of txs). Off: a lane per
   * connection, a sender on its own (the open loop's pre-signed runs of nonces with
   * `--sticky-senders`). `bench cluster` turns it on unless that flag is given: with 2 senders
   * per tx/s (the default count) a sender's nonces are seconds apart and do not overtake each
   * other, and the lanes' ~1-tx calls cost the validators saturation (s24-lead-notes.md).
   */
  roundRobin = false;
  /** Calls made (SubmitTx or SubmitTxs). */
  calls = 0;
  /**
   * Called as each call leaves with its transactions, the connection and performance.now()
   * (the per-transaction stage log, `PARABFT_BENCH_TXLOG`: when the gathering wait ended).
   */
  onSend: ((txs: readonly SignedTx[], conn: number, at: number) => void) | null = null;

  constructor(
    private readonly conns: readonly Connection[],
    readonly batch: number,
    /** The gathering wait while a call is in flight; a run may change it for its duration. */
    public maxDelayMs = SUBMIT_BATCH_DELAY_MS,
  ) {
    this.lanes = conns.map(() => ({ pending: [], timer: null, soon: false, inFlight: 0 }));
  }

  /**
   * Submits `tx` on connection `connHint` modulo the connections, batched or not: a sender (the
   * hint) keeps one connection, so its consecutive nonces reach one node in order (p24: spread
   * round-robin, a sender's next nonce often reached another node before its gossip of the
   * previous one, NONCE_GAP; at ~1,000 tx/s with 64 senders the retries of those refusals
   * made the API close the connections as abusive). Resolves with the index of the connection
   * that admitted it.
   */
  submit(tx: SignedTx, connHint: number): Promise<number> {
    const c = connHint % this.conns.length;
    if (this.batch <= 1) {
      const conn = this.conns[c]!;
      this.calls++;
      this.onSend?.([tx], c, performance.now());
      return conn.run(() => conn.client.submitTx(tx)).then(() => c);
    }
    const lane = this.roundRobin ? this.shared : this.lanes[c]!;
    const conn = this.roundRobin ? null : c;
    return new Promise<number>((resolve, reject) => {
      lane.pending.push({ tx, resolve, reject });
      if (lane.pending.length >= this.batch) this.flushLane(lane, conn);
      else if (lane.inFlight === 0) {
        // Nothing in flight from this lane: no reason to wait. Submits of this same turn share
        // the call.
        if (!lane.soon) {
          lane.soon = true;
          queueMicrotask(() => {
            if (lane.soon) this.flushLane(lane, conn);
          });
        }
      } else if (lane.timer === null && !lane.soon)
        lane.timer = setTimeout(() => this.flushLane(lane, conn), this.maxDelayMs);
    });
  }

  /** Transactions gathered for the next batches, not yet sent. */
  get waiting(): number {
    let n = this.shared.pending.length;
    for (const l of this.lanes) n += l.pending.length;
    return n;
  }

  /** Sends what is gathered now (also at the end of a run, so nothing waits for the timer). */
  flush(): void {
    this.flushLane(this.shared, null);
    for (let c = 0; c < this.lanes.length; c++) this.flushLane(this.lanes[c]!, c);
  }

  /** Sends the lane's batch on connection `fixed`, or round-robin when null (the shared lane). */
  private flushLane(lane: Lane, fixed: number | null): void {
    lane.soon = false;
    if (lane.timer !== null) {
      clearTimeout(lane.timer);
      lane.timer = null;
    }
    if (lane.pending.length === 0) return;
    const batch = lane.pending;
    lane.pending = [];
    const c = fixed ?? this.rr++ % this.conns.length;
    const conn = this.conns[c]!;
    this.calls++;
    lane.inFlight++;
    const txs = batch.map((w) => w.tx);
    this.onSend?.(txs, c, performance.now());
    conn
      .run(() => conn.client.submitTxs(txs))
      .finally(() => {
        // The last answer in: what gathered meanwhile goes now rather than at its timer.
        if (--lane.inFlight === 0 && lane.pending.length > 0) this.flushLane(lane, fixed);
      })
      .then(
        (outcomes) => {
          for (let k = 0; k < batch.length; k++) {
            const o = outcomes[k]!;
            if (o.ok) batch[k]!.resolve(c);
            else batch[k]!.reject(o.error);
          }
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      );
  }
}
