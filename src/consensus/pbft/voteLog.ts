// The vote log: proposals, PREPAREs and COMMITs per height, prepared and commit certificates, and the
// commit rule (its safety argument is at maybeCommit and in docs/CONSENSUS.md).
// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.
import { create } from "@bufbuild/protobuf";
import {
  type Commit,
  CommitSchema,
  type PrePrepare,
  PrePrepareSchema,
  type Prepare,
  PreparedCertificateSchema,
  PrepareSchema,
} from "../../gen/parabft/v1/consensus_pb.js";
import {
  type Block,
  type CommitCertificate,
  CommitCertificateSchema,
} from "../../gen/parabft/v1/types_pb.js";
import { blockDigest } from "../../types/block.js";
import { bytesEqual, toHex } from "../../types/bytes.js";
import { prePrepareBlockBytes } from "../../types/fastWire.js";
import type { Hash } from "../../types/hash.js";
import {
  ACCEPTED,
  COMMIT_VIEWS_PER_SENDER,
  cmpBig,
  ign,
  type Proposal,
  rej,
  type Slot,
  sortedSigs,
} from "./base.js";
import { CatchUp } from "./catchUp.js";
import type {
  CheckedMessage,
  Height,
  OutMessage,
  ValidatorIndex,
  Verdict,
  View,
  VoteQuery,
} from "./types.js";

export abstract class VoteLog extends CatchUp {
  /**
   * Whether a PREPARE or COMMIT from `sender` for (view, height, digest) could change anything
   * here; asked by the driver BEFORE the vote's signature is verified (issue 14: 2 of ~8 Ed25519
   * verifies a height are votes that arrive after the quorum they would join). Pure and
   * side-effect free. False (not needed) only when all of these hold:
   * - no test-only fault is on and this replica is not recovering (amnesia observes every vote);
   * - PREPARE: the slot is prepared in `view`, our current view, for `digest`;
   *   COMMIT: the slot is committed (or delivered) for `digest`;
   * - the sender has no vote of that kind in `view` at this height with ANOTHER digest (a
   *   differing vote is equivocation evidence: it is verified and judged as before).
   * A CHECKPOINT (view and digest unused) is not needed at or below the stable checkpoint: the
   * core would only ignore it as BELOW_WATERMARK (no evidence, no divergence check there).
   * A skipped vote is ignored as NOT_NEEDED: never stored, counted, forwarded or kept as evidence.
   */
  protected voteNeededHere({ kind, sender, view, height, digest }: VoteQuery): boolean {
    if (this.cfg.testOnlyFaults !== undefined || this.recovering) return true;
    if (kind === "checkpoint") {
      const onGrid = height % this.interval === 0n || height === this.lastHeight;
      const inEpoch = this.lastHeight === null || height <= this.lastHeight;
      return !(height > 0n && onGrid && inEpoch && height <= this._stable);
    }
    if (!this.active) return true;
    const slot = this.slots.get(height);
    if (slot === undefined) return true;
    if (kind === "prepare") {
      const pc = slot.prepared;
      if (pc === null || pc.view !== view || view !== this._view || !bytesEqual(pc.blockDigest, digest))
        return true;
    } else {
      const c = slot.committed;
      if (c === null || !bytesEqual(c.digest, digest)) return true;
    }
    const seen = (kind === "prepare" ? slot.prepareSeen : slot.commitSeen).get(`${view}:${sender}`);
    return seen !== undefined && seen.hex !== toHex(digest);
  }

