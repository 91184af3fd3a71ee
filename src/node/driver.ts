// The consensus driver: feeds the pure PBFT core events and carries out the actions it returns,
// in order. It owns the clock, the timers, signing-state durability and the sockets' side of
// consensus; the core owns every protocol decision.
import {
  type CheckOptions,
  checkEnvelope,
  type EnvelopeContext,
  type VoteFilter,
} from "../consensus/envelope.js";
import type { ConsensusCore } from "../consensus/pbft/epochReplica.js";
import type { PacerReading, StallPhase } from "../consensus/pbft/pace.js";
import type {
  Action,
  CheckedMessage,
  Event,
  EvidenceRecord,
  OutMessage,
  SigningRecord,
  Verdict,
} from "../consensus/pbft/types.js";
import type { CommittedBlock, Envelope } from "../gen/parabft/v1/consensus_pb.js";
import type { Block, CommitCertificate } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import type { Mempool } from "../mempool/index.js";
import type { PeerNetwork } from "../net/index.js";
import type { ConsensusParams } from "../params/index.js";
import { bytesEqual } from "../types/bytes.js";
import { errorMessage } from "../types/errors.js";
import type { Hash } from "../types/hash.js";
import { blockTxIds } from "./blockTxIds.js";
import { CoreTimers } from "./coreTimers.js";
import { GossipIntake } from "./gossipIntake.js";
import { SigningGroupCommit } from "./groupCommit.js";
import { Proposer } from "./proposer.js";
import { TRACE } from "./trace.js";

/** An unchanged status is broadcast every this many ticks (a changed one at the next tick). */
export const STATUS_REPEAT_TICKS = 4;

/** A block the core delivered, in height order. */
export interface Delivered {
  height: bigint;
  epoch: bigint;
  block: Block | null;
  digest: Hash;
  certificate: CommitCertificate;
  chainHash: Hash;
}

export type Phase = "prepared" | "committed";

export interface DriverMetrics {
  verdict(kind: Verdict["kind"], reason: string): void;
  /** Seconds from the previous phase: proposal accepted → prepared → committed (delivered). */
  phase(phase: Phase, seconds: number): void;
  viewChange(view: bigint): void;
  proposal(txs: number): void;
  persistSeconds(seconds: number): void;
  /** A safety alarm from the core (e.g. CONFLICTING_REPROPOSAL). */
  alarm?(code: string): void;
  /** Why a validator without signing state is still silent (amnesia rule), or `rejoined`. */
  amnesia?(reason: string): void;
  /** The core's request timer and pace, after each step that armed or cancelled the view timer. */
  pacer?(reading: PacerReading): void;
  /**
   * The request timer fired (a view change starts): the timeout it was armed with, the longest
   * recent wait the pace knew then, and how late the Node timer ran behind its due time.
   */
  requestTimeout?(fired: RequestTimeoutFired): void;
  /**
   * A due request timer whose expiry, deferred one turn of the event loop, found the timer
   * re-armed by progress read meanwhile: a view change the deferral avoided.
   */
  requestTimerSuperseded?(): void;
  /**
   * A proposed block's transactions were checked: `verified` of its `txs` were not vouched for by
   * the pool (not admitted here, e.g. gossip shed under load) and cost a signature check.
   */
  blockChecked?(txs: number, verified: number): void;
}

export interface RequestTimeoutFired {
  armedTimeoutMs: number;
  longestWaitMs: number;
  lateMs: number;
  /** What the lowest uncommitted height waited for (pace.ts StallPoint), and the votes it held. */
  stalledAt: StallPhase;
  votes: number;
  /** Block checks (proposals being verified) still running when the timeout was acted on. */
  blockChecks: number;
}

export interface DriverOpts {
  chainId: string;
  self: number;
  consensus: ConsensusParams;
  maxBlockTxs: number;
  maxBlockBytes: number;
  /** Status broadcast and fetch retry period. */
  tickMs: number;
}

