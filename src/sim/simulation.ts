// One seeded simulation run: n replicas of the real PBFT core, driven through the real
// envelope checks, over a simulated network with faults, checked incrementally against the
// invariants. Everything that varies comes from the seed; nothing reads a wall clock.
import { createHash } from "node:crypto";
import { create, fromBinary } from "@bufbuild/protobuf";
import { checkCommitCertificate } from "../consensus/envelope.js";
import { epochOfHeight, lastHeightOfEpoch } from "../consensus/epochs.js";
import { committedBlockOf, EpochReplica } from "../consensus/pbft/epochReplica.js";
import { foldSigningRecords } from "../consensus/pbft/persist.js";
import { Replica } from "../consensus/pbft/replica.js";
import type {
  Action,
  ConsensusTiming,
  Event,
  OutMessage,
  ReplicaConfig,
  SigningRecord,
  TestOnlyFaults,
  Verdict,
} from "../consensus/pbft/types.js";
import { type EpochSets, StaticEpochSets, ValidatorSet } from "../consensus/valset/index.js";
import { type CommittedBlock, PeerMessageSchema } from "../gen/parabft/v1/consensus_pb.js";
import { type Block, BlockSchema, type CommitCertificate } from "../gen/parabft/v1/types_pb.js";
import { type EpochSnapshot, encodeSnapshot } from "../staking/index.js";
import {
  addressOf,
  blockDigest,
  commitCertificateHash,
  GENESIS_CHAIN_HASH,
  nullBlockDigest,
  txsRoot,
} from "../types/block.js";
import { toHex, u32be } from "../types/bytes.js";
import { sha256 } from "../types/hash.js";
import { Adversary, Collusion, type Expectation, type Outgoing } from "./byzantine.js";
import { FakeExecutor } from "./executor.js";
import {
  type FaultKind,
  type FaultPlan,
  planFaults,
  type RestartMode,
  type TimelineEvent,
} from "./faults.js";
import {
  AgreementChecker,
  ElectionChecker,
  LivenessChecker,
  OrderChecker,
  ValidityChecker,
  type Violation,
} from "./invariants.js";
import { type NetworkProfile, SimNetwork } from "./network.js";
import { Prng } from "./prng.js";
import { EventQueue } from "./queue.js";
import { StandInKeyRegistry, type StandInSigner } from "./signer.js";
import {
  SIM_BYZANTINE_SELF_STAKE,
  SIM_DELEGATION_CAP,
  SIM_SELF_STAKE,
  SimStakingState,
  simStakingRules,
} from "./staking.js";
import { STITCH_BYZANTINE, StitchAttack } from "./stitch.js";
import { TraceHash, TraceTag } from "./trace.js";
import {
  registerTx,
  SimClient,
  SimDelegator,
  SimMempool,
  type SimTx,
  simTx,
  statelessTxProblem,
} from "./workload.js";

export const SIM_CHAIN_ID = "parabft-sim";
/** Virtual time 0 maps to this unix time in block timestamps. */
const GENESIS_MS = 1_700_000_000_000n;
/** Clients resubmit uncommitted transactions this often (virtual ms). */
const RETRY_MS = 1000;
const DEFAULT_TX_INTERVAL_MS: [number, number] = [150, 900];

/** Timing used by the simulator: short timeouts so a seed covers many views in little virtual time. */
export const SIM_TIMING: ConsensusTiming = {
  window: 10,
  checkpointInterval: 5,
  maxExecLag: 5,
  viewTimeoutMs: 200,
  viewTimeoutCapMs: 1000,
  maxClockSkewMs: 10_000,
};

/**
 * Liveness bound: after stabilisation at T every transaction commits by T + k × capped view
 * timeout. k = 6 covers f + 1 ≤ 3 consecutive failed views at the cap (n ≤ 7) plus view
 * synchronisation and catch-up of restarted replicas.
 */