  protected onPrePrepare(msg: CheckedMessage, pp: PrePrepare, nowMs: bigint | undefined): Verdict {
    const admitted = this.admitViewed(msg, pp.view, pp.height, nowMs);
    if (admitted !== null) return admitted;
    const slot = this.slot(pp.height);
    const hex = toHex(pp.blockDigest);
    const existing = slot.proposals.get(pp.view);
    if (existing !== undefined) {
      if (existing.hex === hex) return ign("DUPLICATE");
      this.evidence("prePrepare", msg.sender, pp.view, pp.height, existing.bytes, msg.bytes);
      if (!this.cfg.testOnlyFaults?.acceptSecondPrePrepare) return ign("CONFLICT");
      if (slot.faultyExtra.some((p) => p.hex === hex)) return ign("DUPLICATE");
    }
    if (pp.height <= this._committed) return ign("ALREADY_COMMITTED");
    const block = pp.block;
    if (block?.header === undefined) return rej("MALFORMED");
    if (block.header.proposer !== msg.sender) return rej("BAD_BLOCK");
    if (!bytesEqual(block.header.validatorsHash, this.vset.hash)) return rej("BAD_BLOCK");
    if (nowMs !== undefined) {
      const skew = block.header.timestampMs - nowMs;
      const bound = BigInt(this.cfg.params.maxClockSkewMs);
      if (skew > bound || -skew > bound) return ign("TIMESTAMP_SKEW");
    }
    if (this.cfg.validateBlock !== undefined) {
      const v = this.cfg.validateBlock(block);
      if (v.kind !== "accept") return v;
    }
    const accepted: Proposal = { digest: pp.blockDigest, hex, bytes: msg.bytes, fromNewView: false };
    if (existing === undefined) {
      slot.proposals.set(pp.view, accepted);
      this.noteProposalProgress(pp.height);
    } else slot.faultyExtra.push({ ...accepted, view: pp.view });
    this.storeBody(pp.height, hex, block, prePrepareBlockBytes(msg.envelope.payload));
    this.sendPrepare(slot, pp.view, pp.blockDigest);
    this.tryPrepared(slot);
    return ACCEPTED;
  }

  protected onPrepare(msg: CheckedMessage, p: Prepare, nowMs: bigint | undefined): Verdict {
    const admitted = this.admitViewed(msg, p.view, p.height, nowMs);
    if (admitted !== null) return admitted;
    const slot = this.slot(p.height);
    const hex = toHex(p.blockDigest);
    const seenKey = `${p.view}:${msg.sender}`;
    const seen = slot.prepareSeen.get(seenKey);
    if (seen !== undefined) {
      if (seen.hex === hex) return ign("DUPLICATE");
      this.evidence("prepare", msg.sender, p.view, p.height, seen.bytes, msg.bytes);
      // The broken rule also counts votes for every proposal of a view, not just the first.
      if (!this.cfg.testOnlyFaults?.acceptSecondPrePrepare) return ign("CONFLICT");
      if (slot.prepares.get(`${p.view}:${hex}`)?.has(msg.sender)) return ign("DUPLICATE");
    } else slot.prepareSeen.set(seenKey, { hex, bytes: msg.bytes });
    this.addPrepare(slot, p.view, hex, msg.sender, p.voteSignature);
    if (p.height > this._committed) this.tryPrepared(slot);
    return ACCEPTED;
  }

  protected onCommit(msg: CheckedMessage, c: Commit, nowMs: bigint | undefined): Verdict {
    // A COMMIT signs its view (the envelope check verified it over the view), and a certificate is
    // a quorum of COMMITs of one view. Any view's quorum proves the block, so COMMITs of views
    // other than ours are counted too (per view); only the window applies.
    this.observe(msg.sender, c.view, null);
    const wm = this.windowCheck(msg, c.height, nowMs);
    if (wm !== null) return wm;
    const slot = this.slot(c.height);
    const hex = toHex(c.blockDigest);
    const seenKey = `${c.view}:${msg.sender}`;
    const seen = slot.commitSeen.get(seenKey);
    if (seen !== undefined) {
      if (seen.hex === hex) return ign("DUPLICATE");
      this.evidence("commit", msg.sender, c.view, c.height, seen.bytes, msg.bytes);
      if (!this.cfg.testOnlyFaults?.acceptSecondPrePrepare) return ign("CONFLICT");
      if (slot.commits.get(`${c.view}:${hex}`)?.sigs.has(msg.sender)) return ign("DUPLICATE");
    } else {
      if (!this.admitCommitView(slot, msg.sender, c.view)) return ign("STALE_VIEW");
      slot.commitSeen.set(seenKey, { hex, bytes: msg.bytes });
    }
    if (c.height <= this._committed) return ign("ALREADY_COMMITTED");
    this.addCommit(slot, c.view, c.blockDigest, hex, msg.sender, c.voteSignature);
    this.tryCommit(slot);
    return ACCEPTED;
  }

