// Fault schedules. A seed picks, from the enabled fault kinds, a network profile, Byzantine
// roles and a timeline of crashes, restarts and partitions, all before the stabilisation time
// T. From T on: partitions healed, no loss, every crashed replica restarted, at most f faulty
// (the Byzantine ones), so liveness is asserted from T.
import type { NetworkProfile } from "./network.js";
import type { Prng } from "./prng.js";

export const NETWORK_FAULTS = ["delay", "loss", "dup", "partition"] as const;
export const NODE_FAULTS = ["crash"] as const;
export const BYZANTINE_BEHAVIOURS = [
  "equivocate",
  "silent",
  "forge",
  "replay",
  "wrongview",
  "garbage",
] as const;
/** Targeted faults, off by default: aimed at specific broken rules in the teeth tests. */
export const TARGETED_FAULTS = ["crashaftercommit", "isolatecommitter", "doublevote", "reorder"] as const;
/**
 * Scripted attacks, off by default: a fixed adversarial schedule rather than random faults.
 * - `stitch` (n = 4 with a Byzantine replica; inert otherwise): replica 0 is Byzantine and the
 *   network before T is adversarial; five views leave each honest replica prepared in a different
 *   view, for alternating digests, with no view ever holding a quorum of COMMITs (src/sim/stitch.ts).
 *   Caught by the `stitchCertificates` teeth switch; a correct core commits nothing until T.
 */
export const SCRIPTED_FAULTS = ["stitch"] as const;
/**
 * Faults added for issue 9 (off by default; CI mixes them into its seeds). A seed enables each
 * listed one with probability 1/2, so a run over many seeds covers them alone and together:
 * - `asymmetric`: one-way and non-transitive link cuts (a→b dropped, b→a fine);
 * - `crashmidstep`: an honest replica crashes after any prefix of one step's actions, and the
 *   last durable write may be torn (dropped) when nothing was sent after it;
 * - `nvquorum`: a Byzantine new primary picks which VIEW-CHANGEs its NEW-VIEW carries (those that
 *   prove the least);
 * - `withhold`: a Byzantine primary sends its PRE-PREPARE (the body) to fewer than a quorum;
 * - `flood`: Byzantine replicas flood correctly signed future-view votes at the buffers;
 * - `weighted`: voting power 1..3 per validator (Byzantine power still below 1/3);
 * - `amnesia`: with no Byzantine replica, f replicas restart without their signing state;
 * - `clustercrash`: every replica crashes at once and restarts.
 */
export const ISSUE9_FAULTS = [
  "asymmetric",
  "crashmidstep",
  "nvquorum",
  "withhold",
  "flood",
  "weighted",
  "amnesia",
  "clustercrash",
] as const;

export type ByzantineBehaviour = (typeof BYZANTINE_BEHAVIOURS)[number];
export type FaultKind =
  | (typeof NETWORK_FAULTS)[number]
  | (typeof NODE_FAULTS)[number]
  | ByzantineBehaviour
  | (typeof TARGETED_FAULTS)[number]
  | (typeof SCRIPTED_FAULTS)[number]
  | (typeof ISSUE9_FAULTS)[number];

export const DEFAULT_FAULTS: readonly FaultKind[] = [
  ...NETWORK_FAULTS,
  ...NODE_FAULTS,
  ...BYZANTINE_BEHAVIOURS,
];
export const ALL_FAULT_KINDS: readonly FaultKind[] = [
  ...DEFAULT_FAULTS,
  ...TARGETED_FAULTS,
  ...SCRIPTED_FAULTS,
  ...ISSUE9_FAULTS,
];

/** `none`, `all`/`default`, a comma list, or `default,` followed by extras (e.g. `default,crashaftercommit`). */
export function parseFaults(list: string): FaultKind[] {
  if (list === "none" || list === "") return [];
  const out: FaultKind[] = [];
  for (const raw of list.split(",")) {
    const f = raw.trim();
    if (f === "all" || f === "default") {
      for (const d of DEFAULT_FAULTS) if (!out.includes(d)) out.push(d);
      continue;
    }
    if (!(ALL_FAULT_KINDS as readonly string[]).includes(f)) {
      throw new RangeError(`unknown fault '${f}' (known: ${ALL_FAULT_KINDS.join(", ")}, all, none)`);
    }
    if (!out.includes(f as FaultKind)) out.push(f as FaultKind);
  }
  return out;
}

/**
 * How a crashed replica comes back: with everything it persisted; with its data directory wiped
 * (blocks gone, signing state kept beside the key); or with its signing state lost (data kept), in
 * which case it must not vote until it has caught up.
 */
export type RestartMode = "normal" | "wipeData" | "loseSigningState";