export const LIVENESS_K = 6;
/** Default stabilisation time T: faults happen in [0, T). */
export const DEFAULT_STABLE_AT_MS = 4000;

export interface SimConfig {
  seed: number;
  n: number;
  /** Byzantine replicas (k); at most f unless a test explicitly goes beyond. */
  byzantine: number;
  faults: readonly FaultKind[];
  timing?: ConsensusTiming;
  /** Stabilisation time T (virtual ms). */
  stableAtMs?: number;
  livenessK?: number;
  /** Total virtual time; default T + k × cap + 500. */
  durationMs?: number;
  clients?: number;
  /** Client think time between submissions, virtual ms. */
  txIntervalMs?: [number, number];
  /** Clients stop submitting at this time; default duration − liveness deadline. */
  submitUntilMs?: number;
  testOnlyFaults?: TestOnlyFaults;
  /** Replicas skip verifying votes they will not use, as the node does (ReplicaConfig.skipUnneededVotes). */
  skipUnneededVotes?: boolean;
  /** Replicas crashed from time 0; restarted at restartAtMs when given. Counts as a fault before T. */
  crashedAtStart?: { replicas: number[]; restartAtMs?: number };
  /** Replaces the seed's network profile (e.g. constant delay for latency measurement). */
  network?: NetworkProfile;
  /** Fixed Byzantine roles instead of seed-chosen ones. */
  byzantineRoles?: Map<number, FaultPlan["byzantine"] extends Map<number, infer B> ? B : never>;
  checkLiveness?: boolean;
  /** Report an honest replica rejecting an honest replica's message (default true). */
  checkVerdicts?: boolean;
  /** Random execution delay upper bound (virtual ms). */
  execDelayMs?: number;
  maxSteps?: number;
  /**
   * (Epochs, issue 11) Heights per epoch: the replicas run `EpochReplica`, clients also send
   * staking calls, and each replica's stand-in executor runs the real staking programs and epoch
   * hook, whose elections give the sets (src/sim/staking.ts). Absent: one set.
   */
  epochLength?: number;
  /** (Epochs) Validators beyond n that register with RegisterValidator and compete (default 1). */
  extraValidators?: number;
  /** (Epochs, test only) This replica's stand-in executor ignores Vote calls: a divergent executor. */
  testOnlySkipVotesAt?: number;
  /** (Epochs) When epoch `epoch`'s last height first commits, `count` honest members of its set crash for good. */
  crashAtBoundary?: { epoch: number; count: number };
}

export interface SimResult {
  seed: number;
  n: number;
  byzantine: number;
  faults: string;
  traceHash: string;
  /** Highest height committed by any honest replica (all agree on it by the agreement invariant). */
  committedHeight: number;
  /** Highest view any honest replica reached: the number of view changes. */
  viewChanges: number;
  simulatedMs: number;
  steps: number;
  messages: number;
  txSubmitted: number;
  txCommitted: number;
  violations: Violation[];
  /** Time of the first honest commit (virtual ms), or -1. */
  firstCommitMs: number;
  /** Per height: first honest delivery − proposal time at the primary (virtual ms). */
  commitLatenciesMs: number[];
  txLatenciesMs: number[];
  rejectedByHonest: number;
  /** Known-bad Byzantine messages whose verdict at an honest replica was checked. */
  expectationsChecked: number;
  truncated: boolean;
  /** NEW-VIEWs that re-proposed, at some height, a digest other than one an honest replica COMMITted there. */
  newViewOverrides: number;
  /** The stitch script (faults `stitch`) reached its goal: two digests each stitchable, neither certifiable. */
  stitchReached: boolean;
  /** The command that replays this run. */
  replay: string;
  /** (Epochs) Highest epoch an honest replica entered (0 without epochs). */
  epochsReached: number;
  /** (Epochs) Per boundary B: first honest commit of B + 1 (by the new set) − first honest commit of B, virtual ms. */
  handoffMs: number[];
  /** (Epochs) The same gap for every other height h (h − 1 not a boundary): the baseline. */
  commitGapsMs: number[];
  /** (Epochs) Sets elected by execution (epochs ≥ 2), and how many differ in members from the epoch before. */
  electedSets: number;
  setChanges: number;
  /** (Epochs) Distinct member lists among the genesis set and the elected ones. */
  distinctSets: number;
  /** (Epochs) Staking calls executed (first execution of each height) and how many failed. */
  stakingCalls: number;
  stakingFailed: number;
}

