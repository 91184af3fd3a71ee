// What an authenticated stream of PeerNetwork receives, up to the node: a batch frame (frames.ts)
// is unpacked, each envelope's sender is checked against the authenticated peer and charged to the
// peer's per-kind rate limit, and what passes is handed to the node's `onEnvelope`: at once, or
// later in arrival order while the test-only delay is on.

import type { Envelope } from "../gen/parabft/v1/consensus_pb.js";
import { errorMessage } from "../types/errors.js";
import { BatchFrameError, decodeBatch, isBatchFrame } from "./frames.js";
import { decodeEnvelopeHeader } from "./handshake.js";
import type { NetPartModules } from "./peerTable.js";
import type { Session } from "./sessions.js";
import type { PeerNetworkModules } from "./types.js";

export interface InboundModules extends NetPartModules {
  /** The node's side: where envelopes go, and who may sign as whom. */
  node: Pick<PeerNetworkModules, "onEnvelope" | "senderIs">;
}

export class Inbound {
  /** Test-only inbound delay line (setTestOnlyDelay); empty and unused unless a test sets it. */
  private delay = { ms: 0, jitterMs: 0, lastAt: 0, timer: null as NodeJS.Timeout | null };
  private readonly delayed: { at: number; peer: number; bytes: Uint8Array; env: Envelope | undefined }[] = [];

  constructor(private readonly mod: InboundModules) {}

  /** A frame on authenticated session `s`: one envelope, or a batch frame of them. */
  receive(s: Session, bytes: Uint8Array): void {
    const peer = s.peer!;
    const p = this.mod.peers.get(peer);
    if (!p || p.session !== s) return;
    p.lastSeen = this.mod.now();
    if (isBatchFrame(bytes)) {
      let entries: Uint8Array[];
      try {
        entries = decodeBatch(bytes);
      } catch (err) {
        const code = err instanceof BatchFrameError ? err.code : "batch_truncated";
        this.mod.metrics.rejected("malformed_batch", peer);
        this.mod.peers.penalize(peer, code);
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
    this.mod.metrics.messageIn(peer, bytes.length);
    // Bytes that are not an Envelope at all go to the node, whose verdict names them malformed.
    const head = decodeEnvelopeHeader(bytes);
    const node = this.mod.node;
    // A NEW-VIEW is the one message a replica relays on someone else's signature (the primary's
    // helpers forward it to a lagging replica): relaying it is no offence.
    if (
      head !== null &&
      head.kind !== "newView" &&
      !(node.senderIs ? node.senderIs(peer, head.epoch, head.sender) : head.sender === peer)
    ) {
      this.mod.metrics.rejected("wrong_sender", peer);
      this.mod.peers.penalize(peer, "wrong_sender");
      return;
    }
    // Per-kind rate limit, before the node spends a signature check on it.
    if (!this.mod.peers.allowMessage(peer, head?.kind ?? "malformed")) return;
    this.deliver(peer, bytes, head?.envelope);
  }

  /** PeerNetwork.setTestOnlyDelay (TEST ONLY): hand envelopes to the node `ms` (+ jitter) later. */
  setTestOnlyDelay(ms: number, jitterMs = 0): void {
    this.delay.ms = Math.max(0, ms);
    this.delay.jitterMs = Math.max(0, jitterMs);
  }

  /** On stop: envelopes still held are not delivered. */
  clear(): void {
    if (this.delay.timer) clearTimeout(this.delay.timer);
    this.delay.timer = null;
    this.delayed.length = 0;
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
    if (!this.mod.running()) return;
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
      this.mod.node.onEnvelope(peer, bytes, env);
    } catch (err) {
      // A throwing handler is a node bug; the stream and the peer are not at fault.
      this.mod.log.error({ peer, err: errorMessage(err) }, "onEnvelope threw");
    }
  }
}
