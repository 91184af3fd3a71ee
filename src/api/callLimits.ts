// Per-call resource limits of the public API: calls in flight per connection and per IP address,
// open block streams (global, per address, and new ones per second per address), and the
// accountability of a connection whose transaction submits keep being refused for their own
// fault. Owns the counters; not the connection caps (GatedListener, src/net/listener.ts, counts
// connections before grpc-js sees them) nor the handlers (server.ts).

import type { Logger } from "../logger/index.js";
import type { ConnectionRefusal } from "../net/listener.js";
import { peerAddress } from "../net/listener.js";
import { RateLimiter } from "../net/rateLimit.js";
import { ParabftError } from "../types/errors.js";
import { http2StreamOf } from "./blockStream.js";
import { ApiError } from "./errors.js";
import type { ApiMetrics, ApiServerOpts } from "./server.js";

export type ApiLimitReason =
  | ConnectionRefusal
  | "max_in_flight_per_connection"
  | "max_in_flight_per_address"
  | "max_streams"
  | "max_streams_per_address"
  | "stream_rate"
  | "slow_consumer"
  /** A call arrived on a connection a refusal had already closed: dropped unanswered. */
  | "closed_connection"
  /** A connection closed for its refused submits (maxRefusedSubmitsPerConnection). */
  | "refused_submits";

/**
 * Submit refusals that are the transaction's own fault, whoever retries it: what
 * maxRefusedSubmitsPerConnection counts. Not counted: the node's state (MEMPOOL_FULL, OVERLOADED, SYNCING),
 * rate limits (they have their own strikes), a stale nonce or a duplicate (an honest client's
 * retry after a lost answer).
 */
export const REFUSED_SUBMIT_CODES: ReadonlySet<string> = new Set([
  "MALFORMED",
  "TX_TOO_LARGE",
  "WRONG_CHAIN",
  "BAD_FEE",
  "FEE_TOO_LOW",
  "GAS_LIMIT_TOO_LOW",
  "AMOUNT_OUT_OF_RANGE",
  "UNKNOWN_ACCOUNT",
  "INSUFFICIENT_FUNDS",
  "NONCE_GAP",
  "BAD_SIGNATURE",
]);

export type CallLimitsOpts = Pick<
  ApiServerOpts,
  | "maxInFlightPerConnection"
  | "maxInFlightPerAddress"
  | "maxStreams"
  | "maxStreamsPerAddress"
  | "newStreamsPerSecondPerAddress"
  | "maxRefusedSubmitsPerConnection"
>;

export interface CallLimitsModules {
  log: Logger;
  metrics?: ApiMetrics | null;
  /** Counts a strike against the caller's connection (Infinity: close it now). */
  strike(peer: string, weight: number): void;
  /** The number of open block streams changed. */
  onStreamsChanged(): void;
}

export class CallLimits {
  private readonly inFlight = new Map<string, number>();
  private readonly inFlightByAddress = new Map<string, number>();
  private readonly streamsByAddress = new Map<string, number>();
  /** New block streams per address: a burst of four times the rate, then the rate. */
  private readonly streamStarts: RateLimiter;
  private streamCount = 0;
  /** Per HTTP/2 session (freed with it): its submits refused for their own fault, and admitted. */
  private readonly submitRecord = new WeakMap<object, { refused: number; admitted: number }>();
  private submitClosedLogged = 0;

  constructor(
    private readonly opts: CallLimitsOpts,
    private readonly mod: CallLimitsModules,
  ) {
    const rate = opts.newStreamsPerSecondPerAddress;
    this.streamStarts = new RateLimiter({ perSecond: rate, burst: 4 * rate }, 10_000);
  }

  /** Open StreamBlocks subscriptions. */
  get streams(): number {
    return this.streamCount;
  }