type QEvent =
  | { k: "net"; from: number; to: number; bytes: Uint8Array; honest: boolean; expect?: Expectation }
  | { k: "timer"; r: number; life: number; timer: string; token: number }
  | { k: "exec"; r: number; life: number }
  | { k: "build"; r: number; life: number; height: bigint }
  | { k: "tick"; r: number; life: number }
  | { k: "local"; r: number; life: number; event: Event }
  | { k: "submit"; client: number }
  | { k: "retry"; client: number }
  | { k: "fault"; ev: TimelineEvent }
  | { k: "crash"; r: number; restartAfterMs: number };

interface SimNode {
  index: number;
  honest: boolean;
  signer: StandInSigner;
  adversary: Adversary | null;
  core: Replica | EpochReplica | null;
  life: number;
  skewMs: number;
  // Durable: survives crashes (signing state beside the key + the commit batches).
  records: SigningRecord[];
  blocks: Map<bigint, CommittedBlock>;
  committedHeight: bigint;
  chainHash: Uint8Array;
  chainHashes: Map<bigint, Uint8Array>;
  lastCert: CommitCertificate | null;
  stableHeight: bigint;
  exec: FakeExecutor;
  // Volatile.
  mempool: SimMempool;
  timers: Map<string, number>;
  bodies: Map<string, Block>;
  reportedPending: number;
  /** Set when this replica's core sends a PRE-PREPARE (tells the driver a proposal was taken). */
  sentPrePrepare: boolean;
}

