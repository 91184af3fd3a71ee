// One seeded simulation run: n replicas of the real PBFT core, driven through the real
// envelope checks, over a simulated network with faults, checked incrementally against the
// invariants. Everything that varies comes from the seed; nothing reads a wall clock.
import { createHash } from "node:crypto";
import { create, fromBinary } from "@bufbuild/protobuf";
import { epochOfHeight } from "../consensus/epochs.js";
import { committedBlockOf, EpochReplica } from "../consensus/pbft/epochReplica.js";
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
import { type EpochSets, StaticEpochSets, ValidatorSet } from "../consensus/valset/index.js";
import { type CommittedBlock, PeerMessageSchema } from "../gen/parabft/v1/consensus_pb.js";
import { type Block, BlockSchema } from "../gen/parabft/v1/types_pb.js";
import {
  blockDigest,
  commitCertificateHash,
  GENESIS_CHAIN_HASH,
  nullBlockDigest,
  txsRoot,
} from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { Adversary, Collusion, type Outgoing } from "./byzantine.js";
import {
  DEFAULT_STABLE_AT_MS,
  LIVENESS_K,
  replayCommand,
  SIM_CHAIN_ID,
  SIM_TIMING,
  type SimConfig,
  type SimResult,
  seedSecret,
} from "./config.js";
import { SimElections } from "./elections.js";
import { FakeExecutor } from "./executor.js";
import { type FaultPlan, planFaults, type RestartMode, type TimelineEvent } from "./faults.js";
import {
  AgreementChecker,
  LivenessChecker,
  OrderChecker,
  ValidityChecker,
  type Violation,
} from "./invariants.js";
import { SimNetwork } from "./network.js";
import { Prng } from "./prng.js";
import { EventQueue } from "./queue.js";
import { StandInKeyRegistry, type StandInSigner } from "./signer.js";
import { SIM_BYZANTINE_SELF_STAKE, SIM_SELF_STAKE, type SimStakingState } from "./staking.js";
import { STITCH_BYZANTINE, StitchAttack } from "./stitch.js";
import { TraceHash, TraceTag } from "./trace.js";
import type { QEvent, SimNode } from "./types.js";
import { SimClient, SimMempool, type SimTx, simTx, statelessTxProblem } from "./workload.js";

/** Virtual time 0 maps to this unix time in block timestamps. */
const GENESIS_MS = 1_700_000_000_000n;
/** Clients resubmit uncommitted transactions this often (virtual ms). */
const RETRY_MS = 1000;
const DEFAULT_TX_INTERVAL_MS: [number, number] = [150, 900];

export function runSimulation(cfg: SimConfig): SimResult {
  return new Simulation(cfg).run();
}

export class Simulation {
  private readonly q = new EventQueue<QEvent>();
  private readonly rng: Prng;
  private readonly netRng: Prng;
  private readonly clientRng: Prng;
  private readonly execRng: Prng;
  private readonly crashRng: Prng;
  private readonly registry = new StandInKeyRegistry();
  private readonly set: ValidatorSet;
  private readonly sets: EpochSets;
  /** Replicas in the pool: n, plus the extra validators with epochs. */
  private readonly poolSize: number;
  /** (Epochs) staking, elections and the handoff checks (src/sim/elections.ts); null without epochs. */
  private readonly elections: SimElections | null;
  private readonly nodeOfKey = new Map<string, number>();
  private readonly nodes: SimNode[] = [];
  private readonly clients: SimClient[] = [];
  private readonly network: SimNetwork;
  private readonly plan: FaultPlan;
  private readonly trace = new TraceHash();
  private readonly agreement = new AgreementChecker();
  private readonly order = new OrderChecker();
  private readonly validity: ValidityChecker;
  private readonly liveness: LivenessChecker;
  private readonly violations: Violation[] = [];
  private readonly allTxs = new Map<string, SimTx>();
  private readonly clientPending: { tx: SimTx; at: number }[][] = [];
  private readonly proposedAt = new Map<bigint, number>();
  private readonly firstDelivered = new Set<bigint>();
  private readonly commitLatencies: number[] = [];
  private readonly timing: ConsensusTiming;
  private readonly durationMs: number;
  private readonly submitUntilMs: number;
  private readonly execDelayMs: number;
  private readonly tickMs = 400;
  private steps = 0;
  private messages = 0;
  private rejectedByHonest = 0;
  private expectationsChecked = 0;
  private txSubmitted = 0;
  private firstCommitMs = -1;
  private maxView = 0n;
  private stabilised = false;
  /** height -> digests some honest replica signed a COMMIT for (statistics only). */
  private readonly honestCommitted = new Map<bigint, Set<string>>();
  private newViewOverrides = 0;
  /** The scripted stitch attack (faults `stitch`), or null. */
  readonly stitch: StitchAttack | null = null;

