// The contract of the pure PBFT core: events in, actions out (DESIGN §2, STYLE "pure core").
// The node driver and the simulator both code against these names; add, never rename.
import type {
  CheckpointCertificate,
  CommittedBlock,
  Envelope,
  PeerMessage,
  PreparedCertificate,
} from "../../gen/parabft/v1/consensus_pb.js";
import type { Block, CommitCertificate } from "../../gen/parabft/v1/types_pb.js";
import type { Hash } from "../../types/hash.js";
import type { MessageSigner, SignatureVerifier } from "../../types/signing.js";
import type { EpochSets, ValidatorSet } from "../valset/index.js";

export type Height = bigint;
export type View = bigint;
export type Epoch = bigint;
/** Index of a validator in its epoch's set. */
export type ValidatorIndex = number;

// ---------------------------------------------------------------------------------------------
// Verdicts

/** Provably invalid input: the peer is penalised. */
export type RejectReason =
  | "MALFORMED"
  | "OVERSIZED"
  | "BAD_VERSION"
  | "WRONG_CHAIN"
  | "UNKNOWN_SENDER"
  | "BAD_SIGNATURE"
  /** A nested certificate lacks a quorum of valid, distinct signers. */
  | "BAD_CERTIFICATE"
  /** PRE-PREPARE from a validator that is not the primary of its view. */
  | "NOT_PRIMARY"
  /** PRE-PREPARE whose digest does not match its block header, or header fields that disagree. */
  | "BAD_DIGEST"
  | "BAD_BLOCK"
  /** NEW-VIEW whose proposals do not follow from its VIEW-CHANGEs. */
  | "BAD_NEW_VIEW"
  /** A message kind that must never travel between validators (e.g. an empty oneof). */
  | "UNEXPECTED";

/** Harmless input: stale, duplicate, or from the future (a lagging replica must not punish peers). */
export type IgnoreReason =
  | "STALE_VIEW"
  | "FUTURE_VIEW"
  | "STALE_EPOCH"
  | "FUTURE_EPOCH"
  | "DUPLICATE"
  | "BELOW_WATERMARK"
  | "ABOVE_WATERMARK"
  /** Equivocation: kept as evidence, not counted. */
  | "CONFLICT"
  /** Valid but not acted on (e.g. a TxBatch, which belongs to the mempool, or a replica that stopped). */
  | "NOT_HANDLED"
  | "FROM_SELF"
  | "TIMESTAMP_SKEW"
  | "STOPPED"
  | "ALREADY_COMMITTED"
  | "UNSOLICITED"
  /** A peer's gossip arrives faster than the mempool admits it: the batch is dropped. */
  | "GOSSIP_BACKLOG"
  /**
   * A vote arriving after the quorum it would join (a PREPARE once prepared / a COMMIT once
   * committed for the same digest with no differing vote from its sender, a CHECKPOINT at or below
   * the stable one): ignored before its signature is verified.
   */
  | "NOT_NEEDED";

export type Verdict =
  | { kind: "accept" }
  | { kind: "ignore"; reason: IgnoreReason }
  | { kind: "reject"; reason: RejectReason };

export const ACCEPT: Verdict = Object.freeze({ kind: "accept" }) as Verdict;

/** The votes whose signature the driver may skip verifying (ConsensusCore.voteNeeded). */
export type VoteKind = "prepare" | "commit" | "checkpoint";

/** A vote the driver asks about before verifying its signature (ConsensusCore.voteNeeded). */
export interface VoteQuery {
  epoch: bigint;
  kind: VoteKind;
  sender: ValidatorIndex;
  view: View;
  height: Height;
  digest: Hash;
}

export type PeerMessageKind = NonNullable<PeerMessage["kind"]["case"]>;

/** An authenticated peer message: the envelope passed the checks in envelope.ts. */
export interface CheckedMessage {
  envelope: Envelope;
  /** Encoded envelope bytes as received (kept for evidence and for NEW-VIEW). */
  bytes: Uint8Array;
  epoch: Epoch;
  sender: ValidatorIndex;
  message: PeerMessage;
}

// ---------------------------------------------------------------------------------------------
// Events (driver -> core)

export type TimerName = "view";

