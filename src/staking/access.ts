// The access list an honest client declares for a staking call. Pure (the SDK uses it too).
// Delegate, undelegate and vote need the validators of the sender's current ballot and
// exposures; evidence needs the operator of the key (both from a query of executed state).
import type { StakingCall } from "../gen/parabft/v1/types_pb.js";
import { compareBytes } from "../types/bytes.js";
import { stakingKeys } from "./keys.js";

export interface StakingAccessHints {
  /**
   * Validators on the sender's current ballot and those it has exposures to (getDelegations):
   * delegate, undelegate and vote settle exposures, vote withdraws from the old ballot.
   */
  ballot?: readonly Uint8Array[];
  /** Operator whose consensus key the evidence names. */
  evidenceOperator?: Uint8Array;
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
      return {
        reads: [meta],
        writes: [
          stakingKeys.delegator(sender),
          ...uniq([...(hints.ballot ?? [])]).map((v) => stakingKeys.validator(v)),
        ],
      };
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
      return { reads: [meta, stakingKeys.consensusKey(c.value.consensusKey)], writes };
    }
    default:
      return { reads: [meta], writes: [] };
  }
}
