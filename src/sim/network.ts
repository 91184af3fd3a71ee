// The simulated network: per-message delay, loss, duplication, reordering (random delays
// reorder naturally) and partitions. It moves opaque encoded Envelope bytes; it never looks
// inside them, exactly like the real transport.
import type { Prng } from "./prng.js";

export interface NetworkProfile {
  /** Delay = minDelayMs + uniform[0, jitterMs]; with probability slowNum/1000 add slowExtraMs. */
  minDelayMs: number;
  jitterMs: number;
  slowPerMille: number;
  slowExtraMs: number;
  /** Per-message loss and duplication, in 1/1000. */
  lossPerMille: number;
  dupPerMille: number;
}

export const calmNetwork: NetworkProfile = {
  minDelayMs: 10,
  jitterMs: 0,
  slowPerMille: 0,
  slowExtraMs: 0,
  lossPerMille: 0,
  dupPerMille: 0,
};

export interface Delivery {
  from: number;
  to: number;
  bytes: Uint8Array;
  delayMs: number;
}

export class SimNetwork {
  /** group[i] = partition group of replica i; replicas talk only within one group. */
  private group: number[];
  profile: NetworkProfile;
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(
    readonly n: number,
    profile: NetworkProfile,
    private readonly rng: Prng,
  ) {
    this.profile = profile;
    this.group = new Array<number>(n).fill(0);
  }

  /** Splits replicas into groups; `groups` lists every replica exactly once. */
  partition(groups: readonly (readonly number[])[]): void {
    groups.forEach((g, gi) => {
      for (const r of g) this.group[r] = gi;
    });
  }

  heal(): void {
    this.group.fill(0);
    this.blocked.clear();
  }

  /** One-way cuts: `from` cannot reach `to` (the reverse direction is unaffected). */
  private readonly blocked = new Set<number>();

  blockLinks(links: readonly (readonly [number, number])[]): void {
    for (const [from, to] of links) this.blocked.add(from * this.n + to);
  }

  get partitioned(): boolean {
    return this.group.some((g) => g !== 0) || this.blocked.size > 0;
  }

  connected(a: number, b: number): boolean {
    return this.group[a] === this.group[b] && !this.blocked.has(a * this.n + b);
  }

  /**
   * Routes one message: zero, one or two deliveries (loss, normal, duplicate). A link cut by
   * a partition drops at send time; messages already in flight still arrive, as on a real
   * network where packets already on the wire are not recalled.
   */
  route(from: number, to: number, bytes: Uint8Array): Delivery[] {
    this.sent++;
    if (!this.connected(from, to)) {
      this.dropped++;
      return [];
    }
    const p = this.profile;
    // Self-delivery is local: no loss, no delay beyond ordering.
    if (from === to) return [{ from, to, bytes, delayMs: 0 }];
    if (this.rng.chance(p.lossPerMille, 1000)) {
      this.dropped++;
      return [];
    }
    const out: Delivery[] = [{ from, to, bytes, delayMs: this.delay() }];
    if (this.rng.chance(p.dupPerMille, 1000)) {
      this.duplicated++;
      out.push({ from, to, bytes, delayMs: this.delay() });
    }
    return out;
  }

  private delay(): number {
    const p = this.profile;
    let d = p.minDelayMs + (p.jitterMs > 0 ? this.rng.int(p.jitterMs + 1) : 0);
    if (p.slowPerMille > 0 && this.rng.chance(p.slowPerMille, 1000)) d += this.rng.int(p.slowExtraMs + 1);
    return d;
  }
}
