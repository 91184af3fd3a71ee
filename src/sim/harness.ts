// The simulated process around each replica's real core: starting it (fresh, after a crash,
// after a wipe), crashing it, and carrying out each step's actions in order (persist → durable
// records; send/broadcast → the network; setTimer → virtual timers; deliver → checks, storage
// and the executor; serveBlocks/fetchBody → answered from the replica's own storage), with the
// replica's skewed clock.
import { EpochReplica } from "../consensus/pbft/epochReplica.js";
import { foldSigningRecords } from "../consensus/pbft/persist.js";
import { Replica } from "../consensus/pbft/replica.js";
import type {
  Action,
  ConsensusTiming,
  Event,
  OutMessage,
  ReplicaConfig,
  Verdict,
} from "../consensus/pbft/types.js";
import type { EpochSets } from "../consensus/valset/index.js";
import type { CommittedBlock } from "../gen/parabft/v1/consensus_pb.js";
import type { Block } from "../gen/parabft/v1/types_pb.js";
import { GENESIS_CHAIN_HASH } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { SIM_CHAIN_ID, type SimConfig } from "./config.js";
import type { SimElections } from "./elections.js";
import { FakeExecutor } from "./executor.js";
import type { FaultPlan, RestartMode } from "./faults.js";
import type { OrderChecker, Violation } from "./invariants.js";
import type { Prng } from "./prng.js";
import type { EventQueue } from "./queue.js";
import type { StandInKeyRegistry } from "./signer.js";
import type { SimStakingState } from "./staking.js";
import { type TraceHash, TraceTag } from "./trace.js";
import type { QEvent, SimNode } from "./types.js";
import { SimMempool, statelessTxProblem } from "./workload.js";

/** Virtual time 0 maps to this unix time in block timestamps. */
const GENESIS_MS = 1_700_000_000_000n;

export interface NodeHarnessOptions {
  cfg: SimConfig;
  timing: ConsensusTiming;
  sets: EpochSets;
  plan: FaultPlan;
  execDelayMs: number;
}

export interface NodeHarnessModules {
  q: EventQueue<QEvent>;
  registry: StandInKeyRegistry;
  trace: TraceHash;
  order: OrderChecker;
  violations: Violation[];
  /** (Epochs) the set and staking half of the run, or null. */
  elections: SimElections | null;
  rng: Prng;
  execRng: Prng;
  crashRng: Prng;
  /** The outgoing side (messaging.ts). */
  send: (node: SimNode, to: readonly number[], msg: OutMessage) => void;
  /** A committed block reaching the replica's driver (deliveries.ts). */
  deliver: (node: SimNode, a: Extract<Action, { kind: "deliver" }>) => void;
}

export class NodeHarness {
  readonly tickMs = 400;
  /** The highest view an honest core reached (the run's view-change count). */
  maxView = 0n;
  private midStepCrashes = 0;

  constructor(
    private readonly opts: NodeHarnessOptions,
    private readonly modules: NodeHarnessModules,
  ) {}

  private get now(): number {
    return this.modules.q.now;
  }

  /** A fresh executor's staking state (with epochs), or null. */
  stakingStateFor(replica: number): SimStakingState | null {
    return this.modules.elections?.stakingStateFor(replica) ?? null;
  }

  // ---------------------------------------------------------------------------------------
  // Core lifecycle

