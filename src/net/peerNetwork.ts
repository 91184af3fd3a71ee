// The validator-to-validator transport: one long-lived gRPC bidi stream per peer pair, bound to a
// validator identity by a signed handshake, with bounded outbound queues, penalties and bans.
//
// Dial rule: the higher index dials the lower, and that one stream carries traffic both ways. A
// node therefore accepts inbound streams only from higher indices, and there is never a duplicate
// pair to resolve. A newer authenticated stream from the same peer replaces the older one (the
// older is usually the half-dead remains of a peer restart).
//
// This file holds the public class, its start/stop and the wiring of its parts: peerTable.ts (the
// peers, scores, bans), sessions.ts (streams and the handshake), dialer.ts (dialing and redialing),
// outbound.ts (queues to streams) and inbound.ts (received envelopes to the node).

import * as grpc from "@grpc/grpc-js";
import { certificatePublicKey } from "../crypto/tls.js";
import type { Logger } from "../logger/index.js";
import { Dialer } from "./dialer.js";
import { Inbound } from "./inbound.js";
import { GatedListener } from "./listener.js";
import { noopNetMetrics } from "./metrics.js";
import { Outbound } from "./outbound.js";
import { PeerTable } from "./peerTable.js";
import { DEFAULT_RATE_LIMITS, PeerRateLimiter } from "./rateLimit.js";
import { Sessions } from "./sessions.js";
import type { NetMetrics, PeerInfo, PeerNetworkModules, PeerNetworkOpts, PeerStatus } from "./types.js";

const DEFAULTS = {
  listenHost: "127.0.0.1",
  queueLimit: 1024,
  dropPolicy: "oldest" as const,
  handshakeTimeoutMs: 5000,
  handshakeEpochSlack: 1,
  reconnectBaseMs: 100,
  reconnectMaxMs: 5000,
  keepaliveTimeMs: 10_000,
  keepaliveTimeoutMs: 5000,
  banThreshold: 20,
  banMs: 60_000,
  scoreHalfLifeMs: 60_000,
  maxPendingHandshakes: 32,
  maxConcurrentStreams: 4,
  maxConnections: 128,
  maxConnectionsPerAddress: 32,
  newConnectionsPerSecondPerAddress: 50,
  replaceMinIntervalMs: 2000,
  rateLimits: DEFAULT_RATE_LIMITS,
  rateLimitPenalty: 0.1,
};

export class PeerNetwork {
  private readonly o: Required<PeerNetworkOpts>;
  private readonly metrics: NetMetrics;
  private readonly log: Logger;
  private readonly table: PeerTable;
  private readonly outbound: Outbound;
  private readonly inbound: Inbound;
  private readonly sessions: Sessions;
  private readonly dialer: Dialer;
  private server: grpc.Server | null = null;
  private listener: GatedListener | null = null;
  private boundPort = 0;
  private running = false;

  constructor(
    opts: PeerNetworkOpts,
    private readonly mod: PeerNetworkModules,
  ) {
    this.o = { ...DEFAULTS, ...stripUndefined(opts) } as Required<PeerNetworkOpts>;
    if (!(this.o.maxMessageBytes > 0)) throw new RangeError("maxMessageBytes must be > 0");
    const metrics = mod.metrics ?? noopNetMetrics;
    const log = mod.log;
    const now = mod.now ?? Date.now;
    const running = () => this.running;
    this.metrics = metrics;
    this.log = log;
    this.table = new PeerTable(this.o, {
      metrics,
      log,
      now,
      limiter: new PeerRateLimiter(opts.rateLimits, undefined, now),
      endSession: (s, code, details) => this.sessions.endSession(s, code, details),
    });
    const parts = { metrics, log, now, peers: this.table, running };
    this.outbound = new Outbound(this.o, parts);
    this.inbound = new Inbound({ ...parts, node: mod });
    this.sessions = new Sessions(this.o, {
      ...parts,
      node: mod,
      inbound: this.inbound,
      outbound: this.outbound,
      listener: () => this.listener,
      redial: (p) => this.dialer.scheduleRedial(p),
    });
    this.dialer = new Dialer(this.o, { ...parts, node: mod, sessions: this.sessions });
    this.table.apply(opts.peers);
  }

  /** The bound peer port (the ephemeral one when listenPort was 0). */
  get port(): number {
    return this.boundPort;
  }

