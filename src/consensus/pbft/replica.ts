// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  BlockRequestSchema,
  BlockResponseSchema,
  BodyRequestSchema,
  BodyResponseSchema,
  type Checkpoint,
  type CheckpointCertificate,
  CheckpointCertificateSchema,
  CheckpointSchema,
  type Commit,
  CommitSchema,
  EnvelopeSchema,
  type NewView,
  type NewViewProposal,
  NewViewSchema,
  type PeerMessage,
  PeerMessageSchema,
  type PrePrepare,
  PrePrepareSchema,
  type Prepare,
  type PreparedCertificate,
  PreparedCertificateSchema,
  PrepareSchema,
  type StatusReport,
  StatusReportSchema,
  type ViewChange,
  ViewChangeSchema,
} from "../../gen/parabft/v1/consensus_pb.js";
import {
  type Block,
  BlockSchema,
  type CommitCertificate,
  CommitCertificateSchema,
  VoteSignatureSchema,
} from "../../gen/parabft/v1/types_pb.js";
import { blockDigest, nextChainHash, nullBlockDigest } from "../../types/block.js";
import { bytesEqual, fromHex, toHex } from "../../types/bytes.js";
import type { Hash } from "../../types/hash.js";
import { checkpointSignBytes, commitSignBytes, prepareSignBytes } from "../../types/signing.js";
import { checkEnvelope, computeNewViewProposals, type EnvelopeContext, sealMessage } from "../envelope.js";
import type { ValidatorSet } from "../valset/index.js";
import type {
  Action,
  CheckedMessage,
  Event,
  EvidenceRecord,
  Height,
  IgnoreReason,
  OutMessage,
  PersistedState,
  RejectReason,
  ReplicaConfig,
  ReplicaStatus,
  SigningRecord,
  StepResult,
  ValidatorIndex,
  Verdict,
  View,
} from "./types.js";

const ACCEPTED: Verdict = { kind: "accept" };
const ign = (reason: IgnoreReason): Verdict => ({ kind: "ignore", reason });
const rej = (reason: RejectReason): Verdict => ({ kind: "reject", reason });

/** Checkpoint votes kept per sender: enough to see a stable point far above ours, but bounded. */
const CHECKPOINT_VOTES_PER_SENDER = 4;
const DEFAULT_BUFFERED = 256;
const PAST_STABLE_KEPT = 16;
/** COMMIT views kept per sender and height (the highest ones). */
const COMMIT_VIEWS_PER_SENDER = 4;
/** While waiting for a NEW-VIEW, our VIEW-CHANGE is repeated every this many ticks. */
const VIEW_CHANGE_REPEAT_TICKS = 3;

interface Proposal {
  digest: Hash;
  hex: string;
  /** Signed envelope that carried it (PRE-PREPARE or NEW-VIEW), kept for evidence. */
  bytes: Uint8Array;
  fromNewView: boolean;
}

interface Seen {
  hex: string;
  bytes: Uint8Array;
}

interface Slot {
  height: Height;
  /** Accepted proposal per view. */
  proposals: Map<View, Proposal>;
  /** `${view}:${digestHex}` -> sender -> prepare signature. */
  prepares: Map<string, Map<ValidatorIndex, Uint8Array>>;
  /** `${view}:${sender}` -> first PREPARE seen (equivocation evidence). */
  prepareSeen: Map<string, Seen>;
  /** `${view}:${digestHex}` -> sender -> commit signature. COMMITs of two views never add up. */
  commits: Map<string, { view: View; digest: Hash; sigs: Map<ValidatorIndex, Uint8Array> }>;
  /** `${view}:${sender}` -> first COMMIT seen (equivocation evidence is per view). */
  commitSeen: Map<string, Seen>;
  sentPrepare: Map<View, string>;
  sentPrePrepare: Map<View, string>;
  /** View -> digest this replica signed a COMMIT for in that view (at most one per view). */
  sentCommit: Map<View, string>;
  /** Highest-view prepared certificate known for this height. */
  prepared: PreparedCertificate | null;
  committed: { digest: Hash; hex: string; cert: CommitCertificate } | null;
  /** Further proposals accepted for a view; only under testOnlyFaults.acceptSecondPrePrepare. */
  faultyExtra: (Proposal & { view: View })[];
}

interface Fetched {
  block: Block | null;
  digest: Hash;
  cert: CommitCertificate;
}

interface StoredViewChange {
  view: View;
  bytes: Uint8Array;
  vc: ViewChange;
}

interface Buffered {
  msg: CheckedMessage;
  nowMs: bigint | undefined;
}

export interface ReplicaSnapshot {
  view: View;
  viewActive: boolean;
  primary: ValidatorIndex;
  committedHeight: Height;
  executedHeight: Height;
  stableHeight: Height;
  status: ReplicaStatus;
  failedViews: number;
  chainHash: Hash;
}

export class Replica {
  private readonly cfg: ReplicaConfig;
  private readonly envCtx: EnvelopeContext;
  private readonly self: ValidatorIndex;
  private readonly epochNo: bigint;
  private readonly vset: ValidatorSet;
  private readonly windowSize: bigint;
  private readonly interval: bigint;

