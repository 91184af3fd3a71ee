// A run's cast, built from its config: the fault plan with the config's overrides (roles,
// epochs, network, replicas down from the start), and the pool's simulated processes, each
// honest or wrapped in its adversary.
import type { ValidatorSet } from "../consensus/valset/index.js";
import { blockDigest, GENESIS_CHAIN_HASH } from "../types/block.js";
import { Adversary, Collusion } from "./byzantine.js";
import { SIM_CHAIN_ID, type SimConfig } from "./config.js";
import { FakeExecutor } from "./executor.js";
import { type FaultPlan, planFaults } from "./faults.js";
import type { ValidityChecker } from "./invariants.js";
import type { Prng } from "./prng.js";
import type { StandInSigner } from "./signer.js";
import { SIM_BYZANTINE_SELF_STAKE, SIM_SELF_STAKE, type SimStakingState } from "./staking.js";
import type { SimNode } from "./types.js";
import { SimMempool } from "./workload.js";

/** The seed's fault plan (planRng), with what the config fixes laid over it. */
export function planRun(cfg: SimConfig, planRng: Prng, stableAtMs: number): FaultPlan {
  const L = cfg.epochLength;
  // With epochs every set has equal powers (the crash budget counts replicas) and no scripted stitch.
  const planFaultKinds =
    L === undefined ? cfg.faults : cfg.faults.filter((f) => f !== "weighted" && f !== "stitch");
  const plan = planFaults(planRng, {
    n: cfg.n,
    byzantine: cfg.byzantine,
    faults: planFaultKinds,
    stableAtMs,
  });
  if (cfg.byzantineRoles !== undefined) plan.byzantine = cfg.byzantineRoles;
  if (L !== undefined) {
    // Byzantine replicas become 0..k−1 and sit in every set at the same index (the adversary
    // signs with one index); the honest ones move between sets and indices.
    const roles = [...plan.byzantine.values()];
    plan.byzantine = new Map(roles.map((b, i) => [i, b]));
    // Genesis powers are the self stakes (the power rule in src/sim/staking.ts).
    plan.powers = plan.powers.map((_, i) =>
      i < roles.length ? SIM_BYZANTINE_SELF_STAKE - BigInt(i) : SIM_SELF_STAKE,
    );
  }
  if (cfg.network !== undefined) {
    plan.profile = cfg.network;
    plan.stableProfile = { ...cfg.network, lossPerMille: 0 };
  }
  if (cfg.crashedAtStart !== undefined) {
    for (const r of cfg.crashedAtStart.replicas) {
      plan.timeline.unshift({ at: 0, kind: "crash", replica: r });
      if (cfg.crashedAtStart.restartAtMs !== undefined)
        plan.timeline.push({ at: cfg.crashedAtStart.restartAtMs, kind: "restart", replica: r });
    }
    plan.timeline.sort((a, b) => a.at - b.at);
  }
  return plan;
}

export interface PoolOptions {
  cfg: SimConfig;
  plan: FaultPlan;
  /** Replicas in the pool: n, plus the extra validators with epochs. */
  poolSize: number;
  signers: readonly StandInSigner[];
  set: ValidatorSet;
}

export interface PoolModules {
  /** The run's main stream: each replica's clock skew, each adversary's own fork. */
  rng: Prng;
  validity: ValidityChecker;
  stakingStateFor: (replica: number) => SimStakingState | null;
}

/** The pool's simulated processes, in replica order, appended to `nodes` (read by the elections). */
export function addPoolNodes(nodes: SimNode[], opts: PoolOptions, modules: PoolModules): void {
  const L = opts.cfg.epochLength;
  const collusion = new Collusion();
  for (let i = 0; i < opts.poolSize; i++) {
    const behaviours = opts.plan.byzantine.get(i);
    const node: SimNode = {
      index: i,
      honest: behaviours === undefined,
      signer: opts.signers[i]!,
      adversary: null,
      core: null,
      life: 0,
      skewMs: modules.rng.int(41) - 20,
      records: [],
      blocks: new Map(),
      committedHeight: 0n,
      chainHash: GENESIS_CHAIN_HASH,
      chainHashes: new Map(),
      lastCert: null,
      stableHeight: 0n,
      exec: new FakeExecutor(modules.stakingStateFor(i)),
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
        n: opts.cfg.n,
        chainId: SIM_CHAIN_ID,
        epoch: 0n,
        signer: opts.signers[i]!,
        behaviours,
        doubleVote: opts.plan.doubleVote,
        alwaysCross: opts.plan.alwaysCross,
        nvQuorum: opts.plan.nvQuorum,
        withhold: opts.plan.withhold,
        flood: opts.plan.flood,
        set: opts.set,
        ...(L !== undefined ? { epochLength: L } : {}),
        rng: modules.rng.fork(100 + i),
        collusion,
        onProposed: (b) => modules.validity.recordProposal(blockDigest(b.header!), { proposer: i }),
      });
    }
    nodes.push(node);
  }
}
