// The validator-to-validator transport: one long-lived gRPC bidi stream per peer pair, bound to a
// validator identity by a signed handshake, with bounded outbound queues, penalties and bans.
//
// Dial rule: the higher index dials the lower, and that one stream carries traffic both ways. A
// node therefore accepts inbound streams only from higher indices, and there is never a duplicate
// pair to resolve. A newer authenticated stream from the same peer replaces the older one (the
// older is usually the half-dead remains of a peer restart).

import * as grpc from "@grpc/grpc-js";
import { certificatePublicKey } from "../crypto/tls.js";
import { type Envelope, PeerService } from "../gen/parabft/v1/consensus_pb.js";
import type { Logger } from "../logger/index.js";
import { bytesEqual } from "../types/bytes.js";
import { errorMessage } from "../types/errors.js";
import { dialerWindowOptions, widenInboundWindow } from "./flowControl.js";
import {
  BATCH_METADATA_KEY,
  BATCH_METADATA_VALUE,
  BatchFrameError,
  batchSize,
  decodeBatch,
  encodeBatch,
  isBatchFrame,
  MAX_BATCH_ENTRIES,
} from "./frames.js";
import { grpcServiceDefinition, methodPath } from "./grpcAdapter.js";
import {
  challengeFrame,
  checkChallenge,
  checkDialerProof,
  checkServerProof,
  decodeEnvelopeHeader,
  dialerProofFrame,
  type HandshakeIdentity,
  makeHello,
  newNonce,
  serverProofFrame,
  type Transcript,
} from "./handshake.js";
import { GatedListener } from "./listener.js";
import { noopNetMetrics } from "./metrics.js";
import { BoundedQueue } from "./queue.js";
import { DEFAULT_RATE_LIMITS, PeerRateLimiter } from "./rateLimit.js";
import type {
  NetMetrics,
  NetRejectReason,
  PeerInfo,
  PeerNetworkModules,
  PeerNetworkOpts,
  PeerStatus,
} from "./types.js";

type Call = grpc.ClientDuplexStream<Uint8Array, Uint8Array> | grpc.ServerDuplexStream<Uint8Array, Uint8Array>;

interface Session {
  readonly id: number;
  readonly direction: "in" | "out";
  readonly call: Call;
  /** The dialed peer for outbound sessions; the authenticated one once the handshake passes. */
  peer: number | null;
  authenticated: boolean;
  /** Where the handshake is: inbound waits for a challenge then a proof, outbound for the server's proof. */
  stage: "challenge" | "proof" | "server_proof" | "open";
  /** Our fresh nonce for this stream. */
  nonce: Uint8Array;
  /** Inbound, after the challenge: what the dialer's proof must sign. */
  transcript: Transcript | null;
  authenticatedAt: number;
  closed: boolean;
  waitingDrain: boolean;
  /** The peer announced it reads batch frames (src/net/frames.ts) on this stream. */
  batchOut: boolean;
  handshakeTimer: NodeJS.Timeout | null;
  /** Inbound only: the interceptor's tag for this call. */
  tag: string | null;
}

interface PeerState {
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

/** Metadata key the server interceptor uses to tie grpc-js's own status decisions to a session. */
const STREAM_TAG = "x-parabft-stream-tag";
const OVERSIZE_DETAIL = /larger than max \((\d+) vs\.? (\d+)\)/;

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
  private readonly now: () => number;
  private readonly peerMap = new Map<number, PeerState>();
  private readonly sessions = new Set<Session>();
  private readonly pendingInbound = new Set<Session>();
  /** Inbound sessions by the tag the interceptor put in their metadata. */
  private readonly byTag = new Map<string, Session>();
  private readonly path = methodPath(PeerService, "Exchange");
  private readonly limiter: PeerRateLimiter;
  private readonly def = grpcServiceDefinition(PeerService, { raw: true });
  private server: grpc.Server | null = null;
  private listener: GatedListener | null = null;
  private boundPort = 0;
  private running = false;
  private nextSessionId = 1;
  private nextTag = 1;
  /** Test-only inbound delay line (setTestOnlyDelay); empty and unused unless a test sets it. */
  private delay = { ms: 0, jitterMs: 0, lastAt: 0, timer: null as NodeJS.Timeout | null };
  private readonly delayed: { at: number; peer: number; bytes: Uint8Array; env: Envelope | undefined }[] = [];