  /**
   * Bounds memory: per sender and height, COMMITs of at most COMMIT_VIEWS_PER_SENDER views are
   * kept (the highest ones); a COMMIT for a lower view than all of those is dropped.
   */
  protected admitCommitView(slot: Slot, sender: ValidatorIndex, view: View): boolean {
    const views: View[] = [];
    const suffix = `:${sender}`;
    for (const k of slot.commitSeen.keys())
      if (k.endsWith(suffix)) views.push(BigInt(k.slice(0, -suffix.length)));
    if (views.length < COMMIT_VIEWS_PER_SENDER) return true;
    views.sort(cmpBig);
    const lowest = views[0]!;
    if (view < lowest) return false;
    const old = slot.commitSeen.get(`${lowest}${suffix}`)!;
    slot.commitSeen.delete(`${lowest}${suffix}`);
    slot.commits.get(`${lowest}:${old.hex}`)?.sigs.delete(sender);
    return true;
  }

  protected onProposal(height: Height, block: Block): void {
    if (this.requested !== height) return;
    this.requested = null;
    if (!this.canPropose() || height !== this.nextProposal) return;
    const header = block.header;
    if (header === undefined || header.height !== height || header.epoch !== this.epochNo) return;
    if (header.chainId !== this.cfg.chainId || header.proposer !== this.self) return;
    const digest = blockDigest(header);
    const hex = toHex(digest);
    const slot = this.slot(height);
    const v = this._view;
    if (slot.proposals.has(v) || !this.safety.prePrepare(v, height, hex)) {
      this.nextProposal = height + 1n;
      return;
    }
    this.storeBody(height, hex, block);
    const body = this.bodyForRecord(hex);
    this.persist({
      kind: "prePrepare",
      epoch: this.epochNo,
      view: v,
      height,
      digest,
      ...(body ? { body } : {}),
    });
    const msg = this.seal({
      case: "prePrepare",
      value: create(PrePrepareSchema, { view: v, height, blockDigest: digest, block }),
    });
    slot.proposals.set(v, { digest, hex, bytes: msg.bytes, fromNewView: false });
    this.noteProposalProgress(height);
    const prep = this.signPrepare(slot, v, digest);
    this.broadcast(msg);
    if (prep !== null) this.broadcast(prep);
    this.nextProposal = height + 1n;
    this.tryPrepared(slot);
  }

  /**
   * The current view's first proposal for the height right above our commit is progress for the
   * request timer (a loaded primary's next height may take most of a timeout to arrive, and the
   * phases after it deserve one of their own). Only that height, once per view: the height moves
   * only by a commit, so a faulty primary buys itself at most one extra timeout per view.
   */
  protected noteProposalProgress(height: Height): void {
    if (height === this._committed + 1n) this.progress = true;
  }

  protected canPropose(): boolean {
    if (this.recovering || !this.active || !this.isPrimary) return false;
    if (this._committed < this._stable) return false;
    if (this.nextProposal <= this._committed) this.nextProposal = this._committed + 1n;
    if (this.nextProposal > this.highWatermark) return false;
    return this._committed - this._executed < BigInt(this.cfg.params.maxExecLag);
  }

  protected maybePropose(): void {
    if (this.requested !== null || this.pendingWork <= 0) return;
    if (!this.canPropose()) return;
    while (this.slots.get(this.nextProposal)?.proposals.has(this._view)) {
      this.nextProposal++;
      if (!this.canPropose()) return;
    }
    this.requested = this.nextProposal;
    this.out.push({ kind: "requestProposal", height: this.nextProposal, view: this._view });
  }