export type Event =
  /** Raw envelope bytes from the network; the core runs the full envelope check. */
  | { kind: "message"; bytes: Uint8Array; from?: ValidatorIndex; nowMs?: bigint }
  /** An envelope the driver already checked with checkEnvelope (e.g. in a verify worker). */
  | { kind: "checked"; msg: CheckedMessage; nowMs?: bigint }
  /** A timer set by a `setTimer` action fired; stale tokens are ignored. */
  | { kind: "timer"; timer: TimerName; token: number }
  /** The executor finished `height` with `stateRoot`. Heights arrive in order. */
  | {
      kind: "executed";
      height: Height;
      stateRoot: Hash;
      /** chainHash(height), for heights re-executed after a restart that the core did not deliver itself. */
      chainHash?: Hash;
    }
  /**
   * Answer to `requestProposal`: the driver built the block (header + txs) from the mempool. The
   * header must name this chain, epoch and height, `proposer` = self and `validatorsHash` = the
   * epoch set's `hash`, or backups reject it (BAD_BLOCK).
   */
  | { kind: "proposal"; height: Height; block: Block; nowMs?: bigint }
  /**
   * The driver's view of the mempool: `count` executable transactions are waiting. Backups keep the
   * view timer armed while count > 0 and no commit has happened since; a primary asks for a proposal.
   */
  | { kind: "pendingWork"; count: number }
  /** Periodic tick: the core broadcasts its StatusReport and retries outstanding fetches. */
  | { kind: "tick"; nowMs?: bigint }
  /**
   * Answer to `serveBlocks`: the driver read these committed blocks from its storage. Copy the
   * action's `epoch` (when present): `to` is an index in that epoch's set.
   */
  | { kind: "blocksForPeer"; to: ValidatorIndex; blocks: CommittedBlock[]; epoch?: Epoch }
  /** A body the driver found locally (e.g. storage) for a `fetchBody`. */
  | { kind: "body"; block: Block }
  /**
   * (Epochs, `EpochReplica`.) The driver added a set to `cfg.sets` (an election snapshot was
   * executed): a core waiting at a boundary for the next epoch's set re-checks and switches.
   */
  | { kind: "setsChanged" }
  /**
   * (Epochs, `EpochReplica`.) Committed blocks with certificates the driver fetched by its own
   * means (e.g. the node's sync path) for a replica that is not in the current epoch's set (a
   * follower, which cannot sign requests). Each certificate is checked against the set of the
   * epoch its height belongs to; blocks are delivered in order, the rest ignored.
   */
  | { kind: "followBlocks"; blocks: CommittedBlock[] };

// ---------------------------------------------------------------------------------------------
// Actions (core -> driver), carried out in order

/** A ready-to-send signed envelope. `bytes` is the encoding of `envelope`; send `bytes`. */
export interface OutMessage {
  kind: PeerMessageKind;
  envelope: Envelope;
  bytes: Uint8Array;
}

/** What the replica durably records before the sends that follow it (signing state). */
export type SigningRecord =
  /** `epoch` absent = epoch 0 (records written before epochs). A higher epoch restarts the view at 0. */
  | { kind: "view"; view: View; epoch?: Epoch }
  /**
   * `body` is the encoded Block (absent for a null block): a replica holds the body durably
   * before it signs for it (DESIGN §2 "Durable bodies"), in the same sync as the vote's record.
   */
  | { kind: "prePrepare"; epoch: Epoch; view: View; height: Height; digest: Hash; body?: Uint8Array }
  | { kind: "prepare"; epoch: Epoch; view: View; height: Height; digest: Hash; body?: Uint8Array }
  | {
      kind: "commit";
      epoch: Epoch;
      view: View;
      height: Height;
      digest: Hash;
      /**
       * The prepared certificate (of this view) that justified the COMMIT, so a VIEW-CHANGE after a
       * crash still proves it. Absent only for a COMMIT repeated for a block already certified.
       */
      prepared?: PreparedCertificate;
    }
  | { kind: "viewChange"; epoch: Epoch; newView: View }
  | { kind: "checkpoint"; epoch: Epoch; height: Height; chainHash: Hash; stateRoot: Hash }
  /** A checkpoint became stable: records at or below `height` may be pruned. */
  | { kind: "stable"; epoch: Epoch; height: Height; certificate?: CheckpointCertificate };

/**
 * The signing state folded from SigningRecords (see applySigningRecord in persist.ts). Lives beside
 * the validator key, outside the data directory.
 */
