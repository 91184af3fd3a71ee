// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions. This file is the thin dispatcher; the rules live in the
// layers it extends (see base.ts) and in SafetyRules.
// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.
import { create, fromBinary } from "@bufbuild/protobuf";
import {
  BlockResponseSchema,
  EnvelopeSchema,
  type StatusReport,
  StatusReportSchema,
} from "../../gen/parabft/v1/consensus_pb.js";
import { fromHex } from "../../types/bytes.js";
import { checkEnvelope } from "../envelope.js";
import { Amnesia } from "./amnesia.js";
import { ACCEPTED, ign, rej, VIEW_CHANGE_REPEAT_TICKS } from "./base.js";
import type {
  Action,
  CheckedMessage,
  Event,
  OutMessage,
  StepResult,
  ValidatorIndex,
  Verdict,
  VoteQuery,
} from "./types.js";

export type { ReplicaSnapshot } from "./base.js";

export class Replica extends Amnesia {
  /** The last status sealed on a tick and the report it carries (onTick reuses it while unchanged). */
  private lastStatus: { key: string; msg: OutMessage } | null = null;

  /** ConsensusCore.voteNeeded (rules at VoteLog.voteNeededHere); a vote of another epoch is verified. */
  voteNeeded(q: VoteQuery): boolean {
    return q.epoch !== this.epochNo || this.voteNeededHere(q);
  }

  step(event: Event): Action[] {
    return this.handle(event).actions;
  }

  handle(event: Event): StepResult {
    this.out = [];
    let verdict: Verdict | null = null;
    let sender: ValidatorIndex | null = null;
    if (this._status === "diverged") {
      if (event.kind === "message" || event.kind === "checked") verdict = ign("STOPPED");
      this.lastVerdict = verdict;
      return { actions: [], verdict, sender };
    }
    // The pace's only clock: the time the driver stamped on the event (pace.ts).
    if (
      event.kind === "message" ||
      event.kind === "checked" ||
      event.kind === "proposal" ||
      event.kind === "tick"
    )
      this.pace.observe(event.nowMs);
    switch (event.kind) {
      case "message": {
        const r = checkEnvelope(
          event.bytes,
          this.envCtx,
          undefined,
          this.cfg.skipUnneededVotes ? { voteNeeded: (q) => this.voteNeeded(q) } : undefined,
        );
        sender = r.msg?.sender ?? r.sender ?? null;
        if (r.msg === undefined) {
          verdict = r.verdict;
        } else {
          verdict = this.onChecked(r.msg, event.nowMs);
        }
        break;
      }
      case "checked":
        sender = event.msg.sender;
        verdict = this.onChecked(event.msg, event.nowMs);
        break;
      case "timer":
        this.onTimer(event.token);
        break;
      case "executed":
        this.onExecuted(event.height, event.stateRoot, event.chainHash);
        break;
      case "proposal":
        this.onProposal(event.height, event.block);
        break;
      case "pendingWork":
        this.pendingWork = Math.max(0, event.count);
        this.requested = null;
        break;
      case "tick":
        this.onTick();
        break;
      case "blocksForPeer":
        if (event.blocks.length > 0) {
          this.send(
            event.to,
            this.seal({
              case: "blockResponse",
              value: create(BlockResponseSchema, { blocks: event.blocks }),
            }),
          );
        }
        break;
      case "body":
        this.onBody(event.block);
        break;
    }
    if (!this.isDiverged()) {
      this.updateRecovery();
      this.maybePropose();
      this.refreshTimer();
    }
    this.lastVerdict = verdict;
    const actions = this.out;
    this.out = [];
    return { actions, verdict, sender };
  }

  protected onChecked(msg: CheckedMessage, nowMs: bigint | undefined): Verdict {
    if (msg.sender === this.self && msg.epoch === this.epochNo) return ign("FROM_SELF");
    const m = msg.message.kind;
    switch (m.case) {
      case "status":
        return this.onStatus(msg, m.value);
      case "blockRequest":
        return this.onBlockRequest(msg.sender, m.value.fromHeight, m.value.toHeight);
      case "blockResponse":
        return this.onBlockResponse(m.value.blocks);
      case "bodyRequest":
        return this.onBodyRequest(msg.sender, m.value.blockDigest);
      case "bodyResponse":
        return m.value.block === undefined ? rej("MALFORMED") : this.onBody(m.value.block);
      case "txBatch":
        return ign("NOT_HANDLED");
      case undefined:
        return rej("MALFORMED");
      default:
        break;
    }
    if (msg.epoch !== this.epochNo) return ign(msg.epoch < this.epochNo ? "STALE_EPOCH" : "FUTURE_EPOCH");
    switch (m.case) {
      case "prePrepare":
        return this.onPrePrepare(msg, m.value, nowMs);
      case "prepare":
        return this.onPrepare(msg, m.value, nowMs);
      case "commit":
        return this.onCommit(msg, m.value, nowMs);
      case "checkpoint":
        return this.onCheckpoint(msg, m.value);
      case "viewChange":
        return this.onViewChange(msg, m.value);
      case "newView":
        return this.onNewView(msg, m.value);
    }
  }

