// Shared state and plumbing of the PBFT replica (DESIGN §2). The replica is split by concern into a
// chain of classes, one file each: base (state, admission, plumbing) → catchUp (bodies, delivery,
// state transfer) → voteLog (proposals, PREPARE/COMMIT collection and the commit rule) →
// checkpoints (stable checkpoints, garbage collection, divergence) → pacemaker (request timers) →
// viewChange (VIEW-CHANGE / NEW-VIEW) → amnesia (recovery without signing state) → replica (the
// thin dispatcher). What may be signed is decided by SafetyRules (safetyRules.ts) alone.
// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.
import { create } from "@bufbuild/protobuf";
import {
  type CheckpointCertificate,
  type PeerMessage,
  PeerMessageSchema,
  type PreparedCertificate,
  type ViewChange,
} from "../../gen/parabft/v1/consensus_pb.js";
import { type Block, type CommitCertificate, VoteSignatureSchema } from "../../gen/parabft/v1/types_pb.js";
import { nullBlockDigest } from "../../types/block.js";
import { bytesEqual } from "../../types/bytes.js";
import type { Hash } from "../../types/hash.js";
import { type EnvelopeContext, sealMessage } from "../envelope.js";
import { epochFloor, lastHeightOfEpoch } from "../epochs.js";
import type { ValidatorSet } from "../valset/index.js";
import { SafetyRules } from "./safetyRules.js";
import type {
  Action,
  CheckedMessage,
  EvidenceRecord,
  Height,
  IgnoreReason,
  OutMessage,
  PersistedState,
  RejectReason,
  ReplicaConfig,
  ReplicaStatus,
  SigningRecord,
  ValidatorIndex,
  Verdict,
  View,
} from "./types.js";

export const ACCEPTED: Verdict = { kind: "accept" };
export const ign = (reason: IgnoreReason): Verdict => ({ kind: "ignore", reason });
export const rej = (reason: RejectReason): Verdict => ({ kind: "reject", reason });

/** Checkpoint votes kept per sender: enough to see a stable point far above ours, but bounded. */
export const CHECKPOINT_VOTES_PER_SENDER = 4;
export const DEFAULT_BUFFERED = 256;
export const PAST_STABLE_KEPT = 16;
/** COMMIT views kept per sender and height (the highest ones). */
export const COMMIT_VIEWS_PER_SENDER = 4;
/** While waiting for a NEW-VIEW, our VIEW-CHANGE is repeated every this many ticks. */
export const VIEW_CHANGE_REPEAT_TICKS = 3;

export interface Proposal {
  digest: Hash;
  hex: string;
  /** Signed envelope that carried it (PRE-PREPARE or NEW-VIEW), kept for evidence. */
  bytes: Uint8Array;
  fromNewView: boolean;
}

export interface Seen {
  hex: string;
  bytes: Uint8Array;
}

export interface Slot {
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
  /** Highest-view prepared certificate known for this height. */
  prepared: PreparedCertificate | null;
  committed: { digest: Hash; hex: string; cert: CommitCertificate } | null;
  /** Further proposals accepted for a view; only under testOnlyFaults.acceptSecondPrePrepare. */
  faultyExtra: (Proposal & { view: View })[];
}

export interface Fetched {
  block: Block | null;
  digest: Hash;
  cert: CommitCertificate;
}

export interface StoredViewChange {
  view: View;
  bytes: Uint8Array;
  vc: ViewChange;
}

export interface Buffered {
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

export abstract class ReplicaBase {
  /** Decides alone what may be signed, and owns what was signed (safetyRules.ts). */
  protected readonly safety: SafetyRules;
  protected readonly cfg: ReplicaConfig;
  protected readonly envCtx: EnvelopeContext;
  protected readonly self: ValidatorIndex;
  protected readonly epochNo: bigint;
  protected readonly vset: ValidatorSet;
  protected readonly windowSize: bigint;
  protected readonly interval: bigint;
  /** Last height this epoch's set may order (B(epoch)), or null without epochs. */
  protected readonly lastHeight: Height | null;
  /** Heights at or below belong to earlier epochs (B(epoch − 1), or 0). */
  protected readonly floorHeight: Height;

  protected _view: View = 0n;
  protected active = true;
  protected vcSent: View = 0n;
  protected _committed: Height = 0n;
  protected _chainHash: Hash;
  protected _executed: Height = 0n;
  protected _stable: Height = 0n;
  protected stableCert: CheckpointCertificate | undefined;
  /** Stable checkpoints above the executed height, kept to compare roots once executed. */
  protected readonly pastStable = new Map<Height, CheckpointCertificate>();
  protected _status: ReplicaStatus = "validating";
  protected recovering = false;

