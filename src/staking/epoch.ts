// The epoch hook, run when executing the last block of epoch e (height % epochLength ==
// epochLength − 1), after its transactions: downtime jailing for epoch e, the election of the
// set of epoch e+2 (persisted in state as an epoch snapshot with the stakes behind it), and the
// switch of the execution epoch to e+1. Pure over a key/value window: the node adds its writes
// to the block's write set (that wiring lands with the consensus handoff).
import { toHex } from "../types/bytes.js";
import { compareCandidates, elect, memberOf } from "./elect.js";
import type { StakingEvent } from "./programs.js";
import { candidateRecord, type KeyValue, StakingStore } from "./state.js";
import {
  type EpochSnapshot,
  type SetMember,
  type StakingRules,
  type ValidatorRecord,
  ValidatorStatus,
} from "./types.js";

/** Commits signed per consensus key (hex) in the ending epoch, judged from the chain. */
export interface SigningTally {
  total: number;
  signed: ReadonlyMap<string, number>;
}

export interface EpochEndInput {
  endingEpoch: bigint;
  /** Absent: no downtime judgement this epoch (e.g. the record of signers is not available). */
  signing?: SigningTally;
}

export interface EpochEndResult {
  snapshot: EpochSnapshot;
  jailed: Uint8Array[];
  events: StakingEvent[];
}

export function isLastHeightOfEpoch(height: bigint, epochLength: number): boolean {
  return height % BigInt(epochLength) === BigInt(epochLength - 1);
}

export function epochOfHeight(height: bigint, epochLength: number): bigint {
  return height / BigInt(epochLength);
}

/** Every registered validator, in registry (operator) order. */
export function loadValidators(store: StakingStore): ValidatorRecord[] {
  const out = [];
  for (const op of store.registry()) {
    const v = store.validator(op);
    if (v !== null) out.push(v);
  }
  return out;
}

export function endEpoch(kv: KeyValue, input: EpochEndInput): EpochEndResult {
  const store = new StakingStore(kv);
  const meta = store.meta();
  const rules = meta.rules;
  const e = input.endingEpoch;
  const events: StakingEvent[] = [];
  const jailed: Uint8Array[] = [];
  const validators = loadValidators(store);
  const inForce = store.snapshot(e);
  if (input.signing !== undefined && inForce !== null && input.signing.total > 0) {
    const byKey = new Map(validators.map((v) => [toHex(v.consensusKey), v]));
    let slashedNow = 0n;
    for (const m of inForce.members) {
      const v = byKey.get(toHex(m.consensusKey));
      if (v === undefined || v.status !== ValidatorStatus.candidate) continue;
      const signed = input.signing.signed.get(toHex(m.consensusKey)) ?? 0;
      if (signed * 10_000 >= rules.minSignedBps * input.signing.total) continue;
      const fromSelf = (v.selfStake * BigInt(rules.slashDowntimeBps)) / 10_000n;
      const fromPool = (v.tokens * BigInt(rules.slashDowntimeBps)) / 10_000n;
      v.selfStake -= fromSelf;
      v.tokens -= fromPool;
      v.status = ValidatorStatus.jailed;
      v.jailedUntil = e + 2n;
      slashedNow += fromSelf + fromPool;
      store.putValidator(v);
      jailed.push(v.operator);
      events.push({
        kind: "staking.jail",
        attrs: [
          ["operator", toHex(v.operator)],
          ["reason", "downtime"],
          ["signed", `${signed}/${input.signing.total}`],
          ["amount", (fromSelf + fromPool).toString()],
          ["until", (e + 2n).toString()],
        ],
      });
    }
    if (slashedNow > 0n) store.putSlashed(store.slashed() + slashedNow);
  }
  const current: SetMember[] = (store.snapshot(e + 1n) ?? inForce)?.members ?? [];
  const snapshot = elect({ validators, current }, rules, e + 2n);
  store.putSnapshot(snapshot);
  store.putMeta({ epoch: e + 1n, rules });
  events.push({
    kind: "staking.election",
    attrs: [
      ["epoch", snapshot.epoch.toString()],
      ["kept", String(snapshot.kept)],
      ["members", snapshot.members.map((m) => toHex(m.operator)).join(",")],
    ],
  });
  return { snapshot, jailed, events };
}

export interface GenesisValidator {
  operator: Uint8Array;
  consensusKey: Uint8Array;
  peerAddress: string;
  selfStake: bigint;
}

/**
 * Staking genesis: the rules, the genesis validators as registered candidates, and the sets of
 * epochs 0 and 1 (both the genesis set). Their self stake is bonded from genesis.
 */
export function stakingGenesis(
  kv: KeyValue,
  rules: StakingRules,
  validators: GenesisValidator[],
): EpochSnapshot {
  const store = new StakingStore(kv);
  store.putMeta({ epoch: 0n, rules });
  const records: ValidatorRecord[] = validators.map((g) =>
    candidateRecord({ ...g, commissionBps: 0, registeredEpoch: 0n }),
  );
  for (const v of records) {
    store.putValidator(v);
    store.putOperatorOfKey(v.consensusKey, v.operator);
  }
  store.putRegistry(records.map((v) => v.operator).sort((a, b) => (toHex(a) < toHex(b) ? -1 : 1)));
  // The genesis set is every genesis validator (consensus runs with it whatever the stakes),
  // in election order; eligibility applies from the first election on.
  const set: EpochSnapshot = {
    epoch: 0n,
    kept: false,
    members: records.map(memberOf).sort(compareCandidates),
  };
  store.putSnapshot(set);
  store.putSnapshot({ ...set, epoch: 1n });
  return set;
}