export interface PersistedState {
  /** Epoch of `view` and `viewChangeSent` (absent = 0). */
  epoch?: Epoch;
  view: View;
  /** Highest view this replica sent a VIEW-CHANGE for (0 when none). */
  viewChangeSent: View;
  stableHeight: Height;
  stableCert?: CheckpointCertificate;
  prePrepares: { epoch: Epoch; view: View; height: Height; digest: Hash }[];
  prepares: { epoch: Epoch; view: View; height: Height; digest: Hash }[];
  commits: { epoch: Epoch; view: View; height: Height; digest: Hash; prepared?: PreparedCertificate }[];
  checkpoints: { epoch: Epoch; height: Height; chainHash: Hash; stateRoot: Hash }[];
  /** Encoded bodies of blocks this replica signed a PRE-PREPARE or PREPARE for, above the stable height. */
  bodies: { height: Height; digest: Hash; block: Uint8Array }[];
}

export interface EvidenceRecord {
  sender: ValidatorIndex;
  epoch: Epoch;
  phase: "prePrepare" | "prepare" | "commit";
  view: View;
  height: Height;
  /** Both conflicting signed envelopes, encoded, first seen first. */
  first: Uint8Array;
  second: Uint8Array;
}

export type ReplicaStatus = "recovering" | "validating" | "syncing" | "diverged";

export type Action =
  /** Must be durable (sync) before any later send/broadcast in the same action list. */
  | { kind: "persist"; record: SigningRecord }
  /**
   * `to` is an index in the set of `epoch` when given, else in the set of `msg.envelope.epoch`
   * (the same thing without epochs). Route by that set's public key, never by a bare index.
   */
  | { kind: "send"; to: ValidatorIndex; msg: OutMessage; epoch?: Epoch }
  /**
   * To every other member of the set of `msg.envelope.epoch` (never back to self). With epochs,
   * a retiring instance's broadcasts go to the old set.
   */
  | { kind: "broadcast"; msg: OutMessage }
  /** (Re)arm `timer`; replaces a pending one of the same name. Fire as event timer{timer, token}. */
  | { kind: "setTimer"; timer: TimerName; afterMs: number; token: number }
  | { kind: "cancelTimer"; timer: TimerName }
  /** Committed block, strictly in height order without gaps. `block` is null for a null block. */
  | {
      kind: "deliver";
      height: Height;
      epoch: Epoch;
      block: Block | null;
      digest: Hash;
      certificate: CommitCertificate;
      chainHash: Hash;
    }
  /** The primary may propose `height`: answer with event proposal{height, block}. */
  | { kind: "requestProposal"; height: Height; view: View }
  /** Informational: the core asked `peer` (BlockRequest) for [from, to]. */
  | { kind: "fetchBlocks"; from: Height; to: Height; peer: ValidatorIndex }
  /** The core broadcast a BodyRequest; a driver holding the body may answer with event body. */
  | { kind: "fetchBody"; height: Height; digest: Hash }
  /**
   * A peer asked for committed blocks [from, to]: answer with event blocksForPeer (copy `epoch`:
   * `to` is an index in that epoch's set; absent = the current one).
   */
  | { kind: "serveBlocks"; to: ValidatorIndex; from: Height; toHeight: Height; epoch?: Epoch }
  | { kind: "evidence"; evidence: EvidenceRecord }
  /** Our checkpoint differs from a stable one: the replica stops; report loudly and state-transfer. */
  | { kind: "diverged"; height: Height; ours: Hash; stable: Hash }
  /** A stable checkpoint formed (carries the certificate for storage / state sync). */
  | { kind: "stableCheckpoint"; height: Height; chainHash: Hash; stateRoot: Hash }
  | { kind: "viewChanged"; view: View; primary: ValidatorIndex }
  /**
   * A replica without signing state reports why it still stays silent (the amnesia rule): it
   * waits for a quorum's reports, for its committed height to pass `height`, or for its view to
   * pass `view`; `rejoined` when it votes again. Log it and count it; when the cluster never gets
   * there, the operator rotates the consensus key.
   */
  /** Something the safety argument rules out happened (log at error, count): e.g. a NEW-VIEW re-proposing another digest at a delivered height. */
  | { kind: "alarm"; code: "CONFLICTING_REPROPOSAL"; height: Height; view: View; detail: string }
  | { kind: "amnesia"; reason: "quorum" | "height" | "view" | "rejoined"; height: Height; view: View }
  /**
   * (Epochs.) The replica now works in `epoch`, whose set is `set` (full set, never a diff);
   * `self` is this replica's index in it, or null when it is not a member (it follows the chain
   * and never votes). `boundary` = the last height of the previous epoch (committed: the new set
   * starts at view 0 at boundary + 1); `proof` = the old set's stable checkpoint certificate for
   * the boundary when already known (it may form later: then a `stableCheckpoint` follows).
   * The driver updates the peer transport's membership, status and metrics.
   */
  | {
      kind: "epochChanged";
      epoch: Epoch;
      set: ValidatorSet;
      self: ValidatorIndex | null;
      boundary: Height;
      proof?: CheckpointCertificate;
    };

