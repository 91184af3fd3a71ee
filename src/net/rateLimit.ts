// Per-peer, per-kind message rate limits: one token bucket per (peer, message kind). The node asks
// before it spends work on an envelope; an envelope over the limit is dropped and the peer pays a
// small penalty, so a flood ends in a (time-bounded) ban while a burst only loses messages.

/** Sustained messages per second and burst size for one kind. */
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
