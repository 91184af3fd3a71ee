// State key layout. Transactions declare these keys in their access lists, so the SDK,
// the executor and the API build them with the same functions. Append-only prefixes.
import { concatBytes, utf8Bytes } from "./bytes.js";

export enum StateKeyPrefix {
  /** address (20 bytes) -> account { balance, nonce } */
  account = 0x01,
  /** user key -> value (kv.put / kv.cas) */
  kv = 0x02,
  /** pool id -> constant-product pool reserves */
  ammPool = 0x03,
  /** compute.work result slot, by sender address */
  compute = 0x04,
  /** staking records */
  staking = 0x05,
}

export function accountKey(address: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(StateKeyPrefix.account), address);
}

export function kvKey(userKey: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(StateKeyPrefix.kv), userKey);
}

export function ammPoolKey(poolId: string): Uint8Array {
  return concatBytes(Uint8Array.of(StateKeyPrefix.ammPool), utf8Bytes(poolId));
}

export function computeKey(address: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(StateKeyPrefix.compute), address);
}
