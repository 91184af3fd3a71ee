// The dialing side of PeerNetwork's streams: which peers we dial (the higher index dials the
// lower), the gRPC client and its channel options, the dial itself (the handshake's challenge is
// its first frame), a dialed stream's failures, and redialing with back-off. The stream itself is
// a session (sessions.ts) from the moment it is opened.

import * as grpc from "@grpc/grpc-js";
import { PeerService } from "../gen/parabft/v1/consensus_pb.js";
import { dialerWindowOptions } from "./flowControl.js";
import { methodPath } from "./grpcAdapter.js";
import { challengeFrame } from "./handshake.js";
import type { NetPartModules, PeerState } from "./peerTable.js";
import { batchMetadata, OVERSIZE_DETAIL, readsBatchFrames, type Session, type Sessions } from "./sessions.js";
import type { PeerNetworkModules, PeerNetworkOpts } from "./types.js";

export type DialerOptions = Pick<
  Required<PeerNetworkOpts>,
  | "chainId"
  | "localIndex"
  | "maxMessageBytes"
  | "reconnectBaseMs"
  | "reconnectMaxMs"
  | "keepaliveTimeMs"
  | "keepaliveTimeoutMs"
>;

export interface DialerModules extends NetPartModules {
  /** The node's side: our status (the challenge carries our epoch) and the TLS material if any. */
  node: Pick<PeerNetworkModules, "localStatus" | "credentials">;
  sessions: Pick<Sessions, "def" | "open" | "reject" | "endSession">;
}

export class Dialer {
  private readonly path = methodPath(PeerService, "Exchange");

  constructor(
    private readonly o: DialerOptions,
    private readonly mod: DialerModules,
  ) {}

  weDial(p: PeerState): boolean {
    return p.info.index < this.o.localIndex && p.info.address !== "";
  }

  dial(p: PeerState): void {
    const { node, metrics, peers } = this.mod;
    p.dialTimer = null;
    if (!this.mod.running() || p.session || p.dialing || !this.weDial(p) || peers.get(p.info.index) !== p)
      return;
    if (peers.isBanned(p)) {
      p.dialTimer = setTimeout(() => this.dial(p), p.bannedUntil! - this.mod.now() + 1).unref();
      return;
    }
    if (!p.client) {
      const creds =
        node.credentials?.channelFor(p.info.publicKey, () => {
          metrics.rejected("tls_key_mismatch", p.info.index);
          this.mod.log.warn(
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
        ...(node.credentials ? { "grpc.ssl_target_name_override": "parabft-validator" } : {}),
      });
    }
    const m = this.mod.sessions.def.exchange!;
    const call = p.client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      this.path,
      m.requestSerialize as (v: Uint8Array) => Buffer,
      m.responseDeserialize as (b: Buffer) => Uint8Array,
      batchMetadata(),
      {},
    );
    const s = this.mod.sessions.open("out", call, p.info.index);
    // The server's response metadata arrives before its first frame (the handshake's proof).
    call.on("metadata", (md: grpc.Metadata) => {
      s.batchOut = readsBatchFrames(md);
    });
    p.dialing = s;
    call.on("error", (err: grpc.ServiceError) => this.onClientError(s, err));
    call.on("status", () => this.mod.sessions.endSession(s));
    call.write(
      challengeFrame(this.o.chainId, this.o.localIndex, p.info.index, node.localStatus().epoch, s.nonce),
    );
  }

  private onClientError(s: Session, err: grpc.ServiceError): void {
    if (s.closed) return;
    const m = err.code === grpc.status.RESOURCE_EXHAUSTED ? OVERSIZE_DETAIL.exec(err.details ?? "") : null;
    // grpc-js words our receive limit and the peer's the same way; the limit in the text tells them apart.
    if (m && Number(m[2]) === this.o.maxMessageBytes && s.authenticated) {
      this.mod.sessions.reject(s, "oversized", s.peer);
      return;
    }
    const p = s.peer === null ? undefined : this.mod.peers.get(s.peer);
    const refused = err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED;
    // A peer refusing our handshake is usually misconfiguration: say so once per outage, not per redial.
    const level = refused && p?.failures === 0 ? "warn" : "debug";
    this.mod.log[level]({ peer: s.peer, code: err.code, details: err.details }, "peer stream failed");
    this.mod.sessions.endSession(s);
  }

  /** After an outbound stream ended: dial again after a back-off, unless it is no longer ours to dial. */
  scheduleRedial(p: PeerState): void {
    if (!this.mod.running() || p.dialTimer || p.session || p.dialing || !this.weDial(p)) return;
    if (this.mod.peers.get(p.info.index) !== p) return;
    const ceiling = Math.min(this.o.reconnectMaxMs, this.o.reconnectBaseMs * 2 ** p.failures);
    // Jitter spreads the redials of a whole cluster after a shared outage.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    p.failures = Math.min(p.failures + 1, 30);
    this.mod.metrics.reconnect(p.info.index);
    p.dialTimer = setTimeout(() => this.dial(p), delay).unref();
  }
}
