// Epoch handoff (DESIGN §6, issue 11): one `Replica` per epoch, switched at the boundary.
//
// The contract (the node side codes against this; docs/CONSENSUS.md "Epoch handoff"):
// - Epoch e covers the heights h with floor(h / epochLength) == e. Its last height B(e) is a
//   checkpoint (besides the multiples of checkpointInterval; epochLength is a multiple of it, so
//   B(e) + 1 is one too). The instance of e never orders (pre-prepares, prepares, commits, fetches)
//   a height above B(e): its window is capped there and such messages are ignored (FUTURE_EPOCH).
// - When B(e) is committed locally and `cfg.sets.get(e + 1)` is known, the replica switches: the
//   set of e + 1 starts at view 0 at height B(e) + 1 (the old set's commit certificate for B(e) is
//   final; the old set's stable checkpoint certificate for B(e) is its proof, carried in
//   `epochChanged.proof` or in the `stableCheckpoint` that follows when it forms later). If the set
//   of e + 1 is not known yet, the replica waits (the old instance stays idle, no view timer) until
//   the driver steps `{ kind: "setsChanged" }`.
// - Every message is checked against its own epoch's set (full sets, never diffs) and routed by
//   its envelope's epoch: the current instance, the retiring one (e − 1, kept for one more epoch:
//   it finishes the checkpoint of B(e − 1), answers laggards' status and bodies), or a bounded
//   buffer for the next epoch (replayed at the switch). State transfer (BlockRequest /
//   BlockResponse) crosses epochs: requests from any known set are served, and each commit
//   certificate is checked against the set of its own epoch, which must be the epoch of its height.
// - Identity is the consensus public key; the index differs per epoch. A replica not in the
//   current set follows (status "following"): it never votes and takes committed blocks from the
//   driver (`followBlocks`), verified against the right epoch's set.
// - `epochChanged{epoch, set, self, boundary, proof}` tells the driver to update the transport's
//   membership and the status/metrics. `send.epoch` / `serveBlocks.epoch` name the set whose
//   index `to` is.
// - Signing state is per (epoch, view, height): each instance gets only its own epoch's records
//   (and its own epoch's view), so a restart at a boundary resumes exactly.
import { create } from "@bufbuild/protobuf";
import {
  BlockResponseSchema,
  type CheckpointCertificate,
  type CommittedBlock,
  CommittedBlockSchema,
  EnvelopeSchema,
  PeerMessageSchema,
  StatusReportSchema,
} from "../../gen/parabft/v1/consensus_pb.js";
import { nextChainHash } from "../../types/block.js";
import type { Hash } from "../../types/hash.js";
import { checkCommittedBlock, checkEnvelope, type EnvelopeContext, sealMessage } from "../envelope.js";
import { epochFloor, epochOfHeight, lastHeightOfEpoch } from "../epochs.js";
import type { ValidatorSet } from "../valset/index.js";
import type { ReplicaSnapshot } from "./base.js";
import type { PacerReading } from "./pace.js";
import { Replica } from "./replica.js";
import type {
  Action,
  CheckedMessage,
  Event,
  Height,
  IgnoreReason,
  PersistedState,
  ReplicaConfig,
  StepResult,
  ValidatorIndex,
  Verdict,
  View,
  VoteQuery,
} from "./types.js";

const ign = (reason: IgnoreReason): Verdict => ({ kind: "ignore", reason });
const ACCEPT: Verdict = { kind: "accept" };
/** Messages of the next epoch kept until the switch (bounded). */
export const FUTURE_EPOCH_BUFFER = 512;

/** The part of a replica the node and the simulator use; `Replica` and `EpochReplica` both have it. */
export interface ConsensusCore {
  handle(event: Event): StepResult;
  readonly set: ValidatorSet;
  readonly view: View;
  readonly primary: ValidatorIndex;
  readonly committedHeight: Height;
  readonly executedHeight: Height;
  readonly stableHeight: Height;
  readonly stableCheckpoint: CheckpointCertificate | undefined;
  readonly status: string;
  readonly epoch: bigint;
  /**
   * Whether a PREPARE/COMMIT of `epoch` from `sender` could matter (asked before its signature is
   * verified; false = ignore it unverified as NOT_NEEDED). Pure; Replica.voteNeeded says when.
   */
  voteNeeded?(q: VoteQuery): boolean;
}

