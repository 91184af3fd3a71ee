// The consensus driver: feeds the pure PBFT core events and carries out the actions it returns,
// in order. It owns the clock, the timers, signing-state durability and the sockets' side of
// consensus; the core owns every protocol decision.
import { create } from "@bufbuild/protobuf";
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
  TimerName,
  Verdict,
} from "../consensus/pbft/types.js";
import type { CommittedBlock, Envelope } from "../gen/parabft/v1/consensus_pb.js";
import {
  type Block,
  BlockHeaderSchema,
  BlockSchema,
  type CommitCertificate,
  type SignedTx,
} from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import type { Mempool } from "../mempool/index.js";
import type { PeerNetwork } from "../net/index.js";
import type { ConsensusParams } from "../params/index.js";
import { commitCertificateHash, txHash, txsRoot } from "../types/block.js";
import { bytesEqual, toHex } from "../types/bytes.js";
import { errorMessage } from "../types/errors.js";
import type { Hash } from "../types/hash.js";
import { blockTxIds, rememberBlockTxIds } from "./blockTxIds.js";

import { SigningGroupCommit } from "./groupCommit.js";
import { TRACE, TRACE_ID_HEX, traceAdmitted } from "./trace.js";

/** Mempool rejections no honest gossiping peer can cause (it verifies before it gossips). */
const PROVABLY_INVALID: ReadonlySet<string> = new Set([
  "BAD_SIGNATURE",
  "MALFORMED",
  "WRONG_CHAIN",
  "TX_TOO_LARGE",
]);

/**
 * Gossip batches one peer may have waiting for admission; beyond it a batch is dropped
 * (GOSSIP_BACKLOG). The origin still holds its txs, and the peer rate limit bounds the rest.
 */
const MAX_QUEUED_GOSSIP_BATCHES = 64;
/** Transactions one admission of a peer's queued gossip batches may merge (4 full TxBatches). */
const GOSSIP_MERGE_TXS = 1024;

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

/** A core timer (ConsensusDriver.setTimer): the deadline, and the Node timeout serving it. */
interface LazyTimer {
  handle: NodeJS.Timeout | null;
  /** performance.now() when `handle` fires. */
  handleDue: number;
  /** performance.now() when the timer is due; meaningful while armed. */
  due: number;
  token: number;
  armed: boolean;
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
  /**
   * The core's timers, re-armed lazily: the core re-arms its view timer at every commit, and a
   * Node timeout re-armed per height costs a clear + set (timer-list work and a new Timeout each);
   * instead an armed timer keeps its handle and only moves its deadline. When the handle fires
   * before the deadline it waits out the rest; a cancel only disarms (the handle fires idle).
   */
  private readonly timers = new Map<TimerName, LazyTimer>();
  /** How late (ms) the view timer's last firing ran behind its due time (event-loop lag). */
  private viewTimerLateMs = 0;
  private tickTimer: NodeJS.Timeout | null = null;
  private batchTimer: NodeJS.Timeout | null = null;
  private pendingProposal: bigint | null = null;
  /** Wall-clock time of our last proposal: batches close maxBatchDelayMs after it. */
  private lastProposalAt = 0;
  private lastPendingWork = -1;
  private readonly now: () => number;
  /** Per height: when this replica signed its PREPARE (proposal accepted) and its COMMIT (prepared). */
  private readonly phaseAt = new Map<bigint, { prepareAt: number; commitAt?: number }>();
  /**
   * Proposals this node reaped from its pool (their tx ids are remembered with blockTxIds): their
   * txs are marked in flight only once the core accepts them.
   */
  private readonly reaped = new WeakSet<Block>();
  /** Verdicts of checkBlock, read synchronously by the core's validateBlock hook. */
  private readonly blockVerdicts = new WeakMap<Block, Verdict>();
  /**
   * PRE-PREPAREs whose block is being verified off-thread (checkBlock) before the core sees them.
   * A view timer that expires meanwhile waits for these checks (armHandle): the proposal they carry
   * is the progress that would re-arm it.
   */
  private readonly blockChecks = new Set<Promise<unknown>>();
  /**
   * Per peer: its gossip batches waiting for admission (in arrival order) and whether one of its
   * admissions is running.
   */
  private readonly gossipQueues = new Map<number, { waiting: SignedTx[][]; running: boolean }>();
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
    if (this.batchTimer) clearTimeout(this.batchTimer);
    for (const t of this.timers.values()) if (t.handle !== null) clearTimeout(t.handle);
    this.timers.clear();
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
      // Gossip: verified in the pool's workers, never on the consensus path. One peer's batches are
      // admitted in arrival order: a batch continues its senders' nonce runs from the previous one,
      // which the pool must hold first or the run's far end is refused as NONCE_GAP.
      const queue = this.gossipQueues.get(from) ?? { waiting: [], running: false };
      if (queue.waiting.length >= MAX_QUEUED_GOSSIP_BATCHES) {
        this.judge(from, { kind: "ignore", reason: "GOSSIP_BACKLOG" });
        return;
      }
      this.gossipQueues.set(from, queue);
      const txs = kind.value.txs;
      if (TRACE)
        this.mod.log.debug(
          { from, n: txs.length, txs: txs.map((t) => toHex(txHash(t)).slice(0, TRACE_ID_HEX)) },
          "trace gossip in",
        );
      queue.waiting.push(txs);
      if (!queue.running) void this.drainGossip(from, queue);
      this.judge(from, { kind: "accept" });
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
    // A request held for depth goes at once when the batch is full.
    if (count >= this.opts.maxBlockTxs && this.pendingProposal !== null) this.reconsiderProposal();
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

