// The streams of PeerNetwork, both directions: accepting inbound calls, the handshake that binds a
// stream to a validator (frames and proofs in handshake.ts), replacing a peer's stream by a fresher
// one, rejecting and closing, and charging grpc-js's own oversize verdicts to the peer that sent
// them. Outbound streams are opened by dialer.ts; once a stream is authenticated its frames go to
// inbound.ts and its writes come from outbound.ts.

import * as grpc from "@grpc/grpc-js";
import { PeerService } from "../gen/parabft/v1/consensus_pb.js";
import { errorMessage } from "../types/errors.js";
import { widenInboundWindow } from "./flowControl.js";
import { BATCH_METADATA_KEY, BATCH_METADATA_VALUE } from "./frames.js";
import { grpcServiceDefinition } from "./grpcAdapter.js";
import {
  checkChallenge,
  checkDialerProof,
  checkServerProof,
  dialerProofFrame,
  type HandshakeIdentity,
  makeHello,
  newNonce,
  serverProofFrame,
  type Transcript,
} from "./handshake.js";
import type { Inbound } from "./inbound.js";
import type { GatedListener } from "./listener.js";
import type { Outbound } from "./outbound.js";
import type { NetPartModules, PeerState } from "./peerTable.js";
import type { NetRejectReason, PeerNetworkModules, PeerNetworkOpts } from "./types.js";

type Call = grpc.ClientDuplexStream<Uint8Array, Uint8Array> | grpc.ServerDuplexStream<Uint8Array, Uint8Array>;

export interface Session {
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

/** Metadata key the server interceptor uses to tie grpc-js's own status decisions to a session. */
const STREAM_TAG = "x-parabft-stream-tag";
export const OVERSIZE_DETAIL = /larger than max \((\d+) vs\.? (\d+)\)/;

/** The metadata each end of a peer stream sends: it announces that it reads batch frames. */
export function batchMetadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(BATCH_METADATA_KEY, BATCH_METADATA_VALUE);
  return md;
}

/** Whether the other end announced it reads batch frames (frames.ts). */
export function readsBatchFrames(md: grpc.Metadata): boolean {
  return md.get(BATCH_METADATA_KEY).includes(BATCH_METADATA_VALUE);
}

export type SessionsOptions = Pick<
  Required<PeerNetworkOpts>,
  | "chainId"
  | "localIndex"
  | "maxMessageBytes"
  | "handshakeTimeoutMs"
  | "handshakeEpochSlack"
  | "maxPendingHandshakes"
  | "replaceMinIntervalMs"
>;

export interface SessionsModules extends NetPartModules {
  /** The node's side: our key, the peers' keys, our status, and the TLS material if any. */
  node: Pick<PeerNetworkModules, "signer" | "verifier" | "localStatus" | "credentials">;
  inbound: Pick<Inbound, "receive">;
  outbound: Pick<Outbound, "pump">;
  /** An outbound session ended: dial that peer again after a back-off (Dialer.scheduleRedial). */
  redial(p: PeerState): void;
  /** The gated listener while the server is up (it knows each connection's TLS certificate). */
  listener(): GatedListener | null;
}

export class Sessions {
  /** The raw-bytes PeerService the server adds and the dialer calls. */
  readonly def = grpcServiceDefinition(PeerService, { raw: true });
  private readonly sessions = new Set<Session>();
  private readonly pendingInbound = new Set<Session>();
  /** Inbound sessions by the tag the interceptor put in their metadata. */
  private readonly byTag = new Map<string, Session>();
  private nextSessionId = 1;
  private nextTag = 1;

  constructor(
    private readonly o: SessionsOptions,
    private readonly mod: SessionsModules,
  ) {}

  /** On stop: every stream, authenticated or not, either direction. */
  endAll(code: grpc.status, details: string): void {
    for (const s of [...this.sessions]) this.endSession(s, code, details);
  }

  // ---- inbound streams ----