export interface DriverModules {
  /** `Replica`, or `EpochReplica` when the chain has epochs (`epochLength`). */
  replica: ConsensusCore & {
    readonly selfIndex?: number | null;
    readonly startActions?: Action[];
    /** (Epochs.) A peer's envelope named an epoch whose set is unknown here (we lag). */
    noteEpoch?(epoch: bigint): void;
    /** The request timer and pace, read-only (metrics); undefined while following. */
    readonly pacer?: PacerReading | undefined;
  };
  envelopeContext: EnvelopeContext;
  mempool: Mempool;
  /** The peer network (or, test-only, the Equivocator in front of it). */
  net: Pick<PeerNetwork, "send" | "broadcast" | "penalize">;
  log: Logger;
  /** Durable before the sends that follow it (the signing-state log, fsync'd). */
  persist(records: SigningRecord[]): Promise<void>;
  /** Called for each delivered block in order; the node writes the commit batch and executes. */
  onDeliver(d: Delivered): void;
  /** Committed blocks [from, to] with certificates, for a peer's state transfer. */
  readCommitted(from: bigint, to: bigint): Promise<CommittedBlock[]>;
  /** A block body by digest from storage, when the core asks for one it lacks. */
  readBody(digest: Hash): Promise<Block | null>;
  /**
   * Stateless validity of a fresh block's transactions (signatures in the verify pool, format,
   * chain id, txsRoot). Runs before the core sees the PRE-PREPARE.
   */
  checkBlock(block: Block): Promise<Verdict>;
  onEvidence(e: EvidenceRecord): void;
  onDiverged(height: bigint, ours: Hash, stable: Hash): void;
  onStableCheckpoint(height: bigint): void;
  /** Latest commit certificate, carried in each new block as the agreed record of who signed. */
  lastCommit(): CommitCertificate | null;
  metrics: DriverMetrics | null;
  now?: () => number;
  /**
   * (Epochs.) The core moved to `epoch` (issue 11): update the transport's membership (`set`, by
   * consensus key), the status and the metrics. `self` = our index in `set`, null = follower.
   */
  onEpochChanged?(change: EpochChange): void;
  /**
   * (Epochs.) Sends by (epoch, index): `to` is an index in that epoch's set (resolve its public key
   * there). Without it the driver uses `net.send(to)` / `net.broadcast` (one epoch forever).
   */
  route?: {
    send(epoch: bigint, to: number, bytes: Uint8Array): void;
    broadcast(epoch: bigint, bytes: Uint8Array): void;
  };
  /**
   * (Epochs.) The consensus key of transport peer `from`: an envelope's sender is checked by key
   * (its index differs per epoch). Without it, the sender index must equal `from`.
   */
  peerKey?(from: number): Uint8Array | undefined;
}

export type EpochChange = Extract<Action, { kind: "epochChanged" }>;

/**
 * Serialises all events into the replica (it is not re-entrant) and performs its actions.
 *
 * Signing state is group-committed (groupCommit.ts): every send waits for the records appended
 * before it, and the core keeps handling events while a sync is in flight. Only non-send effects
 * (timers, delivery, mempool marks) may run ahead of the sync, and none of them is a signature.
 * A failed sync halts the driver: nothing queued behind it is ever sent.
 */
export class ConsensusDriver {
  private readonly queue: Event[] = [];
  private running = false;
  private stopped = false;
  /** The core's timers (coreTimers.ts); a due one comes back as a timer event. */
  private readonly timers: CoreTimers;
  private tickTimer: NodeJS.Timeout | null = null;
  /** Builds and times this node's proposals when it is primary (proposer.ts). */
  private readonly proposer: Proposer;
  private lastPendingWork = -1;
  private readonly now: () => number;
  /** Per height: when this replica signed its PREPARE (proposal accepted) and its COMMIT (prepared). */
  private readonly phaseAt = new Map<bigint, { prepareAt: number; commitAt?: number }>();
  /** Verdicts of checkBlock, read synchronously by the core's validateBlock hook. */
  private readonly blockVerdicts = new WeakMap<Block, Verdict>();
  /**
   * PRE-PREPAREs whose block is being verified off-thread (checkBlock) before the core sees them.
   * A view timer that expires meanwhile waits for these checks (coreTimers.ts): the proposal they carry
   * is the progress that would re-arm it.
   */
  private readonly blockChecks = new Set<Promise<unknown>>();
  /** Peers' TxBatches, queued per peer for admission to the pool (gossipIntake.ts). */
  private readonly gossip: GossipIntake;
  /** The signing state's group commit: every send waits for the records appended before it. */
  private readonly signing: SigningGroupCommit;
  /** Per epoch: the payload of the last status broadcast and when it left (repeatsStatus). */
  private readonly lastStatus = new Map<bigint, { payload: Uint8Array; at: number }>();

