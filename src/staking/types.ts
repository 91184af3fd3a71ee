// The staking state model (DESIGN §6). Amounts are bigint token units, fractions basis points,
// epochs bigint. Plain data: every record has a canonical binary encoding in codec.ts.
import type { StakingParams } from "../params/index.js";

export const OPERATOR_LENGTH = 20;
export const CONSENSUS_KEY_LENGTH = 32;

/** Stored status. "active" is not stored: it means "member of the epoch's elected set". */
export enum ValidatorStatus {
  candidate = 0,
  jailed = 1,
  tombstoned = 2,
}

export type DisplayStatus = "active" | "candidate" | "jailed" | "tombstoned";

/**
 * Stake that left a validator (a ballot lowered) in `sinceEpoch`: still slashable for the
 * validator's offences up to that epoch until the unbonding period has passed. Kept on the
 * delegator and settled lazily by its next staking call, so evidence never has to name delegators.
 */
export interface Exposure {
  validator: Uint8Array;
  amount: bigint;
  sinceEpoch: bigint;
}

/** The one double-sign slash a validator can take (it is tombstoned by it). */
export interface DoubleSign {
  offenceEpoch: bigint;
  bps: number;
}

export interface ValidatorRecord {
  operator: Uint8Array;
  consensusKey: Uint8Array;
  commissionBps: number;
  /** Bonded by the operator at registration; slashable; not withdrawable in this version. */
  selfStake: bigint;
  peerAddress: string;
  status: ValidatorStatus;
  /** Jailed until this epoch (Unjail allowed from it on). */
  jailedUntil: bigint;
  registeredEpoch: bigint;
  /** Tokens voted to this validator (current value, after slashes) and the shares behind them. */
  tokens: bigint;
  shares: bigint;
  /** Set by equivocation evidence; leavers' exposures are charged against it when settled. */
  doubleSign: DoubleSign | null;
  /** Charged from leavers' exposures after the evidence (part of the slashed total). */
  lateSlashed: bigint;
}

export interface BallotEntry {
  validator: Uint8Array;
  shares: bigint;
}

export interface UnbondingEntry {
  amount: bigint;
  matureEpoch: bigint;
}

export interface DelegatorRecord {
  /** Bonded stake not allocated on the ballot (undelegatable). */
  free: bigint;
  /** Sorted by validator, unique. */
  ballot: BallotEntry[];
  /** In creation order. */
  unbonding: UnbondingEntry[];
  /** Sorted by (validator, sinceEpoch); settled on the next staking call of this delegator. */
  exposures: Exposure[];
}

/** Staking rules: the chain's StakingParams plus the execution-side limits. */
export interface StakingRules extends StakingParams {
  minSelfStake: bigint;
  /** Most candidates on one ballot. */
  maxVotes: number;
  /** A validator that signed fewer than this share of an epoch's commits is jailed. */
  minSignedBps: number;
}

export interface StakingMeta {
  /** The epoch execution is in (advanced by the epoch hook). */
  epoch: bigint;
  rules: StakingRules;
}

export function rulesFrom(params: StakingParams, extra: Partial<StakingRules> = {}): StakingRules {
  return {
    ...params,
    minSelfStake: 1000n,
    maxVotes: params.maxValidators,
    minSignedBps: 5000,
    ...extra,
  };
}

export interface SetMember {
  operator: Uint8Array;
  consensusKey: Uint8Array;
  peerAddress: string;
  /** selfStake + delegated. */
  power: bigint;
  selfStake: bigint;
  delegated: bigint;
}

/** The elected set of one epoch with the stakes behind it. */
export interface EpochSnapshot {
  epoch: bigint;
  /** Election order: power descending, operator ascending. */
  members: SetMember[];
  /** true when fewer than minValidators were eligible and the previous set was kept. */
  kept: boolean;
}