  constructor(private readonly cfg: SimConfig) {
    const root = new Prng(cfg.seed);
    this.rng = root.fork(1);
    this.netRng = root.fork(2);
    this.clientRng = root.fork(3);
    this.execRng = root.fork(4);
    this.crashRng = root.fork(5);
    const planRng = root.fork(6);
    const stakeRng = root.fork(8);
    this.timing = cfg.timing ?? SIM_TIMING;
    const stableAtMs = cfg.stableAtMs ?? DEFAULT_STABLE_AT_MS;
    const k = cfg.livenessK ?? LIVENESS_K;
    const deadline = k * this.timing.viewTimeoutCapMs;
    this.durationMs = cfg.durationMs ?? stableAtMs + deadline + 500;
    this.submitUntilMs = cfg.submitUntilMs ?? this.durationMs - deadline;
    this.execDelayMs = cfg.execDelayMs ?? 20;
    const L = cfg.epochLength;
    // With epochs every set has equal powers (the crash budget counts replicas) and no scripted stitch.
    const planFaultKinds =
      L === undefined ? cfg.faults : cfg.faults.filter((f) => f !== "weighted" && f !== "stitch");
    this.plan = planFaults(planRng, {
      n: cfg.n,
      byzantine: cfg.byzantine,
      faults: planFaultKinds,
      stableAtMs,
    });
    if (cfg.byzantineRoles !== undefined) this.plan.byzantine = cfg.byzantineRoles;
    if (L !== undefined) {
      // Byzantine replicas become 0..k−1 and sit in every set at the same index (the adversary
      // signs with one index); the honest ones move between sets and indices.
      const roles = [...this.plan.byzantine.values()];
      this.plan.byzantine = new Map(roles.map((b, i) => [i, b]));
      // Genesis powers are the self stakes (the power rule in src/sim/staking.ts).
      this.plan.powers = this.plan.powers.map((_, i) =>
        i < roles.length ? SIM_BYZANTINE_SELF_STAKE - BigInt(i) : SIM_SELF_STAKE,
      );
    }
    this.poolSize = L === undefined ? cfg.n : cfg.n + (cfg.extraValidators ?? 1);
    if (cfg.network !== undefined) {
      this.plan.profile = cfg.network;
      this.plan.stableProfile = { ...cfg.network, lossPerMille: 0 };
    }
    if (cfg.crashedAtStart !== undefined) {
      for (const r of cfg.crashedAtStart.replicas) {
        this.plan.timeline.unshift({ at: 0, kind: "crash", replica: r });
        if (cfg.crashedAtStart.restartAtMs !== undefined)
          this.plan.timeline.push({ at: cfg.crashedAtStart.restartAtMs, kind: "restart", replica: r });
      }
      this.plan.timeline.sort((a, b) => a.at - b.at);
    }
    this.liveness = new LivenessChecker(stableAtMs, deadline);
    this.validity = new ValidityChecker((h) =>
      nullBlockDigest(SIM_CHAIN_ID, L === undefined ? 0n : epochOfHeight(h, L), h),
    );
    this.network = new SimNetwork(this.poolSize, this.plan.profile, this.netRng);

    const signers: StandInSigner[] = [];
    for (let i = 0; i < this.poolSize; i++) {
      signers.push(this.registry.newSigner(seedSecret(cfg.seed, "validator", i)));
      this.nodeOfKey.set(toHex(signers[i]!.publicKey), i);
    }
    this.set = new ValidatorSet(
      0n,
      signers.slice(0, cfg.n).map((s, i) => ({ publicKey: s.publicKey, power: this.plan.powers[i] ?? 1n })),
    );
    const clientCount = cfg.clients ?? 3;
    this.elections =
      L === undefined
        ? null
        : new SimElections(
            {
              cfg,
              epochLength: L,
              poolSize: this.poolSize,
              clientCount,
              byzantine: this.plan.byzantine.size,
              powers: this.plan.powers,
              genesis: this.set,
              signers,
              nodeOfKey: this.nodeOfKey,
              stakeRng,
            },
            {
              registry: this.registry,
              now: () => this.q.now,
              nodes: this.nodes,
              schedule: (afterMs, e) => this.q.schedule(afterMs, e),
              violation: (v) => this.violations.push(v),
              isCommitted: (txHash) => this.liveness.isCommitted(txHash),
            },
          );
    this.sets = this.elections?.sets ?? new StaticEpochSets([this.set]);
    const collusion = new Collusion();
    for (let i = 0; i < this.poolSize; i++) {
      const behaviours = this.plan.byzantine.get(i);
      const node: SimNode = {
        index: i,
        honest: behaviours === undefined,
        signer: signers[i]!,
        adversary: null,
        core: null,
        life: 0,
        skewMs: this.rng.int(41) - 20,
        records: [],
        blocks: new Map(),
        committedHeight: 0n,
        chainHash: GENESIS_CHAIN_HASH,
        chainHashes: new Map(),
        lastCert: null,
        stableHeight: 0n,
        exec: new FakeExecutor(this.stakingStateFor(i)),
        mempool: new SimMempool(),
        timers: new Map(),
        bodies: new Map(),
        reportedPending: 0,
        sentPrePrepare: false,
      };
      if (behaviours !== undefined) {
        collusion.members.push(i);
        node.adversary = new Adversary({
          index: i,
          n: cfg.n,
          chainId: SIM_CHAIN_ID,
          epoch: 0n,
          signer: signers[i]!,
          behaviours,
          doubleVote: this.plan.doubleVote,
          alwaysCross: this.plan.alwaysCross,
          nvQuorum: this.plan.nvQuorum,
          withhold: this.plan.withhold,
          flood: this.plan.flood,
          set: this.set,
          ...(L !== undefined ? { epochLength: L } : {}),
          rng: this.rng.fork(100 + i),
          collusion,
          onProposed: (b) => this.validity.recordProposal(blockDigest(b.header!), { proposer: i }),
        });
      }
      this.nodes.push(node);
    }
    if (this.plan.stitch) {
      this.stitch = new StitchAttack({
        chainId: SIM_CHAIN_ID,
        epoch: 0n,
        signer: signers[STITCH_BYZANTINE]!,
        stableAtMs: this.plan.stableAtMs,
      });
    }
    for (let c = 0; c < clientCount; c++) {
      this.clientPending.push([]);
      this.clients.push(
        new SimClient(SIM_CHAIN_ID, this.registry, (i) => seedSecret(cfg.seed, `client${c}`, i)),
      );
    }
  }

