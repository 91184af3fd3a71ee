// The peer transport's public shapes: options, injected modules, metrics and status.
import type { ChannelCredentials } from "@grpc/grpc-js";
import type { Envelope } from "../gen/parabft/v1/consensus_pb.js";
import type { Logger } from "../logger/index.js";
import type { MessageSigner, SignatureVerifier } from "../types/signing.js";
import type { RateLimit } from "./rateLimit.js";

/** One validator as the transport knows it: its index in the current set and where to dial it. */
export interface PeerInfo {
  index: number;
  publicKey: Uint8Array;
  /** "host:port"; empty when unknown (the peer may still dial us if it has the higher index). */
  address: string;
}

export interface PeerNetworkOpts {
  chainId: string;
  /** This node's index in the validator set. */
  localIndex: number;
  /** Default "127.0.0.1". */
  listenHost?: string;
  /** 0 binds an ephemeral port; read the bound one from `port` after start(). */
  listenPort: number;
  /** The validator set (this node's own entry is allowed and skipped). */
  peers: PeerInfo[];
  /** limits.maxMessageBytes: the largest envelope accepted or sent. */
  maxMessageBytes: number;
  /** Outbound envelopes buffered per peer. Default 1024. */
  queueLimit?: number;
  /** Which envelope to lose when a peer's queue is full. Default "oldest" (fresh consensus traffic matters more). */
  dropPolicy?: "oldest" | "newest";
  /** A stream that has not completed the handshake within this is closed. Default 5000. */
  handshakeTimeoutMs?: number;
  /** Largest accepted |peer epoch − local epoch| in a handshake. Default 1 (epoch handoff). */
  handshakeEpochSlack?: number;
  /** Reconnect back-off: first delay, doubled per failure up to the cap, then jittered. */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** HTTP/2 keepalive pings. Defaults 10000 / 5000. */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Score at which a peer is disconnected and banned. Default 20. */
  banThreshold?: number;
  /** How long a ban lasts. Default 60000. */
  banMs?: number;
  /** Penalty scores halve over this period, so old offences fade. Default 60000. */
  scoreHalfLifeMs?: number;
  /** Per-kind message rate limits per peer (PeerMessage oneof case → rate); default DEFAULT_RATE_LIMITS. */
  rateLimits?: Readonly<Record<string, RateLimit>>;
  /** Penalty per envelope over its rate limit. Default 0.1 (a sustained flood reaches banThreshold). */
  rateLimitPenalty?: number;
  /** Inbound streams still in their handshake at once; more are refused. Default 32. */
  maxPendingHandshakes?: number;
  /**
   * A live authenticated stream younger than this is never replaced by a new one (the new one is
   * refused: replace_too_soon). Default 2000.
   */
  replaceMinIntervalMs?: number;
  /** HTTP/2 streams per connection (grpc.max_concurrent_streams). Default 4: a peer needs one. */
  maxConcurrentStreams?: number;
  /** Open inbound TCP connections, all addresses together; more are closed at accept. Default 128. */
  maxConnections?: number;
  /** Open inbound TCP connections from one IP address. Default 32 (a local testnet shares 127.0.0.1). */
  maxConnectionsPerAddress?: number;
  /** New inbound TCP connections per second from one IP address (burst twice this). Default 50. */
  newConnectionsPerSecondPerAddress?: number;
}

/** What this node reports about itself in its handshake StatusReport. */
export interface LocalStatus {
  epoch: bigint;
  committedHeight: bigint;
  view: bigint;
  stableCheckpoint: bigint;
  executedHeight: bigint;
}

export interface PeerNetworkModules {
  signer: MessageSigner;
  verifier: SignatureVerifier;
  /**
   * Every envelope received from an authenticated peer, as raw bytes (including the peer's
   * handshake StatusReport). The node runs its verdict and calls penalize() on reject. `envelope`
   * is `bytes` already decoded (src/net reads the sender and kind from it), absent when the bytes
   * are not an Envelope at all: the node need not decode them a second time.
   */
  onEnvelope(from: number, bytes: Uint8Array, envelope?: Envelope): void;
  /** Read at each handshake. */
  localStatus(): LocalStatus;
  metrics: NetMetrics | null;
  log: Logger;
  /**
   * mTLS (src/net/tls.ts builds this from the node's certificate). Absent means insecure mode:
   * only for local debugging; the node logs a warning.
   */
  credentials?: PeerCredentials;
  /** Wall clock in ms; injectable for tests of scores and bans. */
  now?: () => number;
  /**
   * DPoS (issue 11): whether transport peer `peer` is member `sender` of the set of `epoch`
   * (indices differ per epoch). Absent: the envelope's sender must equal the peer's index.
   */
  senderIs?(peer: number, epoch: bigint, sender: number): boolean;
}

