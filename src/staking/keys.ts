// Staking state keys as the executor's binary strings (one char per byte). The byte layout is
// in src/types/stateKeys.ts (stakingKey), shared with the SDK that declares access lists.
import { StakingKeyKind, stakingKey } from "../types/stateKeys.js";

export function bin(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function u64(x: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, x);
  return out;
}

export const stakingKeys = {
  meta: (): Uint8Array => stakingKey(StakingKeyKind.meta),
  validator: (operator: Uint8Array): Uint8Array => stakingKey(StakingKeyKind.validator, operator),
  consensusKey: (key: Uint8Array): Uint8Array => stakingKey(StakingKeyKind.consensusKey, key),
  delegator: (address: Uint8Array): Uint8Array => stakingKey(StakingKeyKind.delegator, address),
  registry: (): Uint8Array => stakingKey(StakingKeyKind.registry),
  slashed: (): Uint8Array => stakingKey(StakingKeyKind.slashed),
  epochSet: (epoch: bigint): Uint8Array => stakingKey(StakingKeyKind.epochSet, u64(epoch)),
};
