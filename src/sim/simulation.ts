// One seeded simulation run: n replicas of the real PBFT core, driven through the real
// envelope checks, over a simulated network with faults, checked incrementally against the
// invariants. Everything that varies comes from the seed; nothing reads a wall clock.
// This file wires the run and owns its event loop; the replicas' processes are harness.ts,
// their messages messaging.ts, committed blocks and their checks deliveries.ts, the clients
// and proposals workloadDriver.ts, the plan and the pool setup.ts.
import { epochOfHeight } from "../consensus/epochs.js";
import type { ConsensusTiming, Event } from "../consensus/pbft/types.js";
import { type EpochSets, StaticEpochSets, ValidatorSet } from "../consensus/valset/index.js";
import { nullBlockDigest } from "../types/block.js";
import { toHex } from "../types/bytes.js";
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
import { SimDeliveries } from "./deliveries.js";
import { SimElections } from "./elections.js";
import type { FaultPlan, TimelineEvent } from "./faults.js";
import { NodeHarness } from "./harness.js";
import {
  AgreementChecker,
  LivenessChecker,
  OrderChecker,
  ValidityChecker,
  type Violation,
} from "./invariants.js";
import { SimMessaging } from "./messaging.js";
import { SimNetwork } from "./network.js";
import { Prng } from "./prng.js";
import { EventQueue } from "./queue.js";
import { addPoolNodes, planRun } from "./setup.js";
import { StandInKeyRegistry, type StandInSigner } from "./signer.js";
import { STITCH_BYZANTINE, StitchAttack } from "./stitch.js";
import { TraceHash, TraceTag } from "./trace.js";
import type { QEvent, SimNode } from "./types.js";
import { WorkloadDriver } from "./workloadDriver.js";

export function runSimulation(cfg: SimConfig): SimResult {
  return new Simulation(cfg).run();
}

export class Simulation {
  private readonly q = new EventQueue<QEvent>();
  private readonly registry = new StandInKeyRegistry();
  private readonly set: ValidatorSet;
  private readonly sets: EpochSets;
  /** Replicas in the pool: n, plus the extra validators with epochs. */
  private readonly poolSize: number;
  /** (Epochs) staking, elections and the handoff checks (src/sim/elections.ts); null without epochs. */
  private readonly elections: SimElections | null;
  private readonly nodeOfKey = new Map<string, number>();
  private readonly nodes: SimNode[] = [];
  private readonly network: SimNetwork;
  private readonly plan: FaultPlan;
  private readonly trace = new TraceHash();
  private readonly agreement = new AgreementChecker();
  private readonly order = new OrderChecker();
  private readonly validity: ValidityChecker;
  private readonly liveness: LivenessChecker;
  private readonly violations: Violation[] = [];
  private readonly timing: ConsensusTiming;
  private readonly durationMs: number;
  private readonly submitUntilMs: number;
  private readonly harness: NodeHarness;
  private readonly messaging: SimMessaging;
  private readonly deliveries: SimDeliveries;
  private readonly driver: WorkloadDriver;
  private steps = 0;
  private stabilised = false;
  /** The scripted stitch attack (faults `stitch`), or null. */
  readonly stitch: StitchAttack | null = null;
  /** Messages sent per kind (debugging and tuning). */
  readonly sentByKind: Map<string, number>;