/** Only this epoch's records and view, so an instance never sees another epoch's signing state. */
export function persistedForEpoch(p: PersistedState, epoch: bigint): PersistedState {
  const pe = p.epoch ?? 0n;
  const mine = <T extends { epoch: bigint }>(rs: T[]) => rs.filter((r) => r.epoch === epoch);
  return {
    ...(epoch > 0n ? { epoch } : {}),
    view: pe === epoch ? p.view : 0n,
    viewChangeSent: pe === epoch ? p.viewChangeSent : 0n,
    stableHeight: p.stableHeight,
    ...(p.stableCert !== undefined && p.stableCert.epoch === epoch ? { stableCert: p.stableCert } : {}),
    prePrepares: mine(p.prePrepares),
    prepares: mine(p.prepares),
    commits: mine(p.commits),
    checkpoints: mine(p.checkpoints),
    bodies: p.bodies,
  };
}

/** A delivered block as it travels in catch-up and to followers (block + its commit certificate). */
export function committedBlockOf(d: Extract<Action, { kind: "deliver" }>): CommittedBlock {
  return create(CommittedBlockSchema, {
    height: d.height,
    block: d.block ?? undefined,
    certificate: d.certificate,
  });
}

/** Verified committed blocks handed to an instance as a state-transfer response (no sender). */
function blockResponseOf(epoch: bigint, blocks: CommittedBlock[]): CheckedMessage {
  return {
    envelope: create(EnvelopeSchema),
    bytes: new Uint8Array(),
    epoch,
    sender: -1,
    message: create(PeerMessageSchema, {
      kind: { case: "blockResponse", value: create(BlockResponseSchema, { blocks }) },
    }),
  };
}

export class EpochReplica implements ConsensusCore {
  private readonly cfg: ReplicaConfig;
  private readonly length: number;
  private readonly early: bigint;
  private readonly key: Uint8Array;
  private readonly ctx: EnvelopeContext;
  private cur: Replica | null = null;
  private curEpoch: bigint;
  /** The instance of curEpoch − 1, kept for one epoch after the switch (never proposes, no timers). */
  private prev: Replica | null = null;
  private _committed: Height;
  private _chainHash: Hash;
  private _executed: Height;
  private readonly future: { msg: CheckedMessage; nowMs: bigint | undefined }[] = [];
  /** Blocks above the current epoch from state transfer, handed to the next instance. */
  private readonly held = new Map<Height, CommittedBlock>();
  private pendingWork = 0;
  private amnesiac: boolean;
  private timerSeq = 0;
  private timer: { outer: number; inner: number } | null = null;
  private out: Action[] = [];
  private proof: CheckpointCertificate | undefined;
  /** The highest epoch a checked-in peer's envelope named (a later one than ours: we lag behind). */
  private seenEpoch = 0n;
  lastVerdict: Verdict | null = null;
  /** Actions produced while starting (e.g. an epochChanged when restarted at a boundary): the driver performs them first. */
  readonly startActions: Action[] = [];

  constructor(cfg: ReplicaConfig) {
    if (cfg.epochLength === undefined) throw new RangeError("EpochReplica needs epochLength");
    this.cfg = cfg;
    this.length = cfg.epochLength;
    this.early = cfg.testOnlyFaults?.switchEpochEarly ? 1n : 0n;
    const key = cfg.publicKey ?? cfg.sets.get(cfg.epoch)?.members[cfg.self]?.publicKey;
    if (key === undefined) throw new RangeError("EpochReplica needs publicKey or a member index");
    this.key = key;
    this.ctx = {
      chainId: cfg.chainId,
      sets: cfg.sets,
      verifier: cfg.verifier,
      maxMessageBytes: cfg.maxMessageBytes,
      currentEpoch: cfg.epoch,
      epochLength: cfg.epochLength,
    };
    const start = cfg.start;
    this._committed = start?.committedHeight ?? 0n;
    this._chainHash = start?.chainHash ?? new Uint8Array(32);
    this._executed = start?.executedHeight ?? 0n;
    this.amnesiac = cfg.persisted === null;
    // The epoch of the next height to commit; at a boundary whose next set is unknown, the old one.
    let e = this.epochOf(this._committed + 1n);
    if (cfg.sets.get(e) === undefined && e > 0n) e -= 1n;
    this.curEpoch = e;
    this.cur = this.makeInstance(e);
    this.out = [];
    this.maybeSwitch();
    this.startActions.push(...this.out);
    this.out = [];
  }