// ---------------------------------------------------------------------------------------------
// Configuration

export interface TestOnlyFaults {
  /** Counts a quorum as one voting power short of the real threshold. */
  quorumOneShort?: boolean;
  /**
   * Accepts a second, conflicting PRE-PREPARE for (view, height) and votes for it too; also counts
   * conflicting votes of one sender.
   */
  acceptSecondPrePrepare?: boolean;
  /** Does not persist COMMIT records at all: after a restart the prepared certificate is gone. */
  skipPreparedCertPersist?: boolean;
  /**
   * The old commit lock: never COMMIT a second digest at a height, in any view. f Byzantine
   * replicas can split the honest locks so that no digest ever reaches a quorum (deadlock).
   */
  commitLock?: boolean;
  /** Bodies live in memory only (not in the signing records): a whole-cluster crash can halt the chain. */
  volatileBodies?: boolean;
  /** Counts COMMITs of one digest across views into one certificate (unsafe without a lock). */
  stitchCertificates?: boolean;
  /**
   * (Epochs.) Switches to the next epoch's set one height early: the old set stops at B − 1 and
   * the new set orders the boundary B (the off-by-one the handoff invariants must catch).
   */
  switchEpochEarly?: boolean;
}

export interface ConsensusTiming {
  window: number;
  checkpointInterval: number;
  maxExecLag: number;
  viewTimeoutMs: number;
  viewTimeoutCapMs: number;
  maxClockSkewMs: number;
}

/** Where the replica resumes from: the driver's storage (or the sim's memory). */
export interface ReplicaStart {
  /** Highest delivered (committed) height and its chain hash. */
  committedHeight: Height;
  chainHash: Hash;
  executedHeight: Height;
  /** Last stable checkpoint known from storage (0 when none). */
  stableHeight?: Height;
}

export interface ReplicaConfig {
  chainId: string;
  /**
   * This replica's epoch. `Replica` works in this one epoch only; `EpochReplica` (epochs.ts)
   * takes it as a hint and starts in the epoch of the stored committed height + 1.
   */
  epoch: Epoch;
  /** Index in the set of `epoch` (`EpochReplica`: -1 allowed when `publicKey` is given and not a member). */
  self: ValidatorIndex;
  /**
   * (Epochs.) Heights per epoch: epoch e covers floor(h / epochLength) == e, its last height
   * B(e) = (e + 1) × epochLength − 1 is a checkpoint, and the set of `epoch` never orders a height
   * above B(epoch). A multiple of `checkpointInterval`. Absent: one epoch forever.
   */
  epochLength?: number;
  /** (Epochs.) This replica's consensus public key: its identity across epochs (default: members[self] of `epoch`). */
  publicKey?: Uint8Array;
  sets: EpochSets;
  signer: MessageSigner;
  verifier: SignatureVerifier;
  params: ConsensusTiming;
  /** Largest envelope accepted, bytes (limits.maxMessageBytes). */
  maxMessageBytes: number;
  /** Stateless validity of a fresh block (tx format, signatures, sizes); the node checks signatures here. */
  validateBlock?: (block: Block) => Verdict;
  start?: ReplicaStart;
  /** Signing state after a crash; null means "missing": the replica does not vote until caught up. */
  persisted?: PersistedState | null;
  /** Messages from the future buffered per replica (bounded). */
  maxBufferedMessages?: number;
  /**
   * `message` events skip verifying votes this replica will not use (voteNeeded), as the node's
   * driver does for `checked` ones; for the simulator (SimConfig.skipUnneededVotes).
   */
  skipUnneededVotes?: boolean;
  testOnlyFaults?: TestOnlyFaults;
}

/** Result of handing the core one event, with the verdict on the message if the event carried one. */
export interface StepResult {
  actions: Action[];
  verdict: Verdict | null;
  sender: ValidatorIndex | null;
}