  constructor(private readonly cfg: SimConfig) {
    const root = new Prng(cfg.seed);
    const rng = root.fork(1);
    const netRng = root.fork(2);
    const clientRng = root.fork(3);
    const execRng = root.fork(4);
    const crashRng = root.fork(5);
    const planRng = root.fork(6);
    const stakeRng = root.fork(8);
    this.timing = cfg.timing ?? SIM_TIMING;
    const stableAtMs = cfg.stableAtMs ?? DEFAULT_STABLE_AT_MS;
    const k = cfg.livenessK ?? LIVENESS_K;
    const deadline = k * this.timing.viewTimeoutCapMs;
    this.durationMs = cfg.durationMs ?? stableAtMs + deadline + 500;
    this.submitUntilMs = cfg.submitUntilMs ?? this.durationMs - deadline;
    const L = cfg.epochLength;
    this.plan = planRun(cfg, planRng, stableAtMs);
    this.poolSize = L === undefined ? cfg.n : cfg.n + (cfg.extraValidators ?? 1);
    this.liveness = new LivenessChecker(stableAtMs, deadline);
    this.validity = new ValidityChecker((h) =>
      nullBlockDigest(SIM_CHAIN_ID, L === undefined ? 0n : epochOfHeight(h, L), h),
    );
    this.network = new SimNetwork(this.poolSize, this.plan.profile, netRng);

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
    this.harness = new NodeHarness(
      { cfg, timing: this.timing, sets: this.sets, plan: this.plan, execDelayMs: cfg.execDelayMs ?? 20 },
      {
        q: this.q,
        registry: this.registry,
        trace: this.trace,
        order: this.order,
        violations: this.violations,
        elections: this.elections,
        rng,
        execRng,
        crashRng,
        send: (node, to, msg) => this.messaging.send(node, to, msg),
        deliver: (node, a) => this.deliveries.deliver(node, a),
      },
    );
    addPoolNodes(
      this.nodes,
      { cfg, plan: this.plan, poolSize: this.poolSize, signers, set: this.set },
      { rng, validity: this.validity, stakingStateFor: (i) => this.harness.stakingStateFor(i) },
    );

    if (this.plan.stitch) {
      this.stitch = new StitchAttack({
        chainId: SIM_CHAIN_ID,
        epoch: 0n,
        signer: signers[STITCH_BYZANTINE]!,
        stableAtMs: this.plan.stableAtMs,
      });
    }

    // Each height's first proposal time: written when a primary's block is taken, read at its commit.
    const proposedAt = new Map<bigint, number>();
    const feed = (node: SimNode, event: Event) => this.harness.feed(node, event);
    const clock = (node: SimNode) => this.harness.clock(node);
    this.messaging = new SimMessaging(
      { cfg, plan: this.plan },
      {
        q: this.q,
        network: this.network,
        trace: this.trace,
        nodes: this.nodes,
        violations: this.violations,
        crashRng,
        stitch: this.stitch,
        feed,
        clock,
      },
    );
    this.sentByKind = this.messaging.sentByKind;
    this.driver = new WorkloadDriver(
      { cfg, clientCount, submitUntilMs: this.submitUntilMs, set: this.set },
      {
        q: this.q,
        registry: this.registry,
        clientRng,
        nodes: this.nodes,
        liveness: this.liveness,
        validity: this.validity,
        elections: this.elections,
        proposedAt,
        feed,
        reportPending: (node) => this.harness.reportPending(node),
        clock,
      },
    );
    this.deliveries = new SimDeliveries(
      { plan: this.plan, poolSize: this.poolSize },
      {
        q: this.q,
        trace: this.trace,
        registry: this.registry,
        network: this.network,
        violations: this.violations,
        agreement: this.agreement,
        order: this.order,
        validity: this.validity,
        liveness: this.liveness,
        elections: this.elections,
        crashRng,
        allTxs: this.driver.allTxs,
        proposedAt,
        scheduleExec: (node) => this.harness.scheduleExec(node),
      },
    );
  }

  private get now(): number {
    return this.q.now;
  }

  run(): SimResult {
    for (const node of this.nodes) this.harness.startCore(node, true);
    for (const ev of this.plan.timeline) this.q.scheduleAt(ev.at, { k: "fault", ev });
    this.driver.start();
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
      viewChanges: Number(this.harness.maxView),
      simulatedMs: Math.min(this.now, this.durationMs),
      steps: this.steps,
      messages: this.messaging.messages,
      txSubmitted: this.driver.txSubmitted,
      txCommitted: this.liveness.committedCount,
      violations: this.violations,
      firstCommitMs: this.deliveries.firstCommitMs,
      commitLatenciesMs: this.deliveries.commitLatencies,
      txLatenciesMs: latencies,
      rejectedByHonest: this.messaging.rejectedByHonest,
      expectationsChecked: this.messaging.expectationsChecked,
      truncated,
      newViewOverrides: this.messaging.newViewOverrides,
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
  // Event handling

  private handle(e: QEvent): void {
    switch (e.k) {
      case "net":
        this.messaging.receive(e);
        return;
      case "timer": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null || node.timers.get(e.timer) !== e.token) return;
        node.timers.delete(e.timer);
        this.trace.record(TraceTag.timer, this.now, e.r, e.token);
        this.harness.feed(node, { kind: "timer", timer: e.timer as "view", token: e.token });
        return;
      }
      case "exec": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null) return;
        node.exec.busy = false;
        const res = node.exec.executeNext();
        if (res === null) return;
        this.trace.record(TraceTag.executed, this.now, e.r, res.height, res.stateRoot);
        if (node.exec.pending > 0) this.harness.scheduleExec(node);
        this.elections?.onExecuted(node, res);
        this.harness.feed(node, {
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
        this.driver.buildProposal(node, e.height);
        return;
      }
      case "tick": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null) return;
        this.q.schedule(this.harness.tickMs, e);
        this.harness.feed(node, { kind: "tick", nowMs: this.harness.clock(node) });
        this.elections?.feedFollower(node);
        return;
      }
      case "local": {
        const node = this.nodes[e.r]!;
        if (node.life !== e.life || node.core === null) return;
        this.harness.feed(node, e.event);
        return;
      }
      case "submit":
        this.driver.submit(e.client);
        return;
      case "retry":
        this.driver.retry(e.client);
        return;
      case "fault":
        this.applyFault(e.ev);
        return;
      case "crash": {
        const node = this.nodes[e.r]!;
        if (node.core === null) return;
        this.harness.crash(node);
        // The restart is a timeline event so that it is traced like the planned ones.
        this.q.schedule(e.restartAfterMs, { k: "fault", ev: { at: 0, kind: "restart", replica: e.r } });
        return;
      }
    }
  }

  private applyFault(ev: TimelineEvent): void {
    switch (ev.kind) {
      case "crash":
        this.harness.crash(this.nodes[ev.replica]!);
        return;
      case "restart":
        this.harness.restart(this.nodes[ev.replica]!, ev.mode);
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
}