  private get now(): number {
    return this.q.now;
  }

  /** A fresh executor's staking state (with epochs), or null. */
  private stakingStateFor(replica: number): SimStakingState | null {
    return this.elections?.stakingStateFor(replica) ?? null;
  }

  run(): SimResult {
    for (const node of this.nodes) this.startCore(node, true);
    for (const ev of this.plan.timeline) this.q.scheduleAt(ev.at, { k: "fault", ev });
    const [lo, hi] = this.cfg.txIntervalMs ?? DEFAULT_TX_INTERVAL_MS;
    // (Epochs) The extra validators register at once (their operators' first transactions).
    for (const t of this.elections?.registrationTxs() ?? []) this.submitTx(0, t);
    this.clients.forEach((_, c) => {
      this.q.schedule(this.clientRng.range(lo, hi), { k: "submit", client: c });
      this.q.schedule(RETRY_MS + this.clientRng.int(RETRY_MS), { k: "retry", client: c });
    });
    const maxSteps = this.cfg.maxSteps ?? 3_000_000;
    let truncated = false;
    while (this.violations.length === 0) {
      const t = this.q.peekTime();
      if (t === undefined || t > this.durationMs) break;
      if (this.steps >= maxSteps) {
        truncated = true;
        break;
      }
      const e = this.q.pop()!;
      this.steps++;
      try {
        this.handle(e.item);
      } catch (err: unknown) {
        this.violations.push({
          invariant: "exception",
          atMs: this.now,
          detail: `exception while handling ${e.item.k}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        });
      }
      if (this.stabilised && this.cfg.checkLiveness !== false && this.violations.length === 0) {
        const v = this.liveness.check(this.now);
        if (v !== null) this.violations.push(v);
      }
      // Clients are done and everything they sent has committed: only status chatter is left.
      if (this.stabilised && this.now > this.submitUntilMs && this.liveness.pendingCount === 0) {
        break;
      }
    }
    if (this.violations.length === 0 && !truncated && this.cfg.checkLiveness !== false) {
      const v = this.liveness.check(this.durationMs);
      if (v !== null) this.violations.push(v);
    }
    const latencies = this.liveness.commitLatencies;
    const e = this.elections;
    return {
      seed: this.cfg.seed,
      n: this.cfg.n,
      byzantine: this.plan.byzantine.size,
      faults: this.cfg.faults.join(",") || "none",
      traceHash: this.trace.digestHex(),
      committedHeight: this.agreement.heights,
      viewChanges: Number(this.maxView),
      simulatedMs: Math.min(this.now, this.durationMs),
      steps: this.steps,
      messages: this.messages,
      txSubmitted: this.txSubmitted,
      txCommitted: this.liveness.committedCount,
      violations: this.violations,
      firstCommitMs: this.firstCommitMs,
      commitLatenciesMs: this.commitLatencies,
      txLatenciesMs: latencies,
      rejectedByHonest: this.rejectedByHonest,
      expectationsChecked: this.expectationsChecked,
      truncated,
      newViewOverrides: this.newViewOverrides,
      stitchReached: this.stitch?.stitchable ?? false,
      replay: replayCommand(this.cfg),
      epochsReached: Number(e?.epochsReached ?? 0n),
      handoffMs: e?.handoffMs ?? [],
      commitGapsMs: e?.commitGapsMs ?? [],
      electedSets: e?.electedSets ?? 0,
      setChanges: e?.setChanges ?? 0,
      distinctSets: e?.distinctSetCount ?? 0,
      stakingCalls: e?.stakingCalls ?? 0,
      stakingFailed: e?.stakingFailed ?? 0,
    };
  }

  /** One line per replica, for debugging a failing seed. */
  describeNodes(): string[] {
    return this.nodes.map((nd) => {
      const c = nd.core;
      const core =
        c === null
          ? "down"
          : `view=${c.view} committed=${c.committedHeight} executed=${c.executedHeight} stable=${c.stableHeight} status=${c.status}`;
      return `replica ${nd.index}${nd.honest ? "" : " (byzantine)"}: ${core} mempool=${nd.mempool.size} pending=${nd.reportedPending} stored=${nd.committedHeight} ${nd.mempool.describe()}`;
    });
  }

  // ---------------------------------------------------------------------------------------
  // Core lifecycle

  private startCore(node: SimNode, fresh: boolean, signingStateLost = false): void {
    if (signingStateLost) node.records = [];
    const config: ReplicaConfig = {
      chainId: SIM_CHAIN_ID,
      epoch: 0n,
      self: node.index,
      ...(this.cfg.epochLength !== undefined
        ? { epochLength: this.cfg.epochLength, publicKey: node.signer.publicKey }
        : {}),
      sets: this.sets,
      signer: node.signer,
      verifier: this.registry,
      params: this.timing,
      maxMessageBytes: 4 * 1024 * 1024,
      validateBlock: (block) => this.validateBlock(block),
      start: {
        committedHeight: node.committedHeight,
        chainHash: node.chainHash,
        executedHeight: node.exec.executedHeight,
        stableHeight: node.stableHeight,
      },
      persisted: fresh ? undefined : signingStateLost ? null : foldSigningRecords(node.records),
      testOnlyFaults: node.honest ? this.cfg.testOnlyFaults : undefined,
      ...(this.cfg.skipUnneededVotes ? { skipUnneededVotes: true } : {}),
    };
    const core = this.cfg.epochLength === undefined ? new Replica(config) : new EpochReplica(config);
    node.core = core;
    node.timers.clear();
    node.mempool = new SimMempool();
    node.bodies = new Map();
    for (const cb of node.blocks.values())
      if (cb.block !== undefined) node.bodies.set(toHex(cb.certificate!.blockDigest), cb.block);
    node.reportedPending = 0;
    this.order.resume(node.index, node.committedHeight);
    // Blocks committed but not executed before the crash are executed again (DESIGN §5).
    for (let h = node.exec.executedHeight + 1n; h <= node.committedHeight; h++) {
      const cb = node.blocks.get(h)!;
      node.exec.enqueue(h, cb.certificate!.blockDigest, cb.block?.txs ?? []);
    }
    if (node.exec.pending > 0) this.scheduleExec(node);
    this.q.schedule(fresh ? this.rng.int(this.tickMs) : 0, { k: "tick", r: node.index, life: node.life });
    if (core instanceof EpochReplica) for (const a of core.startActions.splice(0)) this.act(node, a);
  }

  private crash(node: SimNode): void {
    if (node.core === null) return;
    node.core = null;
    node.life++;
    node.exec.crash();
    node.timers.clear();
    this.trace.record(TraceTag.crashed, this.now, node.index);
  }

  private restart(node: SimNode, mode: RestartMode = "normal"): void {
    if (node.core !== null || this.elections?.downForGood.has(node.index)) return;
    node.life++;
    this.trace.record(TraceTag.restarted, this.now, node.index, mode.length);
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
  // Event handling

  private handle(e: QEvent): void {
    switch (e.k) {
      case "net": {
        const node = this.nodes[e.to]!;
        if (node.core === null) return;
        this.messages++;
        this.trace.record(TraceTag.messageDelivered, this.now, e.from, e.to, e.bytes);
        node.adversary?.onReceived(e.bytes);
        const verdict = this.feed(node, {
          kind: "message",
          bytes: e.bytes,
          from: e.from,
          nowMs: this.clock(node),
        });
        if (node.honest && e.expect !== undefined && this.cfg.checkVerdicts !== false) {
          this.expectationsChecked++;
          const k = verdict?.kind;
          // A vote skipped unverified (skipUnneededVotes) is ignored, not judged: not accepted either.
          const skipped = verdict?.kind === "ignore" && verdict.reason === "NOT_NEEDED";
          const ok = e.expect === "notAccept" || skipped ? k !== "accept" : k === e.expect;
          if (!ok) {
            this.violations.push({
              invariant: "verdict",
              atMs: this.now,
              replica: node.index,
              detail: `honest replica ${node.index} gave ${k ?? "no verdict"}${verdict && "reason" in verdict ? ` (${verdict.reason})` : ""} to a message from Byzantine ${e.from} that must get ${e.expect}`,
            });
          }
        }
        if (node.honest && verdict?.kind === "reject") {
          this.rejectedByHonest++;
          if (e.honest && this.cfg.checkVerdicts !== false) {
            this.violations.push({
              invariant: "verdict",
              atMs: this.now,
              replica: node.index,
              detail: `honest replica ${node.index} rejected (${verdict.reason}) a message from honest replica ${e.from}`,
            });
          }
        }
        return;
      }
      case "timer": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null || node.timers.get(e.timer) !== e.token) return;
        node.timers.delete(e.timer);
        this.trace.record(TraceTag.timer, this.now, e.r, e.token);
        this.feed(node, { kind: "timer", timer: e.timer as "view", token: e.token });
        return;
      }
      case "exec": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null) return;
        node.exec.busy = false;
        const res = node.exec.executeNext();
        if (res === null) return;
        this.trace.record(TraceTag.executed, this.now, e.r, res.height, res.stateRoot);
        if (node.exec.pending > 0) this.scheduleExec(node);
        this.elections?.onExecuted(node, res);
        this.feed(node, {
          kind: "executed",
          height: res.height,
          stateRoot: res.stateRoot,
          chainHash: node.chainHashes.get(res.height),
        });
        return;
      }
      case "build": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null) return;
        this.buildProposal(node, e.height);
        return;
      }
      case "tick": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null) return;
        this.q.schedule(this.tickMs, e);
        this.feed(node, { kind: "tick", nowMs: this.clock(node) });
        this.elections?.feedFollower(node);
        return;
      }
      case "local": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null) return;
        this.feed(node, e.event);
        return;
      }
      case "submit":
        this.submit(e.client);
        return;
      case "retry":
        this.retry(e.client);
        return;
      case "fault":
        this.applyFault(e.ev);
        return;
      case "crash": {
        const node = this.nodes[e.r]!;
        if (node.core === null) return;
        this.crash(node);
        // The restart is a timeline event so that it is traced like the planned ones.
        this.q.schedule(e.restartAfterMs, { k: "fault", ev: { at: 0, kind: "restart", replica: e.r } });
        return;
      }
    }
  }

  private applyFault(ev: TimelineEvent): void {
    switch (ev.kind) {
      case "crash":
        this.crash(this.nodes[ev.replica]!);
        return;
      case "restart":
        this.restart(this.nodes[ev.replica]!, ev.mode);
        return;
      case "partition":
        this.network.partition(ev.groups);
        this.trace.record(TraceTag.partition, this.now, ...ev.groups.map((g) => g.length));
        return;
      case "heal":
        this.network.heal();
        this.trace.record(TraceTag.partition, this.now, 0);
        return;
      case "links":
        this.network.blockLinks(ev.blocked);
        this.trace.record(TraceTag.partition, this.now, ev.blocked.length + 1000);
        return;
      case "stabilise":
        this.network.heal();
        this.network.profile = this.plan.stableProfile;
        this.stabilised = true;
        return;
    }
  }

  private clock(node: SimNode): bigint {
    return GENESIS_MS + BigInt(this.now + node.skewMs);
  }

  /** Hands one event to a replica's core and carries out its actions in order. */
  private feed(node: SimNode, event: Event): Verdict | null {
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
      if (cut > 0 && res.actions[cut - 1]!.kind === "persist" && this.crashRng.chance(1, 2))
        node.records.pop();
      this.midStepCrashes++;
      this.crash(node);
      this.q.schedule(50 + this.crashRng.int(1000), {
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
        const elections = this.elections;
        if (elections === null) {
          this.send(node, [a.to], a.msg);
          return;
        }
        const r = elections.nodeAt(a.epoch ?? a.msg.envelope.epoch, a.to);
        if (r !== undefined && r !== node.index) this.send(node, [r], a.msg);
        return;
      }
      case "broadcast": {
        const to: number[] = [];
        if (this.elections === null) {
          for (let i = 0; i < this.cfg.n; i++) if (i !== node.index) to.push(i);
        } else {
          to.push(...this.elections.membersOf(a.msg.envelope.epoch, node.index));
        }
        this.send(node, to, a.msg);
        return;
      }
      case "epochChanged":
        if (node.honest) this.elections?.onEpochChanged(a.epoch);
        node.adversary?.enterEpoch(a.epoch, a.set);
        return;
      case "setTimer":
        node.timers.set(a.timer, a.token);
        this.q.schedule(a.afterMs, {
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
        this.deliver(node, a);
        return;
      case "requestProposal":
        this.q.schedule(this.rng.int(10), { k: "build", r: node.index, life: node.life, height: a.height });
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
          this.violations.push({
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

  private midStepCrashes = 0;

  /** Index of the first action not carried out, or -1 (no crash). At most 3 per seed, before T. */
  private midStepCrashPoint(node: SimNode, actions: number): number {
    const p = this.plan.crashMidStepPerTenThousand;
    if (p === 0 || !node.honest || actions < 2 || this.midStepCrashes >= 3) return -1;
    if (this.now >= this.plan.stableAtMs - 1600) return -1;
    if (!this.crashRng.chance(p, 10_000)) return -1;
    return this.crashRng.int(actions);
  }

  private local(node: SimNode, event: Event): void {
    this.q.schedule(0, { k: "local", r: node.index, life: node.life, event });
  }

  /** Messages sent per kind (debugging and tuning). */
  readonly sentByKind = new Map<string, number>();

  private send(node: SimNode, to: readonly number[], msg: OutMessage): void {
    this.sentByKind.set(msg.kind, (this.sentByKind.get(msg.kind) ?? 0) + to.length);
    this.noteForStats(node, msg);
    if (msg.kind === "prePrepare") node.sentPrePrepare = true;
    if (
      msg.kind === "commit" &&
      node.honest &&
      this.plan.crashAfterCommitPerMille > 0 &&
      this.now < this.plan.stableAtMs - 1600 &&
      this.crashRng.chance(this.plan.crashAfterCommitPerMille, 1000)
    ) {
      // Crashes right after this COMMIT leaves: the sends of this step still happen.
      this.q.schedule(0, { k: "crash", r: node.index, restartAfterMs: 50 + this.crashRng.int(1000) });
    }
    if (node.adversary !== null) {
      for (const o of node.adversary.onOutgoing(to, msg)) this.route(node.index, o, false);
      return;
    }
    for (const r of to) this.route(node.index, { to: r, bytes: msg.bytes, extraDelayMs: 0 }, true);
  }

  /** Statistics only (never changes the run): does a NEW-VIEW override an honestly COMMITted digest? */
  private noteForStats(node: SimNode, msg: OutMessage): void {
    if (msg.kind !== "commit" && msg.kind !== "newView") return;
    const pm = fromBinary(PeerMessageSchema, msg.envelope.payload);
    if (pm.kind.case === "commit" && node.honest) {
      const c = pm.kind.value;
      let set = this.honestCommitted.get(c.height);
      if (set === undefined) {
        set = new Set();
        this.honestCommitted.set(c.height, set);
      }
      set.add(toHex(c.blockDigest));
    } else if (pm.kind.case === "newView") {
      for (const p of pm.kind.value.proposals) {
        const set = this.honestCommitted.get(p.height);
        if (set === undefined) continue;
        const hex = toHex(p.blockDigest);
        if ([...set].some((d) => d !== hex)) {
          this.newViewOverrides++;
          return;
        }
      }
    }
  }

  private route(from: number, o: Outgoing, honest: boolean): void {
    if (this.stitch !== null) {
      const d = this.stitch.route(from, o.to, o.bytes, this.now);
      for (const i of d.inject)
        this.routeNow(STITCH_BYZANTINE, { to: i.to, bytes: i.bytes, extraDelayMs: 0 }, false);
      if (!d.deliver) return;
    }
    this.routeNow(from, o, honest);
  }

  private routeNow(from: number, o: Outgoing, honest: boolean): void {
    for (const d of this.network.route(from, o.to, o.bytes)) {
      this.q.schedule(d.delayMs + o.extraDelayMs, {
        k: "net",
        from,
        to: d.to,
        bytes: d.bytes,
        honest,
        expect: o.expect,
      });
    }
  }

  private scheduleExec(node: SimNode): void {
    if (node.exec.busy) return;
    node.exec.busy = true;
    this.q.schedule(this.execDelayMs > 0 ? this.execRng.int(this.execDelayMs + 1) : 0, {
      k: "exec",
      r: node.index,
      life: node.life,
    });
  }

  private reportPending(node: SimNode): void {
    const count = node.mempool.pendingWork();
    if (count === node.reportedPending) return;
    node.reportedPending = count;
    this.local(node, { kind: "pendingWork", count });
  }

  // ---------------------------------------------------------------------------------------
  // Deliveries and invariants

  private deliver(node: SimNode, a: Extract<Action, { kind: "deliver" }>): void {
    const { height, digest } = a;
    this.trace.record(TraceTag.delivered, this.now, node.index, height, digest);
    const txs: SimTx[] = [];
    let invalidTx: string | null = null;
    if (a.block !== null) {
      for (const tx of a.block.txs) {
        const h = toHex(createHash("sha256").update(tx.body).digest());
        let st = this.allTxs.get(h);
        if (st === undefined) {
          try {
            st = simTx(tx);
          } catch {
            invalidTx ??= "undecodable body";
            continue;
          }
        }
        txs.push(st);
        if (node.honest && invalidTx === null)
          invalidTx = statelessTxProblem(tx, SIM_CHAIN_ID, this.registry);
      }
    }
    if (node.honest) {
      const body =
        a.block === null
          ? null
          : {
              height: a.block.header?.height ?? -1n,
              proposer: a.block.header?.proposer ?? -1,
              recomputedDigest:
                a.block.header === undefined ? new Uint8Array(0) : blockDigest(a.block.header),
              invalidTx,
            };
      const v =
        this.agreement.onCommit(this.now, node.index, height, digest) ??
        this.order.onDeliver(this.now, node.index, height) ??
        this.validity.onCommit(this.now, node.index, height, digest, body);
      if (v !== null) this.violations.push(v);
      const ev = this.elections?.checkEpoch(node, a) ?? null;
      if (ev !== null) this.violations.push(ev);
      if (this.firstCommitMs < 0) this.firstCommitMs = this.now;
      if (!this.firstDelivered.has(height)) {
        this.firstDelivered.add(height);
        this.elections?.onFirstDelivery(node, a);
        this.maybeIsolate(node);
        const at = this.proposedAt.get(height);
        if (at !== undefined) this.commitLatencies.push(this.now - at);
      }
      for (const t of txs) this.liveness.onTxCommitted(this.now, t.hashHex);
    }
    node.blocks.set(height, committedBlockOf(a));
    if (a.block !== null) node.bodies.set(toHex(digest), a.block);
    node.committedHeight = height;
    node.chainHash = a.chainHash;
    node.chainHashes.set(height, a.chainHash);
    node.lastCert = a.certificate;
    node.mempool.onCommitted(height, txs);
    node.exec.enqueue(height, digest, a.block?.txs ?? []);
    this.scheduleExec(node);
  }

  /** Targeted fault: cut the first committer of a height off, so a view change happens without it. */
  private maybeIsolate(node: SimNode): void {
    if (this.plan.isolateCommitterPerMille === 0 || this.network.partitioned) return;
    if (this.now >= this.plan.stableAtMs - 2000) return;
    if (!this.crashRng.chance(this.plan.isolateCommitterPerMille, 1000)) return;
    const others: number[] = [];
    for (let i = 0; i < this.poolSize; i++) if (i !== node.index) others.push(i);
    this.q.schedule(0, { k: "fault", ev: { at: 0, kind: "partition", groups: [[node.index], others] } });
    this.q.schedule(500 + this.crashRng.int(1500), { k: "fault", ev: { at: 0, kind: "heal" } });
  }

  private validateBlock(block: Block): Verdict {
    for (const tx of block.txs) {
      if (statelessTxProblem(tx, SIM_CHAIN_ID, this.registry) !== null)
        return { kind: "reject", reason: "BAD_BLOCK" };
    }
    return { kind: "accept" };
  }

  // ---------------------------------------------------------------------------------------
  // Workload

  private submit(c: number): void {
    if (this.now > this.submitUntilMs) return;
    const [lo, hi] = this.cfg.txIntervalMs ?? DEFAULT_TX_INTERVAL_MS;
    this.q.schedule(this.clientRng.range(lo, hi), { k: "submit", client: c });
    this.submitTx(c, this.elections?.nextStakingCall(c) ?? this.clients[c]!.nextTransfer(this.clientRng));
  }

  private submitTx(c: number, t: SimTx): void {
    this.allTxs.set(t.hashHex, t);
    this.txSubmitted++;
    this.liveness.onSubmit(this.now, t.hashHex);
    this.clientPending[c]!.push({ tx: t, at: this.now });
    this.offer(t);
  }

  /** The API of every live validator receives it (the real node also gossips it with TxBatch). */
  private offer(t: SimTx): void {
    for (const node of this.nodes) {
      if (node.core === null) continue;
      if (node.mempool.add(t)) this.reportPending(node);
    }
  }

  /**
   * Clients resubmit what has not committed after a while (as SubmitTxAndWait callers retry),
   * so a replica that was down when a transaction was first sent still learns it.
   */
  private retry(c: number): void {
    this.q.schedule(RETRY_MS, { k: "retry", client: c });
    const pending = this.clientPending[c]!.filter((p) => !this.liveness.isCommitted(p.tx.hashHex));
    this.clientPending[c] = pending;
    for (const p of pending) if (this.now - p.at >= RETRY_MS) this.offer(p.tx);
  }

  private buildProposal(node: SimNode, height: bigint): void {
    const taken = node.mempool.take(height, 500, 1024 * 1024);
    // Nothing left to propose: stay idle; the next pendingWork report lets the core ask again.
    if (taken.length === 0) {
      node.reportedPending = -1;
      this.reportPending(node);
      return;
    }
    const lastCommit = node.lastCert ?? undefined;
    const core = node.core;
    const epoch = core instanceof EpochReplica ? core.epoch : 0n;
    const proposer = core instanceof EpochReplica ? (core.selfIndex ?? -1) : node.index;
    const header = {
      chainId: SIM_CHAIN_ID,
      height,
      epoch,
      txsRoot: txsRoot(taken.map((t) => hexBytes(t.hashHex))),
      validatorsHash: core instanceof EpochReplica ? core.set.hash : this.set.hash,
      proposer,
      timestampMs: this.clock(node),
      lastCommitHash: lastCommit === undefined ? new Uint8Array(0) : commitCertificateHash(lastCommit),
    };
    const block = create(BlockSchema, { header, txs: taken.map((t) => t.tx), lastCommit });
    const digest = blockDigest(block.header!);
    this.validity.recordProposal(digest, { proposer });
    node.bodies.set(toHex(digest), block);
    node.sentPrePrepare = false;
    this.feed(node, { kind: "proposal", height, block, nowMs: this.clock(node) });
    if (node.sentPrePrepare) {
      if (!this.proposedAt.has(height)) this.proposedAt.set(height, this.now);
    } else if (node.core !== null) {
      // The core declined the block (e.g. its window moved meanwhile): the transactions return.
      node.mempool.release(height);
      this.reportPending(node);
    }
  }
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