  // -------------------------------------------------------------------------------------------
  // Read-only view (the current epoch's instance)

  get epoch(): bigint {
    return this.curEpoch;
  }

  get set(): ValidatorSet {
    return this.cur?.set ?? this.cfg.sets.get(this.curEpoch)!;
  }

  /** This replica's index in the current set, or null while it follows. */
  get selfIndex(): ValidatorIndex | null {
    return this.cur?.selfIndex ?? null;
  }

  get view(): View {
    return this.cur?.view ?? 0n;
  }

  /** The current epoch's request timer and pace (node metrics), undefined while following. */
  get pacer(): PacerReading | undefined {
    return this.cur?.pacer;
  }

  get viewActive(): boolean {
    return this.cur?.viewActive ?? true;
  }

  get primary(): ValidatorIndex {
    return this.cur?.primary ?? this.set.primary(0n);
  }

  get isPrimary(): boolean {
    return this.cur?.isPrimary ?? false;
  }

  get committedHeight(): Height {
    return this._committed;
  }

  get executedHeight(): Height {
    return this._executed;
  }

  get stableHeight(): Height {
    return this.cur?.stableHeight ?? this.prev?.stableHeight ?? 0n;
  }

  get stableCheckpoint(): CheckpointCertificate | undefined {
    return this.cur?.stableCheckpoint ?? this.proof;
  }

  /** The old set's stable checkpoint certificate for the last boundary, once known. */
  get boundaryProof(): CheckpointCertificate | undefined {
    return this.proof;
  }

  get chainHash(): Hash {
    return this._chainHash;
  }

  /**
   * A peer's envelope named an epoch above ours: this replica lags (e.g. restarted after the
   * chain moved on by several epochs, whose sets it cannot know before it executes up to them).
   * Its peers' votes and statuses are of epochs it cannot check, so the node fetches committed
   * blocks for it (`followBlocks`) as it does for a follower, until it reaches their epoch.
   */
  get lagging(): boolean {
    return this.seenEpoch > this.curEpoch;
  }

  get status(): string {
    if (this.cur === null) return "following";
    return this.cur.status;
  }

  isDiverged(): boolean {
    return this.cur?.isDiverged() ?? false;
  }

  snapshot(): ReplicaSnapshot {
    if (this.cur !== null) return this.cur.snapshot();
    return {
      view: 0n,
      viewActive: true,
      primary: this.primary,
      committedHeight: this._committed,
      executedHeight: this._executed,
      stableHeight: this.stableHeight,
      status: "syncing",
      failedViews: 0,
      chainHash: this._chainHash,
    };
  }

  step(event: Event): Action[] {
    return this.handle(event).actions;
  }

  // -------------------------------------------------------------------------------------------

  /** The current instance decides for its own epoch; a vote of any other epoch is verified. */
  voteNeeded(q: VoteQuery): boolean {
    if (this.cur === null || q.epoch !== this.curEpoch) return true;
    return this.cur.voteNeeded(q);
  }