  protected readonly slots = new Map<Height, Slot>();
  /** Bodies by digest; `durable` once a signing record carried them (or they were reloaded). */
  /** Block bodies by digest hex; `encoded`: the block's bytes as received, until its record takes them. */
  protected readonly bodies = new Map<
    string,
    { height: Height; block: Block; durable: boolean; encoded?: Uint8Array }
  >();
  protected readonly neededBodies = new Map<string, Height>();
  protected readonly fetched = new Map<Height, Fetched>();
  protected readonly nullDigests = new Map<Height, Hash>();
  /** Digest delivered per height above the stable checkpoint (for the re-proposal alarm). */
  protected readonly deliveredDigests = new Map<Height, string>();
  /** chainHash of checkpoint heights at or above the stable one. */
  protected readonly chainHashes = new Map<Height, Hash>();
  protected readonly ownCheckpoints = new Map<Height, { chainHash: Hash; stateRoot: Hash }>();
  /** height -> `${chainHex}:${rootHex}` -> sender -> signature. */
  protected readonly checkpointVotes = new Map<Height, Map<string, Map<ValidatorIndex, Uint8Array>>>();
  protected readonly checkpointBySender = new Map<ValidatorIndex, Map<Height, string>>();
  /** Latest VIEW-CHANGE per sender (older ones are useless), which bounds memory. */
  protected readonly viewChanges = new Map<ValidatorIndex, StoredViewChange>();
  protected newViewBytes: Uint8Array | null = null;
  protected readonly newViewSent = new Set<View>();
  /** Evidence already reported: key -> height (pruned at stable checkpoints). */
  protected readonly evidenceKeys = new Map<string, Height>();
  protected readonly buffer = new Map<ValidatorIndex, Buffered[]>();
  protected readonly peerStatus = new Map<
    ValidatorIndex,
    { committed: Height; view: View; stable: Height; executed: Height }
  >();

  protected pendingWork = 0;
  protected nextProposal: Height = 1n;
  protected requested: Height | null = null;

  protected timerToken = 0;
  protected timerArmed = false;
  protected timerForViewChange: View | null = null;
  protected failedViews = 0;
  /**
   * Progress of the cluster since the request timer was last (re)armed: a height committed, or
   * prepared in the current view (a quorum of PREPAREs, which a faulty primary cannot produce
   * alone), or the view's first proposal for the height right above our commit (once per view:
   * see noteProposalProgress). refreshTimer re-arms on it, so the timer measures time without
   * progress rather than time per height: a primary still committing under load, whose heights
   * outlast the timeout, is not replaced.
   */
  protected progress = false;

  protected fetchTarget: { to: Height; peer: ValidatorIndex; committedAtRequest: Height } | null = null;
  protected committedAtLastTick: Height = 0n;
  protected ticks = 0;
  protected fetchRotation = 0;

  // Recovery without signing state: observe until a quorum of senders has been heard from.
  protected readonly observed = new Map<ValidatorIndex, { view: View; height: Height | null }>();
  /** Silent until committed > height and view > view (see observe). */
  protected recoveryTarget: { view: View; height: Height } | null = null;
  protected recoveryReason: string | null = null;