  /**
   * Persists and signs a PREPARE unless that would conflict with one already signed. Only for a
   * block whose body this replica holds: the body goes into the same durable record, so no
   * certificate can form for a digest that no replica can produce after a whole-cluster crash.
   * Without the body the PREPARE waits for it (onBody).
   */
  protected signPrepare(slot: Slot, view: View, digest: Hash): OutMessage | null {
    if (this.safety.silent) return null;
    const hex = toHex(digest);
    const prev = this.safety.signedIn("prepare", slot.height, view);
    if (prev !== undefined && prev !== hex && !this.cfg.testOnlyFaults?.acceptSecondPrePrepare) return null;
    if (!this.holdsBody(slot.height, digest, hex)) {
      this.requestBody(slot.height, digest, true);
      return null;
    }
    const signed = this.safety.prepare(view, slot.height, digest);
    if (signed === null) return null;
    const { signature } = signed;
    if (signed.fresh) {
      const body = this.bodyForRecord(hex);
      this.persist({
        kind: "prepare",
        epoch: this.epochNo,
        view,
        height: slot.height,
        digest,
        ...(body ? { body } : {}),
      });
    }
    this.addPrepare(slot, view, hex, this.self, signature);
    return this.seal({
      case: "prepare",
      value: create(PrepareSchema, {
        view,
        height: slot.height,
        blockDigest: digest,
        voteSignature: signature,
      }),
    });
  }

  protected sendPrepare(slot: Slot, view: View, digest: Hash): void {
    const msg = this.signPrepare(slot, view, digest);
    if (msg !== null) this.broadcast(msg);
  }

  /** prepared(v, h, d): accepted proposal in the current view plus a quorum of matching PREPAREs. */
  protected tryPrepared(slot: Slot): void {
    if (!this.active || slot.height <= this._committed) return;
    const v = this._view;
    const main = slot.proposals.get(v);
    if (main === undefined) return;
    // Only the test-only acceptSecondPrePrepare fault ever has more than one candidate.
    const candidates =
      slot.faultyExtra.length === 0 ? [main] : [main, ...slot.faultyExtra.filter((p) => p.view === v)];
    for (const prop of candidates) {
      // Prepared requires holding the body (DESIGN §2 "Durable bodies").
      if (!this.holdsBody(slot.height, prop.digest, prop.hex)) continue;
      const sigs = slot.prepares.get(`${v}:${prop.hex}`);
      if (sigs === undefined || !this.quorumReached(sigs.keys())) continue;
      if (slot.prepared === null || slot.prepared.view < v || toHex(slot.prepared.blockDigest) !== prop.hex) {
        // A quorum prepared in this view: progress that keeps the request timer from firing.
        this.progress = true;
        slot.prepared = create(PreparedCertificateSchema, {
          view: v,
          height: slot.height,
          blockDigest: prop.digest,
          prepares: sortedSigs(sigs),
        });
      }
      this.maybeCommit(slot, v, prop);
    }
  }

  /**
   * THE COMMIT RULE (DESIGN §2, docs/CONSENSUS.md). A replica signs COMMIT(v, h, X) only once it
   * is prepared for X in view v (the proposal of v plus a quorum of PREPAREs of v, and the body),
   * at most once per view, and persists that prepared certificate before the COMMIT leaves.
   * There is no commit lock: in a later view it may COMMIT another digest.
   *
   * Why that is safe: a commit certificate is a quorum of COMMITs of ONE view v (the view is
   * signed). Each honest signer prepared X in v and persisted it, so more than 1/3 of power (at
   * least one honest replica in every quorum) holds "X prepared in v" and puts it into each
   * VIEW-CHANGE for a later view. A quorum of PREPAREs in v for X means no other digest Y can be
   * prepared in v (quorums intersect in an honest replica that PREPAREs once per view). So every
   * NEW-VIEW quorum for v' > v contains "X prepared in v" and nothing prepared in a view ≥ v for
   * another digest (by induction over views), so it re-proposes X at h; honest replicas only
   * prepare the NEW-VIEW's proposal, and no certificate for Y ≠ X can form in any view ≥ v.
   * COMMITs of different views must never be counted together: X's COMMITs of v and X's COMMITs
   * of v' are each backed by their own prepared quorum, but stitched together they are backed by
   * none (the test-only `stitchCertificates` fault shows the simulator catching that).
   */
  protected maybeCommit(slot: Slot, v: View, prop: Proposal): void {
    const faults = this.cfg.testOnlyFaults;
    const pc = slot.prepared;
    if (pc === null || pc.view !== v || toHex(pc.blockDigest) !== prop.hex) return;
    const signature = this.safety.commit(v, slot.height, prop.digest, { prepared: pc });
    if (signature === null) return;
    if (!faults?.skipPreparedCertPersist) {
      this.persist({
        kind: "commit",
        epoch: this.epochNo,
        view: v,
        height: slot.height,
        digest: prop.digest,
        prepared: pc,
      });
    }
    this.broadcastCommit(slot, v, prop.digest, prop.hex, signature);
    this.tryCommit(slot);
  }

