// Restart from the signing state, and recovery without it (the amnesia rule).
// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.
import { fromBinary } from "@bufbuild/protobuf";
import { BlockSchema } from "../../gen/parabft/v1/types_pb.js";
import { toHex } from "../../types/bytes.js";
import type { Height, PersistedState, ValidatorIndex, View } from "./types.js";
import { ViewChanges } from "./viewChange.js";

export abstract class Amnesia extends ViewChanges {
  protected restore(p: PersistedState): void {
    this.vcSent = p.viewChangeSent;
    if (p.viewChangeSent > p.view) {
      this._view = p.viewChangeSent;
      this.active = false;
    } else {
      this._view = p.view;
      this.active = true;
    }
    // A stable point above our storage (e.g. a wiped data directory) still holds: we sync up to it.
    if (p.stableCert !== undefined && p.stableCert.height >= this._stable) {
      this.stableCert = p.stableCert;
      this._stable = p.stableCert.height;
    }
    const above = (h: Height) => h > this._stable;
    // What was signed goes back to the safety rules; the rest of the replica resumes around it.
    this.safety.restore(p, above);
    for (const r of p.prePrepares) {
      if (r.epoch === this.epochNo && above(r.height)) {
        this.slot(r.height);
        if (r.view === this._view && r.height >= this.nextProposal) this.nextProposal = r.height + 1n;
      }
    }
    for (const r of p.prepares) if (r.epoch === this.epochNo && above(r.height)) this.slot(r.height);
    for (const r of p.commits) {
      if (r.epoch !== this.epochNo || !above(r.height)) continue;
      const s = this.slot(r.height);
      // The highest prepared certificate per height goes into every later VIEW-CHANGE.
      if (r.prepared !== undefined && (s.prepared === null || r.prepared.view >= s.prepared.view))
        s.prepared = r.prepared;
    }
    for (const b of p.bodies) {
      if (!above(b.height)) continue;
      const hex = toHex(b.digest);
      if (!this.bodies.has(hex))
        this.bodies.set(hex, { height: b.height, block: fromBinary(BlockSchema, b.block), durable: true });
    }
    for (const r of p.checkpoints) {
      if (r.epoch === this.epochNo)
        this.ownCheckpoints.set(r.height, { chainHash: r.chainHash, stateRoot: r.stateRoot });
    }
  }

  /**
   * AMNESIA RULE (DESIGN §2 "Safety across restarts"). A replica without its signing state may
   * have signed anything in its previous life, and those signatures stay valid. It stays silent
   * until both hold:
   * - its committed height is above H + window, where H is the highest committed height reported
   *   by a quorum of senders (each can prove it with certificates). Its previous life signed only
   *   at heights ≤ its stable checkpoint + window; that checkpoint was signed by a quorum, so at
   *   least one honest member of any quorum had committed it, and H is at least that high.
   * - its view is above V + 1, where V is the highest view reported by that quorum. A replica
   *   moves past a view w + 1 on its own only after a quorum changed to w, so its previous life
   *   never voted (or sent a VIEW-CHANGE) in a view above V + 1.
   * Until then nothing it signs can conflict with what it signed before. When the cluster never
   * gets there (e.g. no further view change, or liars reporting huge numbers), the way out is a
   * key rotation; the reason it waits is reported as an `amnesia` action (logged and counted).
   */
  protected observe(sender: ValidatorIndex, view: View, height: Height | null): void {
    if (!this.recovering || this.recoveryTarget !== null) return;
    const prev = this.observed.get(sender);
    const v = prev === undefined || view > prev.view ? view : prev.view;
    let h = prev?.height ?? null;
    if (height !== null && (h === null || height > h)) h = height;
    this.observed.set(sender, { view: v, height: h });
    // Only senders that reported their committed height (StatusReport) form the quorum.
    const reporters: ValidatorIndex[] = [this.self];
    for (const [i, o] of this.observed) if (o.height !== null && i !== this.self) reporters.push(i);
    if (!this.vset.isQuorum(reporters)) return;
    let maxH = this._committed;
    let maxV = this._view;
    for (const o of this.observed.values()) {
      if (o.height !== null && o.height > maxH) maxH = o.height;
      if (o.view > maxV) maxV = o.view;
    }
    this.recoveryTarget = { height: maxH + this.windowSize, view: maxV + 1n };
  }

  protected updateRecovery(): void {
    if (!this.recovering) return;
    const t = this.recoveryTarget;
    const reason =
      t === null ? "quorum" : this._committed <= t.height ? "height" : this._view <= t.view ? "view" : null;
    if (reason === null) {
      this.recovering = false;
      this.safety.rejoin();
      this._status = "validating";
      this.recoveryReason = null;
      this.out.push({ kind: "amnesia", reason: "rejoined", height: this._committed, view: this._view });
      // Everything up to here was seen from others, never signed by us in this life: start afresh.
      if (this.nextProposal <= this._committed) this.nextProposal = this._committed + 1n;
      return;
    }
    if (reason !== this.recoveryReason) {
      this.recoveryReason = reason;
      this.out.push({
        kind: "amnesia",
        reason,
        height: t?.height ?? 0n,
        view: t?.view ?? 0n,
      });
    }
  }
}