export function replayCommand(cfg: SimConfig): string {
  const parts = [`parabft sim --seed ${cfg.seed} --validators ${cfg.n} --byzantine ${cfg.byzantine}`];
  parts.push(`--faults ${cfg.faults.length === 0 ? "none" : cfg.faults.join(",")}`);
  const t = cfg.testOnlyFaults;
  if (cfg.epochLength !== undefined) parts.push(`--epoch-length ${cfg.epochLength}`);
  if (t !== undefined) {
    const on = Object.entries(t)
      .filter(([, v]) => v === true)
      .map(([k]) => k);
    if (on.length > 0) parts.push(`--test-only-faults ${on.join(",")}`);
  }
  return parts.join(" ");
}

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
  /** (Epochs) every epoch's set: genesis for 0 and 1, then the first executor's election of each. */
  private readonly elected = new Map<bigint, ValidatorSet>();
  private readonly election: ElectionChecker;
  /** (Epochs) the staking state at genesis (each executor starts from a copy), or null. */
  private readonly stakingGenesis: SimStakingState | null = null;
  /** (Epochs) operator keys of the pool's validators (index = replica). */
  private readonly operators: StandInSigner[] = [];
  /** (Epochs) each client's token holders. */
  private readonly delegators: SimDelegator[][] = [];
  /** (Epochs) hash of each extra validator's RegisterValidator (replica → tx). */
  private readonly registrations = new Map<number, string>();
  private readonly stakeRng: Prng;
  private setChanges = 0;
  private readonly distinctSets = new Set<string>();
  private stakingCalls = 0;
  private stakingFailed = 0;
  private maxExecuted = 0n;
  private readonly nodeOfKey = new Map<string, number>();
  private epochsReached = 0n;
  private readonly boundaryCommittedAt = new Map<bigint, number>();
  private readonly handoffMs: number[] = [];
  private readonly commitGapsMs: number[] = [];
  private readonly firstCommitAt = new Map<bigint, number>();
  private readonly downForGood = new Set<number>();
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
    this.stakeRng = root.fork(8);
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
    this.signers = signers;
    this.set = new ValidatorSet(
      0n,
      signers.slice(0, cfg.n).map((s, i) => ({ publicKey: s.publicKey, power: this.plan.powers[i] ?? 1n })),
    );
    this.elected.set(0n, this.set);
    this.elected.set(1n, new ValidatorSet(1n, this.set.members));
    this.distinctSets.add(this.membersKey(this.set));
    this.election = new ElectionChecker(cfg.n);
    this.sets =
      L === undefined ? new StaticEpochSets([this.set]) : { get: (e: bigint) => this.elected.get(e) };
    const clientCount = cfg.clients ?? 3;
    if (L !== undefined) this.stakingGenesis = this.setUpStaking(L, clientCount);
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

  private readonly signers: StandInSigner[];

  /**
   * (Epochs) Staking genesis and the token holders. Replicas 0..n−1 are the genesis validators
   * (Byzantine ones bond SIM_BYZANTINE_SELF_STAKE − i, honest ones SIM_SELF_STAKE); the extra
   * replicas' operators hold SIM_SELF_STAKE and register at time 0; each client has two token
   * holders whose delegations together never exceed SIM_DELEGATION_CAP (src/sim/staking.ts).
   */
  private setUpStaking(epochLength: number, clientCount: number): SimStakingState {
    const n = this.cfg.n;
    const balances = new Map<string, bigint>();
    for (let i = 0; i < this.poolSize; i++) {
      const op = this.registry.newSigner(seedSecret(this.cfg.seed, "operator", i));
      this.operators.push(op);
      if (i >= n) balances.set(toHex(addressOf(op.publicKey)), SIM_SELF_STAKE);
    }
    const holders = 2;
    // Client 0's first holder is the rotator (SimDelegator): half of the cap, so that moving its
    // stake outweighs the other holders' votes and the set changes every epoch its vote lands in.
    const rotatorCap = SIM_DELEGATION_CAP / 2n;
    const others = Math.max(1, clientCount * holders - 1);
    const cap = (SIM_DELEGATION_CAP - rotatorCap) / BigInt(others);
    for (let c = 0; c < clientCount; c++) {
      const mine: SimDelegator[] = [];
      for (let j = 0; j < holders; j++) {
        const signer = this.registry.newSigner(seedSecret(this.cfg.seed, `holder${c}`, j));
        const rotator = c === 0 && j === 0;
        balances.set(toHex(addressOf(signer.publicKey)), rotator ? rotatorCap : cap);
        mine.push(new SimDelegator(SIM_CHAIN_ID, signer, rotator ? rotatorCap : cap, rotator));
      }
      this.delegators.push(mine);
    }
    return SimStakingState.genesis({
      chainId: SIM_CHAIN_ID,
      epochLength,
      rules: simStakingRules(n, epochLength),
      validators: [...Array(n).keys()].map((i) => ({
        operator: addressOf(this.operators[i]!.publicKey),
        consensusKey: this.signers[i]!.publicKey,
        peerAddress: peerAddressOf(i),
        selfStake: this.plan.powers[i]!,
      })),
      balances,
    });
  }

  /** (Epochs) A fresh executor's staking state: a copy of genesis, or null without epochs. */
  private stakingStateFor(replica: number): SimStakingState | null {
    const s = this.stakingGenesis?.clone() ?? null;
    if (s !== null && this.cfg.testOnlySkipVotesAt === replica) s.testOnlySkipVotes = true;
    return s;
  }

  /** (Epochs) Operators a token holder may vote for: honest, registered (or genesis) validators. */
  private candidates(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.plan.byzantine.size; i < this.poolSize; i++) {
      const reg = this.registrations.get(i);
      if (i < this.cfg.n || (reg !== undefined && this.liveness.isCommitted(reg)))
        out.push(addressOf(this.operators[i]!.publicKey));
    }
    return out;
  }

  private membersKey(set: ValidatorSet): string {
    return set.members.map((m) => this.nodeOfKey.get(toHex(m.publicKey))).join(",");
  }

  /**
   * (Epochs) A replica's executor ran the election of `s.epoch` (it executed B(s.epoch − 2)):
   * checked against every other executor's; the first one becomes the chain's set, and every
   * live replica hears `setsChanged`.
   */
  private onElected(node: SimNode, s: EpochSnapshot): void {
    let total = 0n;
    let byzantine = 0n;
    for (const m of s.members) {
      total += m.power;
      const r = this.nodeOfKey.get(toHex(m.consensusKey));
      if (r === undefined || !this.nodes[r]!.honest) byzantine += m.power;
    }
    const v = this.election.onElected(this.now, node.index, {
      epoch: s.epoch,
      snapshotHash: toHex(sha256(encodeSnapshot(s))),
      members: s.members.length,
      totalPower: total,
      byzantinePower: byzantine,
    });
    if (v !== null && node.honest) this.violations.push(v);
    if (this.elected.has(s.epoch)) return;
    const set = new ValidatorSet(
      s.epoch,
      s.members.map((m) => {
        const r = this.nodeOfKey.get(toHex(m.consensusKey));
        // The signer's own key object (the stand-in verifier's fast path).
        return { publicKey: r === undefined ? m.consensusKey : this.signers[r]!.publicKey, power: m.power };
      }),
    );
    this.elected.set(s.epoch, set);
    const key = this.membersKey(set);
    const prev = this.elected.get(s.epoch - 1n);
    if (prev !== undefined && this.membersKey(prev) !== key) this.setChanges++;
    this.distinctSets.add(key);
    for (const nd of this.nodes) if (nd.core !== null) this.local(nd, { kind: "setsChanged" });
  }

  /** Node of index `to` in the set of `epoch`. */
  private nodeAt(epoch: bigint, to: number): number | undefined {
    const key = this.sets.get(epoch)?.members[to]?.publicKey;
    return key === undefined ? undefined : this.nodeOfKey.get(toHex(key));
  }

  run(): SimResult {
    for (const node of this.nodes) this.startCore(node, true);
    for (const ev of this.plan.timeline) this.q.scheduleAt(ev.at, { k: "fault", ev });
    const [lo, hi] = this.cfg.txIntervalMs ?? DEFAULT_TX_INTERVAL_MS;
    // (Epochs) The extra validators register at once (their operators' first transactions).
    for (let i = this.cfg.n; i < this.operators.length; i++) {
      const t = registerTx(
        SIM_CHAIN_ID,
        this.operators[i]!,
        this.signers[i]!.publicKey,
        SIM_SELF_STAKE,
        peerAddressOf(i),
      );
      this.registrations.set(i, t.hashHex);
      this.submitTx(0, t);
    }
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
      epochsReached: Number(this.epochsReached),
      handoffMs: this.handoffMs,
      commitGapsMs: this.commitGapsMs,
      electedSets: this.elected.size - 2,
      setChanges: this.setChanges,
      distinctSets: this.cfg.epochLength === undefined ? 0 : this.distinctSets.size,
      stakingCalls: this.stakingCalls,
      stakingFailed: this.stakingFailed,
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
    if (node.core !== null || this.downForGood.has(node.index)) return;
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
        if (res.height > this.maxExecuted) {
          // The first execution of this height anywhere: count its staking calls once.
          this.maxExecuted = res.height;
          this.stakingCalls += res.stakingCalls;
          this.stakingFailed += res.stakingFailed;
        }
        if (res.snapshot !== null) this.onElected(node, res.snapshot);
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
        this.feedFollower(node);
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
        if (this.cfg.epochLength === undefined) {
          this.send(node, [a.to], a.msg);
          return;
        }
        const r = this.nodeAt(a.epoch ?? a.msg.envelope.epoch, a.to);
        if (r !== undefined && r !== node.index) this.send(node, [r], a.msg);
        return;
      }
      case "broadcast": {
        const to: number[] = [];
        if (this.cfg.epochLength === undefined) {
          for (let i = 0; i < this.cfg.n; i++) if (i !== node.index) to.push(i);
        } else {
          // To the members of the envelope's epoch (a retiring instance speaks to the old set).
          const set = this.sets.get(a.msg.envelope.epoch);
          for (const m of set?.members ?? []) {
            const r = this.nodeOfKey.get(toHex(m.publicKey))!;
            if (r !== node.index) to.push(r);
          }
        }
        this.send(node, to, a.msg);
        return;
      }
      case "epochChanged":
        if (a.epoch > this.epochsReached && node.honest) this.epochsReached = a.epoch;
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
      const ev = this.checkEpoch(node, a);
      if (ev !== null) this.violations.push(ev);
      if (this.firstCommitMs < 0) this.firstCommitMs = this.now;
      if (!this.firstDelivered.has(height)) {
        this.firstDelivered.add(height);
        this.noteBoundary(height);
        this.pushToFollowers(node, a);
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

  // ---------------------------------------------------------------------------------------
  // Epochs (issue 11)

  /**
   * Handoff invariant: a block at or below a boundary carries the certificate of its own epoch's
   * set, never the next one's; above it never the old one's. Checked as: the certificate names
   * the epoch of its height and a quorum of that epoch's set signed it.
   */
  private checkEpoch(node: SimNode, a: Extract<Action, { kind: "deliver" }>): Violation | null {
    const L = this.cfg.epochLength;
    if (L === undefined) return null;
    const want = epochOfHeight(a.height, L);
    const cert = a.certificate;
    const ok =
      cert.epoch === want &&
      a.epoch === want &&
      checkCommitCertificate(cert, {
        chainId: SIM_CHAIN_ID,
        sets: { get: (e) => this.elected.get(e) },
        verifier: this.registry,
      });
    if (ok) return null;
    return {
      invariant: "epoch",
      atMs: this.now,
      replica: node.index,
      height: a.height,
      detail: `replica ${node.index} delivered height ${a.height} (epoch ${want}, last height of its epoch ${lastHeightOfEpoch(want, L)}) with a certificate of epoch ${cert.epoch}${cert.epoch === want ? " that its set did not sign" : ""}`,
    };
  }

  /** First honest commits of each boundary B and of B + 1: the handoff time. */
  private noteBoundary(height: bigint): void {
    const L = this.cfg.epochLength;
    if (L === undefined) return;
    const e = epochOfHeight(height, L);
    this.firstCommitAt.set(height, this.now);
    const before = this.firstCommitAt.get(height - 1n);
    if (before !== undefined && height > 1n && height !== lastHeightOfEpoch(e - 1n, L) + 1n)
      this.commitGapsMs.push(this.now - before);
    if (height === lastHeightOfEpoch(e, L)) {
      this.boundaryCommittedAt.set(e, this.now);
      const cab = this.cfg.crashAtBoundary;
      if (cab !== undefined && BigInt(cab.epoch) === e) {
        // Crash `count` honest members of the old set for good (the latest in set order).
        const members = this.elected
          .get(e)!
          .members.map((m) => this.nodeOfKey.get(toHex(m.publicKey))!)
          .filter((r) => this.nodes[r]!.honest)
          .reverse()
          .slice(0, cab.count);
        for (const r of members) {
          this.downForGood.add(r);
          this.q.schedule(0, { k: "fault", ev: { at: 0, kind: "crash", replica: r } });
        }
      }
    } else if (height === lastHeightOfEpoch(e - 1n, L) + 1n && e > 0n) {
      const at = this.boundaryCommittedAt.get(e - 1n);
      if (at !== undefined) this.handoffMs.push(this.now - at);
    }
  }

  /**
   * The sync stand-in also streams newly committed blocks to followers (like StreamBlocks), 10 ms
   * later: everything `from` holds above the follower's height, up to this one.
   */
  private pushToFollowers(from: SimNode, a: Extract<Action, { kind: "deliver" }>): void {
    if (this.cfg.epochLength === undefined) return;
    for (const nd of this.nodes) {
      const core = nd.core;
      if (nd === from || !(core instanceof EpochReplica) || core.selfIndex !== null) continue;
      const blocks: CommittedBlock[] = [];
      for (let h = core.committedHeight + 1n; h <= a.height && blocks.length < 64; h++) {
        const cb = h === a.height ? committedBlockOf(a) : from.blocks.get(h);
        if (cb === undefined) break;
        blocks.push(cb);
      }
      if (blocks.length === 0) continue;
      this.q.schedule(10, {
        k: "local",
        r: nd.index,
        life: nd.life,
        event: { kind: "followBlocks", blocks },
      });
    }
  }

  /**
   * A replica outside the current set follows the chain: the node's sync path (stand-in: the
   * committed blocks of the most advanced live replica) feeds it blocks it verifies itself.
   */
  private feedFollower(node: SimNode): void {
    const core = node.core;
    if (!(core instanceof EpochReplica) || core.selfIndex !== null) return;
    let best: SimNode | null = null;
    for (const nd of this.nodes)
      if (nd.core !== null && nd.honest && (best === null || nd.committedHeight > best.committedHeight))
        best = nd;
    if (best === null || best.committedHeight <= node.committedHeight) return;
    const blocks: CommittedBlock[] = [];
    for (let h = node.committedHeight + 1n; h <= best.committedHeight && blocks.length < 64; h++) {
      const cb = best.blocks.get(h);
      if (cb === undefined) break;
      blocks.push(cb);
    }
    if (blocks.length > 0) this.local(node, { kind: "followBlocks", blocks });
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
    this.submitTx(c, this.nextStakingCall(c) ?? this.clients[c]!.nextTransfer(this.clientRng));
  }

  /** (Epochs) Half the time a staking call of one of the client's idle token holders, else null. */
  private nextStakingCall(c: number): SimTx | null {
    const mine = this.delegators[c];
    if (mine === undefined) return null;
    for (const d of mine) if (d.pending !== null && this.liveness.isCommitted(d.pending)) d.pending = null;
    const candidates = this.candidates();
    // The rotator moves at its client's next submission once the operator it backs is in the
    // latest elected set (an epoch has only a few blocks: waiting for a coin flip often misses it).
    const members = this.latestMembers();
    const rotator = mine.find((d) => d.rotator && d.pending === null && d.backsMemberOf(members));
    if (rotator !== undefined)
      return rotator.next(
        this.stakeRng,
        candidates,
        candidates.filter((op) => !members.has(toHex(op))),
      );
    if (!this.stakeRng.chance(1, 2)) return null;
    const idle = mine.filter((d) => d.pending === null);
    if (idle.length === 0) return null;
    return idle[this.stakeRng.int(idle.length)]!.next(this.stakeRng, candidates);
  }

  /** (Epochs) Operator addresses (hex) of the latest elected set's members. */
  private latestMembers(): Set<string> {
    let top = 0n;
    for (const e of this.elected.keys()) if (e > top) top = e;
    const out = new Set<string>();
    for (const m of this.elected.get(top)?.members ?? []) {
      const r = this.nodeOfKey.get(toHex(m.publicKey));
      if (r !== undefined) out.add(toHex(addressOf(this.operators[r]!.publicKey)));
    }
    return out;
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

/** A validator's advertised address (registration data only: the simulator routes by index). */
function peerAddressOf(i: number): string {
  return `127.0.0.1:${26000 + i}`;
}

function seedSecret(seed: number, role: string, i: number): Uint8Array {
  return createHash("sha256").update(`sim/${seed}/${role}/`).update(u32be(i)).digest();
}