  protected out: Action[] = [];
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
    const early = cfg.testOnlyFaults?.switchEpochEarly ? 1n : 0n;
    this.lastHeight =
      cfg.epochLength === undefined ? null : lastHeightOfEpoch(cfg.epoch, cfg.epochLength) - early;
    this.floorHeight = cfg.epoch === 0n ? 0n : epochFloor(cfg.epoch, cfg.epochLength) - early;
    this.envCtx = {
      chainId: cfg.chainId,
      sets: cfg.sets,
      verifier: cfg.verifier,
      maxMessageBytes: cfg.maxMessageBytes,
      currentEpoch: cfg.epoch,
      ...(cfg.epochLength !== undefined ? { epochLength: cfg.epochLength } : {}),
    };
    const start = cfg.start;
    this._chainHash = start?.chainHash ?? new Uint8Array(32);
    this._committed = start?.committedHeight ?? 0n;
    this._executed = start?.executedHeight ?? 0n;
    this._stable = start?.stableHeight ?? 0n;
    if (this._stable > this._committed) this._stable = this._committed;
    this.committedAtLastTick = this._committed;
    if (this.isCheckpointHeight(this._committed)) this.chainHashes.set(this._committed, this._chainHash);
    this.nextProposal = this._committed + 1n;
    this.safety = new SafetyRules(
      cfg.chainId,
      cfg.epoch,
      cfg.signer,
      cfg.testOnlyFaults,
      cfg.persisted === null,
    );
    if (cfg.persisted === null) {
      this.recovering = true;
      this._status = "recovering";
    } else if (cfg.persisted !== undefined) {
      this.restore(cfg.persisted);
    }
  }

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
    const w = this._stable + this.windowSize;
    return this.lastHeight !== null && this.lastHeight < w ? this.lastHeight : w;
  }

  /** Last height this instance's set may order (B(epoch)), or null without epochs. */
  get epochLastHeight(): Height | null {
    return this.lastHeight;
  }

  get epoch(): bigint {
    return this.epochNo;
  }

  get selfIndex(): ValidatorIndex {
    return this.self;
  }

  /** Checkpoints fall at multiples of the interval and at the epoch's last height B(e), within this epoch. */
  protected isCheckpointHeight(h: Height): boolean {
    if (h === 0n || h <= this.floorHeight) return false;
    // Heights of a later epoch are checkpointed by that epoch's set, never by this one.
    if (this.lastHeight !== null && h > this.lastHeight) return false;
    return h % this.interval === 0n || h === this.lastHeight;
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

  protected watermark(h: Height): Verdict | null {
    if (h <= this._stable) return ign("BELOW_WATERMARK");
    if (this.lastHeight !== null && h > this.lastHeight) return ign("FUTURE_EPOCH");
    if (h > this.highWatermark) return ign("ABOVE_WATERMARK");
    return null;
  }

  /** Classifies a view-bound message; future ones are buffered. */
  protected viewCheck(msg: CheckedMessage, view: View, nowMs: bigint | undefined): Verdict | null {
    if (view < this._view) return ign("STALE_VIEW");
    if (view > this._view || !this.active) {
      this.bufferMessage(msg, nowMs);
      return ign("FUTURE_VIEW");
    }
    return null;
  }

  /** Heights outside the window are ignored; those above it are buffered for later. */
  protected windowCheck(msg: CheckedMessage, height: Height, nowMs: bigint | undefined): Verdict | null {
    const wm = this.watermark(height);
    if (wm !== null && wm.kind === "ignore" && wm.reason === "ABOVE_WATERMARK")
      this.bufferMessage(msg, nowMs);
    return wm;
  }

  /** Admission of a view-bound phase message: observed, then the view and the window checked. */
  protected admitViewed(
    msg: CheckedMessage,
    view: View,
    height: Height,
    nowMs: bigint | undefined,
  ): Verdict | null {
    this.observe(msg.sender, view, null);
    return this.viewCheck(msg, view, nowMs) ?? this.windowCheck(msg, height, nowMs);
  }

  protected slot(h: Height): Slot {
    let s = this.slots.get(h);
    if (s === undefined) {
      s = {
        height: h,
        proposals: new Map(),
        prepares: new Map(),
        prepareSeen: new Map(),
        commits: new Map(),
        commitSeen: new Map(),
        prepared: null,
        committed: null,
        faultyExtra: [],
      };
      this.slots.set(h, s);
    }
    return s;
  }

  protected evidence(
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
  protected bufferMessage(msg: CheckedMessage, nowMs: bigint | undefined): void {
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

  protected replayBuffer(): void {
    if (this.buffer.size === 0) return;
    const senders = [...this.buffer.keys()].sort((a, b) => a - b);
    const queues = senders.map((s) => this.buffer.get(s)!);
    this.buffer.clear();
    for (const q of queues) for (const b of q) this.onChecked(b.msg, b.nowMs);
  }

  protected persist(record: SigningRecord): void {
    this.out.push({ kind: "persist", record });
  }

  protected broadcast(msg: OutMessage): void {
    this.out.push({ kind: "broadcast", msg });
  }

  protected send(to: ValidatorIndex, msg: OutMessage): void {
    this.out.push({ kind: "send", to, msg });
  }

  protected seal(kind: PeerMessage["kind"]): OutMessage {
    return sealMessage(
      this.cfg.chainId,
      this.epochNo,
      this.self,
      this.cfg.signer,
      create(PeerMessageSchema, { kind }),
    );
  }

  protected quorumReached(signers: Iterable<ValidatorIndex>): boolean {
    const need = this.cfg.testOnlyFaults?.quorumOneShort ? this.vset.quorum - 1n : this.vset.quorum;
    return this.vset.powerOfSet(signers) >= need;
  }

  protected isNullDigest(h: Height, digest: Hash): boolean {
    let nd = this.nullDigests.get(h);
    if (nd === undefined) {
      nd = nullBlockDigest(this.cfg.chainId, this.epochNo, h);
      this.nullDigests.set(h, nd);
    }
    return bytesEqual(digest, nd);
  }

  protected addPrepare(slot: Slot, view: View, hex: string, sender: ValidatorIndex, sig: Uint8Array): void {
    const key = `${view}:${hex}`;
    let m = slot.prepares.get(key);
    if (m === undefined) {
      m = new Map();
      slot.prepares.set(key, m);
    }
    if (!m.has(sender)) m.set(sender, sig);
  }

  protected addCommit(
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

  protected abstract restore(p: PersistedState): void;
  protected abstract onChecked(msg: CheckedMessage, nowMs: bigint | undefined): Verdict;
  protected abstract observe(sender: ValidatorIndex, view: View, height: Height | null): void;
}
export function sortedSigs(m: Map<ValidatorIndex, Uint8Array>) {
  return [...m.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([validator, signature]) => create(VoteSignatureSchema, { validator, signature }));
}

export function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