  startCore(node: SimNode, fresh: boolean, signingStateLost = false): void {
    if (signingStateLost) node.records = [];
    const config: ReplicaConfig = {
      chainId: SIM_CHAIN_ID,
      epoch: 0n,
      self: node.index,
      ...(this.opts.cfg.epochLength !== undefined
        ? { epochLength: this.opts.cfg.epochLength, publicKey: node.signer.publicKey }
        : {}),
      sets: this.opts.sets,
      signer: node.signer,
      verifier: this.modules.registry,
      params: this.opts.timing,
      maxMessageBytes: 4 * 1024 * 1024,
      validateBlock: (block) => this.validateBlock(block),
      start: {
        committedHeight: node.committedHeight,
        chainHash: node.chainHash,
        executedHeight: node.exec.executedHeight,
        stableHeight: node.stableHeight,
      },
      persisted: fresh ? undefined : signingStateLost ? null : foldSigningRecords(node.records),
      testOnlyFaults: node.honest ? this.opts.cfg.testOnlyFaults : undefined,
      ...(this.opts.cfg.skipUnneededVotes ? { skipUnneededVotes: true } : {}),
    };
    const core = this.opts.cfg.epochLength === undefined ? new Replica(config) : new EpochReplica(config);
    node.core = core;
    node.timers.clear();
    node.mempool = new SimMempool();
    node.bodies = new Map();
    for (const cb of node.blocks.values())
      if (cb.block !== undefined) node.bodies.set(toHex(cb.certificate!.blockDigest), cb.block);
    node.reportedPending = 0;
    this.modules.order.resume(node.index, node.committedHeight);
    // Blocks committed but not executed before the crash are executed again (DESIGN §5).
    for (let h = node.exec.executedHeight + 1n; h <= node.committedHeight; h++) {
      const cb = node.blocks.get(h)!;
      node.exec.enqueue(h, cb.certificate!.blockDigest, cb.block?.txs ?? []);
    }
    if (node.exec.pending > 0) this.scheduleExec(node);
    this.modules.q.schedule(fresh ? this.modules.rng.int(this.tickMs) : 0, {
      k: "tick",
      r: node.index,
      life: node.life,
    });
    if (core instanceof EpochReplica) for (const a of core.startActions.splice(0)) this.act(node, a);
  }

  crash(node: SimNode): void {
    if (node.core === null) return;
    node.core = null;
    node.life++;
    node.exec.crash();
    node.timers.clear();
    this.modules.trace.record(TraceTag.crashed, this.now, node.index);
  }

  restart(node: SimNode, mode: RestartMode = "normal"): void {
    if (node.core !== null || this.modules.elections?.downForGood.has(node.index)) return;
    node.life++;
    this.modules.trace.record(TraceTag.restarted, this.now, node.index, mode.length);
    if (mode === "wipeData") {
      node.blocks.clear();
      node.chainHashes.clear();
      node.committedHeight = 0n;
      node.chainHash = GENESIS_CHAIN_HASH;
      node.lastCert = null;
      node.stableHeight = 0n;
      node.exec = new FakeExecutor(this.stakingStateFor(node.index));
    }
    this.startCore(node, false, mode === "loseSigningState");
  }

  // ---------------------------------------------------------------------------------------
  // Steps: one event into a core, its actions carried out in order

  clock(node: SimNode): bigint {
    return GENESIS_MS + BigInt(this.now + node.skewMs);
  }

  /** Hands one event to a replica's core and carries out its actions in order. */
  feed(node: SimNode, event: Event): Verdict | null {
    const core = node.core;
    if (core === null) return null;
    const res = core.handle(event);
    const life = node.life;
    // crashmidstep: the process dies after any prefix of this step's actions.
    const cut = this.midStepCrashPoint(node, res.actions.length);
    for (let i = 0; i < res.actions.length; i++) {
      if (node.life !== life) break;
      if (i === cut) break;
      this.act(node, res.actions[i]!);
    }
    if (cut >= 0 && node.life === life) {
      // A torn last write: the record whose sync never completed. Nothing after it was sent.
      if (cut > 0 && res.actions[cut - 1]!.kind === "persist" && this.modules.crashRng.chance(1, 2))
        node.records.pop();
      this.midStepCrashes++;
      this.crash(node);
      this.modules.q.schedule(50 + this.modules.crashRng.int(1000), {
        k: "fault",
        ev: { at: 0, kind: "restart", replica: node.index },
      });
      return res.verdict;
    }
    if (core.view > this.maxView && node.honest) this.maxView = core.view;
    if (node.life === life) this.reportPending(node);
    return res.verdict;
  }

