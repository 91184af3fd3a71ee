// (Epochs, issue 11) The simulator's delegated-proof-of-stake half: the staking genesis and its
// token holders, the sets the executors elect (checked against each other; the first becomes the
// chain's), the handoff invariant at every boundary and its timing, the sync stand-in that feeds
// replicas outside the set, and the token holders' staking calls. A run without `epochLength` has
// none of this (Simulation.elections is null).
import { checkCommitCertificate } from "../consensus/envelope.js";
import { epochOfHeight, lastHeightOfEpoch } from "../consensus/epochs.js";
import { committedBlockOf, EpochReplica } from "../consensus/pbft/epochReplica.js";
import type { Action, Event } from "../consensus/pbft/types.js";
import { type EpochSets, ValidatorSet } from "../consensus/valset/index.js";
import type { CommittedBlock } from "../gen/parabft/v1/consensus_pb.js";
import { type EpochSnapshot, encodeSnapshot } from "../staking/index.js";
import { addressOf } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { sha256 } from "../types/hash.js";
import { peerAddressOf, SIM_CHAIN_ID, type SimConfig, seedSecret } from "./config.js";
import type { Executed } from "./executor.js";
import { ElectionChecker, type Violation } from "./invariants.js";
import type { Prng } from "./prng.js";
import type { StandInKeyRegistry, StandInSigner } from "./signer.js";
import { SIM_DELEGATION_CAP, SIM_SELF_STAKE, SimStakingState, simStakingRules } from "./staking.js";
import type { QEvent, SimNode } from "./types.js";
import { registerTx, SimDelegator, type SimTx } from "./workload.js";

type Deliver = Extract<Action, { kind: "deliver" }>;

export interface ElectionsOptions {
  cfg: SimConfig;
  epochLength: number;
  /** Replicas in the pool: n plus the extra validators. */
  poolSize: number;
  clientCount: number;
  /** Byzantine replicas are 0..byzantine−1 (in every set at the same index). */
  byzantine: number;
  /** Genesis powers (self stakes) of replicas 0..n−1. */
  powers: readonly bigint[];
  genesis: ValidatorSet;
  signers: readonly StandInSigner[];
  nodeOfKey: ReadonlyMap<string, number>;
  stakeRng: Prng;
}

/** What the elections need from the running simulation. */
export interface ElectionsModules {
  registry: StandInKeyRegistry;
  now(): number;
  nodes: readonly SimNode[];
  schedule(afterMs: number, e: QEvent): void;
  violation(v: Violation): void;
  /** Whether a transaction (hex hash) has committed at some honest replica. */
  isCommitted(txHash: string): boolean;
}

export class SimElections {
  /** Every epoch's set: genesis for 0 and 1, then the first executor's election of each. */
  private readonly elected = new Map<bigint, ValidatorSet>();
  private readonly election: ElectionChecker;
  /** The staking state at genesis (each executor starts from a copy). */
  private readonly stakingGenesis: SimStakingState;
  /** Operator keys of the pool's validators (index = replica). */
  private readonly operators: StandInSigner[] = [];
  /** Each client's token holders. */
  private readonly delegators: SimDelegator[][] = [];
  /** Hash of each extra validator's RegisterValidator (replica → tx). */
  private readonly registrations = new Map<number, string>();
  private readonly boundaryCommittedAt = new Map<bigint, number>();
  private readonly firstCommitAt = new Map<bigint, number>();
  private readonly distinctSets = new Set<string>();
  /** Replicas crashed for good at a boundary (crashAtBoundary): never restarted. */
  readonly downForGood = new Set<number>();
  /** Per boundary B: first honest commit of B + 1 − first honest commit of B (virtual ms). */
  readonly handoffMs: number[] = [];
  /** The same gap for every other height: the baseline. */
  readonly commitGapsMs: number[] = [];
  setChanges = 0;
  epochsReached = 0n;
  stakingCalls = 0;
  stakingFailed = 0;
  private maxExecuted = 0n;
  /** The chain's sets as the cores see them. */
  readonly sets: EpochSets = { get: (e: bigint) => this.elected.get(e) };

