// The election (DESIGN §6): a pure function of the validator records. power = self stake +
// votes; eligible = candidate (not jailed, not tombstoned), self stake ≥ minimum, power > 0;
// order = power descending, then operator address ascending (bytes); at most maxValidators.
// Fewer than minValidators eligible: the current set is kept. The input order never matters:
// the records are sorted by a total order before anything else.
import { compareBytes } from "../types/bytes.js";
import {
  type EpochSnapshot,
  type SetMember,
  type StakingRules,
  type ValidatorRecord,
  ValidatorStatus,
} from "./types.js";

export interface ElectionInput {
  /** Every registered validator, in any order. */
  validators: readonly ValidatorRecord[];
  /** The set in force when the election runs (kept when too few are eligible). */
  current: readonly SetMember[];
}

export function powerOf(v: Pick<ValidatorRecord, "selfStake" | "tokens">): bigint {
  return v.selfStake + v.tokens;
}

export function isEligible(v: ValidatorRecord, rules: Pick<StakingRules, "minSelfStake">): boolean {
  return v.status === ValidatorStatus.candidate && v.selfStake >= rules.minSelfStake && powerOf(v) > 0n;
}

/** Total order used by the election: power descending, then operator ascending. */
export function compareCandidates(
  a: { power: bigint; operator: Uint8Array },
  b: { power: bigint; operator: Uint8Array },
): number {
  if (a.power !== b.power) return a.power > b.power ? -1 : 1;
  return compareBytes(a.operator, b.operator);
}

export function memberOf(v: ValidatorRecord): SetMember {
  return {
    operator: v.operator.slice(),
    consensusKey: v.consensusKey.slice(),
    peerAddress: v.peerAddress,
    power: powerOf(v),
    selfStake: v.selfStake,
    delegated: v.tokens,
  };
}

/** Elects the set of `epoch` (the caller passes e+2 when executing the last block of epoch e). */
export function elect(
  input: ElectionInput,
  rules: Pick<StakingRules, "maxValidators" | "minValidators" | "minSelfStake">,
  epoch: bigint,
): EpochSnapshot {
  const eligible = input.validators.filter((v) => isEligible(v, rules)).map(memberOf);
  eligible.sort(compareCandidates);
  if (eligible.length < rules.minValidators) {
    return { epoch, kept: true, members: input.current.map((m) => ({ ...m })) };
  }
  return { epoch, kept: false, members: eligible.slice(0, rules.maxValidators) };
}