  private act(node: SimNode, a: Action): void {
    switch (a.kind) {
      case "persist":
        node.records.push(a.record);
        return;
      case "send": {
        const elections = this.modules.elections;
        if (elections === null) {
          this.modules.send(node, [a.to], a.msg);
          return;
        }
        const r = elections.nodeAt(a.epoch ?? a.msg.envelope.epoch, a.to);
        if (r !== undefined && r !== node.index) this.modules.send(node, [r], a.msg);
        return;
      }
      case "broadcast": {
        const to: number[] = [];
        if (this.modules.elections === null) {
          for (let i = 0; i < this.opts.cfg.n; i++) if (i !== node.index) to.push(i);
        } else {
          to.push(...this.modules.elections.membersOf(a.msg.envelope.epoch, node.index));
        }
        this.modules.send(node, to, a.msg);
        return;
      }
      case "epochChanged":
        if (node.honest) this.modules.elections?.onEpochChanged(a.epoch);
        node.adversary?.enterEpoch(a.epoch, a.set);
        return;
      case "setTimer":
        node.timers.set(a.timer, a.token);
        this.modules.q.schedule(a.afterMs, {
          k: "timer",
          r: node.index,
          life: node.life,
          timer: a.timer,
          token: a.token,
        });
        return;
      case "cancelTimer":
        node.timers.delete(a.timer);
        return;
      case "deliver":
        this.modules.deliver(node, a);
        return;
      case "requestProposal":
        this.modules.q.schedule(this.modules.rng.int(10), {
          k: "build",
          r: node.index,
          life: node.life,
          height: a.height,
        });
        return;
      case "fetchBlocks":
        return;
      case "fetchBody": {
        const b = node.bodies.get(toHex(a.digest));
        if (b !== undefined) this.local(node, { kind: "body", block: b });
        return;
      }
      case "serveBlocks": {
        const blocks: CommittedBlock[] = [];
        const last = a.toHeight < a.from + 63n ? a.toHeight : a.from + 63n;
        for (let h = a.from; h <= last; h++) {
          const cb = node.blocks.get(h);
          if (cb === undefined) break;
          blocks.push(cb);
        }
        if (blocks.length > 0)
          this.local(node, {
            kind: "blocksForPeer",
            to: a.to,
            blocks,
            ...(a.epoch !== undefined ? { epoch: a.epoch } : {}),
          });
        return;
      }
      case "stableCheckpoint":
        if (a.height > node.stableHeight) node.stableHeight = a.height;
        return;
      case "diverged":
        if (node.honest) {
          this.modules.violations.push({
            invariant: "agreement",
            atMs: this.now,
            replica: node.index,
            height: a.height,
            detail: `honest replica ${node.index} diverged from a stable checkpoint at height ${a.height}`,
          });
        }
        return;
      case "viewChanged":
        node.mempool.releaseAll();
        return;
      case "evidence":
        return;
    }
  }

  /** Index of the first action not carried out, or -1 (no crash). At most 3 per seed, before T. */
  private midStepCrashPoint(node: SimNode, actions: number): number {
    const p = this.opts.plan.crashMidStepPerTenThousand;
    if (p === 0 || !node.honest || actions < 2 || this.midStepCrashes >= 3) return -1;
    if (this.now >= this.opts.plan.stableAtMs - 1600) return -1;
    if (!this.modules.crashRng.chance(p, 10_000)) return -1;
    return this.modules.crashRng.int(actions);
  }

  local(node: SimNode, event: Event): void {
    this.modules.q.schedule(0, { k: "local", r: node.index, life: node.life, event });
  }

  scheduleExec(node: SimNode): void {
    if (node.exec.busy) return;
    node.exec.busy = true;
    this.modules.q.schedule(
      this.opts.execDelayMs > 0 ? this.modules.execRng.int(this.opts.execDelayMs + 1) : 0,
      {
        k: "exec",
        r: node.index,
        life: node.life,
      },
    );
  }

  reportPending(node: SimNode): void {
    const count = node.mempool.pendingWork();
    if (count === node.reportedPending) return;
    node.reportedPending = count;
    this.local(node, { kind: "pendingWork", count });
  }

  private validateBlock(block: Block): Verdict {
    for (const tx of block.txs) {
      if (statelessTxProblem(tx, SIM_CHAIN_ID, this.modules.registry) !== null)
        return { kind: "reject", reason: "BAD_BLOCK" };
    }
    return { kind: "accept" };
  }
}