  handle(event: Event): StepResult {
    this.out = [];
    let verdict: Verdict | null = null;
    let sender: ValidatorIndex | null = null;
    switch (event.kind) {
      case "message": {
        this.ctx.currentEpoch = this.curEpoch;
        const r = checkEnvelope(
          event.bytes,
          this.ctx,
          undefined,
          this.cfg.skipUnneededVotes ? { voteNeeded: (q) => this.voteNeeded(q) } : undefined,
        );
        sender = r.msg?.sender ?? r.sender ?? null;
        if (r.msg === undefined && r.verdict.kind === "ignore" && r.verdict.reason === "FUTURE_EPOCH")
          this.noteEpoch(r.epoch);
        verdict = r.msg === undefined ? r.verdict : this.route(r.msg, event.nowMs);
        break;
      }
      case "checked":
        sender = event.msg.sender;
        verdict = this.route(event.msg, event.nowMs);
        break;
      case "timer":
        if (this.cur !== null && this.timer !== null && this.timer.outer === event.token) {
          this.run(this.cur, { kind: "timer", timer: event.timer, token: this.timer.inner }, true);
        }
        break;
      case "executed":
        if (event.height > this._executed) this._executed = event.height;
        if (this.prev !== null) this.run(this.prev, event, false);
        if (this.cur !== null) this.run(this.cur, event, true);
        break;
      case "pendingWork":
        this.pendingWork = event.count;
        if (this.cur !== null) this.run(this.cur, event, true);
        break;
      case "proposal":
      case "body":
        if (this.cur !== null) this.run(this.cur, event, true);
        break;
      case "tick":
        if (this.prev !== null) this.run(this.prev, event, false);
        if (this.cur !== null) this.run(this.cur, event, true);
        break;
      case "blocksForPeer":
        this.serve(event.to, event.epoch, event.blocks);
        break;
      case "setsChanged":
        break;
      case "followBlocks":
        this.follow(event.blocks);
        break;
    }
    this.maybeSwitch();
    if (this.amnesiac && this.cur !== null && this.cur.status !== "recovering") this.amnesiac = false;
    this.lastVerdict = verdict;
    const actions = this.out;
    this.out = [];
    return { actions, verdict, sender };
  }

  private epochOf(h: Height): bigint {
    // With the test-only early switch, each epoch's sets take over one height early.
    return epochOfHeight(h + this.early, this.length);
  }

  private lastOf(e: bigint): Height {
    return lastHeightOfEpoch(e, this.length) - this.early;
  }

  private makeInstance(e: bigint): Replica | null {
    const set = this.cfg.sets.get(e);
    const idx = set?.indexOf(this.key);
    if (set === undefined || idx === undefined) return null;
    const floor = e === 0n ? 0n : epochFloor(e, this.length) - this.early;
    const stored = this.cfg.start?.stableHeight ?? 0n;
    let stable = stored > floor ? stored : floor;
    if (stable > this._committed) stable = this._committed;
    const p = this.cfg.persisted;
    const inst = new Replica({
      ...this.cfg,
      epoch: e,
      self: idx,
      start: {
        committedHeight: this._committed,
        chainHash: this._chainHash,
        executedHeight: this._executed,
        stableHeight: stable,
      },
      persisted: this.amnesiac ? null : p === undefined || p === null ? undefined : persistedForEpoch(p, e),
    });
    this.timer = null;
    if (this.pendingWork > 0) this.run(inst, { kind: "pendingWork", count: this.pendingWork }, true);
    return inst;
  }

  /** Hands one event to an instance; a retiring one never proposes nor arms timers. */
  private run(inst: Replica, event: Event, current: boolean): Verdict | null {
    const res = inst.handle(event);
    for (const a of res.actions) {
      switch (a.kind) {
        case "setTimer":
          if (!current) continue;
          this.timerSeq++;
          this.timer = { outer: this.timerSeq, inner: a.token };
          this.out.push({ ...a, token: this.timerSeq });
          continue;
        case "cancelTimer":
          if (!current) continue;
          this.timer = null;
          break;
        case "requestProposal":
          if (!current) continue;
          break;
        case "deliver":
          if (a.height === this._committed + 1n) {
            this._committed = a.height;
            this._chainHash = a.chainHash;
          }
          break;
        case "stableCheckpoint":
          if (!current && this.prev !== null && a.height === this.lastOf(this.prev.epoch))
            this.proof = this.prev.stableCheckpoint;
          break;
        default:
          break;
      }
      this.out.push(a);
    }
    return res.verdict;
  }