  /**
   * The core's voteNeeded, asked before a vote's signature is verified (every vote is verified
   * when the core has none). Asked at arrival: the core's state then is at most the queued events
   * behind the one the vote would meet, and prepared / committed never go back.
   */
  private readonly voteFilter: VoteFilter = (q) => {
    const core = this.mod.replica;
    return core.voteNeeded === undefined || core.voteNeeded(q);
  };

  /**
   * Envelopes come from src/net's authenticated streams and onEnvelope rejects one whose sender is
   * not the stream's peer (senderIs), so statuses skip their signature check (CheckOptions).
   */
  private readonly checkOptions: CheckOptions = { voteNeeded: this.voteFilter, senderAuthenticated: true };

  constructor(
    private readonly opts: DriverOpts,
    private readonly mod: DriverModules,
  ) {
    this.now = mod.now ?? Date.now;
    const stopped = () => this.stopped;
    this.timers = new CoreTimers({
      fire: (timer, token) => this.push({ kind: "timer", timer, token }),
      stopped,
      blockChecks: () => this.blockChecks,
    });
    this.proposer = new Proposer(opts, {
      replica: mod.replica,
      mempool: mod.mempool,
      envelopeContext: mod.envelopeContext,
      lastCommit: () => mod.lastCommit(),
      log: mod.log,
      metrics: mod.metrics,
      now: this.now,
      stopped,
      submit: (height, block) => this.push({ kind: "proposal", height, block, nowMs: BigInt(this.now()) }),
      notifyPendingWork: (again) => {
        if (again) this.lastPendingWork = -1;
        this.notifyPendingWork();
      },
    });
    this.gossip = new GossipIntake({
      mempool: mod.mempool,
      net: mod.net,
      log: mod.log,
      metrics: mod.metrics,
      stopped,
    });
    this.signing = new SigningGroupCommit({
      persist: (records) => mod.persist(records),
      synced: (ms, n) => {
        mod.metrics?.persistSeconds(ms / 1000);
        if (TRACE) mod.log.debug({ ms: ms.toFixed(2), n }, "trace persisted");
      },
      failed: (cause, err) => {
        if (this.stopped) return;
        mod.log.fatal(
          { err: errorMessage(err) },
          cause === "persist"
            ? "signing state could not be made durable; halting"
            : "consensus driver failed; halting",
        );
        this.stopped = true;
        mod.onDiverged(-1n, new Uint8Array(), new Uint8Array());
      },
    });
  }

  start(): void {
    // An EpochReplica restarted at a boundary may already have switched: tell the node first.
    const early = this.mod.replica.startActions;
    if (early !== undefined && early.length > 0) this.perform(early.splice(0, early.length));
    this.tickTimer = setInterval(
      () => this.push({ kind: "tick", nowMs: BigInt(this.now()) }),
      this.opts.tickMs,
    );
    this.tickTimer.unref();
    this.push({ kind: "tick", nowMs: BigInt(this.now()) });
  }

  /** Stops timers (events run synchronously: none is in progress); later events are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.proposer.stop();
    this.timers.stop();
    this.queue.length = 0;
    // Messages already signed go out once their batch is durable (as they would have before).
    await this.signing.stop();
  }

  /**
   * Raw envelope bytes from an authenticated peer stream; `envelope`, when the transport already
   * decoded them, is not decoded again.
   */
  onEnvelope(from: number, bytes: Uint8Array, envelope?: Envelope): void {
    if (this.stopped) return;
    const check = checkEnvelope(bytes, this.mod.envelopeContext, envelope, this.checkOptions);
    const msg = check.msg;
    if (msg === undefined) {
      if (
        check.verdict.kind === "ignore" &&
        check.verdict.reason === "FUTURE_EPOCH" &&
        check.epoch !== undefined
      )
        this.mod.replica.noteEpoch?.(check.epoch);
      this.judge(from, check.verdict);
      return;
    }
    // A NEW-VIEW is relayed on its primary's signature (consensus forwardNewView), which the
    // envelope check just verified: relaying it is no offence (src/net lets it through too).
    if (!this.senderIs(from, msg) && msg.message.kind.case !== "newView") {
      this.judge(from, { kind: "reject", reason: "UNKNOWN_SENDER" });
      return;
    }
    const kind = msg.message.kind;
    if (kind.case === "txBatch") {
      this.judge(from, this.gossip.offer(from, kind.value.txs));
      return;
    }
    if (kind.case === "bodyResponse" && kind.value.block?.header) {
      // The envelope check matched the body to its digest: txs of a block prepared without it.
      const b = kind.value.block;
      this.mod.mempool.noteBlock(kind.value.blockDigest, b.header!.height, b.txs, blockTxIds(b).hexes);
    }
    if (kind.case === "prePrepare" && kind.value.block) {
      // Verify the block's signatures off-thread first (mostly cache hits for gossiped txs), so
      // the core's synchronous validateBlock hook only reads verdicts.
      const block = kind.value.block;
      // "trace in" follows once the block is checked: this is its arrival.
      if (TRACE)
        this.mod.log.debug(
          { kind: kind.case, from: msg.sender, height: String(kind.value.height), txs: block.txs.length },
          "trace arrived",
        );
      const checked = this.mod.checkBlock(block).then(
        (verdict) => {
          this.blockVerdicts.set(block, verdict);
          // Remembered so that preparing it (now or in a NEW-VIEW) keeps its txs in flight.
          if (verdict.kind === "accept")
            this.mod.mempool.noteBlock(
              kind.value.blockDigest,
              kind.value.height,
              block.txs,
              blockTxIds(block).hexes,
            );
          this.pushChecked(msg);
        },
        (err: unknown) => this.mod.log.error({ err: errorMessage(err) }, "block pre-verification failed"),
      );
      this.blockChecks.add(checked);
      void checked.finally(() => this.blockChecks.delete(checked));
      return;
    }
    this.pushChecked(msg);
  }

