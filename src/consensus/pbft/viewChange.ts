// View change: VIEW-CHANGE, view synchronisation, NEW-VIEW (proposals from newView.ts), forwarding.
// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.

import { create, fromBinary } from "@bufbuild/protobuf";
import {
  type CheckpointCertificate,
  EnvelopeSchema,
  type NewView,
  type NewViewProposal,
  NewViewSchema,
  PeerMessageSchema,
  type PreparedCertificate,
  type ViewChange,
  ViewChangeSchema,
} from "../../gen/parabft/v1/consensus_pb.js";
import { toHex } from "../../types/bytes.js";
import { ACCEPTED, cmpBig, ign } from "./base.js";
import { computeNewViewProposals } from "./newView.js";
import { Pacemaker } from "./pacemaker.js";
import type { CheckedMessage, ValidatorIndex, Verdict, View } from "./types.js";

export abstract class ViewChanges extends Pacemaker {
  protected onViewChange(msg: CheckedMessage, vc: ViewChange): Verdict {
    const w = vc.newView;
    this.observe(msg.sender, w, null);
    if (w < this._view || (w === this._view && this.active)) {
      // A replica still asking for a view we already reached missed the NEW-VIEW: hand it over.
      if (this.active && this.newViewBytes !== null && this._view > 0n) this.forwardNewView(msg.sender);
      return ign("STALE_VIEW");
    }
    const prev = this.viewChanges.get(msg.sender);
    if (prev !== undefined) {
      if (prev.view === w) return ign("DUPLICATE");
      if (prev.view > w) return ign("STALE_VIEW");
    }
    this.viewChanges.set(msg.sender, { view: w, bytes: msg.bytes, vc });
    this.maybeJoinHigherView();
    this.viewChangeProgress();
    return ACCEPTED;
  }

  protected onNewView(msg: CheckedMessage, nv: NewView): Verdict {
    this.observe(msg.sender, nv.view, null);
    if (nv.view < this._view) return ign("STALE_VIEW");
    // Restarted inside view nv.view: the NEW-VIEW brings back its re-proposals.
    if (nv.view === this._view && this.active && this.newViewBytes !== null) return ign("DUPLICATE");
    // The envelope check verified every nested VIEW-CHANGE and recomputed the proposals; here we
    // only need the stable checkpoint they carry.
    const vcs: ViewChange[] = [];
    for (const raw of nv.viewChanges) {
      const env = fromBinary(EnvelopeSchema, raw);
      const pm = fromBinary(PeerMessageSchema, env.payload);
      if (pm.kind.case === "viewChange") vcs.push(pm.kind.value);
    }
    const { stable } = computeNewViewProposals(this.cfg.chainId, this.epochNo, vcs, this.floorHeight);
    this.enterNewView(nv.view, msg.bytes, nv.proposals, stable);
    return ACCEPTED;
  }

  protected startViewChange(target: View): void {
    if (this.recovering) return;
    if (target < this._view || (target === this._view && (this.active || this.vcSent >= target))) return;
    this._view = target;
    this.active = false;
    this.requested = null;
    this.failedViews++;
    this.vcSent = target;
    if (this.timerArmed) {
      this.timerArmed = false;
      this.out.push({ kind: "cancelTimer", timer: "view" });
    }
    this.timerForViewChange = null;
    this.sendViewChange(target);
    this.viewChangeProgress();
  }

  /** Builds, persists and broadcasts our VIEW-CHANGE for `target` with every prepared certificate. */
  protected sendViewChange(target: View): void {
    if (!this.safety.viewChange()) return;
    const prepared: PreparedCertificate[] = [];
    const heights = [...this.slots.keys()].filter((h) => h > this._stable).sort(cmpBig);
    for (const h of heights) {
      const p = this.slots.get(h)!.prepared;
      if (p !== null && p.view < target) prepared.push(p);
    }
    const vc = create(ViewChangeSchema, {
      newView: target,
      prepared,
      ...(this.stableCert !== undefined && this.stableCert.height === this._stable
        ? { stableCheckpoint: this.stableCert }
        : {}),
    });
    this.persist({ kind: "viewChange", epoch: this.epochNo, newView: target });
    const msg = this.seal({ case: "viewChange", value: vc });
    this.broadcast(msg);
    this.viewChanges.set(this.self, { view: target, bytes: msg.bytes, vc });
  }

  /** View sync: VIEW-CHANGEs for higher views from more than 1/3 of power pull us to the smallest. */
  protected maybeJoinHigherView(): void {
    if (this.recovering) return;
    const higher: { sender: ValidatorIndex; view: View }[] = [];
    for (const [sender, s] of this.viewChanges)
      if (s.view > this._view) higher.push({ sender, view: s.view });
    if (higher.length === 0 || !this.vset.isWeak(higher.map((x) => x.sender))) return;
    let min = higher[0]!.view;
    for (const x of higher) if (x.view < min) min = x.view;
    this.startViewChange(min);
  }

