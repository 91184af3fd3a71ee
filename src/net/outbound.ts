// The outbound path of PeerNetwork: envelopes go into the peer's bounded queue (peerTable.ts) and
// are written to its authenticated stream until the stream asks to wait (`drain` resumes). To a
// peer that reads batch frames (frames.ts), what queued up during one callback leaves in one write.

import { batchSize, encodeBatch, MAX_BATCH_ENTRIES } from "./frames.js";
import type { PeerState, PeerTable } from "./peerTable.js";
import type { NetMetrics, PeerNetworkOpts } from "./types.js";

export type OutboundOptions = Pick<Required<PeerNetworkOpts>, "localIndex" | "maxMessageBytes">;

export interface OutboundModules {
  metrics: NetMetrics;
  peers: PeerTable;
}

export class Outbound {
  constructor(
    private readonly o: OutboundOptions,
    private readonly mod: OutboundModules,
  ) {}

  /** Queues `bytes` for `to`; false when it was dropped (unknown peer, banned, oversized, full). */
  send(to: number, bytes: Uint8Array): boolean {
    const peers = this.mod.peers;
    const p = to === this.o.localIndex ? undefined : peers.get(to);
    if (!p) {
      this.mod.metrics.queueDropped(to, "unknown_peer");
      return false;
    }
    if (bytes.length > this.o.maxMessageBytes) {
      // The receiver would tear the stream down; losing one envelope is cheaper.
      peers.drop(p, "oversized");
      return false;
    }
    if (peers.isBanned(p)) {
      peers.drop(p, "banned");
      return false;
    }
    const lost = p.queue.push(bytes);
    if (lost !== undefined) peers.drop(p, "full");
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
    for (const p of this.mod.peers.values()) if (this.send(p.info.index, bytes)) n++;
    return n;
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
  pump(p: PeerState): void {
    const s = p.session;
    if (!s || s.closed || s.waitingDrain) return;
    for (let bytes = p.queue.shift(); bytes !== undefined; bytes = p.queue.shift()) {
      this.mod.metrics.messageOut(p.info.index, bytes.length);
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
      this.mod.metrics.messageOut(p.info.index, next.length);
      entries.push(next);
      size = grown;
    }
    return entries.length === 1 ? first : encodeBatch(entries);
  }
}