  private _view: View = 0n;
  private active = true;
  private vcSent: View = 0n;
  private _committed: Height = 0n;
  private _chainHash: Hash;
  private _executed: Height = 0n;
  private _stable: Height = 0n;
  private stableCert: CheckpointCertificate | undefined;
  /** Stable checkpoints above the executed height, kept to compare roots once executed. */
  private readonly pastStable = new Map<Height, CheckpointCertificate>();
  private _status: ReplicaStatus = "validating";
  private recovering = false;

  private readonly slots = new Map<Height, Slot>();
  /** Bodies by digest; `durable` once a signing record carried them (or they were reloaded). */
  private readonly bodies = new Map<string, { height: Height; block: Block; durable: boolean }>();
  private readonly neededBodies = new Map<string, Height>();
  private readonly fetched = new Map<Height, Fetched>();
  private readonly nullDigests = new Map<Height, Hash>();
  /** Digest delivered per height above the stable checkpoint (for the re-proposal alarm). */
  private readonly deliveredDigests = new Map<Height, string>();
  /** chainHash of checkpoint heights at or above the stable one. */
  private readonly chainHashes = new Map<Height, Hash>();
  private readonly ownCheckpoints = new Map<Height, { chainHash: Hash; stateRoot: Hash }>();
  /** height -> `${chainHex}:${rootHex}` -> sender -> signature. */
  private readonly checkpointVotes = new Map<Height, Map<string, Map<ValidatorIndex, Uint8Array>>>();
  private readonly checkpointBySender = new Map<ValidatorIndex, Map<Height, string>>();
  /** Latest VIEW-CHANGE per sender (older ones are useless), which bounds memory. */
  private readonly viewChanges = new Map<ValidatorIndex, StoredViewChange>();
  private newViewBytes: Uint8Array | null = null;
  private readonly newViewSent = new Set<View>();
  /** Evidence already reported: key -> height (pruned at stable checkpoints). */
  private readonly evidenceKeys = new Map<string, Height>();
  private readonly buffer = new Map<ValidatorIndex, Buffered[]>();
  private readonly peerStatus = new Map<
    ValidatorIndex,
    { committed: Height; view: View; stable: Height; executed: Height }
  >();

  private pendingWork = 0;
  private nextProposal: Height = 1n;
  private requested: Height | null = null;

  private timerToken = 0;
  private timerArmed = false;
  private timerForViewChange: View | null = null;
  private failedViews = 0;
  private committedProgress = false;

  private fetchTarget: { to: Height; peer: ValidatorIndex; committedAtRequest: Height } | null = null;
  private committedAtLastTick: Height = 0n;
  private ticks = 0;
  private fetchRotation = 0;

  // Recovery without signing state: observe until a quorum of senders has been heard from.
  private readonly observed = new Map<ValidatorIndex, { view: View; height: Height | null }>();
  /** Silent until committed > height and view > view (see observe). */
  private recoveryTarget: { view: View; height: Height } | null = null;
  private recoveryReason: string | null = null;

  private out: Action[] = [];
  lastVerdict: Verdict | null = null;

