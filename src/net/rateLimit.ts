// Token buckets. `RateLimiter`: one bucket per key (a sender address, an API connection or IP
// address), bounded in the number of keys; used by the mempool's admission rates, the API's
// connection gate and its block-stream starts. `PeerRateLimiter`: per-peer, per-kind message rate
// limits, one bucket per (peer, message kind). The node asks before it spends work on an envelope;
// an envelope over the limit is dropped and the peer pays a small penalty, so a flood ends in a
// (time-bounded) ban while a burst only loses messages.

/** Sustained rate per second and burst size (messages of one kind, admissions of one key). */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/**
 * Defaults per PeerMessage kind (the oneof case name). Generous for consensus traffic (a healthy
 * peer at high load sends a few hundred votes a second), tight for requests that make us read
 * storage and for status reports.
 */
export const DEFAULT_RATE_LIMITS: Readonly<Record<string, RateLimit>> = {
  prePrepare: { perSecond: 200, burst: 400 },
  prepare: { perSecond: 1000, burst: 2000 },
  commit: { perSecond: 1000, burst: 2000 },
  checkpoint: { perSecond: 200, burst: 400 },
  viewChange: { perSecond: 20, burst: 50 },
  newView: { perSecond: 20, burst: 50 },
  status: { perSecond: 20, burst: 50 },
  blockRequest: { perSecond: 50, burst: 100 },
  blockResponse: { perSecond: 500, burst: 1000 },
  txBatch: { perSecond: 500, burst: 1000 },
  bodyRequest: { perSecond: 100, burst: 200 },
  bodyResponse: { perSecond: 200, burst: 400 },
};
/** Any kind not listed (unknown or future kinds). */
export const DEFAULT_OTHER_LIMIT: RateLimit = { perSecond: 100, burst: 200 };

interface Bucket {
  tokens: number;
  at: number;
}

export class PeerRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limits: Readonly<Record<string, RateLimit>> = DEFAULT_RATE_LIMITS,
    private readonly other: RateLimit = DEFAULT_OTHER_LIMIT,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for (peer, kind); false when the bucket is empty (the message is over the limit). */
  take(peer: number, kind: string): boolean {
    const limit = this.limits[kind] ?? this.other;
    const key = `${peer}:${kind}`;
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: limit.burst, at: t };
      this.buckets.set(key, b);
    }
    if (t > b.at) {
      b.tokens = Math.min(limit.burst, b.tokens + ((t - b.at) / 1000) * limit.perSecond);
      b.at = t;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets a peer's buckets (it left the validator set). */
  forget(peer: number): void {
    for (const k of this.buckets.keys()) if (k.startsWith(`${peer}:`)) this.buckets.delete(k);
  }
}

/**
 * One token bucket per key. When `maxKeys` buckets exist, the least recently created one is
 * dropped; a dropped key starts again with a full burst, so maxKeys must exceed the number of keys
 * that can be active within one refill period.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys = 65_536,
  ) {}

  /** Takes `n` tokens for `key`; false (and nothing taken) when the bucket lacks them. */
  take(key: string, nowMs: number, n = 1): boolean {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.limit.burst, at: nowMs };
      this.buckets.set(key, b);
    } else {
      const refill = ((nowMs - b.at) / 1000) * this.limit.perSecond;
      if (refill > 0) b.tokens = Math.min(this.limit.burst, b.tokens + refill);
      b.at = nowMs;
    }
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}