  /** Whether transport peer `from` is the envelope's sender (by consensus key when epochs are on). */
  private senderIs(from: number, msg: CheckedMessage): boolean {
    if (this.mod.peerKey === undefined) return msg.sender === from;
    const key = this.mod.envelopeContext.sets.get(msg.epoch)?.members[msg.sender]?.publicKey;
    const peer = this.mod.peerKey(from);
    return key !== undefined && peer !== undefined && bytesEqual(key, peer);
  }

  /** (Epochs.) The driver added a set to the EpochSets (an election snapshot was executed). */
  setsChanged(): void {
    this.push({ kind: "setsChanged" });
  }

  /** (Epochs.) Committed blocks fetched by the node for a follower (not in the current set). */
  followBlocks(blocks: CommittedBlock[]): void {
    this.push({ kind: "followBlocks", blocks });
  }

  /** The mempool's executable count changed: the core arms request timers / asks for proposals. */
  notifyPendingWork(): void {
    const count = this.mod.mempool.pendingExecutable();
    this.proposer.poolGrew(count);
    if (count === this.lastPendingWork) return;
    this.lastPendingWork = count;
    this.push({ kind: "pendingWork", count });
  }

  executed(height: bigint, stateRoot: Hash): void {
    this.push({ kind: "executed", height, stateRoot });
  }

  private pushChecked(msg: CheckedMessage): void {
    if (TRACE) this.mod.log.debug({ kind: msg.message.kind.case, from: msg.sender }, "trace in");
    this.push({ kind: "checked", msg, nowMs: BigInt(this.now()) });
  }

  /** The core's validateBlock hook: the verdict checkBlock reached before the core saw it. */
  validateBlock(block: Block): Verdict {
    return this.blockVerdicts.get(block) ?? { kind: "reject", reason: "BAD_BLOCK" };
  }

  private judge(from: number, verdict: Verdict): void {
    this.mod.metrics?.verdict(verdict.kind, verdict.kind === "accept" ? "" : verdict.reason);
    if (verdict.kind === "reject") {
      this.mod.log.debug({ peer: from, reason: verdict.reason }, "rejected peer message");
      this.mod.net.penalize(from, verdict.reason);
    }
  }

  private push(event: Event): void {
    if (this.stopped) return;
    this.queue.push(event);
    if (!this.running) this.drain();
  }