/** Why the transport itself refused a stream or an envelope (the node's verdict reasons are separate). */
export type NetRejectReason =
  | "handshake_malformed"
  | "handshake_version"
  | "handshake_chain"
  | "handshake_epoch"
  | "handshake_unknown_sender"
  | "handshake_bad_signature"
  | "handshake_wrong_direction"
  | "handshake_unexpected_peer"
  | "handshake_timeout"
  /** A proof not over this stream's fresh nonce (a replayed or forged handshake). */
  | "handshake_bad_proof"
  /** A live stream of this peer is younger than replaceMinIntervalMs. */
  | "replace_too_soon"
  /** TLS on, and the dialer presented no client certificate. */
  | "tls_no_certificate"
  /** A client certificate that is not an Ed25519 certificate (so carries no consensus key). */
  | "tls_bad_certificate"
  /** A client certificate whose key is no known validator's consensus key. */
  | "tls_unknown_key"
  /** The TLS certificate's key is not the consensus key of the validator the dialer claims to be. */
  | "tls_key_mismatch"
  /** TLS on, and the TLS handshake itself failed (timeout, not TLS, a failed key proof). */
  | "tls_handshake_failed"
  | "banned"
  | "too_many_streams"
  | "max_connections"
  | "max_connections_per_address"
  | "connection_rate"
  | "abusive_connection_closed"
  /** The listener's abuse cool-down (the API's; the peer listener never strikes, so never this). */
  | "abuse_cooldown"
  | "wrong_sender"
  /** An envelope over its per-peer, per-kind rate limit (dropped; small penalty). */
  | "rate_limited"
  /** A batch frame (src/net/frames.ts) that is not a well-formed sequence of envelopes. */
  | "malformed_batch"
  | "oversized";

export type QueueDropReason = "full" | "banned" | "oversized" | "unknown_peer";

/** A metrics sink; src/metrics adapts it to prom-client, tests use CountingNetMetrics. */
export interface NetMetrics {
  messageIn(peer: number, bytes: number): void;
  messageOut(peer: number, bytes: number): void;
  /** Refused by the transport; `peer` is null before a stream is authenticated. */
  rejected(reason: NetRejectReason, peer: number | null): void;
  /** penalize() calls, from the node's verdicts and from the transport's own rejects. */
  penalized(peer: number, reason: string): void;
  banned(peer: number): void;
  queueDropped(peer: number, reason: QueueDropReason): void;
  reconnect(peer: number): void;
  /** A live stream was replaced by a freshly authenticated one. */
  replaced(peer: number): void;
  connectedPeers(count: number): void;
}

export interface PeerCredentials {
  /**
   * node:tls server options: our certificate and key. Client certificates are judged by their key
   * (a known validator's consensus key), not by a CA.
   */
  server: { cert: string; key: string };
  /**
   * Channel credentials for dialing the validator with `publicKey`. Pinned to its certificate when
   * the trust bundle holds one carrying that key (any other server certificate is refused as
   * tls_key_mismatch); otherwise (a validator elected after our bundle was written) TLS without a
   * CA check: the handshake then authenticates the server by its proof over our fresh nonce, and
   * the server checked that our certificate carries our key, so a relay cannot sit between.
   */
  channelFor(publicKey: Uint8Array, onMismatch?: () => void): ChannelCredentials;
  /** Whether a DER certificate carries this consensus key. */
  certificateMatches(der: Uint8Array, publicKey: Uint8Array): boolean;
}

export interface PeerStatus {
  index: number;
  address: string;
  connected: boolean;
  /** "out" when this node dialed, "in" when the peer did; null while disconnected. */
  direction: "in" | "out" | null;
  score: number;
  banned: boolean;
  bannedUntil: number | null;
  /** ms timestamp of the last envelope received, null if never. */
  lastSeen: number | null;
  queued: number;
  dropped: number;
}
