// Metric sinks that need no registry: a no-op one and an in-memory counter for tests and status.
import type { MetricsFactory } from "../metrics/types.js";
import type { NetMetrics, NetRejectReason, QueueDropReason } from "./types.js";

export const noopNetMetrics: NetMetrics = {
  messageIn() {},
  messageOut() {},
  rejected() {},
  penalized() {},
  banned() {},
  queueDropped() {},
  reconnect() {},
  replaced() {},
  connectedPeers() {},
};

function bump<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** Counts everything in maps keyed by peer or reason. */
export class CountingNetMetrics implements NetMetrics {
  readonly messagesIn = new Map<number, number>();
  readonly bytesIn = new Map<number, number>();
  readonly messagesOut = new Map<number, number>();
  readonly bytesOut = new Map<number, number>();
  readonly rejects = new Map<NetRejectReason, number>();
  readonly penalties = new Map<string, number>();
  readonly bans = new Map<number, number>();
  readonly drops = new Map<QueueDropReason, number>();
  readonly dropsByPeer = new Map<number, number>();
  readonly reconnects = new Map<number, number>();
  readonly replacements = new Map<number, number>();
  connected = 0;

  messageIn(peer: number, bytes: number): void {
    bump(this.messagesIn, peer);
    bump(this.bytesIn, peer, bytes);
  }
  messageOut(peer: number, bytes: number): void {
    bump(this.messagesOut, peer);
    bump(this.bytesOut, peer, bytes);
  }
  rejected(reason: NetRejectReason): void {
    bump(this.rejects, reason);
  }
  penalized(_peer: number, reason: string): void {
    bump(this.penalties, reason);
  }
  banned(peer: number): void {
    bump(this.bans, peer);
  }
  queueDropped(peer: number, reason: QueueDropReason): void {
    bump(this.drops, reason);
    bump(this.dropsByPeer, peer);
  }
  reconnect(peer: number): void {
    bump(this.reconnects, peer);
  }
  replaced(peer: number): void {
    bump(this.replacements, peer);
  }
  connectedPeers(count: number): void {
    this.connected = count;
  }
}

/** NetMetrics over the node's registry (prom-client behind src/metrics' MetricsFactory). */
export function netMetrics(f: MetricsFactory): NetMetrics {
  const msgs = f.counter<"peer" | "direction">({
    name: "net_messages_total",
    help: "Envelopes received and sent, by peer",
    labelNames: ["peer", "direction"],
  });
  const bytes = f.counter<"peer" | "direction">({
    name: "net_bytes_total",
    help: "Envelope bytes received and sent, by peer",
    labelNames: ["peer", "direction"],
  });
  const rejected = f.counter<"reason">({
    name: "net_rejected_total",
    help: "Streams or envelopes refused by the transport, by reason",
    labelNames: ["reason"],
  });
  const penalties = f.counter<"peer" | "reason">({
    name: "net_penalties_total",
    help: "Penalties charged to peers, by reason",
    labelNames: ["peer", "reason"],
  });
  const bans = f.counter<"peer">({ name: "net_bans_total", help: "Peer bans", labelNames: ["peer"] });
  const drops = f.counter<"peer" | "reason">({
    name: "net_queue_dropped_total",
    help: "Outbound envelopes dropped before sending, by reason",
    labelNames: ["peer", "reason"],
  });
  const reconnects = f.counter<"peer">({
    name: "net_reconnects_total",
    help: "Redial attempts",
    labelNames: ["peer"],
  });
  const replaced = f.counter<"peer">({
    name: "net_stream_replacements_total",
    help: "Live peer streams replaced by a freshly authenticated one",
    labelNames: ["peer"],
  });
  const connected = f.gauge({ name: "net_connected_peers", help: "Authenticated peer streams" });
  return {
    messageIn(peer, n) {
      msgs.inc({ peer, direction: "in" });
      bytes.inc({ peer, direction: "in" }, n);
    },
    messageOut(peer, n) {
      msgs.inc({ peer, direction: "out" });
      bytes.inc({ peer, direction: "out" }, n);
    },
    rejected: (reason) => rejected.inc({ reason }),
    penalized: (peer, reason) => penalties.inc({ peer, reason }),
    banned: (peer) => bans.inc({ peer }),
    queueDropped: (peer, reason) => drops.inc({ peer, reason }),
    reconnect: (peer) => reconnects.inc({ peer }),
    replaced: (peer) => replaced.inc({ peer }),
    connectedPeers: (count) => connected.set(count),
  };
}