  /**
   * Runs queued events to completion. Synchronous (the core and perform() never await), so an
   * event costs no promise or microtask of its own; an event pushed meanwhile (re-entrantly, by
   * an action) runs in the same loop.
   */
  private drain(): void {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const event = this.queue.shift()!;
        const before = event.kind === "timer" && event.timer === "view" ? this.mod.replica.pacer : undefined;
        const { actions, verdict, sender } = this.mod.replica.handle(event);
        if (before?.armedForRequests) {
          const after = this.mod.replica.pacer;
          if (after?.armedForRequests !== true) this.requestTimeoutFired(before);
          // Still armed with the same timeout: progress read in the deferral re-armed it first.
          else this.mod.metrics?.requestTimerSuperseded?.();
        }
        if (verdict !== null && sender !== null) this.judge(sender, verdict);
        if (event.kind === "proposal") this.proposer.settle(event.block, actions);
        this.perform(actions);
      }
    } catch (err: unknown) {
      // A bug or an I/O failure (e.g. the signing state could not be made durable): stop voting
      // rather than risk sending what was not recorded.
      this.mod.log.fatal({ err: errorMessage(err) }, "consensus driver failed; halting");
      this.stopped = true;
      void this.signing.stop();
      this.mod.onDiverged(-1n, new Uint8Array(), new Uint8Array());
    } finally {
      this.running = false;
    }
  }

  /**
   * Whether `msg` (a status the core broadcasts every tick) says nothing new: the same report in the
   * same epoch as the last one sent, less than STATUS_REPEAT_TICKS ticks ago. An idle cluster's
   * statuses repeat themselves, and each costs every peer a signature check; a changed status still
   * goes out at once, and a peer that (re)connects gets ours first from src/net's handshake.
   */
  private repeatsStatus(msg: OutMessage): boolean {
    const now = this.now();
    const epoch = msg.envelope.epoch;
    const last = this.lastStatus.get(epoch);
    if (
      last !== undefined &&
      now - last.at < STATUS_REPEAT_TICKS * this.opts.tickMs &&
      bytesEqual(last.payload, msg.envelope.payload)
    )
      return true;
    this.lastStatus.delete(epoch);
    this.lastStatus.set(epoch, { payload: msg.envelope.payload, at: now });
    // Two epochs overlap at a boundary; older ones are done.
    if (this.lastStatus.size > 2) this.lastStatus.delete(this.lastStatus.keys().next().value!);
    return false;
  }

  private perform(actions: Action[]): void {
    // A view change releases in-flight txs the new view does not re-propose (its PREPARE and
    // PRE-PREPARE records in this same action list mark the ones it does).
    const viewChange = actions.some((a) => a.kind === "viewChanged");
    if (viewChange) this.mod.mempool.beginViewChange();
    let delivered = false;
    let viewTimerChanged = false;
    for (const a of actions) {
      switch (a.kind) {
        case "persist":
          this.signing.append(a.record);
          this.notePhase(a.record);
          if (a.record.kind === "prepare" || a.record.kind === "prePrepare")
            this.mod.mempool.markBlockInFlight(a.record.digest, a.record.height);
          break;
        case "send": {
          const { to, msg } = a;
          const route = this.mod.route;
          const epoch = a.epoch;
          this.signing.sendWhenDurable(() =>
            route !== undefined
              ? route.send(epoch ?? msg.envelope.epoch, to, msg.bytes)
              : this.mod.net.send(to, msg.bytes),
          );
          break;
        }
        case "broadcast": {
          const msg = a.msg;
          if (msg.kind === "status" && this.repeatsStatus(msg)) break;
          const route = this.mod.route;
          this.signing.sendWhenDurable(() => {
            if (TRACE) this.mod.log.debug({ kind: msg.kind }, "trace broadcast");
            if (route !== undefined) route.broadcast(msg.envelope.epoch, msg.bytes);
            else this.mod.net.broadcast(msg.bytes);
          });
          break;
        }
        case "epochChanged":
          this.mod.envelopeContext.currentEpoch = a.epoch;
          this.mod.log.info(
            { epoch: String(a.epoch), self: a.self, boundary: String(a.boundary), members: a.set.size },
            a.self === null ? "entered epoch as a follower" : "entered epoch",
          );
          this.mod.onEpochChanged?.(a);
          break;
        case "setTimer":
          this.timers.set(a.timer, a.afterMs, a.token);
          if (a.timer === "view") viewTimerChanged = true;
          break;
        case "cancelTimer":
          this.timers.cancel(a.timer);
          if (a.timer === "view") viewTimerChanged = true;
          break;
        case "deliver":
          delivered = true;
          this.mod.log.debug({ height: String(a.height) }, "delivered");
          this.observeCommitted(a.height);
          this.mod.onDeliver({
            height: a.height,
            epoch: a.epoch,
            block: a.block,
            digest: a.digest,
            certificate: a.certificate,
            chainHash: a.chainHash,
          });
          break;
        case "requestProposal":
          this.mod.log.debug({ height: String(a.height) }, "proposal requested");
          this.proposer.schedule(a.height);
          break;
        case "fetchBlocks":
          this.mod.log.debug({ from: a.from, to: a.to, peer: a.peer }, "catching up");
          break;
        case "fetchBody":
          void this.mod.readBody(a.digest).then(
            (block) => {
              if (!block) return;
              this.mod.mempool.noteBlock(a.digest, a.height, block.txs, blockTxIds(block).hexes);
              this.push({ kind: "body", block });
            },
            (err: unknown) => this.mod.log.warn({ err: errorMessage(err) }, "could not read a body"),
          );
          break;
        case "serveBlocks":
          void this.mod.readCommitted(a.from, a.toHeight).then(
            (blocks) =>
              this.push({
                kind: "blocksForPeer",
                to: a.to,
                blocks,
                ...(a.epoch !== undefined ? { epoch: a.epoch } : {}),
              }),
            (err: unknown) => this.mod.log.warn({ err: errorMessage(err) }, "could not serve blocks"),
          );
          break;
        case "evidence":
          this.mod.onEvidence(a.evidence);
          break;
        case "diverged":
          this.mod.onDiverged(a.height, a.ours, a.stable);
          break;
        case "stableCheckpoint":
          this.mod.onStableCheckpoint(a.height);
          break;
        case "alarm":
          this.mod.log.error({ code: a.code, height: String(a.height), view: String(a.view) }, a.detail);
          this.mod.metrics?.alarm?.(a.code);
          break;
        case "amnesia":
          if (a.reason === "rejoined") {
            this.mod.log.warn(
              { height: String(a.height), view: String(a.view) },
              "signing state was lost: votes again",
            );
          } else {
            this.mod.log.warn(
              { reason: a.reason, waitHeightAbove: String(a.height), waitViewAbove: String(a.view) },
              "signing state was lost: silent until past every height and view a previous life could have signed (or rotate the consensus key)",
            );
          }
          this.mod.metrics?.amnesia?.(a.reason);
          break;
        case "viewChanged":
          this.proposer.dropHeld();
          this.mod.log.info({ view: a.view, primary: a.primary }, "entered view");
          this.mod.metrics?.viewChange(a.view);
          break;
      }
    }
    if (viewTimerChanged) {
      const pacer = this.mod.replica.pacer;
      if (pacer !== undefined) this.mod.metrics?.pacer?.(pacer);
    }
    if (viewChange) {
      // Transactions of abandoned proposals return to the pool to be proposed again.
      this.mod.mempool.endViewChange();
      this.lastPendingWork = -1;
      this.notifyPendingWork();
    }
    // A commit frees a slot of the proposer's pipeline.
    if (delivered) this.proposer.reconsider();
    // Records no send waits for are made durable too, in the next batch.
    this.signing.flush();
    if (this.signing.failed) throw new Error("signing state could not be made durable");
  }

  /** Phase latencies from the signing records, which carry their height. */
  private notePhase(record: SigningRecord): void {
    if (record.kind === "prepare" && !this.phaseAt.has(record.height)) {
      this.phaseAt.set(record.height, { prepareAt: performance.now() });
    } else if (record.kind === "commit") {
      const p = this.phaseAt.get(record.height);
      if (p && p.commitAt === undefined) {
        p.commitAt = performance.now();
        this.mod.metrics?.phase("prepared", (p.commitAt - p.prepareAt) / 1000);
      }
    }
  }

  /**
   * The request timer fired and the core started a view change: why (pace.ts PacerReading). A
   * timeout far above twice the longest recent wait says the cluster stalled; one near it says
   * a phase got slower than the pace had seen; a large `lateMs` says this node's event loop did.
   */
  private requestTimeoutFired(before: PacerReading): void {
    const fired: RequestTimeoutFired = {
      armedTimeoutMs: before.armedTimeoutMs,
      longestWaitMs: before.longestWaitMs,
      lateMs: Math.round(this.timers.viewTimerLateMs),
      stalledAt: before.stall.phase,
      votes: before.stall.votes,
      blockChecks: this.blockChecks.size,
    };
    this.mod.metrics?.requestTimeout?.(fired);
    this.mod.log.warn(
      {
        ...fired,
        height: String(before.stall.height),
        view: String(this.mod.replica.view),
        committed: String(this.mod.replica.committedHeight),
      },
      "request timeout: starting a view change",
    );
  }

  private observeCommitted(height: bigint): void {
    const p = this.phaseAt.get(height);
    if (p?.commitAt !== undefined)
      this.mod.metrics?.phase("committed", (performance.now() - p.commitAt) / 1000);
    // Heights delivered by state transfer never had phases here; drop everything at or below.
    for (const h of this.phaseAt.keys()) if (h <= height) this.phaseAt.delete(h);
  }
}