  protected onStatus(msg: CheckedMessage, s: StatusReport): Verdict {
    this.peerStatus.set(msg.sender, {
      committed: s.committedHeight,
      view: s.view,
      stable: s.stableCheckpoint,
      executed: s.executedHeight,
    });
    if (msg.epoch === this.epochNo) this.observe(msg.sender, s.view, s.committedHeight);
    // A peer in an older view, or one that restarted inside our view without its NEW-VIEW, gets it.
    if (
      this.active &&
      this.newViewBytes !== null &&
      (s.view < this._view || (s.view === this._view && s.missingNewView))
    )
      this.forwardNewView(msg.sender);
    // Far behind (the peer's stable point is above everything we have): fetch right away.
    if (s.stableCheckpoint > this._committed && this.fetchTarget === null) {
      this.startFetch(msg.sender, s.committedHeight);
    }
    return ACCEPTED;
  }

  protected onTick(): void {
    const missingNewView = this.active && this._view > 0n && this.newViewBytes === null;
    // An unchanged report seals to the very same bytes (deterministic encoding, deterministic
    // Ed25519): the last sealed status is broadcast again instead of encoded and signed again.
    const key = `${this._committed}:${this._view}:${this._stable}:${this._executed}:${missingNewView}`;
    if (this.lastStatus?.key !== key) {
      const msg = this.seal({
        case: "status",
        value: create(StatusReportSchema, {
          committedHeight: this._committed,
          view: this._view,
          stableCheckpoint: this._stable,
          executedHeight: this._executed,
          missingNewView,
        }),
      });
      this.lastStatus = { key, msg };
    }
    this.broadcast(this.lastStatus.msg);
    // Still waiting for a NEW-VIEW: repeat our VIEW-CHANGE; replicas already in the view answer with
    // the NEW-VIEW they accepted.
    this.ticks++;
    if (!this.active && this.ticks % VIEW_CHANGE_REPEAT_TICKS === 0) {
      const own = this.viewChanges.get(this.self);
      if (own !== undefined && own.view === this._view) {
        this.broadcast({
          kind: "viewChange",
          envelope: fromBinary(EnvelopeSchema, own.bytes),
          bytes: own.bytes,
        });
      } else if (this.vcSent === this._view && !this.recovering) {
        // Restarted while waiting for a NEW-VIEW: the VIEW-CHANGE itself was not kept, sign it again.
        this.sendViewChange(this._view);
        this.viewChangeProgress();
      }
    }
    // Bodies still missing: ask again.
    for (const [hex, h] of this.neededBodies) {
      if (h <= this._committed) {
        this.neededBodies.delete(hex);
        continue;
      }
      this.requestBody(h, fromHex(hex), false);
    }
    // Catch-up when stalled behind a peer (or a stale fetch made no progress).
    const stalled = this._committed === this.committedAtLastTick;
    // Checkpoint votes are sent once; if they were lost (a partition, a whole-cluster restart) the
    // window can stay full for good. While stalled with the window full, repeat our own.
    if (stalled && this._committed >= this.highWatermark && this.ticks % VIEW_CHANGE_REPEAT_TICKS === 0)
      this.repeatCheckpoints();
    if (stalled) {
      this.fetchTarget = null;
      const ahead: ValidatorIndex[] = [];
      for (const [i, st] of this.peerStatus) if (st.committed > this._committed) ahead.push(i);
      ahead.sort((a, b) => a - b);
      const peer = this.pickPeer(ahead);
      if (peer !== null) this.startFetch(peer, this.peerStatus.get(peer)!.committed);
      else if (this._stable > this._committed && this.stableCert !== undefined) {
        const signer = this.pickPeer(this.stableCert.signatures.map((s) => s.validator));
        if (signer !== null) this.startFetch(signer, this._stable);
      }
    }
    this.committedAtLastTick = this._committed;
    // A proposal request the driver did not answer is re-issued.
    this.requested = null;
  }
}