export type TimelineEvent =
  | { at: number; kind: "crash"; replica: number }
  | { at: number; kind: "restart"; replica: number; mode?: RestartMode }
  | { at: number; kind: "partition"; groups: number[][] }
  | { at: number; kind: "heal" }
  /** Directed links [from, to] that drop everything until the next heal. */
  | { at: number; kind: "links"; blocked: [number, number][] }
  | { at: number; kind: "stabilise" };

export interface FaultPlan {
  /** Network before T. */
  profile: NetworkProfile;
  /** Network from T on: no loss, bounded delay. */
  stableProfile: NetworkProfile;
  /** Byzantine replica -> its misbehaviours (empty list: follows the protocol but is not trusted). */
  byzantine: Map<number, ByzantineBehaviour[]>;
  timeline: TimelineEvent[];
  stableAtMs: number;
  /** Probability (1/1000) that an honest replica crashes right after persisting a COMMIT record. */
  crashAfterCommitPerMille: number;
  /** Probability (1/1000) that the first honest replica to commit a height is cut off for a while. */
  isolateCommitterPerMille: number;
  /** Byzantine replicas also vote for every conflicting digest they learn of. */
  doubleVote: boolean;
  /** An equivocating primary sends both of its blocks to everyone (in different orders). */
  alwaysCross: boolean;
  /** Voting power per replica (all 1n unless `weighted`). */
  powers: bigint[];
  /** Probability (1/10000) per step of an honest replica that it crashes mid-step (crashmidstep). */
  crashMidStepPerTenThousand: number;
  /** Byzantine behaviours from the issue-9 faults, given to every Byzantine replica. */
  nvQuorum: boolean;
  withhold: boolean;
  flood: boolean;
  /** The scripted stitch attack runs (src/sim/stitch.ts): replica 0 is the one Byzantine replica. */
  stitch: boolean;
}

export interface PlanInput {
  n: number;
  byzantine: number;
  faults: readonly FaultKind[];
  stableAtMs: number;
}