  constructor(
    opts: PeerNetworkOpts,
    private readonly mod: PeerNetworkModules,
  ) {
    this.o = { ...DEFAULTS, ...stripUndefined(opts) } as Required<PeerNetworkOpts>;
    if (!(this.o.maxMessageBytes > 0)) throw new RangeError("maxMessageBytes must be > 0");
    this.metrics = mod.metrics ?? noopNetMetrics;
    this.log = mod.log;
    this.now = mod.now ?? Date.now;
    this.limiter = new PeerRateLimiter(opts.rateLimits, undefined, this.now);
    this.applyPeers(opts.peers);
  }

  /** The bound peer port (the ephemeral one when listenPort was 0). */
  get port(): number {
    return this.boundPort;
  }

  get connectedCount(): number {
    let n = 0;
    for (const p of this.peerMap.values()) if (p.session) n++;
    return n;
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
      interceptors: [this.oversizeInterceptor],
    });
    server.addService(this.def, {
      exchange: (call: grpc.ServerDuplexStream<Uint8Array, Uint8Array>) => this.onInbound(call),
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
          return this.isPeerKey(key) ? null : "tls_unknown_key";
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
      { addr: `${this.o.listenHost}:${this.boundPort}`, peers: this.peerMap.size },
      "peer network up",
    );
    for (const p of this.peerMap.values()) if (this.weDial(p)) this.dial(p);
  }

  async stop(): Promise<void> {
    if (!this.running && !this.server) return;
    this.running = false;
    for (const p of this.peerMap.values()) {
      if (p.dialTimer) clearTimeout(p.dialTimer);
      p.dialTimer = null;
      p.queue.clear();
    }
    if (this.delay.timer) clearTimeout(this.delay.timer);
    this.delay.timer = null;
    this.delayed.length = 0;
    for (const s of [...this.sessions]) this.endSession(s, grpc.status.UNAVAILABLE, "shutting down");
    for (const p of this.peerMap.values()) this.closeClient(p);
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
    this.applyPeers(peers);
    this.metrics.connectedPeers(this.connectedCount);
    if (this.running) for (const p of this.peerMap.values()) if (this.weDial(p) && !p.dialTimer) this.dial(p);
  }

  /** Queues `bytes` for `to`; false when it was dropped (unknown peer, banned, oversized, full). */
  send(to: number, bytes: Uint8Array): boolean {
    const p = to === this.o.localIndex ? undefined : this.peerMap.get(to);
    if (!p) {
      this.metrics.queueDropped(to, "unknown_peer");
      return false;
    }
    if (bytes.length > this.o.maxMessageBytes) {
      // The receiver would tear the stream down; losing one envelope is cheaper.
      this.drop(p, "oversized");
      return false;
    }
    if (this.isBanned(p)) {
      this.drop(p, "banned");
      return false;
    }
    const lost = p.queue.push(bytes);
    if (lost !== undefined) this.drop(p, "full");
    if (p.session?.batchOut) {
      // Everything queued for this peer until the current callback ends leaves in one write
      // (one batch frame): no timer, so a lone envelope is not delayed past this tick.
      if (!p.flushScheduled) {
        p.flushScheduled = true;
        process.nextTick(this.flush, p);
      }
    } else this.pump(p);
    return lost !== bytes;
  }

  /** Sends to every peer but this node; returns how many accepted it into their queue. */
  broadcast(bytes: Uint8Array): number {
    let n = 0;
    for (const p of this.peerMap.values()) if (this.send(p.info.index, bytes)) n++;
    return n;
  }

  /**
   * Counts an offence against `peer` (the node calls this on a reject verdict). Scores decay with
   * a half-life; at the threshold the peer is disconnected and banned for `banMs`.
   */
  penalize(peer: number, reason: string, weight = 1): void {
    const p = this.peerMap.get(peer);
    if (!p) return;
    this.metrics.penalized(peer, reason);
    const score = this.decayedScore(p) + weight;
    p.score = score;
    this.log.debug({ peer, reason, score }, "peer penalised");
    if (score >= this.o.banThreshold && !this.isBanned(p)) this.ban(p, reason);
  }

  /**
   * Per-peer, per-kind rate limit (the node asks before judging an envelope of `kind`). Over the
   * limit: false, counted as `rate_limited`, and a small penalty (`rateLimitPenalty`), so a
   * sustained flood ends in a ban while a burst only loses messages.
   */
  allowMessage(peer: number, kind: string): boolean {
    if (this.limiter.take(peer, kind)) return true;
    this.metrics.rejected("rate_limited", peer);
    this.penalize(peer, `rate_limited_${kind}`, this.o.rateLimitPenalty);
    return false;
  }

  peers(): PeerStatus[] {
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

  // ---- peers, scores, bans ----

  private applyPeers(peers: PeerInfo[]): void {
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
        scoreAt: this.now(),
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
      if (s?.direction === "out") this.endSession(s, grpc.status.UNAVAILABLE, "peer address changed");
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
      if (s) this.endSession(s, grpc.status.UNAVAILABLE, "peer removed from the validator set");
    this.closeClient(p);
  }

  private decayedScore(p: PeerState): number {
    const now = this.now();
    if (now > p.scoreAt) {
      p.score *= 0.5 ** ((now - p.scoreAt) / this.o.scoreHalfLifeMs);
      p.scoreAt = now;
    }
    return p.score;
  }

  private isBanned(p: PeerState): boolean {
    if (p.bannedUntil === null) return false;
    if (this.now() < p.bannedUntil) return true;
    p.bannedUntil = null;
    this.log.info({ peer: p.info.index }, "peer ban expired");
    p.score = 0;
    p.scoreAt = this.now();
    return false;
  }

  private ban(p: PeerState, reason: string): void {
    p.bannedUntil = this.now() + this.o.banMs;
    this.limiter.forget(p.info.index);
    this.metrics.banned(p.info.index);
    this.log.warn({ peer: p.info.index, reason, banMs: this.o.banMs }, "peer banned");
    while (p.queue.shift() !== undefined) this.drop(p, "banned");
    const live = [p.session, p.dialing];
    for (const s of live) if (s) this.endSession(s, grpc.status.PERMISSION_DENIED, "banned");
  }

  private drop(p: PeerState, reason: "full" | "banned" | "oversized"): void {
    p.dropped++;
    this.metrics.queueDropped(p.info.index, reason);
  }

  // ---- outbound streams ----

  private weDial(p: PeerState): boolean {
    return p.info.index < this.o.localIndex && p.info.address !== "";
  }

  private dial(p: PeerState): void {
    p.dialTimer = null;
    if (!this.running || p.session || p.dialing || !this.weDial(p) || this.peerMap.get(p.info.index) !== p)
      return;
    if (this.isBanned(p)) {
      p.dialTimer = setTimeout(() => this.dial(p), p.bannedUntil! - this.now() + 1).unref();
      return;
    }
    if (!p.client) {
      const creds =
        this.mod.credentials?.channelFor(p.info.publicKey, () => {
          this.metrics.rejected("tls_key_mismatch", p.info.index);
          this.log.warn(
            { peer: p.info.index, reason: "tls_key_mismatch" },
            "dialed peer presented another key",
          );
        }) ?? grpc.credentials.createInsecure();
      p.client = new grpc.Client(p.info.address, creds, {
        "grpc.enable_channelz": 0,
        "grpc.max_receive_message_length": this.o.maxMessageBytes,
        "grpc.keepalive_time_ms": this.o.keepaliveTimeMs,
        "grpc.keepalive_timeout_ms": this.o.keepaliveTimeoutMs,
        "grpc.keepalive_permit_without_calls": 1,
        // grpc-js's own connection back-off starts at 1 s and grows to 120 s: keep it in step with ours.
        "grpc.initial_reconnect_backoff_ms": this.o.reconnectBaseMs,
        "grpc.max_reconnect_backoff_ms": this.o.reconnectMaxMs,
        "grpc.enable_retries": 0,
        // Receive windows of a whole message, not 64 KiB (flowControl.ts).
        ...dialerWindowOptions(this.o.maxMessageBytes),
        // Without this, two networks in one process share a TCP connection to the same address.
        "grpc.use_local_subchannel_pool": 1,
        // Peers are identified by key (checkServerIdentity), not by name; this only keeps an IP
        // address out of the TLS server name.
        ...(this.mod.credentials ? { "grpc.ssl_target_name_override": "parabft-validator" } : {}),
      });
    }
    const m = this.def.exchange!;
    const call = p.client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      this.path,
      m.requestSerialize as (v: Uint8Array) => Buffer,
      m.responseDeserialize as (b: Buffer) => Uint8Array,
      batchMetadata(),
      {},
    );
    const s = this.newSession("out", call, p.info.index);
    // The server's response metadata arrives before its first frame (the handshake's proof).
    call.on("metadata", (md: grpc.Metadata) => {
      s.batchOut = md.get(BATCH_METADATA_KEY).includes(BATCH_METADATA_VALUE);
    });
    p.dialing = s;
    call.on("error", (err: grpc.ServiceError) => this.onClientError(s, err));
    call.on("status", () => this.endSession(s));
    call.write(
      challengeFrame(this.o.chainId, this.o.localIndex, p.info.index, this.mod.localStatus().epoch, s.nonce),
    );
  }

  private onClientError(s: Session, err: grpc.ServiceError): void {
    if (s.closed) return;
    const m = err.code === grpc.status.RESOURCE_EXHAUSTED ? OVERSIZE_DETAIL.exec(err.details ?? "") : null;
    // grpc-js words our receive limit and the peer's the same way; the limit in the text tells them apart.
    if (m && Number(m[2]) === this.o.maxMessageBytes && s.authenticated) {
      this.reject(s, "oversized", s.peer);
      return;
    }
    const p = s.peer === null ? undefined : this.peerMap.get(s.peer);
    const refused = err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED;
    // A peer refusing our handshake is usually misconfiguration: say so once per outage, not per redial.
    const level = refused && p?.failures === 0 ? "warn" : "debug";
    this.log[level]({ peer: s.peer, code: err.code, details: err.details }, "peer stream failed");
    this.endSession(s);
  }

  private scheduleRedial(p: PeerState): void {
    if (!this.running || p.dialTimer || p.session || p.dialing || !this.weDial(p)) return;
    if (this.peerMap.get(p.info.index) !== p) return;
    const ceiling = Math.min(this.o.reconnectMaxMs, this.o.reconnectBaseMs * 2 ** p.failures);
    // Jitter spreads the redials of a whole cluster after a shared outage.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    p.failures = Math.min(p.failures + 1, 30);
    this.metrics.reconnect(p.info.index);
    p.dialTimer = setTimeout(() => this.dial(p), delay).unref();
  }

  private closeClient(p: PeerState): void {
    p.client?.close();
    p.client = null;
  }

  // ---- inbound streams ----

  /** Tags each inbound call so that grpc-js's own oversize verdict can be charged to its peer. */
  private readonly oversizeInterceptor: grpc.ServerInterceptor = (_method, call) => {
    const tag = String(this.nextTag++);
    // grpc-js enforces the receive limit inside its base call and tells the handler only
    // "cancelled"; wrapping this call's sendStatus is the one place the reason is visible.
    const sendStatus = call.sendStatus.bind(call);
    call.sendStatus = (status) => {
      if (status.code === grpc.status.RESOURCE_EXHAUSTED && OVERSIZE_DETAIL.test(status.details ?? "")) {
        // After grpc-js has sent its own status, and before it reports "cancelled" to the handler.
        process.nextTick(() => this.onInboundOversized(tag));
      }
      sendStatus(status);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (md, nextMd) => {
            md.set(STREAM_TAG, tag);
            nextMd(md);
          },
        }),
    });
  };

  private onInboundOversized(tag: string): void {
    const s = this.byTag.get(tag);
    if (!s) {
      this.metrics.rejected("oversized", null);
      return;
    }
    if (s.closed) return;
    this.reject(s, "oversized", s.authenticated ? s.peer : null);
  }

  private onInbound(call: grpc.ServerDuplexStream<Uint8Array, Uint8Array>): void {
    if (!this.running) {
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: "shutting down" });
      return;
    }
    if (this.pendingInbound.size >= this.o.maxPendingHandshakes) {
      this.metrics.rejected("too_many_streams", null);
      call.emit("error", {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: "too many unauthenticated streams",
      });
      return;
    }
    const s = this.newSession("in", call, null);
    this.pendingInbound.add(s);
    s.batchOut = call.metadata.get(BATCH_METADATA_KEY).includes(BATCH_METADATA_VALUE);
    const md = new grpc.Metadata();
    md.set(BATCH_METADATA_KEY, BATCH_METADATA_VALUE);
    call.sendMetadata(md);
    const tag = call.metadata.get(STREAM_TAG)[0];
    if (typeof tag === "string") {
      s.tag = tag;
      this.byTag.set(tag, s);
    }
    call.on("error", () => this.endSession(s));
    call.on("cancelled", () => this.endSession(s));
    // The dialer half-closed: it is going away.
    call.on("end", () => this.endSession(s, grpc.status.OK, "bye"));
  }

  // ---- sessions, both directions ----

  private newSession(direction: "in" | "out", call: Call, peer: number | null): Session {
    const s: Session = {
      id: this.nextSessionId++,
      direction,
      call,
      peer,
      authenticated: false,
      stage: direction === "in" ? "challenge" : "server_proof",
      nonce: newNonce(),
      transcript: null,
      authenticatedAt: 0,
      closed: false,
      waitingDrain: false,
      batchOut: false,
      handshakeTimer: null,
      tag: null,
    };
    s.handshakeTimer = setTimeout(() => {
      if (!s.authenticated && !s.closed) this.reject(s, "handshake_timeout", null);
    }, this.o.handshakeTimeoutMs).unref();
    this.sessions.add(s);
    call.on("data", (bytes: Uint8Array) => this.onData(s, bytes));
    return s;
  }

  private onData(s: Session, bytes: Uint8Array): void {
    if (s.closed) return;
    if (!s.authenticated) {
      this.onHello(s, bytes);
      return;
    }
    const peer = s.peer!;
    const p = this.peerMap.get(peer);
    if (!p || p.session !== s) return;
    p.lastSeen = this.now();
    if (isBatchFrame(bytes)) {
      let entries: Uint8Array[];
      try {
        entries = decodeBatch(bytes);
      } catch (err) {
        const code = err instanceof BatchFrameError ? err.code : "batch_truncated";
        this.metrics.rejected("malformed_batch", peer);
        this.penalize(peer, code);
        return;
      }
      // One entry's handling may end the session (a ban): the rest of the frame is then dropped.
      for (const e of entries) if (!s.closed && p.session === s) this.onEnvelopeBytes(peer, e);
      return;
    }
    this.onEnvelopeBytes(peer, bytes);
  }

  /** One envelope from authenticated peer `peer` (bare, or an entry of a batch frame). */
  private onEnvelopeBytes(peer: number, bytes: Uint8Array): void {
    this.metrics.messageIn(peer, bytes.length);
    // Bytes that are not an Envelope at all go to the node, whose verdict names them malformed.
    const head = decodeEnvelopeHeader(bytes);
    // A NEW-VIEW is the one message a replica relays on someone else's signature (the primary's
    // helpers forward it to a lagging replica): relaying it is no offence.
    if (
      head !== null &&
      head.kind !== "newView" &&
      !(this.mod.senderIs ? this.mod.senderIs(peer, head.epoch, head.sender) : head.sender === peer)
    ) {
      this.metrics.rejected("wrong_sender", peer);
      this.penalize(peer, "wrong_sender");
      return;
    }
    // Per-kind rate limit, before the node spends a signature check on it.
    if (!this.allowMessage(peer, head?.kind ?? "malformed")) return;
    this.deliver(peer, bytes, head?.envelope);
  }

  private identity(): HandshakeIdentity {
    return {
      chainId: this.o.chainId,
      localIndex: this.o.localIndex,
      localEpoch: this.mod.localStatus().epoch,
      epochSlack: this.o.handshakeEpochSlack,
      publicKeyOf: (i) => this.peerMap.get(i)?.info.publicKey,
      verifier: this.mod.verifier,
    };
  }

  /** One handshake frame on a stream that is not authenticated yet (see handshake.ts). */
  private onHello(s: Session, bytes: Uint8Array): void {
    const id = this.identity();
    if (s.stage === "challenge") {
      const r = checkChallenge(bytes, id);
      if (!r.ok) {
        this.reject(s, r.reason, null);
        return;
      }
      if (r.dialer < this.o.localIndex) {
        this.reject(s, "handshake_wrong_direction", null);
        return;
      }
      const p = this.peerMap.get(r.dialer)!;
      if (this.isBanned(p)) {
        this.reject(s, "banned", null);
        return;
      }
      const tls = this.checkTlsBinding(s, p);
      if (tls !== null) {
        this.reject(s, tls, null);
        return;
      }
      s.peer = r.dialer;
      s.transcript = {
        chainId: this.o.chainId,
        dialer: r.dialer,
        server: this.o.localIndex,
        dialerEpoch: r.epoch,
        serverEpoch: id.localEpoch,
        dialerNonce: r.nonce,
        serverNonce: s.nonce,
      };
      s.stage = "proof";
      s.call.write(serverProofFrame(s.transcript, this.mod.signer));
      return;
    }
    if (s.stage === "proof") {
      const r = checkDialerProof(bytes, id, s.transcript!);
      if (!r.ok) {
        this.reject(s, r.reason, null);
        return;
      }
      this.authenticated(s, s.peer!);
      return;
    }
    // Outbound: the server proved it holds the key of the validator we dialed, over our nonce.
    const r = checkServerProof(bytes, id, { server: s.peer!, dialerNonce: s.nonce });
    if (!r.ok) {
      this.reject(s, r.reason, null);
      return;
    }
    s.call.write(dialerProofFrame(r.transcript, this.mod.signer));
    this.authenticated(s, s.peer!);
  }

  /** Whether `key` is the consensus key of one of our peers (the validators we know of). */
  private isPeerKey(key: Uint8Array): boolean {
    for (const p of this.peerMap.values()) if (bytesEqual(p.info.publicKey, key)) return true;
    return false;
  }

  /**
   * The TLS certificate the dialer presented must carry the consensus key of the validator it
   * claims to be (insecure mode has no certificate and skips this).
   */
  private checkTlsBinding(s: Session, p: PeerState): NetRejectReason | null {
    if (!this.mod.credentials) return null;
    const call = s.call as grpc.ServerDuplexStream<Uint8Array, Uint8Array>;
    const der = this.listener?.peerCertificate(call.getPeer());
    if (!der) return "tls_no_certificate";
    return this.mod.credentials.certificateMatches(der, p.info.publicKey) ? null : "tls_key_mismatch";
  }

  /** Both proofs checked: the stream becomes the peer's, unless a live one is too young to replace. */
  private authenticated(s: Session, peer: number): void {
    const p = this.peerMap.get(peer);
    if (!p) {
      this.reject(s, "handshake_unknown_sender", null);
      return;
    }
    if (this.isBanned(p)) {
      this.reject(s, "banned", peer);
      return;
    }
    const old = p.session;
    const now = this.now();
    if (old && old !== s && !old.closed && now - old.authenticatedAt < this.o.replaceMinIntervalMs) {
      // Even a fresh, proven stream may not churn a live one: replacements are rate limited.
      this.reject(s, "replace_too_soon", peer);
      return;
    }
    if (s.handshakeTimer) clearTimeout(s.handshakeTimer);
    s.handshakeTimer = null;
    s.authenticated = true;
    s.authenticatedAt = now;
    s.stage = "open";
    // The dialer's windows are wide from its channel options; ours only now that it is proven.
    if (
      s.direction === "in" &&
      !widenInboundWindow(s.call as grpc.ServerDuplexStream<unknown, unknown>, this.o.maxMessageBytes)
    )
      this.log.debug({ peer }, "inbound stream keeps HTTP/2's default flow-control window");
    s.transcript = null;
    this.pendingInbound.delete(s);
    if (s.direction === "out") {
      p.dialing = null;
      p.failures = 0;
    }
    p.session = s;
    if (old && old !== s) {
      this.metrics.replaced(peer);
      this.log.info({ peer, direction: s.direction }, "peer stream replaced by a fresh one");
      this.endSession(old, grpc.status.ABORTED, "replaced by a newer stream");
    }
    p.lastSeen = now;
    this.metrics.connectedPeers(this.connectedCount);
    this.log.info({ peer, direction: s.direction }, "peer connected");
    // Our signed status goes first: the peer uses it to notice it is behind.
    const hello = makeHello(this.o.chainId, this.o.localIndex, this.mod.localStatus(), this.mod.signer);
    this.metrics.messageOut(peer, hello.length);
    s.call.write(hello);
    this.pump(p);
  }

  /**
   * TEST ONLY (fault injection, the kernel has no netem): every authenticated envelope received
   * is handed to the node `ms` (+ up to `jitterMs`, uniformly) after it arrived, still in arrival
   * order. Handshakes are not delayed. 0 turns it off; envelopes already held are still delivered
   * at their time. The node sets it from PARABFT_TEST_PEER_DELAY_MS (src/node/testFaults.ts).
   */
  setTestOnlyDelay(ms: number, jitterMs = 0): void {
    this.delay.ms = Math.max(0, ms);
    this.delay.jitterMs = Math.max(0, jitterMs);
  }

  private deliver(peer: number, bytes: Uint8Array, env: Envelope | undefined): void {
    if (this.delay.ms > 0 || this.delay.jitterMs > 0 || this.delayed.length > 0) {
      const d = this.delay;
      const at = Math.max(d.lastAt, performance.now() + d.ms + Math.random() * d.jitterMs);
      d.lastAt = at;
      this.delayed.push({ at, peer, bytes, env });
      if (!d.timer) d.timer = setTimeout(() => this.releaseDelayed(), at - performance.now());
      return;
    }
    this.deliverNow(peer, bytes, env);
  }

  private releaseDelayed(): void {
    this.delay.timer = null;
    if (!this.running) return;
    let next = this.delayed[0];
    while (next !== undefined && next.at <= performance.now()) {
      this.delayed.shift();
      this.deliverNow(next.peer, next.bytes, next.env);
      next = this.delayed[0];
    }
    if (next !== undefined)
      this.delay.timer = setTimeout(() => this.releaseDelayed(), next.at - performance.now());
  }

  private deliverNow(peer: number, bytes: Uint8Array, env: Envelope | undefined): void {
    try {
      this.mod.onEnvelope(peer, bytes, env);
    } catch (err) {
      // A throwing handler is a node bug; the stream and the peer are not at fault.
      this.log.error({ peer, err: errorMessage(err) }, "onEnvelope threw");
    }
  }

  private readonly flush = (p: PeerState): void => {
    p.flushScheduled = false;
    this.pump(p);
  };

  /**
   * Writes the peer's queue to its stream until the stream asks to wait. To a peer that reads
   * batch frames, consecutive queued envelopes leave as one frame (up to maxMessageBytes and
   * MAX_BATCH_ENTRIES); a lone one leaves bare.
   */
  private pump(p: PeerState): void {
    const s = p.session;
    if (!s || s.closed || s.waitingDrain) return;
    for (let bytes = p.queue.shift(); bytes !== undefined; bytes = p.queue.shift()) {
      this.metrics.messageOut(p.info.index, bytes.length);
      if (s.batchOut && p.queue.length > 0) bytes = this.takeBatch(p, bytes);
      if (!s.call.write(bytes)) {
        s.waitingDrain = true;
        s.call.once("drain", () => {
          s.waitingDrain = false;
          if (p.session === s) this.pump(p);
        });
        return;
      }
    }
  }

  /** `first` and the envelopes after it in the queue that fit one batch frame with it. */
  private takeBatch(p: PeerState, first: Uint8Array): Uint8Array {
    const entries = [first];
    let size = batchSize([first.length]);
    for (;;) {
      const next = p.queue.peek();
      if (next === undefined || entries.length >= MAX_BATCH_ENTRIES) break;
      const grown = size + batchSize([next.length]) - batchSize([]);
      if (grown > this.o.maxMessageBytes) break;
      p.queue.shift();
      this.metrics.messageOut(p.info.index, next.length);
      entries.push(next);
      size = grown;
    }
    return entries.length === 1 ? first : encodeBatch(entries);
  }

  private reject(s: Session, reason: NetRejectReason, peer: number | null): void {
    this.metrics.rejected(reason, peer);
    this.log.warn({ peer, reason, direction: s.direction }, "peer stream rejected");
    const code =
      reason === "oversized" || reason === "replace_too_soon"
        ? grpc.status.RESOURCE_EXHAUSTED
        : reason === "banned"
          ? grpc.status.PERMISSION_DENIED
          : grpc.status.UNAUTHENTICATED;
    this.endSession(s, code, reason);
    // Handshake failures carry no proven identity and a banned peer is already out; an oversized
    // message on an authenticated stream is the peer's doing.
    if (peer !== null && reason === "oversized") this.penalize(peer, reason);
  }

  /**
   * Closes a session once, in either direction, and detaches it from its peer. An outbound
   * session that ends while the network runs schedules a redial.
   */
  private endSession(s: Session, code: grpc.status = grpc.status.CANCELLED, details = "closed"): void {
    if (s.closed) return;
    s.closed = true;
    if (s.handshakeTimer) clearTimeout(s.handshakeTimer);
    s.handshakeTimer = null;
    this.sessions.delete(s);
    this.pendingInbound.delete(s);
    if (s.tag !== null) this.byTag.delete(s.tag);
    try {
      if (s.direction === "out") {
        const call = s.call as grpc.ClientDuplexStream<Uint8Array, Uint8Array>;
        call.cancel();
      } else if (code === grpc.status.OK) {
        s.call.end();
      } else {
        s.call.emit("error", { code, details });
      }
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, "closing a peer stream failed");
    }
    const p = s.peer === null ? undefined : this.peerMap.get(s.peer);
    if (!p) return;
    if (p.dialing === s) p.dialing = null;
    if (p.session === s) {
      p.session = null;
      this.metrics.connectedPeers(this.connectedCount);
      this.log.info({ peer: p.info.index, details }, "peer disconnected");
    }
    if (s.direction === "out") this.scheduleRedial(p);
  }
}

function batchMetadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(BATCH_METADATA_KEY, BATCH_METADATA_VALUE);
  return md;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
