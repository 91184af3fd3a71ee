// Token buckets per key (a sender address, an API connection), bounded in the number of keys.

export interface RateLimit {
  /** Sustained admissions per second. */
  perSecond: number;
  /** Largest burst. */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
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