  constructor(cfg: ReplicaConfig) {
    this.cfg = cfg;
    this.self = cfg.self;
    this.epochNo = cfg.epoch;
    const set = cfg.sets.get(cfg.epoch);
    if (set === undefined) throw new Error(`no validator set for epoch ${cfg.epoch}`);
    if (!set.has(cfg.self)) throw new Error(`validator ${cfg.self} is not in the set of epoch ${cfg.epoch}`);
    this.vset = set;
    this.windowSize = BigInt(cfg.params.window);
    this.interval = BigInt(cfg.params.checkpointInterval);
    this.envCtx = {
      chainId: cfg.chainId,
      sets: cfg.sets,
      verifier: cfg.verifier,
      maxMessageBytes: cfg.maxMessageBytes,
      currentEpoch: cfg.epoch,
    };
    const start = cfg.start;
    this._chainHash = start?.chainHash ?? new Uint8Array(32);
    this._committed = start?.committedHeight ?? 0n;
    this._executed = start?.executedHeight ?? 0n;
    this._stable = start?.stableHeight ?? 0n;
    if (this._stable > this._committed) this._stable = this._committed;
    this.committedAtLastTick = this._committed;
    if (this._committed % this.interval === 0n) this.chainHashes.set(this._committed, this._chainHash);
    this.nextProposal = this._committed + 1n;
    if (cfg.persisted === null) {
      this.recovering = true;
      this._status = "recovering";
    } else if (cfg.persisted !== undefined) {
      this.restore(cfg.persisted);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Public read-only state

  get set(): ValidatorSet {
    return this.vset;
  }
  get view(): View {
    return this._view;
  }
  /** False while a view change to `view` is in progress (no NEW-VIEW accepted yet). */
  get viewActive(): boolean {
    return this.active;
  }
  get primary(): ValidatorIndex {
    return this.vset.primary(this._view);
  }
  get isPrimary(): boolean {
    return this.primary === this.self;
  }
  get committedHeight(): Height {
    return this._committed;
  }
  get executedHeight(): Height {
    return this._executed;
  }
  get stableHeight(): Height {
    return this._stable;
  }
  get lowWatermark(): Height {
    return this._stable;
  }
  get highWatermark(): Height {
    return this._stable + this.windowSize;
  }
  get chainHash(): Hash {
    return this._chainHash;
  }
  get status(): ReplicaStatus {
    if (this._status === "diverged" || this.recovering) return this._status;
    return this._committed < this._stable ? "syncing" : "validating";
  }
  get stableCheckpoint(): CheckpointCertificate | undefined {
    return this.stableCert;
  }

  isDiverged(): boolean {
    return this._status === "diverged";
  }

  snapshot(): ReplicaSnapshot {
    return {
      view: this._view,
      viewActive: this.active,
      primary: this.primary,
      committedHeight: this._committed,
      executedHeight: this._executed,
      stableHeight: this._stable,
      status: this.status,
      failedViews: this.failedViews,
      chainHash: this._chainHash,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Entry points

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
    switch (event.kind) {
      case "message": {
        const r = checkEnvelope(event.bytes, this.envCtx);
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

  // -------------------------------------------------------------------------------------------
  // Restart from signing state

  private restore(p: PersistedState): void {
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
    for (const r of p.prePrepares) {
      if (r.epoch === this.epochNo && above(r.height)) {
        this.slot(r.height).sentPrePrepare.set(r.view, toHex(r.digest));
        if (r.view === this._view && r.height >= this.nextProposal) this.nextProposal = r.height + 1n;
      }
    }
    for (const r of p.prepares) {
      if (r.epoch === this.epochNo && above(r.height))
        this.slot(r.height).sentPrepare.set(r.view, toHex(r.digest));
    }
    for (const r of p.commits) {
      if (r.epoch !== this.epochNo || !above(r.height)) continue;
      const s = this.slot(r.height);
      s.sentCommit.set(r.view, toHex(r.digest));
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

  // -------------------------------------------------------------------------------------------
  // Peer messages

  private onChecked(msg: CheckedMessage, nowMs: bigint | undefined): Verdict {
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

  private watermark(h: Height): Verdict | null {
    if (h <= this._stable) return ign("BELOW_WATERMARK");
    if (h > this.highWatermark) return ign("ABOVE_WATERMARK");
    return null;
  }

  /** Classifies a view-bound message; future ones are buffered. */
  private viewCheck(msg: CheckedMessage, view: View, nowMs: bigint | undefined): Verdict | null {
    if (view < this._view) return ign("STALE_VIEW");
    if (view > this._view || !this.active) {
      this.bufferMessage(msg, nowMs);
      return ign("FUTURE_VIEW");
    }
    return null;
  }

  /** Heights outside the window are ignored; those above it are buffered for later. */
  private windowCheck(msg: CheckedMessage, height: Height, nowMs: bigint | undefined): Verdict | null {
    const wm = this.watermark(height);
    if (wm !== null && wm.kind === "ignore" && wm.reason === "ABOVE_WATERMARK")
      this.bufferMessage(msg, nowMs);
    return wm;
  }

  /** Admission of a view-bound phase message: observed, then the view and the window checked. */
  private admitViewed(
    msg: CheckedMessage,
    view: View,
    height: Height,
    nowMs: bigint | undefined,
  ): Verdict | null {
    this.observe(msg.sender, view, null);
    return this.viewCheck(msg, view, nowMs) ?? this.windowCheck(msg, height, nowMs);
  }

  private onPrePrepare(msg: CheckedMessage, pp: PrePrepare, nowMs: bigint | undefined): Verdict {
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
    if (existing === undefined) slot.proposals.set(pp.view, accepted);
    else slot.faultyExtra.push({ ...accepted, view: pp.view });
    this.storeBody(pp.height, hex, block);
    this.sendPrepare(slot, pp.view, pp.blockDigest);
    this.tryPrepared(slot);
    return ACCEPTED;
  }

  private onPrepare(msg: CheckedMessage, p: Prepare, nowMs: bigint | undefined): Verdict {
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

  private onCommit(msg: CheckedMessage, c: Commit, nowMs: bigint | undefined): Verdict {
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
  private admitCommitView(slot: Slot, sender: ValidatorIndex, view: View): boolean {
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

  private onCheckpoint(msg: CheckedMessage, c: Checkpoint): Verdict {
    if (c.height === 0n || c.height % this.interval !== 0n) return rej("MALFORMED");
    this.observe(msg.sender, -1n, null);
    if (c.height <= this._stable) return ign("BELOW_WATERMARK");
    const key = `${toHex(c.chainHash)}:${toHex(c.stateRoot)}`;
    let mine = this.checkpointBySender.get(msg.sender);
    if (mine === undefined) {
      mine = new Map();
      this.checkpointBySender.set(msg.sender, mine);
    }
    const prev = mine.get(c.height);
    if (prev !== undefined) return ign(prev === key ? "DUPLICATE" : "CONFLICT");
    mine.set(c.height, key);
    // Keep only the sender's most recent few heights so a flood cannot grow memory.
    if (mine.size > CHECKPOINT_VOTES_PER_SENDER) {
      let lowest: Height | null = null;
      for (const h of mine.keys()) if (lowest === null || h < lowest) lowest = h;
      if (lowest !== null) {
        const lk = mine.get(lowest)!;
        mine.delete(lowest);
        this.checkpointVotes.get(lowest)?.get(lk)?.delete(msg.sender);
      }
    }
    if (!mine.has(c.height)) return ign("BELOW_WATERMARK");
    this.addCheckpointVote(c.height, key, msg.sender, c.voteSignature, c.chainHash, c.stateRoot);
    return ACCEPTED;
  }

  private onViewChange(msg: CheckedMessage, vc: ViewChange): Verdict {
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

  private onNewView(msg: CheckedMessage, nv: NewView): Verdict {
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
    const { stable } = computeNewViewProposals(this.cfg.chainId, this.epochNo, vcs);
    this.enterNewView(nv.view, msg.bytes, nv.proposals, stable);
    return ACCEPTED;
  }

  private onStatus(msg: CheckedMessage, s: StatusReport): Verdict {
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

  private onBlockRequest(from: ValidatorIndex, lo: Height, hi: Height): Verdict {
    if (lo === 0n || lo > this._committed) return ign("NOT_HANDLED");
    let top = hi < this._committed ? hi : this._committed;
    const cap = lo + this.windowSize - 1n;
    if (top > cap) top = cap;
    this.out.push({ kind: "serveBlocks", to: from, from: lo, toHeight: top });
    return ACCEPTED;
  }

  private onBlockResponse(
    blocks: readonly { height: Height; block?: Block; certificate?: CommitCertificate }[],
  ): Verdict {
    let useful = false;
    const limit = this._committed + 4n * this.windowSize;
    const sorted = [...blocks].sort((a, b) => (a.height < b.height ? -1 : a.height > b.height ? 1 : 0));
    for (const cb of sorted) {
      const cert = cb.certificate!;
      if (cb.height <= this._committed || cb.height > limit || this.fetched.has(cb.height)) continue;
      if (cert.epoch !== this.epochNo) continue;
      this.fetched.set(cb.height, { block: cb.block ?? null, digest: cert.blockDigest, cert });
      useful = true;
    }
    if (!useful) return ign("DUPLICATE");
    this.tryDeliver();
    if (this.fetchTarget !== null && this._committed >= this.fetchTarget.to) {
      const peer = this.fetchTarget.peer;
      this.fetchTarget = null;
      const best = this.bestPeer();
      if (best !== null && best.committed > this._committed) this.startFetch(best.index, best.committed);
      else if (this._stable > this._committed) this.startFetch(peer, this._stable);
    }
    return ACCEPTED;
  }

  private onBodyRequest(from: ValidatorIndex, digest: Hash): Verdict {
    const b = this.bodies.get(toHex(digest));
    if (b === undefined) return ign("NOT_HANDLED");
    this.send(
      from,
      this.seal({
        case: "bodyResponse",
        value: create(BodyResponseSchema, { blockDigest: digest, block: b.block }),
      }),
    );
    return ACCEPTED;
  }

  private onBody(block: Block): Verdict {
    if (block.header === undefined) return rej("MALFORMED");
    const hex = toHex(blockDigest(block.header));
    const h = this.neededBodies.get(hex);
    if (h === undefined) return ign("UNSOLICITED");
    this.neededBodies.delete(hex);
    this.storeBody(h, hex, block);
    // A PREPARE that waited for this body (a NEW-VIEW re-proposal) can be signed now.
    const slot = this.slots.get(h);
    const prop = slot?.proposals.get(this._view);
    if (slot !== undefined && prop?.hex === hex && this.active && h > this._committed) {
      if (!slot.sentPrepare.has(this._view)) this.sendPrepare(slot, this._view, prop.digest);
      this.tryPrepared(slot);
    }
    this.tryDeliver();
    return ACCEPTED;
  }

  // -------------------------------------------------------------------------------------------
  // Driver events

  private onTimer(token: number): void {
    if (token !== this.timerToken || !this.timerArmed) return;
    this.timerArmed = false;
    this.timerForViewChange = null;
    if (this.recovering) return;
    this.startViewChange(this._view + 1n);
  }

  private onExecuted(height: Height, stateRoot: Hash, chainHash: Hash | undefined): void {
    if (height > this._executed) this._executed = height;
    if (height === 0n || height % this.interval !== 0n) return;
    const ch = this.chainHashes.get(height) ?? chainHash;
    if (ch === undefined) return;
    this.ownCheckpoints.set(height, { chainHash: ch, stateRoot });
    // Compared with the stable checkpoint of this height even when the replica executes it late,
    // after later checkpoints already went stable (a lagging replica).
    const sc = this.stableCert?.height === height ? this.stableCert : this.pastStable.get(height);
    if (sc !== undefined) {
      this.pastStable.delete(height);
      if (!bytesEqual(sc.chainHash, ch) || !bytesEqual(sc.stateRoot, stateRoot)) {
        this.diverge(height, stateRoot, sc.stateRoot);
      }
      return;
    }
    if (height <= this._stable) return;
    const signature = this.cfg.signer.sign(
      checkpointSignBytes(this.cfg.chainId, this.epochNo, height, ch, stateRoot),
    );
    this.persist({ kind: "checkpoint", epoch: this.epochNo, height, chainHash: ch, stateRoot });
    this.broadcast(
      this.seal({
        case: "checkpoint",
        value: create(CheckpointSchema, { height, chainHash: ch, stateRoot, voteSignature: signature }),
      }),
    );
    const key = `${toHex(ch)}:${toHex(stateRoot)}`;
    let mine = this.checkpointBySender.get(this.self);
    if (mine === undefined) {
      mine = new Map();
      this.checkpointBySender.set(this.self, mine);
    }
    mine.set(height, key);
    this.addCheckpointVote(height, key, this.self, signature, ch, stateRoot);
  }

  private onProposal(height: Height, block: Block): void {
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
    if (slot.sentPrePrepare.has(v) || slot.proposals.has(v)) {
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
    slot.sentPrePrepare.set(v, hex);
    slot.proposals.set(v, { digest, hex, bytes: msg.bytes, fromNewView: false });
    const prep = this.signPrepare(slot, v, digest);
    this.broadcast(msg);
    if (prep !== null) this.broadcast(prep);
    this.nextProposal = height + 1n;
    this.tryPrepared(slot);
  }

  private onTick(): void {
    this.broadcast(
      this.seal({
        case: "status",
        value: create(StatusReportSchema, {
          committedHeight: this._committed,
          view: this._view,
          stableCheckpoint: this._stable,
          executedHeight: this._executed,
          missingNewView: this.active && this._view > 0n && this.newViewBytes === null,
        }),
      }),
    );
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

  // -------------------------------------------------------------------------------------------
  // Normal case

  private canPropose(): boolean {
    if (this.recovering || !this.active || !this.isPrimary) return false;
    if (this._committed < this._stable) return false;
    if (this.nextProposal <= this._committed) this.nextProposal = this._committed + 1n;
    if (this.nextProposal > this.highWatermark) return false;
    return this._committed - this._executed < BigInt(this.cfg.params.maxExecLag);
  }

  private maybePropose(): void {
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
  private signPrepare(slot: Slot, view: View, digest: Hash): OutMessage | null {
    if (this.recovering) return null;
    const hex = toHex(digest);
    const prev = slot.sentPrepare.get(view);
    if (prev !== undefined && prev !== hex && !this.cfg.testOnlyFaults?.acceptSecondPrePrepare) return null;
    if (!this.holdsBody(slot.height, digest, hex)) {
      this.requestBody(slot.height, digest, true);
      return null;
    }
    const signature = this.cfg.signer.sign(
      prepareSignBytes(this.cfg.chainId, this.epochNo, view, slot.height, digest),
    );
    if (prev !== hex) {
      const body = this.bodyForRecord(hex);
      this.persist({
        kind: "prepare",
        epoch: this.epochNo,
        view,
        height: slot.height,
        digest,
        ...(body ? { body } : {}),
      });
      slot.sentPrepare.set(view, hex);
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

  private sendPrepare(slot: Slot, view: View, digest: Hash): void {
    const msg = this.signPrepare(slot, view, digest);
    if (msg !== null) this.broadcast(msg);
  }

  private addPrepare(slot: Slot, view: View, hex: string, sender: ValidatorIndex, sig: Uint8Array): void {
    const key = `${view}:${hex}`;
    let m = slot.prepares.get(key);
    if (m === undefined) {
      m = new Map();
      slot.prepares.set(key, m);
    }
    if (!m.has(sender)) m.set(sender, sig);
  }

  private addCommit(
    slot: Slot,
    view: View,
    digest: Hash,
    hex: string,
    sender: ValidatorIndex,
    sig: Uint8Array,
  ): void {
    const key = `${view}:${hex}`;
    let e = slot.commits.get(key);
    if (e === undefined) {
      e = { view, digest, sigs: new Map() };
      slot.commits.set(key, e);
    }
    if (!e.sigs.has(sender)) e.sigs.set(sender, sig);
  }

  private quorumReached(signers: Iterable<ValidatorIndex>): boolean {
    const need = this.cfg.testOnlyFaults?.quorumOneShort ? this.vset.quorum - 1n : this.vset.quorum;
    return this.vset.powerOfSet(signers) >= need;
  }

  /** prepared(v, h, d): accepted proposal in the current view plus a quorum of matching PREPAREs. */
  private tryPrepared(slot: Slot): void {
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
  private maybeCommit(slot: Slot, v: View, prop: Proposal): void {
    if (this.recovering) return;
    const faults = this.cfg.testOnlyFaults;
    const sent = slot.sentCommit.get(v);
    if (sent === prop.hex) return;
    if (sent !== undefined && !faults?.acceptSecondPrePrepare) return;
    if (faults?.commitLock) {
      // The old, deadlocking rule: never a second digest at a height, whatever the view.
      for (const d of slot.sentCommit.values()) if (d !== prop.hex) return;
    }
    const pc = slot.prepared;
    if (pc === null || pc.view !== v || toHex(pc.blockDigest) !== prop.hex) return;
    const signature = this.cfg.signer.sign(
      commitSignBytes(this.cfg.chainId, this.epochNo, v, slot.height, prop.digest),
    );
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
    slot.sentCommit.set(v, prop.hex);
    this.broadcastCommit(slot, v, prop.digest, prop.hex, signature);
    this.tryCommit(slot);
  }

  private broadcastCommit(slot: Slot, v: View, digest: Hash, hex: string, signature: Uint8Array): void {
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
  private resendCommit(slot: Slot, w: View): void {
    const c = slot.committed;
    if (c === null || this.recovering || slot.sentCommit.has(w)) return;
    const signature = this.cfg.signer.sign(
      commitSignBytes(this.cfg.chainId, this.epochNo, w, slot.height, c.digest),
    );
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
    slot.sentCommit.set(w, c.hex);
    this.broadcastCommit(slot, w, c.digest, c.hex, signature);
  }

  /** A quorum of COMMITs of one (view, digest) is the commit certificate; it carries its view. */
  private tryCommit(slot: Slot): void {
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
  private tryCommitStitched(slot: Slot): void {
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

  private committedBy(slot: Slot, digest: Hash, cert: CommitCertificate): void {
    const hex = toHex(digest);
    slot.committed = { digest, hex, cert };
    if (!this.isNullDigest(slot.height, digest) && !this.bodies.has(hex)) {
      this.requestBody(slot.height, digest, true);
    }
    this.tryDeliver();
  }

  private isNullDigest(h: Height, digest: Hash): boolean {
    let nd = this.nullDigests.get(h);
    if (nd === undefined) {
      nd = nullBlockDigest(this.cfg.chainId, this.epochNo, h);
      this.nullDigests.set(h, nd);
    }
    return bytesEqual(digest, nd);
  }

  /** Delivers committed blocks strictly in height order, without gaps. */
  private tryDeliver(): void {
    for (;;) {
      const h = this._committed + 1n;
      const slot = this.slots.get(h);
      let item: Fetched | null = null;
      if (slot?.committed) {
        const c = slot.committed;
        if (this.isNullDigest(h, c.digest)) item = { block: null, digest: c.digest, cert: c.cert };
        else {
          const b = this.bodies.get(c.hex);
          if (b !== undefined) item = { block: b.block, digest: c.digest, cert: c.cert };
        }
      }
      if (item === null) {
        const f = this.fetched.get(h);
        if (f !== undefined) item = f;
      }
      if (item === null) return;
      this.fetched.delete(h);
      this.deliver(h, item);
    }
  }

  private deliver(h: Height, item: Fetched): void {
    this._committed = h;
    this.deliveredDigests.set(h, toHex(item.digest));
    this._chainHash = nextChainHash(this._chainHash, item.digest);
    this.failedViews = 0;
    this.committedProgress = true;
    this.neededBodies.delete(toHex(item.digest));
    if (h % this.interval === 0n) this.chainHashes.set(h, this._chainHash);
    this.out.push({
      kind: "deliver",
      height: h,
      epoch: this.epochNo,
      block: item.block,
      digest: item.digest,
      certificate: item.cert,
      chainHash: this._chainHash,
    });
    const sc = this.stableCert;
    if (sc !== undefined && sc.height === h && !bytesEqual(sc.chainHash, this._chainHash)) {
      this.diverge(h, this._chainHash, sc.chainHash);
    }
  }

  private requestBody(h: Height, digest: Hash, announce: boolean): void {
    const hex = toHex(digest);
    if (this.bodies.has(hex)) return;
    if (announce) {
      if (this.neededBodies.has(hex)) return;
      this.neededBodies.set(hex, h);
      this.out.push({ kind: "fetchBody", height: h, digest });
    }
    this.broadcast(
      this.seal({ case: "bodyRequest", value: create(BodyRequestSchema, { blockDigest: digest }) }),
    );
  }

  private storeBody(h: Height, hex: string, block: Block): void {
    if (!this.bodies.has(hex)) this.bodies.set(hex, { height: h, block, durable: false });
  }

  /**
   * The encoded body to put into the signing record that is about to be made durable, or
   * undefined when it already is durable (or is a null block). Marks it durable: the record is
   * synced before the vote it guards is sent.
   */
  private bodyForRecord(hex: string): Uint8Array | undefined {
    if (this.cfg.testOnlyFaults?.volatileBodies) return undefined;
    const b = this.bodies.get(hex);
    if (b === undefined || b.durable) return undefined;
    b.durable = true;
    return toBinary(BlockSchema, b.block);
  }

  /** Holds the block to sign for: its body, or nothing when it is the null block of its height. */
  private holdsBody(h: Height, digest: Hash, hex: string): boolean {
    return this.bodies.has(hex) || this.isNullDigest(h, digest);
  }

  // -------------------------------------------------------------------------------------------
  // Checkpoints

  private addCheckpointVote(
    h: Height,
    key: string,
    sender: ValidatorIndex,
    sig: Uint8Array,
    chainHash: Hash,
    stateRoot: Hash,
  ): void {
    let byKey = this.checkpointVotes.get(h);
    if (byKey === undefined) {
      byKey = new Map();
      this.checkpointVotes.set(h, byKey);
    }
    let sigs = byKey.get(key);
    if (sigs === undefined) {
      sigs = new Map();
      byKey.set(key, sigs);
    }
    sigs.set(sender, sig);
    if (h > this._stable && this.quorumReached(sigs.keys())) {
      this.makeStable(
        create(CheckpointCertificateSchema, {
          epoch: this.epochNo,
          height: h,
          chainHash,
          stateRoot,
          signatures: sortedSigs(sigs),
        }),
      );
    }
  }

  private makeStable(cert: CheckpointCertificate): void {
    const h = cert.height;
    if (h <= this._stable) return;
    const own = this.ownCheckpoints.get(h);
    if (
      own !== undefined &&
      (!bytesEqual(own.chainHash, cert.chainHash) || !bytesEqual(own.stateRoot, cert.stateRoot))
    ) {
      this.diverge(h, own.stateRoot, cert.stateRoot);
      return;
    }
    const ch = this.chainHashes.get(h);
    if (ch !== undefined && !bytesEqual(ch, cert.chainHash)) {
      this.diverge(h, ch, cert.chainHash);
      return;
    }
    this._stable = h;
    // Kept for a replica that executes h only later (bounded: the last PAST_STABLE_KEPT).
    if (this._executed < h) {
      this.pastStable.set(h, cert);
      for (const k of [...this.pastStable.keys()])
        if (this.pastStable.size > PAST_STABLE_KEPT) this.pastStable.delete(k);
    }
    this.stableCert = cert;
    this.persist({ kind: "stable", epoch: this.epochNo, height: h, certificate: cert });
    this.out.push({
      kind: "stableCheckpoint",
      height: h,
      chainHash: cert.chainHash,
      stateRoot: cert.stateRoot,
    });
    this.gc(h);
    if (this._committed < h) {
      const peer = this.pickPeer(cert.signatures.map((s) => s.validator));
      if (peer !== null && this.fetchTarget === null) this.startFetch(peer, h);
    }
    this.replayBuffer();
  }

  private gc(h: Height): void {
    for (const k of [...this.slots.keys()]) if (k <= h) this.slots.delete(k);
    for (const [hex, b] of [...this.bodies]) if (b.height <= h) this.bodies.delete(hex);
    for (const [hex, bh] of [...this.neededBodies]) if (bh <= h) this.neededBodies.delete(hex);
    for (const k of [...this.checkpointVotes.keys()]) if (k <= h) this.checkpointVotes.delete(k);
    for (const m of this.checkpointBySender.values()) for (const k of [...m.keys()]) if (k <= h) m.delete(k);
    for (const k of [...this.chainHashes.keys()]) if (k < h) this.chainHashes.delete(k);
    for (const k of [...this.ownCheckpoints.keys()]) if (k < h) this.ownCheckpoints.delete(k);
    for (const [k, eh] of [...this.evidenceKeys]) if (eh <= h) this.evidenceKeys.delete(k);
    for (const k of [...this.nullDigests.keys()]) if (k <= h) this.nullDigests.delete(k);
    for (const k of [...this.deliveredDigests.keys()]) if (k <= h) this.deliveredDigests.delete(k);
  }

  private diverge(height: Height, ours: Hash, stable: Hash): void {
    this._status = "diverged";
    this.out.push({ kind: "diverged", height, ours, stable });
    if (this.timerArmed) {
      this.timerArmed = false;
      this.out.push({ kind: "cancelTimer", timer: "view" });
    }
  }

  // -------------------------------------------------------------------------------------------
  // View change

  private startViewChange(target: View): void {
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
  private sendViewChange(target: View): void {
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
  private maybeJoinHigherView(): void {
    if (this.recovering) return;
    const higher: { sender: ValidatorIndex; view: View }[] = [];
    for (const [sender, s] of this.viewChanges)
      if (s.view > this._view) higher.push({ sender, view: s.view });
    if (higher.length === 0 || !this.vset.isWeak(higher.map((x) => x.sender))) return;
    let min = higher[0]!.view;
    for (const x of higher) if (x.view < min) min = x.view;
    this.startViewChange(min);
  }

  private viewChangeProgress(): void {
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

  private sendNewView(w: View, senders: ValidatorIndex[]): void {
    this.newViewSent.add(w);
    const stored = senders.map((s) => this.viewChanges.get(s)!);
    const { stable, proposals } = computeNewViewProposals(
      this.cfg.chainId,
      this.epochNo,
      stored.map((s) => s.vc),
    );
    for (const p of proposals) {
      const body = p.isNull ? undefined : this.bodyForRecord(toHex(p.blockDigest));
      this.persist({
        kind: "prePrepare",
        epoch: this.epochNo,
        view: w,
        height: p.height,
        digest: p.blockDigest,
        ...(body ? { body } : {}),
      });
    }
    this.persist({ kind: "view", view: w });
    const msg = this.seal({
      case: "newView",
      value: create(NewViewSchema, { view: w, viewChanges: stored.map((s) => s.bytes), proposals }),
    });
    this.broadcast(msg);
    this.enterNewView(w, msg.bytes, proposals, stable, true);
  }

  private enterNewView(
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
    if (!viewPersisted) this.persist({ kind: "view", view: w });
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
  private forwardNewView(to: ValidatorIndex): void {
    const bytes = this.newViewBytes;
    if (bytes === null || to === this.self) return;
    const n = this.vset.size;
    const helper = (to + 1) % n === this.self || (to + 2) % n === this.self;
    if (!this.isPrimary && !helper) return;
    const envelope = fromBinary(EnvelopeSchema, bytes);
    this.send(to, { kind: "newView", envelope, bytes });
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  private timeoutMs(): number {
    const { viewTimeoutMs, viewTimeoutCapMs } = this.cfg.params;
    let t = viewTimeoutMs;
    for (let i = 0; i < this.failedViews && t < viewTimeoutCapMs; i++) t *= 2;
    return Math.min(t, viewTimeoutCapMs);
  }

  private armTimer(): void {
    this.timerToken++;
    this.timerArmed = true;
    this.out.push({ kind: "setTimer", timer: "view", afterMs: this.timeoutMs(), token: this.timerToken });
  }

  private hasInflight(): boolean {
    for (const [h, s] of this.slots) {
      if (h > this._committed && s.proposals.has(this._view) && s.committed === null) return true;
    }
    return false;
  }

  /** Request timers: armed while known work waits and the primary is not held back by backpressure. */
  private refreshTimer(): void {
    const progress = this.committedProgress;
    this.committedProgress = false;
    if (this.recovering) {
      if (this.timerArmed) {
        this.timerArmed = false;
        this.out.push({ kind: "cancelTimer", timer: "view" });
      }
      return;
    }
    if (!this.active) return;
    const paused =
      this._committed < this._stable ||
      this._committed - this._executed >= BigInt(this.cfg.params.maxExecLag) ||
      this._committed >= this.highWatermark;
    const want = !paused && (this.pendingWork > 0 || this.hasInflight());
    if (want) {
      if (!this.timerArmed || progress) this.armTimer();
    } else if (this.timerArmed) {
      this.timerArmed = false;
      this.out.push({ kind: "cancelTimer", timer: "view" });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Catch-up

  private bestPeer(): { index: ValidatorIndex; committed: Height } | null {
    let best: { index: ValidatorIndex; committed: Height } | null = null;
    for (const [index, s] of this.peerStatus) {
      if (best === null || s.committed > best.committed) best = { index, committed: s.committed };
    }
    return best;
  }

  private pickPeer(candidates: readonly ValidatorIndex[]): ValidatorIndex | null {
    const others = candidates.filter((c) => c !== this.self);
    if (others.length === 0) return null;
    const p = others[this.fetchRotation % others.length]!;
    this.fetchRotation++;
    return p;
  }

  private startFetch(peer: ValidatorIndex, upTo: Height): void {
    if (peer === this.self || upTo <= this._committed) return;
    const from = this._committed + 1n;
    let to = upTo;
    const cap = from + this.windowSize - 1n;
    if (to > cap) to = cap;
    this.fetchTarget = { to, peer, committedAtRequest: this._committed };
    this.send(
      peer,
      this.seal({
        case: "blockRequest",
        value: create(BlockRequestSchema, { fromHeight: from, toHeight: to }),
      }),
    );
    this.out.push({ kind: "fetchBlocks", from, to, peer });
  }

  // -------------------------------------------------------------------------------------------
  // Recovery without signing state

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
  private observe(sender: ValidatorIndex, view: View, height: Height | null): void {
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

  private updateRecovery(): void {
    if (!this.recovering) return;
    const t = this.recoveryTarget;
    const reason =
      t === null ? "quorum" : this._committed <= t.height ? "height" : this._view <= t.view ? "view" : null;
    if (reason === null) {
      this.recovering = false;
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

  // -------------------------------------------------------------------------------------------
  // Plumbing

  private slot(h: Height): Slot {
    let s = this.slots.get(h);
    if (s === undefined) {
      s = {
        height: h,
        proposals: new Map(),
        prepares: new Map(),
        prepareSeen: new Map(),
        commits: new Map(),
        commitSeen: new Map(),
        sentPrepare: new Map(),
        sentPrePrepare: new Map(),
        sentCommit: new Map(),
        prepared: null,
        committed: null,
        faultyExtra: [],
      };
      this.slots.set(h, s);
    }
    return s;
  }

  private evidence(
    phase: EvidenceRecord["phase"],
    sender: ValidatorIndex,
    view: View,
    height: Height,
    first: Uint8Array,
    second: Uint8Array,
  ): void {
    // Keyed by (view, height) for every phase: COMMITs of two views are not equivocation.
    const key = `${phase}:${sender}:${view}:${height}`;
    if (this.evidenceKeys.has(key)) return;
    this.evidenceKeys.set(key, height);
    this.out.push({
      kind: "evidence",
      evidence: { sender, epoch: this.epochNo, phase, view, height, first, second },
    });
  }

  /**
   * Future messages are buffered per sender, each with its own quota (the total bound divided by
   * n, at least 16), so one peer flooding future views cannot push out anyone else's messages.
   */
  private bufferMessage(msg: CheckedMessage, nowMs: bigint | undefined): void {
    const max = this.cfg.maxBufferedMessages ?? DEFAULT_BUFFERED;
    if (max <= 0) return;
    const quota = Math.max(16, Math.floor(max / this.vset.size));
    let q = this.buffer.get(msg.sender);
    if (q === undefined) {
      q = [];
      this.buffer.set(msg.sender, q);
    }
    q.push({ msg, nowMs });
    if (q.length > quota) q.splice(0, q.length - quota);
  }

  private replayBuffer(): void {
    if (this.buffer.size === 0) return;
    const senders = [...this.buffer.keys()].sort((a, b) => a - b);
    const queues = senders.map((s) => this.buffer.get(s)!);
    this.buffer.clear();
    for (const q of queues) for (const b of q) this.onChecked(b.msg, b.nowMs);
  }

  private persist(record: SigningRecord): void {
    this.out.push({ kind: "persist", record });
  }

  private broadcast(msg: OutMessage): void {
    this.out.push({ kind: "broadcast", msg });
  }

  private send(to: ValidatorIndex, msg: OutMessage): void {
    this.out.push({ kind: "send", to, msg });
  }

  private seal(kind: PeerMessage["kind"]): OutMessage {
    return sealMessage(
      this.cfg.chainId,
      this.epochNo,
      this.self,
      this.cfg.signer,
      create(PeerMessageSchema, { kind }),
    );
  }
}

function sortedSigs(m: Map<ValidatorIndex, Uint8Array>) {
  return [...m.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([validator, signature]) => create(VoteSignatureSchema, { validator, signature }));
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