export function planFaults(rng: Prng, input: PlanInput): FaultPlan {
  const { n, faults, stableAtMs } = input;
  const has = (f: FaultKind) => faults.includes(f);
  // Issue-9 faults: each listed one is on in a seed with probability 1/2, drawn from a separate
  // stream so that the seeds of the other fault mixes stay what they were.
  const extraRng = ISSUE9_FAULTS.some((f) => has(f)) ? rng.fork(9) : rng;
  const on9 = new Set<FaultKind>();
  for (const f of ISSUE9_FAULTS) if (has(f) && extraRng.chance(1, 2)) on9.add(f);
  const delay = has("delay");
  const base: NetworkProfile = {
    minDelayMs: delay ? 1 + rng.int(10) : 10,
    jitterMs: delay ? 5 + rng.int(40) : 0,
    slowPerMille: delay ? rng.int(50) : 0,
    slowExtraMs: delay ? 50 + rng.int(300) : 0,
    lossPerMille: has("loss") ? rng.int(60) : 0,
    dupPerMille: has("dup") ? rng.int(60) : 0,
  };
  if (has("reorder")) {
    // Heavy jitter: two messages sent a few ms apart on one link arrive in either order.
    base.minDelayMs = 1;
    base.jitterMs = 150 + rng.int(100);
  }
  const stableProfile: NetworkProfile = { ...base, lossPerMille: 0, slowPerMille: 0, slowExtraMs: 0 };

  // Byzantine replicas: the primary of view 0 is replica 0, so put it among them often, so that
  // equivocating and silent primaries are actually exercised.
  const byzantine = new Map<number, ByzantineBehaviour[]>();
  const enabledByz = BYZANTINE_BEHAVIOURS.filter((b) => has(b));
  if (input.byzantine > 0) {
    const order = rng.chance(2, 3) ? [0, ...rng.shuffle(range(1, n))] : rng.shuffle(range(0, n));
    for (const r of order.slice(0, input.byzantine)) {
      const behaviours = enabledByz.filter(() => rng.chance(1, 2));
      if (behaviours.length === 0 && enabledByz.length > 0) behaviours.push(rng.pick(enabledByz));
      byzantine.set(r, behaviours);
    }
  }
  // The stitch script needs exactly replica 0 Byzantine, running the protocol: the script itself
  // is its misbehaviour.
  const stitch = has("stitch") && n === 4 && input.byzantine >= 1;
  if (stitch) {
    byzantine.clear();
    byzantine.set(0, []);
  }

  // Weighted power: honest 1..3, Byzantine 1, so Byzantine power stays below 1/3 of the total.
  const powers: bigint[] = [];
  for (let i = 0; i < n; i++)
    powers.push(on9.has("weighted") && !byzantine.has(i) ? BigInt(1 + extraRng.int(3)) : 1n);
  const total = powers.reduce((a, b) => a + b, 0n);
  let faultyPower = 0n;
  for (const r of byzantine.keys()) faultyPower += powers[r]!;
  /** Room in the budget (faulty power below 1/3 of the total) for one more faulty replica r. */
  const budgetFor = (r: number) => 3n * (faultyPower + powers[r]!) < total;

  const timeline: TimelineEvent[] = [];
  if (has("partition")) {
    const count = rng.int(3);
    for (let i = 0; i < count; i++) {
      const at = rng.int(Math.max(1, stableAtMs - 500));
      const shuffled = rng.shuffle(range(0, n));
      const cut = 1 + rng.int(n - 1);
      timeline.push({ at, kind: "partition", groups: [shuffled.slice(0, cut), shuffled.slice(cut)] });
      timeline.push({ at: Math.min(stableAtMs - 1, at + 200 + rng.int(2000)), kind: "heal" });
    }
  }
  if (has("crash")) {
    const f = Math.floor((n - 1) / 3);
    const amnesiacs = new Set<number>();
    const count = rng.int(3);
    const honest = range(0, n).filter((r) => !byzantine.has(r));
    for (let i = 0; i < count && honest.length > 0; i++) {
      const replica = rng.pick(honest);
      const at = rng.int(Math.max(1, stableAtMs - 600));
      timeline.push({ at, kind: "crash", replica });
      const roll = rng.int(5);
      // A replica that lost its signing state stays silent until it has caught up: it is faulty
      // until then, so it must fit in the budget of f together with the Byzantine replicas.
      const amnesiaAllowed =
        byzantine.size + amnesiacs.size < f && !amnesiacs.has(replica) && budgetFor(replica);
      const mode: RestartMode =
        roll === 0 ? "wipeData" : roll === 1 && amnesiaAllowed ? "loseSigningState" : "normal";
      if (mode === "loseSigningState") {
        amnesiacs.add(replica);
        faultyPower += powers[replica]!;
      }
      timeline.push({
        at: Math.min(stableAtMs - 1, at + 100 + rng.int(2500)),
        kind: "restart",
        replica,
        mode,
      });
    }
  }
  if (on9.has("asymmetric")) {
    // One-way cuts: a few replicas cannot send to some others while hearing them fine, which
    // also makes reachability non-transitive.
    for (let i = 0, count = 1 + extraRng.int(2); i < count; i++) {
      const at = extraRng.int(Math.max(1, stableAtMs - 800));
      const blocked: [number, number][] = [];
      for (const from of extraRng.shuffle(range(0, n)).slice(0, 1 + extraRng.int(2))) {
        for (const to of range(0, n)) if (to !== from && extraRng.chance(1, 2)) blocked.push([from, to]);
      }
      timeline.push({ at, kind: "links", blocked });
      timeline.push({ at: Math.min(stableAtMs - 1, at + 300 + extraRng.int(2000)), kind: "heal" });
    }
  }
  if (on9.has("amnesia") && byzantine.size === 0) {
    // k = f replicas (by power: within the budget) lose their signing state.
    const f = Math.floor((n - 1) / 3);
    let k = 0;
    for (const r of extraRng.shuffle(range(0, n))) {
      if (k >= f || !budgetFor(r)) continue;
      k++;
      faultyPower += powers[r]!;
      const at = extraRng.int(Math.max(1, stableAtMs - 2500));
      timeline.push({ at, kind: "crash", replica: r });
      timeline.push({
        at: Math.min(stableAtMs - 1, at + 100 + extraRng.int(1500)),
        kind: "restart",
        replica: r,
        mode: "loseSigningState",
      });
    }
  }
  if (on9.has("clustercrash")) {
    const at = 300 + extraRng.int(Math.max(1, stableAtMs - 2500));
    const back = at + 100 + extraRng.int(1000);
    for (const r of range(0, n)) timeline.push({ at, kind: "crash", replica: r });
    for (const r of range(0, n)) timeline.push({ at: back + extraRng.int(200), kind: "restart", replica: r });
  }
  timeline.push({ at: stableAtMs, kind: "stabilise" });
  // Stable sort by time keeps generation order for equal times: deterministic.
  timeline.sort((a, b) => a.at - b.at);

  return {
    profile: base,
    stableProfile,
    byzantine,
    timeline,
    stableAtMs,
    crashAfterCommitPerMille: has("crashaftercommit") ? 500 : 0,
    isolateCommitterPerMille: has("isolatecommitter") ? 500 : 0,
    doubleVote: has("doublevote") || has("equivocate") || on9.has("withhold"),
    alwaysCross: has("doublevote"),
    powers,
    crashMidStepPerTenThousand: on9.has("crashmidstep") ? 5 : 0,
    nvQuorum: on9.has("nvquorum"),
    withhold: on9.has("withhold"),
    flood: on9.has("flood"),
    stitch,
  };
}

function range(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = lo; i < hi; i++) out.push(i);
  return out;
}
