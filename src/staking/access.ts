// The access list an honest client declares for a staking call. Pure (the SDK uses it too).
// Vote needs the validators of the sender's current ballot; evidence needs the operator of the
// key and the delegators exposed to it (both from a query of executed state).
import type { StakingCall } from "../gen/parabft/v1/types_pb.js";
import { compareBytes } from "../types/bytes.js";
import { stakingKeys } from "./keys.js";

export interface StakingAccessHints {
  /** Validators on the sender's current ballot (vote). */
  ballot?: readonly Uint8Array[];
  /** Operator whose consensus key the evidence names, and delegators exposed to it. */
  evidenceOperator?: Uint8Array;
  exposedDelegators?: readonly Uint8Array[];
}

function uniq(keys: Uint8Array[]): Uint8Array[] {
  const sorted = [...keys].sort(compareBytes);
  return sorted.filter((k, i) => i === 0 || compareBytes(sorted[i - 1]!, k) !== 0);
}

export function stakingAccess(
  sender: Uint8Array,
  call: StakingCall,
  hints: StakingAccessHints = {},
): { reads: Uint8Array[]; writes: Uint8Array[] } {
  const meta = stakingKeys.meta();
  const c = call.call;
  switch (c.case) {
    case "registerValidator":
      return {
        reads: [meta],
        writes: [
          stakingKeys.validator(sender),
          stakingKeys.consensusKey(c.value.consensusKey),
          stakingKeys.registry(),
        ],
      };
    case "delegate":
    case "undelegate":
      return { reads: [meta], writes: [stakingKeys.delegator(sender)] };
    case "vote": {
      const vals = [...(hints.ballot ?? []), ...c.value.entries.map((e) => e.validator)];
      return {
        reads: [meta],
        writes: [stakingKeys.delegator(sender), ...uniq(vals).map((v) => stakingKeys.validator(v))],
      };
    }
    case "unjail":
      return { reads: [meta], writes: [stakingKeys.validator(sender)] };
    case "submitEvidence": {
      const writes = [stakingKeys.slashed()];
      if (hints.evidenceOperator) writes.push(stakingKeys.validator(hints.evidenceOperator));
      for (const d of uniq([...(hints.exposedDelegators ?? [])])) writes.push(stakingKeys.delegator(d));
      return { reads: [meta, stakingKeys.consensusKey(c.value.consensusKey)], writes };
    }
    default:
      return { reads: [meta], writes: [] };
  }
}