  /**
   * Admits one peer's gossip batches one admission at a time, in arrival order. The batches that
   * arrived while an admission ran are admitted together, up to GOSSIP_MERGE_TXS (the pool judges
   * a batch in (sender, nonce) order, so the runs continue across them as they did across
   * admissions in a row). p24: one admission per batch, each awaiting its account reads and its
   * signatures, queued batches behind each other for 1.4 s p50 at 200 tx/s on a loaded box.
   */
  private async drainGossip(from: number, queue: { waiting: SignedTx[][]; running: boolean }): Promise<void> {
    queue.running = true;
    try {
      while (queue.waiting.length > 0 && !this.stopped) {
        let txs = queue.waiting.shift()!;
        while (queue.waiting.length > 0 && txs.length + queue.waiting[0]!.length <= GOSSIP_MERGE_TXS)
          txs = txs.concat(queue.waiting.shift()!);
        await this.admitGossip(from, txs);
      }
    } finally {
      queue.running = false;
    }
  }

  /** Admits gossiped txs; a provably invalid tx is its sender's fault. */
  private admitGossip(from: number, txs: SignedTx[]): Promise<void> {
    const at0 = TRACE ? Date.now() : 0;
    return this.mod.mempool.addBatch(txs, "peer").then(
      (results) => {
        if (TRACE) traceAdmitted(this.mod.log, "trace gossip admitted", at0, results, from);
        // Honest peers gossip only transactions they verified: one that is provably invalid
        // whatever the state (bad signature, malformed, other chain, too large) is the sender's fault.
        let bad = 0;
        for (const r of results) if (!r.ok && PROVABLY_INVALID.has(r.error.code)) bad++;
        if (bad > 0) {
          this.mod.metrics?.verdict("reject", "TX_BATCH_INVALID");
          this.mod.net.penalize(from, "TX_BATCH_INVALID", bad);
        }
      },
      (err: unknown) => {
        this.mod.log.warn({ err: errorMessage(err) }, "gossiped batch failed");
      },
    );
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
        if (event.kind === "proposal") this.settleProposal(event.block, actions);
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
          this.setTimer(a.timer, a.afterMs, a.token);
          if (a.timer === "view") viewTimerChanged = true;
          break;
        case "cancelTimer": {
          const t = this.timers.get(a.timer);
          if (t !== undefined) t.armed = false;
          if (a.timer === "view") viewTimerChanged = true;
          break;
        }
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
          this.scheduleProposal(a.height);
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
          // A request held for depth belongs to the old view; the core asks again if still primary.
          this.dropHeldProposal();
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
    if (delivered) this.reconsiderProposal();
    // Records no send waits for are made durable too, in the next batch.
    this.signing.flush();
    if (this.signing.failed) throw new Error("signing state could not be made durable");
  }