  /** Tags each inbound call so that grpc-js's own oversize verdict can be charged to its peer. */
  readonly oversizeInterceptor: grpc.ServerInterceptor = (_method, call) => {
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
      this.mod.metrics.rejected("oversized", null);
      return;
    }
    if (s.closed) return;
    this.reject(s, "oversized", s.authenticated ? s.peer : null);
  }

  onInbound(call: grpc.ServerDuplexStream<Uint8Array, Uint8Array>): void {
    if (!this.mod.running()) {
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: "shutting down" });
      return;
    }
    if (this.pendingInbound.size >= this.o.maxPendingHandshakes) {
      this.mod.metrics.rejected("too_many_streams", null);
      call.emit("error", {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: "too many unauthenticated streams",
      });
      return;
    }
    const s = this.open("in", call, null);
    this.pendingInbound.add(s);
    s.batchOut = readsBatchFrames(call.metadata);
    call.sendMetadata(batchMetadata());
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

  /** A new stream, inbound or dialed, in its handshake until `handshakeTimeoutMs`. */
  open(direction: "in" | "out", call: Call, peer: number | null): Session {
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
    this.mod.inbound.receive(s, bytes);
  }

  private identity(): HandshakeIdentity {
    return {
      chainId: this.o.chainId,
      localIndex: this.o.localIndex,
      localEpoch: this.mod.node.localStatus().epoch,
      epochSlack: this.o.handshakeEpochSlack,
      publicKeyOf: (i) => this.mod.peers.get(i)?.info.publicKey,
      verifier: this.mod.node.verifier,
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
      const p = this.mod.peers.get(r.dialer)!;
      if (this.mod.peers.isBanned(p)) {
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
      s.call.write(serverProofFrame(s.transcript, this.mod.node.signer));
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
    s.call.write(dialerProofFrame(r.transcript, this.mod.node.signer));
    this.authenticated(s, s.peer!);
  }

  /**
   * The TLS certificate the dialer presented must carry the consensus key of the validator it
   * claims to be (insecure mode has no certificate and skips this).
   */
  private checkTlsBinding(s: Session, p: PeerState): NetRejectReason | null {
    const credentials = this.mod.node.credentials;
    if (!credentials) return null;
    const call = s.call as grpc.ServerDuplexStream<Uint8Array, Uint8Array>;
    const der = this.mod.listener()?.peerCertificate(call.getPeer());
    if (!der) return "tls_no_certificate";
    return credentials.certificateMatches(der, p.info.publicKey) ? null : "tls_key_mismatch";
  }

  /** Both proofs checked: the stream becomes the peer's, unless a live one is too young to replace. */
  private authenticated(s: Session, peer: number): void {
    const { node, metrics, log, peers } = this.mod;
    const p = peers.get(peer);
    if (!p) {
      this.reject(s, "handshake_unknown_sender", null);
      return;
    }
    if (peers.isBanned(p)) {
      this.reject(s, "banned", peer);
      return;
    }
    const old = p.session;
    const now = this.mod.now();
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
      log.debug({ peer }, "inbound stream keeps HTTP/2's default flow-control window");
    s.transcript = null;
    this.pendingInbound.delete(s);
    if (s.direction === "out") {
      p.dialing = null;
      p.failures = 0;
    }
    p.session = s;
    if (old && old !== s) {
      metrics.replaced(peer);
      log.info({ peer, direction: s.direction }, "peer stream replaced by a fresh one");
      this.endSession(old, grpc.status.ABORTED, "replaced by a newer stream");
    }
    p.lastSeen = now;
    metrics.connectedPeers(peers.connectedCount);
    log.info({ peer, direction: s.direction }, "peer connected");
    // Our signed status goes first: the peer uses it to notice it is behind.
    const hello = makeHello(this.o.chainId, this.o.localIndex, node.localStatus(), node.signer);
    metrics.messageOut(peer, hello.length);
    s.call.write(hello);
    this.mod.outbound.pump(p);
  }

  reject(s: Session, reason: NetRejectReason, peer: number | null): void {
    this.mod.metrics.rejected(reason, peer);
    this.mod.log.warn({ peer, reason, direction: s.direction }, "peer stream rejected");
    const code =
      reason === "oversized" || reason === "replace_too_soon"
        ? grpc.status.RESOURCE_EXHAUSTED
        : reason === "banned"
          ? grpc.status.PERMISSION_DENIED
          : grpc.status.UNAUTHENTICATED;
    this.endSession(s, code, reason);
    // Handshake failures carry no proven identity and a banned peer is already out; an oversized
    // message on an authenticated stream is the peer's doing.
    if (peer !== null && reason === "oversized") this.mod.peers.penalize(peer, reason);
  }

  /**
   * Closes a session once, in either direction, and detaches it from its peer. An outbound
   * session that ends while the network runs schedules a redial.
   */
  endSession(s: Session, code: grpc.status = grpc.status.CANCELLED, details = "closed"): void {
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
      this.mod.log.debug({ err: errorMessage(err) }, "closing a peer stream failed");
    }
    const p = s.peer === null ? undefined : this.mod.peers.get(s.peer);
    if (!p) return;
    if (p.dialing === s) p.dialing = null;
    if (p.session === s) {
      p.session = null;
      this.mod.metrics.connectedPeers(this.mod.peers.connectedCount);
      this.mod.log.info({ peer: p.info.index, details }, "peer disconnected");
    }
    if (s.direction === "out") this.mod.redial(p);
  }
}
