// Peer bookkeeping for PeerNetwork: one record per validator we know (by index) with its outbound
// queue, its streams and dial state, its score, ban and drop count. The set is replaced on an
// epoch change (`apply`); scores decay with a half-life and a ban closes the peer's streams
// through `endSession` (sessions.ts owns the streams).

import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../logger/index.js";
import { bytesEqual } from "../types/bytes.js";
import { BoundedQueue } from "./queue.js";
import type { PeerRateLimiter } from "./rateLimit.js";
import type { Session } from "./sessions.js";
import type { NetMetrics, PeerInfo, PeerNetworkOpts, PeerStatus } from "./types.js";

export interface PeerState {
  info: PeerInfo;
  queue: BoundedQueue<Uint8Array>;
  /** The authenticated stream, if any. */
  session: Session | null;
  /** An outbound stream still in its handshake. */
  dialing: Session | null;
  client: grpc.Client | null;
  dialTimer: NodeJS.Timeout | null;
  failures: number;
  score: number;
  scoreAt: number;
  bannedUntil: number | null;
  lastSeen: number | null;
  dropped: number;
  /** A flush of the queue is scheduled for the end of this tick (batch-capable sessions). */
  flushScheduled: boolean;
}

export type PeerTableOptions = Pick<
  Required<PeerNetworkOpts>,
  | "localIndex"
  | "queueLimit"
  | "dropPolicy"
  | "banThreshold"
  | "banMs"
  | "scoreHalfLifeMs"
  | "rateLimitPenalty"
>;

export interface PeerTableModules {
  metrics: NetMetrics;
  log: Logger;
  now: () => number;
  limiter: PeerRateLimiter;
  /** Closes a stream and detaches it from its peer (Sessions.endSession). */
  endSession(s: Session, code: grpc.status, details: string): void;
}

/** What the parts of PeerNetwork (sessions, dialer, inbound) share. */
export interface NetPartModules {
  metrics: NetMetrics;
  log: Logger;
  now: () => number;
  peers: PeerTable;
  /** Between start() and stop(): nothing is accepted, dialed or delivered otherwise. */
  running(): boolean;
}

export class PeerTable {
  private readonly peerMap = new Map<number, PeerState>();

  constructor(
    private readonly o: PeerTableOptions,
    private readonly mod: PeerTableModules,
  ) {}

  get size(): number {
    return this.peerMap.size;
  }

  get connectedCount(): number {
    let n = 0;
    for (const p of this.peerMap.values()) if (p.session) n++;
    return n;
  }

  get(index: number): PeerState | undefined {
    return this.peerMap.get(index);
  }

  values(): IterableIterator<PeerState> {
    return this.peerMap.values();
  }

  /** PeerNetwork.peers(): every peer's status, by index. */
  status(): PeerStatus[] {
    const out: PeerStatus[] = [];
    for (const p of this.peerMap.values()) {
      const banned = this.isBanned(p);
      out.push({
        index: p.info.index,
        address: p.info.address,
        connected: p.session !== null,
        direction: p.session?.direction ?? null,
        score: this.decayedScore(p),
        banned,
        bannedUntil: banned ? p.bannedUntil : null,
        lastSeen: p.lastSeen,
        queued: p.queue.length,
        dropped: p.dropped,
      });
    }
    return out.sort((a, b) => a.index - b.index);
  }

  /**
   * Replaces the set: a removed or re-keyed peer is forgotten, a new address keeps the peer's
   * queue, score and ban (only its outbound side redials), a new peer starts empty.
   */
  apply(peers: PeerInfo[]): void {
    const next = new Map<number, PeerInfo>();
    for (const info of peers) if (info.index !== this.o.localIndex) next.set(info.index, info);
    for (const [index, p] of this.peerMap) {
      const info = next.get(index);
      if (info && bytesEqual(info.publicKey, p.info.publicKey)) {
        if (info.address !== p.info.address) this.readdress(p, info.address);
        continue;
      }
      // Out of the map first, so that closing its streams does not schedule a redial.
      this.peerMap.delete(index);
      this.forget(p);
    }
    for (const [index, info] of next) {
      if (this.peerMap.has(index)) continue;
      this.peerMap.set(index, {
        info,
        queue: new BoundedQueue<Uint8Array>(this.o.queueLimit, this.o.dropPolicy),
        session: null,
        dialing: null,
        client: null,
        dialTimer: null,
        failures: 0,
        score: 0,
        scoreAt: this.mod.now(),
        bannedUntil: null,
        lastSeen: null,
        dropped: 0,
        flushScheduled: false,
      });
    }
  }