  /**
   * The core may drop a proposal (a request it re-issued was answered twice, the view moved, the
   * window filled). Only an accepted one, which it broadcasts as a PRE-PREPARE, takes its
   * transactions out of the pool; a dropped one leaves them to be proposed again, so no nonce is
   * stranded in flight while later ones of the same sender are proposed past it.
   */
  private settleProposal(block: Block, actions: readonly Action[]): void {
    if (!this.reaped.has(block)) return;
    const accepted = actions.some((a) => a.kind === "broadcast" && a.msg.kind === "prePrepare");
    if (!accepted) {
      this.mod.log.debug({ height: String(block.header?.height) }, "proposal dropped by the core");
      return;
    }
    this.lastProposalAt = this.now();
    const height = block.header?.height ?? 0n;
    const pp = actions.find((a) => a.kind === "persist" && a.record.kind === "prePrepare");
    const { hexes } = blockTxIds(block);
    if (pp?.kind === "persist" && pp.record.kind === "prePrepare")
      this.mod.mempool.noteBlock(pp.record.digest, height, block.txs, hexes);
    this.mod.mempool.markProposed(hexes, height);
    this.notifyPendingWork();
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
      lateMs: Math.round(this.viewTimerLateMs),
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

  private setTimer(timer: TimerName, afterMs: number, token: number): void {
    const due = performance.now() + afterMs;
    let t = this.timers.get(timer);
    if (t === undefined) {
      t = { handle: null, handleDue: 0, due, token, armed: true };
      this.timers.set(timer, t);
    }
    t.due = due;
    t.token = token;
    t.armed = true;
    // A handle due later than the new deadline cannot serve it (a shorter timeout after a longer one).
    if (t.handle !== null && t.handleDue <= due) return;
    if (t.handle !== null) clearTimeout(t.handle);
    this.armHandle(timer, t, afterMs);
  }

  private armHandle(timer: TimerName, t: LazyTimer, afterMs: number): void {
    t.handleDue = performance.now() + afterMs;
    t.handle = setTimeout(() => {
      t.handle = null;
      if (!t.armed || this.stopped) return;
      const left = t.due - performance.now();
      // Node timers run on a millisecond clock and may fire up to ~1 ms before `due`.
      if (left >= 1) {
        this.armHandle(timer, t, left);
        return;
      }
      t.armed = false;
      const token = t.token;
      if (timer !== "view") {
        this.push({ kind: "timer", timer, token });
        return;
      }
      this.viewTimerLateMs = -left;
      // The view timer's expiry waits one turn of the event loop: after a stall libuv runs due
      // timers before reading the sockets, so the progress that would have re-armed it may be
      // sitting there unread. Read first; the core then ignores this event's stale token
      // (counted as superseded), or starts a view change as before. Liveness only.
      //
      // Likewise a PRE-PREPARE that arrived before the expiry but whose block is still being
      // verified (a large block on a loaded box takes hundreds of ms): the expiry waits for the
      // checks in flight now (not for later ones, so a stream of proposals cannot hold it off
      // for longer than one check), and the proposal, once checked, re-arms the timer first.
      // Issue 14's overload runs: a backup timed out 24 ms before the PRE-PREPARE it was
      // verifying reached its core, started a view change nobody joined, and sat out the rest of
      // the run (the cluster then needs all three others for every quorum).
      const expire = () => {
        if (!this.stopped) this.push({ kind: "timer", timer, token });
      };
      setImmediate(() => {
        if (this.blockChecks.size === 0) expire();
        else void Promise.allSettled([...this.blockChecks]).then(() => setImmediate(expire));
      });
    }, afterMs);
  }

  /**
   * Batching by pipeline depth: the block rate follows the round time, not a clock. With `h` the
   * height the core asks for, the heights below it that are not yet committed (`h − 1 −
   * committed`, by the core's committed height) are the pipeline:
   * - none: propose at once (light load: one round of latency);
   * - `proposalDepth` or more: wait until one commits (the batch grows meanwhile);
   * - fewer: propose `maxBatchDelayMs` after our previous proposal, or at once when one commits;
   * - a full batch (`maxBlockTxs` executable) goes at once whatever the depth (the core still
   *   bounds it by its window).
   * Each block costs every validator a fixed amount of CPU, so under load blocks grow instead of
   * multiplying. A primary that holds back has `proposalDepth` heights in flight, whose commits
   * are the progress that keeps the backups' view timers from firing; a view change drops the
   * held request (the core asks again if it is still primary). An empty pool proposes nothing.
   */
  private scheduleProposal(height: bigint): void {
    this.pendingProposal = height;
    if (this.batchTimer) {
      clearTimeout(this.batchTimer);
      this.batchTimer = null;
    }
    const wait = this.proposalWait(height);
    if (wait === 0) {
      this.propose();
      return;
    }
    // Infinity: held until a commit (reconsiderProposal) or a full batch (notifyPendingWork).
    if (wait === Number.POSITIVE_INFINITY) return;
    this.batchTimer = setTimeout(() => {
      this.batchTimer = null;
      this.propose();
    }, wait);
  }

  /** Milliseconds before proposing `height`: 0 = now, Infinity = until a height commits. */
  private proposalWait(height: bigint): number {
    if (this.mod.mempool.pendingExecutable() >= this.opts.maxBlockTxs) return 0;
    const inPipeline = height - 1n - this.mod.replica.committedHeight;
    if (inPipeline <= 0n) return 0;
    if (inPipeline >= BigInt(this.opts.consensus.proposalDepth)) return Number.POSITIVE_INFINITY;
    // At most maxBatchDelayMs even when the wall clock stepped back since the last proposal.
    const delay = this.opts.consensus.maxBatchDelayMs;
    return Math.max(0, Math.min(delay, this.lastProposalAt + delay - this.now()));
  }

  private dropHeldProposal(): void {
    this.pendingProposal = null;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
  }

  /** A height committed or the pool filled: a request held for depth may go now. */
  private reconsiderProposal(): void {
    const height = this.pendingProposal;
    if (height === null || this.stopped) return;
    if (this.batchTimer === null || this.proposalWait(height) === 0) this.scheduleProposal(height);
  }

  private propose(): void {
    const height = this.pendingProposal;
    this.pendingProposal = null;
    if (height === null || this.stopped) return;
    const reaped = this.mod.mempool.reap(this.opts.maxBlockTxs, this.opts.maxBlockBytes, height);
    if (reaped.txs.length === 0) {
      // Executable txs that wait behind one in flight at this height or above are not proposable
      // yet: the core asks again on its next tick rather than at once.
      if (this.mod.mempool.pendingExecutable() > 0) return;
      this.lastPendingWork = -1;
      this.notifyPendingWork();
      return;
    }
    const set = this.mod.envelopeContext.sets.get(this.mod.replica.set.epoch)!;
    const lastCommit = this.mod.lastCommit();
    const block = create(BlockSchema, {
      header: create(BlockHeaderSchema, {
        chainId: this.opts.chainId,
        height,
        epoch: set.epoch,
        txsRoot: txsRoot(reaped.hashes),
        validatorsHash: set.hash,
        proposer: this.mod.replica.selfIndex ?? this.opts.self,
        timestampMs: BigInt(this.now()),
        lastCommitHash: lastCommit ? commitCertificateHash(lastCommit) : new Uint8Array(),
      }),
      txs: reaped.txs,
      lastCommit: lastCommit ?? undefined,
    });
    this.mod.log.debug({ height: String(height), txs: reaped.txs.length }, "proposing");
    this.reaped.add(block);
    rememberBlockTxIds(block, reaped.hashes);
    this.mod.metrics?.proposal(reaped.txs.length);
    this.push({ kind: "proposal", height, block, nowMs: BigInt(this.now()) });
  }
}