  protected broadcastCommit(slot: Slot, v: View, digest: Hash, hex: string, signature: Uint8Array): void {
    this.broadcast(
      this.seal({
        case: "commit",
        value: create(CommitSchema, {
          view: v,
          height: slot.height,
          blockDigest: digest,
          voteSignature: signature,
        }),
      }),
    );
    const key = `${v}:${this.self}`;
    if (!slot.commitSeen.has(key)) slot.commitSeen.set(key, { hex, bytes: new Uint8Array(0) });
    this.addCommit(slot, v, digest, hex, this.self, signature);
  }

  /**
   * A NEW-VIEW of view w re-proposes a block this replica already delivered: COMMIT it again in w,
   * so peers that lack a certificate can form one of view w. Safe without being prepared in w: the
   * digest already has a certificate, so it is the only one any certificate at this height can
   * carry. Persisted like any COMMIT, so a restart never signs another digest in w.
   */
  protected resendCommit(slot: Slot, w: View): void {
    const c = slot.committed;
    if (c === null) return;
    const signature = this.safety.commit(w, slot.height, c.digest, { certified: true });
    if (signature === null) return;
    const pc =
      slot.prepared !== null && toHex(slot.prepared.blockDigest) === c.hex ? slot.prepared : undefined;
    if (!this.cfg.testOnlyFaults?.skipPreparedCertPersist) {
      this.persist({
        kind: "commit",
        epoch: this.epochNo,
        view: w,
        height: slot.height,
        digest: c.digest,
        ...(pc ? { prepared: pc } : {}),
      });
    }
    this.broadcastCommit(slot, w, c.digest, c.hex, signature);
  }

  /** A quorum of COMMITs of one (view, digest) is the commit certificate; it carries its view. */
  protected tryCommit(slot: Slot): void {
    if (slot.committed !== null || slot.height <= this._committed) return;
    if (this.cfg.testOnlyFaults?.stitchCertificates) {
      this.tryCommitStitched(slot);
      return;
    }
    for (const e of slot.commits.values()) {
      if (!this.quorumReached(e.sigs.keys())) continue;
      this.committedBy(
        slot,
        e.digest,
        create(CommitCertificateSchema, {
          epoch: this.epochNo,
          height: slot.height,
          view: e.view,
          blockDigest: e.digest,
          signatures: sortedSigs(e.sigs),
        }),
      );
      return;
    }
  }

  /** Test-only broken rule: one digest's COMMITs of every view counted together. */
  protected tryCommitStitched(slot: Slot): void {
    const byDigest = new Map<string, { digest: Hash; view: View; sigs: Map<ValidatorIndex, Uint8Array> }>();
    for (const e of slot.commits.values()) {
      const hex = toHex(e.digest);
      let d = byDigest.get(hex);
      if (d === undefined) {
        d = { digest: e.digest, view: e.view, sigs: new Map() };
        byDigest.set(hex, d);
      }
      for (const [i, sig] of e.sigs) if (!d.sigs.has(i)) d.sigs.set(i, sig);
    }
    for (const d of byDigest.values()) {
      if (!this.quorumReached(d.sigs.keys())) continue;
      const cert = create(CommitCertificateSchema, {
        epoch: this.epochNo,
        height: slot.height,
        view: d.view,
        blockDigest: d.digest,
        signatures: sortedSigs(d.sigs),
      });
      this.committedBy(slot, d.digest, cert);
      return;
    }
  }

  protected committedBy(slot: Slot, digest: Hash, cert: CommitCertificate): void {
    const hex = toHex(digest);
    slot.committed = { digest, hex, cert };
    if (!this.bodies.has(hex) && !this.isNullDigest(slot.height, digest)) {
      this.requestBody(slot.height, digest, true);
    }
    this.tryDeliver();
  }
}