  /** Same validator, new address: keep its queue, score and ban; only the outbound side redials. */
  private readdress(p: PeerState, address: string): void {
    p.info = { ...p.info, address };
    p.failures = 0;
    for (const s of [p.dialing, p.session]) {
      if (s?.direction === "out") this.mod.endSession(s, grpc.status.UNAVAILABLE, "peer address changed");
    }
    // setPeers dials the new address at once.
    if (p.dialTimer) clearTimeout(p.dialTimer);
    p.dialTimer = null;
    this.closeClient(p);
  }

  private forget(p: PeerState): void {
    if (p.dialTimer) clearTimeout(p.dialTimer);
    p.dialTimer = null;
    p.queue.clear();
    const live = [p.session, p.dialing];
    p.session = null;
    p.dialing = null;
    for (const s of live)
      if (s) this.mod.endSession(s, grpc.status.UNAVAILABLE, "peer removed from the validator set");
    this.closeClient(p);
  }

  closeClient(p: PeerState): void {
    p.client?.close();
    p.client = null;
  }

  /** Whether `key` is the consensus key of one of our peers (the validators we know of). */
  isPeerKey(key: Uint8Array): boolean {
    for (const p of this.peerMap.values()) if (bytesEqual(p.info.publicKey, key)) return true;
    return false;
  }

  /** PeerNetwork.penalize: the score grows by `weight`; at `banThreshold` the peer is banned. */
  penalize(peer: number, reason: string, weight = 1): void {
    const p = this.peerMap.get(peer);
    if (!p) return;
    this.mod.metrics.penalized(peer, reason);
    const score = this.decayedScore(p) + weight;
    p.score = score;
    this.mod.log.debug({ peer, reason, score }, "peer penalised");
    if (score >= this.o.banThreshold && !this.isBanned(p)) this.ban(p, reason);
  }

  /** PeerNetwork.allowMessage: a token from the peer's bucket for `kind`, or a small penalty. */
  allowMessage(peer: number, kind: string): boolean {
    if (this.mod.limiter.take(peer, kind)) return true;
    this.mod.metrics.rejected("rate_limited", peer);
    this.penalize(peer, `rate_limited_${kind}`, this.o.rateLimitPenalty);
    return false;
  }

  private decayedScore(p: PeerState): number {
    const now = this.mod.now();
    if (now > p.scoreAt) {
      p.score *= 0.5 ** ((now - p.scoreAt) / this.o.scoreHalfLifeMs);
      p.scoreAt = now;
    }
    return p.score;
  }

  isBanned(p: PeerState): boolean {
    if (p.bannedUntil === null) return false;
    if (this.mod.now() < p.bannedUntil) return true;
    p.bannedUntil = null;
    this.mod.log.info({ peer: p.info.index }, "peer ban expired");
    p.score = 0;
    p.scoreAt = this.mod.now();
    return false;
  }

  private ban(p: PeerState, reason: string): void {
    p.bannedUntil = this.mod.now() + this.o.banMs;
    this.mod.limiter.forget(p.info.index);
    this.mod.metrics.banned(p.info.index);
    this.mod.log.warn({ peer: p.info.index, reason, banMs: this.o.banMs }, "peer banned");
    while (p.queue.shift() !== undefined) this.drop(p, "banned");
    const live = [p.session, p.dialing];
    for (const s of live) if (s) this.mod.endSession(s, grpc.status.PERMISSION_DENIED, "banned");
  }

  drop(p: PeerState, reason: "full" | "banned" | "oversized"): void {
    p.dropped++;
    this.mod.metrics.queueDropped(p.info.index, reason);
  }
}
