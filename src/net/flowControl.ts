// HTTP/2 flow-control windows of the peer streams (issue 14). HTTP/2 lets a sender have at most
// one window of unacknowledged bytes in flight per stream and per connection; the receiver
// acknowledges (WINDOW_UPDATE) only when its event loop reads the data. With the 64 KiB default, a
// 360 KB PRE-PREPARE (a 2,000-transfer block) needs six round trips, each waiting for a turn of
// the receiver's busy event loop and then of the sender's: at 1,200 tx/s on a loaded box one took
// 567 ms from the primary's broadcast to a backup's handler. In a two-process test with both event
// loops busy 80 % of the time, 360 KB messages took p50 27-77 / p90 101-529 ms with the default
// windows and p50 4-8 / p90 7-13 ms with 4 MiB windows.
//
// Both directions of a peer stream are widened to `bytes` (the largest peer message, so one never
// waits for a window): the dialer's receive window by grpc-js's channel option, the listener's
// (grpc-js's server has no such option) on the call's HTTP/2 session once the stream is
// authenticated, so an unauthenticated dialer still has the default window. Memory stays bounded by
// the session memory limit (4 × the largest message, peerNetwork.ts).
import type * as grpc from "@grpc/grpc-js";

/** Channel options for the dialer: its receive windows (per stream and per connection). */
export function dialerWindowOptions(bytes: number): grpc.ChannelOptions {
  return { "grpc-node.flow_control_window": bytes };
}

/** The subset of node:http2's ServerHttp2Session that widening uses. */
interface WindowedSession {
  setLocalWindowSize(size: number): void;
  settings(settings: { initialWindowSize: number }): void;
  readonly destroyed: boolean;
}

/**
 * Widens the receive windows of an inbound call's HTTP/2 session to `bytes`: the connection's
 * (setLocalWindowSize) and every stream's (SETTINGS_INITIAL_WINDOW_SIZE, which RFC 9113 §6.9.2
 * applies to open streams too). grpc-js does not expose the session: it is read from the call's
 * internals (ServerDuplexStream.call, through any interceptors' nextCall, to the stream). Returns
 * false when that path is not there (another grpc-js), and the window stays the default: slower
 * under load, never wrong. test/unit/net/flowControl.test.ts pins the path for the grpc-js in use.
 */
export function widenInboundWindow(call: grpc.ServerDuplexStream<unknown, unknown>, bytes: number): boolean {
  const session = inboundSession(call);
  if (session === null || session.destroyed) return false;
  try {
    session.setLocalWindowSize(bytes);
    session.settings({ initialWindowSize: bytes });
    return true;
  } catch {
    return false;
  }
}

function inboundSession(call: unknown): WindowedSession | null {
  let c = (call as { call?: unknown }).call;
  // ServerInterceptingCall -> ... -> BaseServerInterceptingCall, which holds the http2 stream.
  for (let depth = 0; depth < 8 && c !== null && typeof c === "object"; depth++) {
    const stream = (c as { stream?: { session?: unknown } }).stream;
    if (stream !== undefined) {
      const s = stream.session as Partial<WindowedSession> | undefined;
      return s !== undefined && typeof s.setLocalWindowSize === "function" && typeof s.settings === "function"
        ? (s as WindowedSession)
        : null;
    }
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return null;
}