  /**
   * Counts one call against its connection and its IP address (and, for StreamBlocks, against
   * the stream caps); throws RESOURCE_EXHAUSTED when a cap is reached. The returned function
   * releases it, once.
   */
  admit(peer: string, stream = false): () => void {
    const o = this.opts;
    const addr = peerAddress(peer);
    const n = this.inFlight.get(peer) ?? 0;
    const a = this.inFlightByAddress.get(addr) ?? 0;
    const sa = this.streamsByAddress.get(addr) ?? 0;
    const limited = (reason: ApiLimitReason, code: "TOO_MANY_REQUESTS" | "TOO_MANY_STREAMS", msg: string) => {
      this.mod.metrics?.limited?.(reason);
      // Opening block streams faster than the per-address rate is churn, not use: the connection
      // goes at once (with the requests still queued on it); other refusals count as strikes.
      this.mod.strike(peer, reason === "stream_rate" ? Number.POSITIVE_INFINITY : 1);
      // ApiError is stackless: capturing a stack was the single largest cost of refusing one
      // (profiled under the unread-StreamBlocks flood).
      return new ApiError(code, {}, msg);
    };
    if (n >= o.maxInFlightPerConnection) {
      throw limited(
        "max_in_flight_per_connection",
        "TOO_MANY_REQUESTS",
        `more than ${o.maxInFlightPerConnection} calls in flight on this connection`,
      );
    }
    if (a >= o.maxInFlightPerAddress) {
      throw limited(
        "max_in_flight_per_address",
        "TOO_MANY_REQUESTS",
        `more than ${o.maxInFlightPerAddress} calls in flight from this address`,
      );
    }
    if (stream && this.streamCount >= o.maxStreams) {
      throw limited("max_streams", "TOO_MANY_STREAMS", `more than ${o.maxStreams} block streams open`);
    }
    if (stream && sa >= o.maxStreamsPerAddress) {
      throw limited(
        "max_streams_per_address",
        "TOO_MANY_STREAMS",
        `more than ${o.maxStreamsPerAddress} block streams open from this address`,
      );
    }
    if (stream && !this.streamStarts.take(addr, Date.now())) {
      throw limited(
        "stream_rate",
        "TOO_MANY_STREAMS",
        `more than ${o.newStreamsPerSecondPerAddress} new block streams per second from this address`,
      );
    }
    bumpCount(this.inFlight, peer, 1);
    bumpCount(this.inFlightByAddress, addr, 1);
    if (stream) {
      bumpCount(this.streamsByAddress, addr, 1);
      this.streamCount++;
      this.mod.onStreamsChanged();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      bumpCount(this.inFlight, peer, -1);
      bumpCount(this.inFlightByAddress, addr, -1);
      if (stream) {
        bumpCount(this.streamsByAddress, addr, -1);
        this.streamCount--;
        this.mod.onStreamsChanged();
      }
    };
  }

  /**
   * Connection accountability for submits (maxRefusedSubmitsPerConnection): counts an admitted
   * submit (err null) or one refused for its own fault, and closes a connection that has sent
   * the bound of refused ones with fewer than a tenth admitted. Per connection, never per
   * address: clients behind one address (a NAT, every local client on 127.0.0.1) keep theirs.
   */
  recordSubmit(call: object, peer: string, err: unknown): void {
    const bound = this.opts.maxRefusedSubmitsPerConnection;
    if (bound <= 0) return;
    const refused = err instanceof ParabftError && REFUSED_SUBMIT_CODES.has(err.code);
    if (err !== null && !refused) return;
    const session = http2StreamOf(call)?.session;
    if (!session) return;
    let r = this.submitRecord.get(session);
    if (!r) {
      r = { refused: 0, admitted: 0 };
      this.submitRecord.set(session, r);
    }
    if (!refused) {
      r.admitted++;
      return;
    }
    r.refused++;
    if (r.refused < bound || r.admitted * 9 >= r.refused) return;
    this.submitRecord.delete(session);
    this.mod.metrics?.limited?.("refused_submits");
    const now = Date.now();
    if (now - this.submitClosedLogged > 5_000) {
      this.submitClosedLogged = now;
      this.mod.log.warn(
        { peer, refused: r.refused, admitted: r.admitted, lastCode: (err as ParabftError).code },
        "api connection closed: its transaction submits were refused",
      );
    }
    this.mod.strike(peer, Number.POSITIVE_INFINITY);
  }
}

function bumpCount(map: Map<string, number>, key: string, by: number): void {
  const v = (map.get(key) ?? 0) + by;
  if (v <= 0) map.delete(key);
  else map.set(key, v);
}
