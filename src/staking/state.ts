// Typed access to staking records through the executor's key/value window (reads and writes
// go through the transaction's declared access list, so an undeclared key fails the tx).
import { defaultParams } from "../params/index.js";
import {
  decodeAmount,
  decodeDelegator,
  decodeMeta,
  decodeRegistry,
  decodeSnapshot,
  decodeValidator,
  encodeAmount,
  encodeDelegator,
  encodeMeta,
  encodeRegistry,
  encodeSnapshot,
  encodeValidator,
} from "./codec.js";
import { bin, stakingKeys } from "./keys.js";
import {
  type DelegatorRecord,
  type EpochSnapshot,
  rulesFrom,
  type StakingMeta,
  type ValidatorRecord,
  ValidatorStatus,
} from "./types.js";

/** A validator as it enters the registry (genesis or RegisterValidator): a candidate, no votes yet. */
export function candidateRecord(
  r: Pick<
    ValidatorRecord,
    "operator" | "consensusKey" | "commissionBps" | "selfStake" | "peerAddress" | "registeredEpoch"
  >,
): ValidatorRecord {
  return {
    operator: r.operator.slice(),
    consensusKey: r.consensusKey.slice(),
    commissionBps: r.commissionBps,
    selfStake: r.selfStake,
    peerAddress: r.peerAddress,
    status: ValidatorStatus.candidate,
    jailedUntil: 0n,
    registeredEpoch: r.registeredEpoch,
    tokens: 0n,
    shares: 0n,
    doubleSign: null,
    lateSlashed: 0n,
  };
}

/** The executor's window: binary-string keys, null = absent. */
export interface KeyValue {
  read(key: string): Uint8Array | null;
  write(key: string, value: Uint8Array | null): void;
}

/** Meta when the chain was started without staking genesis: epoch 0, default rules. */
export function defaultMeta(): StakingMeta {
  return { epoch: 0n, rules: rulesFrom(defaultParams.staking) };
}

export class StakingStore {
  constructor(readonly kv: KeyValue) {}

  meta(): StakingMeta {
    const v = this.kv.read(bin(stakingKeys.meta()));
    return v === null ? defaultMeta() : decodeMeta(v);
  }
  putMeta(m: StakingMeta): void {
    this.kv.write(bin(stakingKeys.meta()), encodeMeta(m));
  }
  validator(operator: Uint8Array): ValidatorRecord | null {
    const v = this.kv.read(bin(stakingKeys.validator(operator)));
    return v === null ? null : decodeValidator(v);
  }
  putValidator(v: ValidatorRecord): void {
    this.kv.write(bin(stakingKeys.validator(v.operator)), encodeValidator(v));
  }
  operatorOfKey(consensusKey: Uint8Array): Uint8Array | null {
    return this.kv.read(bin(stakingKeys.consensusKey(consensusKey)));
  }
  putOperatorOfKey(consensusKey: Uint8Array, operator: Uint8Array): void {
    this.kv.write(bin(stakingKeys.consensusKey(consensusKey)), operator.slice());
  }
  delegator(address: Uint8Array): DelegatorRecord {
    const v = this.kv.read(bin(stakingKeys.delegator(address)));
    return v === null ? { free: 0n, ballot: [], unbonding: [], exposures: [] } : decodeDelegator(v);
  }
  putDelegator(address: Uint8Array, d: DelegatorRecord): void {
    const empty =
      d.free === 0n && d.ballot.length === 0 && d.unbonding.length === 0 && d.exposures.length === 0;
    this.kv.write(bin(stakingKeys.delegator(address)), empty ? null : encodeDelegator(d));
  }
  registry(): Uint8Array[] {
    const v = this.kv.read(bin(stakingKeys.registry()));
    return v === null ? [] : decodeRegistry(v);
  }
  putRegistry(ops: Uint8Array[]): void {
    this.kv.write(bin(stakingKeys.registry()), encodeRegistry(ops));
  }
  slashed(): bigint {
    const v = this.kv.read(bin(stakingKeys.slashed()));
    return v === null ? 0n : decodeAmount(v);
  }
  putSlashed(x: bigint): void {
    this.kv.write(bin(stakingKeys.slashed()), encodeAmount(x));
  }
  snapshot(epoch: bigint): EpochSnapshot | null {
    const v = this.kv.read(bin(stakingKeys.epochSet(epoch)));
    return v === null ? null : decodeSnapshot(v);
  }
  putSnapshot(s: EpochSnapshot): void {
    this.kv.write(bin(stakingKeys.epochSet(s.epoch)), encodeSnapshot(s));
  }
}