  protected viewChangeProgress(): void {
    if (this.active) return;
    const w = this._view;
    const exact: ValidatorIndex[] = [];
    const atLeast: ValidatorIndex[] = [];
    for (const [sender, s] of this.viewChanges) {
      if (s.view === w) exact.push(sender);
      if (s.view >= w) atLeast.push(sender);
    }
    // Arm the timer for w+1 only once a quorum is changing to w or beyond. Counting replicas that
    // already moved past w matters: otherwise a quorum split between w and w+1 waits forever.
    if (this.timerForViewChange !== w && !this.recovering && this.quorumReached(atLeast)) {
      this.timerForViewChange = w;
      this.armTimer();
    }
    if (!this.quorumReached(exact)) return;
    if (this.vset.primary(w) === this.self && !this.newViewSent.has(w) && this.vcSent === w) {
      this.sendNewView(
        w,
        exact.sort((a, b) => a - b),
      );
    }
  }

  protected sendNewView(w: View, senders: ValidatorIndex[]): void {
    this.newViewSent.add(w);
    const stored = senders.map((s) => this.viewChanges.get(s)!);
    const { stable, proposals } = computeNewViewProposals(
      this.cfg.chainId,
      this.epochNo,
      stored.map((s) => s.vc),
      this.floorHeight,
    );
    const reproposals = proposals.map((p) => ({ height: p.height, hex: toHex(p.blockDigest), p }));
    // A NEW-VIEW SafetyRules refuses would equivocate: abstain, the view change to w + 1 replaces us.
    if (!this.safety.newViewAllowed(w, reproposals)) return;
    for (const { height, hex, p } of reproposals) {
      if (!this.safety.prePrepare(w, height, hex)) continue;
      const body = p.isNull ? undefined : this.bodyForRecord(hex);
      this.persist({
        kind: "prePrepare",
        epoch: this.epochNo,
        view: w,
        height: p.height,
        digest: p.blockDigest,
        ...(body ? { body } : {}),
      });
    }
    // The epoch too: a fold of epoch e >= 1 ignores a view record without one (it reads as epoch 0).
    this.persist({ kind: "view", view: w, epoch: this.epochNo });
    const msg = this.seal({
      case: "newView",
      value: create(NewViewSchema, { view: w, viewChanges: stored.map((s) => s.bytes), proposals }),
    });
    this.broadcast(msg);
    this.enterNewView(w, msg.bytes, proposals, stable, true);
  }

  protected enterNewView(
    w: View,
    nvBytes: Uint8Array,
    proposals: readonly NewViewProposal[],
    stable: CheckpointCertificate | undefined,
    viewPersisted = false,
  ): void {
    if (stable !== undefined && stable.height > this._stable) this.makeStable(stable);
    if (this.isDiverged()) return;
    this._view = w;
    this.active = true;
    this.newViewBytes = nvBytes;
    this.requested = null;
    if (this.timerArmed) {
      this.timerArmed = false;
      this.out.push({ kind: "cancelTimer", timer: "view" });
    }
    this.timerForViewChange = null;
    if (!viewPersisted) this.persist({ kind: "view", view: w, epoch: this.epochNo });
    this.out.push({ kind: "viewChanged", view: w, primary: this.vset.primary(w) });
    // bigint: Math.max does not apply.
    let maxH = this._committed;
    if (this._stable > maxH) maxH = this._stable;
    for (const p of proposals) {
      if (p.height > maxH) maxH = p.height;
      if (p.height <= this._stable || p.height > this.highWatermark) continue;
      const slot = this.slot(p.height);
      const hex = toHex(p.blockDigest);
      slot.proposals.set(w, { digest: p.blockDigest, hex, bytes: nvBytes, fromNewView: true });
      if (p.height <= this._committed) {
        const ours = this.deliveredDigests.get(p.height);
        if (ours !== undefined && ours !== hex) {
          // A valid NEW-VIEW re-proposing another digest at a height we delivered: the safety
          // argument says this cannot happen with at most f faulty. Never skip it silently.
          this.out.push({
            kind: "alarm",
            code: "CONFLICTING_REPROPOSAL",
            height: p.height,
            view: w,
            detail: `NEW-VIEW of view ${w} re-proposes ${hex.slice(0, 16)} at delivered height ${p.height} (delivered ${ours.slice(0, 16)})`,
          });
          continue;
        }
        // Others may still lack our COMMIT for a height we already delivered: repeat it.
        if (slot.committed?.hex === hex) this.resendCommit(slot, w);
        continue;
      }
      if (!p.isNull && !this.bodies.has(hex)) this.requestBody(p.height, p.blockDigest, true);
      this.sendPrepare(slot, w, p.blockDigest);
      this.tryPrepared(slot);
    }
    // Fresh proposals start right above the re-proposed range, even if this replica proposed
    // further in an older view: those heights are open again.
    this.nextProposal = maxH + 1n;
    for (const [sender, s] of [...this.viewChanges]) if (s.view <= w) this.viewChanges.delete(sender);
    this.replayBuffer();
  }

  /**
   * Hands our NEW-VIEW to a replica stuck in an older view. Only the primary and two helpers
   * answer, so a lagging replica does not pull n − 1 copies of a large message per tick.
   */
  protected forwardNewView(to: ValidatorIndex): void {
    const bytes = this.newViewBytes;
    if (bytes === null || to === this.self) return;
    const n = this.vset.size;
    const helper = (to + 1) % n === this.self || (to + 2) % n === this.self;
    if (!this.isPrimary && !helper) return;
    const envelope = fromBinary(EnvelopeSchema, bytes);
    this.send(to, { kind: "newView", envelope, bytes });
  }
}