  get connectedCount(): number {
    return this.table.connectedCount;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const sessionMemMb = Math.max(10, Math.ceil((4 * this.o.maxMessageBytes) / 2 ** 20));
    const server = new grpc.Server({
      // No channelz: per-message statistics nobody queries (see src/api/server.ts).
      "grpc.enable_channelz": 0,
      "grpc.max_receive_message_length": this.o.maxMessageBytes,
      "grpc.max_concurrent_streams": this.o.maxConcurrentStreams,
      "grpc.keepalive_time_ms": this.o.keepaliveTimeMs,
      "grpc.keepalive_timeout_ms": this.o.keepaliveTimeoutMs,
      "grpc-node.max_session_memory": sessionMemMb,
      interceptors: [this.sessions.oversizeInterceptor],
    });
    server.addService(this.sessions.def, {
      exchange: (call: grpc.ServerDuplexStream<Uint8Array, Uint8Array>) => this.sessions.onInbound(call),
    });
    // Connections are counted (global and per-address caps) before TLS or grpc-js sees them. TLS
    // is node:tls in the listener, so a refused certificate is counted with its reason.
    const tlsCreds = this.mod.credentials?.server;
    const listener = new GatedListener(
      server,
      grpc.ServerCredentials.createInsecure(),
      {
        maxConnections: this.o.maxConnections,
        maxConnectionsPerAddress: this.o.maxConnectionsPerAddress,
        newConnectionsPerSecondPerAddress: this.o.newConnectionsPerSecondPerAddress,
      },
      { log: this.log, onRefused: (reason) => this.metrics.rejected(reason, null) },
      tlsCreds && {
        ...tlsCreds,
        handshakeTimeoutMs: this.o.handshakeTimeoutMs,
        checkCertificate: (der) => {
          const key = certificatePublicKey(der);
          if (key === null) return "tls_bad_certificate";
          return this.table.isPeerKey(key) ? null : "tls_unknown_key";
        },
        onFailure: (reason) => this.metrics.rejected(reason, null),
      },
    );
    try {
      // A restart keeps the port an ephemeral bind got, so that peers' addresses stay valid.
      this.boundPort = await listener.listen(this.o.listenHost, this.o.listenPort || this.boundPort);
    } catch (err) {
      listener.close();
      server.forceShutdown();
      throw err;
    }
    this.listener = listener;
    this.server = server;
    this.running = true;
    if (!this.mod.credentials) {
      this.log.warn(
        "peer links run WITHOUT TLS (insecure mode): for local debugging only; the handshake still proves identity and freshness, but traffic is readable and a network attacker can cut streams",
      );
    }
    this.log.info(
      { addr: `${this.o.listenHost}:${this.boundPort}`, peers: this.table.size },
      "peer network up",
    );
    for (const p of this.table.values()) if (this.dialer.weDial(p)) this.dialer.dial(p);
  }

  async stop(): Promise<void> {
    if (!this.running && !this.server) return;
    this.running = false;
    for (const p of this.table.values()) {
      if (p.dialTimer) clearTimeout(p.dialTimer);
      p.dialTimer = null;
      p.queue.clear();
    }
    this.inbound.clear();
    this.sessions.endAll(grpc.status.UNAVAILABLE, "shutting down");
    for (const p of this.table.values()) this.table.closeClient(p);
    const server = this.server;
    this.server = null;
    this.listener?.close();
    this.listener = null;
    server?.forceShutdown();
    this.metrics.connectedPeers(0);
    this.log.info("peer network down");
  }

  /**
   * Replaces the validator set (an epoch change). Peers whose key or address changed are
   * reconnected; removed peers are disconnected and their queues dropped; scores of unchanged
   * peers are kept.
   */
  setPeers(peers: PeerInfo[]): void {
    this.table.apply(peers);
    this.metrics.connectedPeers(this.connectedCount);
    if (this.running)
      for (const p of this.table.values()) if (this.dialer.weDial(p) && !p.dialTimer) this.dialer.dial(p);
  }

  /** Queues `bytes` for `to`; false when it was dropped (unknown peer, banned, oversized, full). */
  send(to: number, bytes: Uint8Array): boolean {
    return this.outbound.send(to, bytes);
  }

  /** Sends to every peer but this node; returns how many accepted it into their queue. */
  broadcast(bytes: Uint8Array): number {
    return this.outbound.broadcast(bytes);
  }

  /**
   * Counts an offence against `peer` (the node calls this on a reject verdict). Scores decay with
   * a half-life; at the threshold the peer is disconnected and banned for `banMs`.
   */
  penalize(peer: number, reason: string, weight = 1): void {
    this.table.penalize(peer, reason, weight);
  }

  /**
   * Per-peer, per-kind rate limit (the node asks before judging an envelope of `kind`). Over the
   * limit: false, counted as `rate_limited`, and a small penalty (`rateLimitPenalty`), so a
   * sustained flood ends in a ban while a burst only loses messages.
   */
  allowMessage(peer: number, kind: string): boolean {
    return this.table.allowMessage(peer, kind);
  }

  peers(): PeerStatus[] {
    return this.table.status();
  }

  /**
   * TEST ONLY (fault injection, the kernel has no netem): every authenticated envelope received
   * is handed to the node `ms` (+ up to `jitterMs`, uniformly) after it arrived, still in arrival
   * order. Handshakes are not delayed. 0 turns it off; envelopes already held are still delivered
   * at their time. The node sets it from PARABFT_TEST_PEER_DELAY_MS (src/node/testFaults.ts).
   */
  setTestOnlyDelay(ms: number, jitterMs = 0): void {
    this.inbound.setTestOnlyDelay(ms, jitterMs);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