  /**
   * A peer's envelope named epoch `e`. The driver calls this for envelopes of an epoch whose set
   * is not known here yet (never handed to the core): the surest sign that this replica lags.
   */
  noteEpoch(e: bigint | undefined): void {
    if (e !== undefined && e > this.seenEpoch) this.seenEpoch = e;
  }

  private route(msg: CheckedMessage, nowMs: bigint | undefined): Verdict {
    const m = msg.message.kind;
    const e = msg.epoch;
    this.noteEpoch(e);
    switch (m.case) {
      case "blockRequest": {
        // Served to any member of a known set: a laggard may still be in an older epoch.
        const lo = m.value.fromHeight;
        if (lo === 0n || lo > this._committed) return ign("NOT_HANDLED");
        let top = m.value.toHeight < this._committed ? m.value.toHeight : this._committed;
        const cap = lo + BigInt(this.cfg.params.window) - 1n;
        if (top > cap) top = cap;
        if (this.cur === null && this.prev === null) return ign("NOT_HANDLED");
        this.out.push({ kind: "serveBlocks", to: msg.sender, from: lo, toHeight: top, epoch: e });
        return ACCEPT;
      }
      case "blockResponse": {
        // Certificates were checked against their own epoch's set; each must be of its height's epoch.
        const limit = this._committed + 4n * BigInt(this.cfg.params.window);
        for (const cb of m.value.blocks) {
          if (cb.height <= this._committed || cb.height > limit) continue;
          if (cb.certificate?.epoch !== this.epochOf(cb.height)) continue;
          if (cb.height > this.lastOf(this.curEpoch)) this.held.set(cb.height, cb);
        }
        if (this.cur === null) {
          this.follow(m.value.blocks);
          return ACCEPT;
        }
        return this.run(this.cur, { kind: "checked", msg, nowMs }, true) ?? ACCEPT;
      }
      case "status": {
        if (e === this.curEpoch && this.cur !== null)
          return this.run(this.cur, { kind: "checked", msg, nowMs }, true)!;
        if (this.prev !== null && e === this.prev.epoch)
          this.run(this.prev, { kind: "checked", msg, nowMs }, false);
        // A peer already in a later epoch that is also in our set: its progress drives our
        // catch-up (statuses of older epochs only reach the retiring instance).
        const key = this.cfg.sets.get(e)?.members[msg.sender]?.publicKey;
        const idx = key === undefined ? undefined : this.cur?.set.indexOf(key);
        if (this.cur !== null && idx !== undefined && idx !== this.cur.selfIndex && e > this.curEpoch) {
          const status = create(StatusReportSchema, {
            ...m.value,
            view: this.cur.view,
            missingNewView: false,
          });
          const translated: CheckedMessage = {
            ...msg,
            sender: idx,
            message: create(PeerMessageSchema, { kind: { case: "status", value: status } }),
          };
          this.run(this.cur, { kind: "checked", msg: translated, nowMs }, true);
        }
        return ACCEPT;
      }
      case "txBatch":
        return ign("NOT_HANDLED");
      default:
        break;
    }
    if (this.cur !== null && e === this.curEpoch)
      return this.run(this.cur, { kind: "checked", msg, nowMs }, true)!;
    if (this.prev !== null && e === this.prev.epoch)
      return this.run(this.prev, { kind: "checked", msg, nowMs }, false)!;
    if (e > this.curEpoch) {
      this.future.push({ msg, nowMs });
      if (this.future.length > FUTURE_EPOCH_BUFFER)
        this.future.splice(0, this.future.length - FUTURE_EPOCH_BUFFER);
      return ign("FUTURE_EPOCH");
    }
    return ign(e < this.curEpoch ? "STALE_EPOCH" : "NOT_HANDLED");
  }

