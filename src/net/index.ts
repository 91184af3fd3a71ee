export { grpcServiceDefinition, methodPath } from "./grpcAdapter.js";
export {
  challengeFrame,
  checkChallenge,
  checkDialerProof,
  checkServerProof,
  dialerProofFrame,
  envelopeSender,
  makeHello,
  newNonce,
  serverProofFrame,
  transcriptSignBytes,
} from "./handshake.js";
export { CountingNetMetrics, netMetrics, noopNetMetrics } from "./metrics.js";
export { PeerNetwork } from "./peerNetwork.js";
export { BoundedQueue } from "./queue.js";
export { DEFAULT_OTHER_LIMIT, DEFAULT_RATE_LIMITS, PeerRateLimiter, type RateLimit } from "./rateLimit.js";
export { loadPeerCredentials, type PeerTlsMaterial, peerCredentials, TlsConfigError } from "./tls.js";
export type * from "./types.js";
