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

/** Stake that left a validator (a ballot lowered), still slashable for its offences. */
export interface Exposure {
  delegator: Uint8Array;
  amount: bigint;
  sinceEpoch: bigint;
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
  /** Sorted by (delegator, sinceEpoch); pruned once older than the unbonding period. */
  exposures: Exposure[];
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
