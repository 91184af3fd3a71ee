// How the bench client submits: one SubmitTx per transaction (`batch` 1, the old path, kept
// measurable), or SubmitTxs batches of up to `batch` transactions (issue 14: a unary call per
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

export class Submitter {
  private pending: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** A flush is queued for the end of this turn (no call was in flight). */
  private soon = false;
  /** SubmitTxs calls sent and not yet answered. */
  private inFlight = 0;
  private rr = 0;
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
  ) {}

  /**
   * Submits `tx`; `connHint` picks the connection of a unary submit (a sender keeps its
   * connection); batches go round-robin over the connections. Resolves with the index of the
   * connection that admitted it.
   */
  submit(tx: SignedTx, connHint: number): Promise<number> {
    if (this.batch <= 1) {
      const c = connHint % this.conns.length;
      const conn = this.conns[c]!;
      this.calls++;
      this.onSend?.([tx], c, performance.now());
      return conn.run(() => conn.client.submitTx(tx)).then(() => c);
    }
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ tx, resolve, reject });
      if (this.pending.length >= this.batch) this.flush();
      else if (this.inFlight === 0) {
        // Nothing in flight: no reason to wait. Submits of this same turn share the call.
        if (!this.soon) {
          this.soon = true;
          queueMicrotask(() => {
            if (this.soon) this.flush();
          });
        }
      } else if (this.timer === null && !this.soon)
        this.timer = setTimeout(() => this.flush(), this.maxDelayMs);
    });
  }

  /** Transactions gathered for the next batch, not yet sent. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Sends what is gathered now (also at the end of a run, so nothing waits for the timer). */
  flush(): void {
    this.soon = false;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const c = this.rr++ % this.conns.length;
    const conn = this.conns[c]!;
    this.calls++;
    this.inFlight++;
    const txs = batch.map((w) => w.tx);
    this.onSend?.(txs, c, performance.now());
    conn
      .run(() => conn.client.submitTxs(txs))
      .finally(() => {
        // The last answer in: what gathered meanwhile goes now rather than at its timer.
        if (--this.inFlight === 0 && this.pending.length > 0) this.flush();
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