  /** Answers a serveBlocks: sealed by the current instance (or the retiring one for a follower). */
  private serve(to: ValidatorIndex, epoch: bigint | undefined, blocks: CommittedBlock[]): void {
    if (blocks.length === 0) return;
    const inst = this.cur ?? this.prev;
    if (inst === null) return;
    const msg = sealMessage(
      this.cfg.chainId,
      inst.epoch,
      inst.selfIndex,
      this.cfg.signer,
      create(PeerMessageSchema, {
        kind: { case: "blockResponse", value: create(BlockResponseSchema, { blocks }) },
      }),
    );
    this.out.push({ kind: "send", to, msg, ...(epoch !== undefined ? { epoch } : {}) });
  }

  /** A follower delivers verified committed blocks in order (each certificate by its height's epoch's set). */
  private follow(blocks: readonly CommittedBlock[]): void {
    if (this.cur !== null) {
      // A member that lags: the blocks of its current epoch go to its instance as a verified
      // state-transfer response (delivered in order there); later ones wait for the switch.
      const last = this.lastOf(this.curEpoch);
      const mine: CommittedBlock[] = [];
      for (const cb of blocks) {
        if (cb.height <= this._committed || cb.certificate?.epoch !== this.epochOf(cb.height)) continue;
        if (checkCommittedBlock(cb, this.ctx) !== null) continue;
        if (cb.height > last) this.held.set(cb.height, cb);
        else mine.push(cb);
      }
      if (mine.length > 0)
        this.run(this.cur, { kind: "checked", msg: blockResponseOf(this.curEpoch, mine) }, true);
      return;
    }
    const byHeight = new Map<Height, CommittedBlock>();
    for (const cb of blocks) byHeight.set(cb.height, cb);
    for (;;) {
      const h = this._committed + 1n;
      const cb = byHeight.get(h) ?? this.held.get(h);
      if (cb === undefined) return;
      this.held.delete(h);
      const cert = cb.certificate;
      if (cert === undefined || cert.epoch !== this.epochOf(h) || checkCommittedBlock(cb, this.ctx) !== null)
        return;
      this._committed = h;
      this._chainHash = nextChainHash(this._chainHash, cert.blockDigest);
      this.out.push({
        kind: "deliver",
        height: h,
        epoch: cert.epoch,
        block: cb.block ?? null,
        digest: cert.blockDigest,
        certificate: cert,
        chainHash: this._chainHash,
      });
      this.maybeSwitch();
      if (this.cur !== null) {
        this.follow([...byHeight.values()]);
        return;
      }
    }
  }

  /** Moves to the next epoch once its boundary is committed and its set is known. */
  private maybeSwitch(): void {
    for (;;) {
      if (this.cur?.isDiverged()) return;
      const e = this.curEpoch;
      const last = this.lastOf(e);
      if (this._committed < last) return;
      const next = this.cfg.sets.get(e + 1n);
      if (next === undefined) return;
      if (this.cur !== null && this.timer !== null) this.out.push({ kind: "cancelTimer", timer: "view" });
      this.prev = this.cur;
      this.proof = this.prev?.stableCheckpoint?.height === last ? this.prev.stableCheckpoint : undefined;
      this.curEpoch = e + 1n;
      this.cur = null;
      const inst = this.makeInstance(e + 1n);
      this.out.push({
        kind: "epochChanged",
        epoch: e + 1n,
        set: next,
        self: inst?.selfIndex ?? null,
        boundary: last,
        ...(this.proof !== undefined ? { proof: this.proof } : {}),
      });
      this.cur = inst;
      const replay = this.future.splice(0, this.future.length);
      for (const f of replay) {
        if (f.msg.epoch === this.curEpoch && this.cur !== null)
          this.run(this.cur, { kind: "checked", msg: f.msg, nowMs: f.nowMs }, true);
        else if (f.msg.epoch > this.curEpoch) this.future.push(f);
      }
      const held = [...this.held.values()].filter((b) => b.height > this._committed);
      this.held.clear();
      if (held.length > 0) {
        if (this.cur === null) this.follow(held);
        else {
          this.run(this.cur, { kind: "checked", msg: blockResponseOf(this.curEpoch, held) }, true);
        }
      }
    }
  }
}