  constructor(
    private readonly opts: ElectionsOptions,
    private readonly modules: ElectionsModules,
  ) {
    this.elected.set(0n, opts.genesis);
    this.elected.set(1n, new ValidatorSet(1n, opts.genesis.members));
    this.distinctSets.add(this.membersKey(opts.genesis));
    this.election = new ElectionChecker(opts.cfg.n);
    this.stakingGenesis = this.setUpStaking();
  }

  get electedSets(): number {
    return this.elected.size - 2;
  }

  get distinctSetCount(): number {
    return this.distinctSets.size;
  }

  /**
   * Staking genesis and the token holders. Replicas 0..n−1 are the genesis validators
   * (Byzantine ones bond SIM_BYZANTINE_SELF_STAKE − i, honest ones SIM_SELF_STAKE); the extra
   * replicas' operators hold SIM_SELF_STAKE and register at time 0; each client has two token
   * holders whose delegations together never exceed SIM_DELEGATION_CAP (src/sim/staking.ts).
   */
  private setUpStaking(): SimStakingState {
    const { cfg, poolSize, clientCount } = this.opts;
    const n = cfg.n;
    const registry = this.modules.registry;
    const balances = new Map<string, bigint>();
    for (let i = 0; i < poolSize; i++) {
      const op = registry.newSigner(seedSecret(cfg.seed, "operator", i));
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
        const signer = registry.newSigner(seedSecret(cfg.seed, `holder${c}`, j));
        const rotator = c === 0 && j === 0;
        balances.set(toHex(addressOf(signer.publicKey)), rotator ? rotatorCap : cap);
        mine.push(new SimDelegator(SIM_CHAIN_ID, signer, rotator ? rotatorCap : cap, rotator));
      }
      this.delegators.push(mine);
    }
    return SimStakingState.genesis({
      chainId: SIM_CHAIN_ID,
      epochLength: this.opts.epochLength,
      rules: simStakingRules(n, this.opts.epochLength),
      validators: [...Array(n).keys()].map((i) => ({
        operator: addressOf(this.operators[i]!.publicKey),
        consensusKey: this.opts.signers[i]!.publicKey,
        peerAddress: peerAddressOf(i),
        selfStake: this.opts.powers[i]!,
      })),
      balances,
    });
  }

  /** A fresh executor's staking state: a copy of genesis. */
  stakingStateFor(replica: number): SimStakingState {
    const s = this.stakingGenesis.clone();
    if (this.opts.cfg.testOnlySkipVotesAt === replica) s.testOnlySkipVotes = true;
    return s;
  }

  /** The extra validators' RegisterValidator transactions, sent at time 0 (their operators' first). */
  registrationTxs(): SimTx[] {
    const out: SimTx[] = [];
    for (let i = this.opts.cfg.n; i < this.operators.length; i++) {
      const t = registerTx(
        SIM_CHAIN_ID,
        this.operators[i]!,
        this.opts.signers[i]!.publicKey,
        SIM_SELF_STAKE,
        peerAddressOf(i),
      );
      this.registrations.set(i, t.hashHex);
      out.push(t);
    }
    return out;
  }

  /** Operators a token holder may vote for: honest, registered (or genesis) validators. */
  private candidates(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.opts.byzantine; i < this.opts.poolSize; i++) {
      const reg = this.registrations.get(i);
      if (i < this.opts.cfg.n || (reg !== undefined && this.modules.isCommitted(reg)))
        out.push(addressOf(this.operators[i]!.publicKey));
    }
    return out;
  }

  private membersKey(set: ValidatorSet): string {
    return set.members.map((m) => this.opts.nodeOfKey.get(toHex(m.publicKey))).join(",");
  }

  /** A replica's executor ran a height: staking counts (first execution anywhere) and its election. */
  onExecuted(node: SimNode, res: Executed): void {
    if (res.height > this.maxExecuted) {
      this.maxExecuted = res.height;
      this.stakingCalls += res.stakingCalls;
      this.stakingFailed += res.stakingFailed;
    }
    if (res.snapshot !== null) this.onElected(node, res.snapshot);
  }

  /**
   * A replica's executor ran the election of `s.epoch` (it executed B(s.epoch − 2)): checked
   * against every other executor's; the first one becomes the chain's set, and every live replica
   * hears `setsChanged`.
   */
  private onElected(node: SimNode, s: EpochSnapshot): void {
    const { nodeOfKey, signers } = this.opts;
    const nodes = this.modules.nodes;
    let total = 0n;
    let byzantine = 0n;
    for (const m of s.members) {
      total += m.power;
      const r = nodeOfKey.get(toHex(m.consensusKey));
      if (r === undefined || !nodes[r]!.honest) byzantine += m.power;
    }
    const v = this.election.onElected(this.modules.now(), node.index, {
      epoch: s.epoch,
      snapshotHash: toHex(sha256(encodeSnapshot(s))),
      members: s.members.length,
      totalPower: total,
      byzantinePower: byzantine,
    });
    if (v !== null && node.honest) this.modules.violation(v);
    if (this.elected.has(s.epoch)) return;
    const set = new ValidatorSet(
      s.epoch,
      s.members.map((m) => {
        const r = nodeOfKey.get(toHex(m.consensusKey));
        // The signer's own key object (the stand-in verifier's fast path).
        return { publicKey: r === undefined ? m.consensusKey : signers[r]!.publicKey, power: m.power };
      }),
    );
    this.elected.set(s.epoch, set);
    const key = this.membersKey(set);
    const prev = this.elected.get(s.epoch - 1n);
    if (prev !== undefined && this.membersKey(prev) !== key) this.setChanges++;
    this.distinctSets.add(key);
    for (const nd of nodes) if (nd.core !== null) this.local(nd, { kind: "setsChanged" });
  }

  /** Node of index `to` in the set of `epoch`. */
  nodeAt(epoch: bigint, to: number): number | undefined {
    const key = this.elected.get(epoch)?.members[to]?.publicKey;
    return key === undefined ? undefined : this.opts.nodeOfKey.get(toHex(key));
  }

  /** Nodes of the members of `epoch`'s set other than `self` (a retiring instance speaks to the old set). */
  membersOf(epoch: bigint, self: number): number[] {
    const to: number[] = [];
    for (const m of this.elected.get(epoch)?.members ?? []) {
      const r = this.opts.nodeOfKey.get(toHex(m.publicKey))!;
      if (r !== self) to.push(r);
    }
    return to;
  }

  /** An honest replica entered `epoch`. */
  onEpochChanged(epoch: bigint): void {
    if (epoch > this.epochsReached) this.epochsReached = epoch;
  }

  /**
   * Handoff invariant: a block at or below a boundary carries the certificate of its own epoch's
   * set, never the next one's; above it never the old one's. Checked as: the certificate names
   * the epoch of its height and a quorum of that epoch's set signed it.
   */
  checkEpoch(node: SimNode, a: Deliver): Violation | null {
    const L = this.opts.epochLength;
    const want = epochOfHeight(a.height, L);
    const cert = a.certificate;
    const ok =
      cert.epoch === want &&
      a.epoch === want &&
      checkCommitCertificate(cert, {
        chainId: SIM_CHAIN_ID,
        sets: { get: (e) => this.elected.get(e) },
        verifier: this.modules.registry,
      });
    if (ok) return null;
    return {
      invariant: "epoch",
      atMs: this.modules.now(),
      replica: node.index,
      height: a.height,
      detail: `replica ${node.index} delivered height ${a.height} (epoch ${want}, last height of its epoch ${lastHeightOfEpoch(want, L)}) with a certificate of epoch ${cert.epoch}${cert.epoch === want ? " that its set did not sign" : ""}`,
    };
  }

  /** The first honest delivery of `a.height` (by `from`): boundary timing, followers, crashAtBoundary. */
  onFirstDelivery(from: SimNode, a: Deliver): void {
    this.noteBoundary(a.height);
    this.pushToFollowers(from, a);
  }

  /** First honest commits of each boundary B and of B + 1: the handoff time. */
  private noteBoundary(height: bigint): void {
    const L = this.opts.epochLength;
    const now = this.modules.now();
    const e = epochOfHeight(height, L);
    this.firstCommitAt.set(height, now);
    const before = this.firstCommitAt.get(height - 1n);
    if (before !== undefined && height > 1n && height !== lastHeightOfEpoch(e - 1n, L) + 1n)
      this.commitGapsMs.push(now - before);
    if (height === lastHeightOfEpoch(e, L)) {
      this.boundaryCommittedAt.set(e, now);
      const cab = this.opts.cfg.crashAtBoundary;
      if (cab !== undefined && BigInt(cab.epoch) === e) {
        // Crash `count` honest members of the old set for good (the latest in set order).
        const members = this.elected
          .get(e)!
          .members.map((m) => this.opts.nodeOfKey.get(toHex(m.publicKey))!)
          .filter((r) => this.modules.nodes[r]!.honest)
          .reverse()
          .slice(0, cab.count);
        for (const r of members) {
          this.downForGood.add(r);
          this.modules.schedule(0, { k: "fault", ev: { at: 0, kind: "crash", replica: r } });
        }
      }
    } else if (height === lastHeightOfEpoch(e - 1n, L) + 1n && e > 0n) {
      const at = this.boundaryCommittedAt.get(e - 1n);
      if (at !== undefined) this.handoffMs.push(now - at);
    }
  }

  /**
   * The sync stand-in also streams newly committed blocks to followers (like StreamBlocks), 10 ms
   * later: everything `from` holds above the follower's height, up to this one.
   */
  private pushToFollowers(from: SimNode, a: Deliver): void {
    for (const nd of this.modules.nodes) {
      const core = nd.core;
      if (nd === from || !(core instanceof EpochReplica) || core.selfIndex !== null) continue;
      const blocks: CommittedBlock[] = [];
      for (let h = core.committedHeight + 1n; h <= a.height && blocks.length < 64; h++) {
        const cb = h === a.height ? committedBlockOf(a) : from.blocks.get(h);
        if (cb === undefined) break;
        blocks.push(cb);
      }
      if (blocks.length === 0) continue;
      this.modules.schedule(10, {
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
  feedFollower(node: SimNode): void {
    const core = node.core;
    if (!(core instanceof EpochReplica) || core.selfIndex !== null) return;
    let best: SimNode | null = null;
    for (const nd of this.modules.nodes)
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

  /** Half the time a staking call of one of the client's idle token holders, else null. */
  nextStakingCall(c: number): SimTx | null {
    const mine = this.delegators[c];
    if (mine === undefined) return null;
    const rng = this.opts.stakeRng;
    for (const d of mine) if (d.pending !== null && this.modules.isCommitted(d.pending)) d.pending = null;
    const candidates = this.candidates();
    // The rotator moves at its client's next submission once the operator it backs is in the
    // latest elected set (an epoch has only a few blocks: waiting for a coin flip often misses it).
    const members = this.latestMembers();
    const rotator = mine.find((d) => d.rotator && d.pending === null && d.backsMemberOf(members));
    if (rotator !== undefined)
      return rotator.next(
        rng,
        candidates,
        candidates.filter((op) => !members.has(toHex(op))),
      );
    if (!rng.chance(1, 2)) return null;
    const idle = mine.filter((d) => d.pending === null);
    if (idle.length === 0) return null;
    return idle[rng.int(idle.length)]!.next(rng, candidates);
  }

  /** Operator addresses (hex) of the latest elected set's members. */
  private latestMembers(): Set<string> {
    let top = 0n;
    for (const e of this.elected.keys()) if (e > top) top = e;
    const out = new Set<string>();
    for (const m of this.elected.get(top)?.members ?? []) {
      const r = this.opts.nodeOfKey.get(toHex(m.publicKey));
      if (r !== undefined) out.add(toHex(addressOf(this.operators[r]!.publicKey)));
    }
    return out;
  }

  private local(node: SimNode, event: Event): void {
    this.modules.schedule(0, { k: "local", r: node.index, life: node.life, event });
  }
}
