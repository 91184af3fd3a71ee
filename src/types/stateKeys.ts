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
  /** Retired (execution layout 1): sender address ‖ u64be nonce -> tx hash. Never reuse. */
  txSeen = 0x06,
  /**
   * sender address -> u64be newest consumed nonce ‖ the hashes of the txs that consumed the
   * last (up to 4) nonces, newest first (duplicate detection, execution layout 2). Retired
   * (layout 3 keeps the record in the account value). Never reuse.
   */
  recentTxs = 0x07,
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

/**
 * Appended for the executor (DESIGN §4 duplicates): the tx-seen record of a transaction that
 * consumed `nonce` of `address` holds its tx hash, so a re-included transaction is recognised
 * deterministically as DUPLICATE. Sender-scoped, so it never adds conflicts between senders.
 */
export function txSeenKey(address: Uint8Array, nonce: bigint): Uint8Array {
  const out = new Uint8Array(1 + address.length + 8);
  out[0] = StateKeyPrefix.txSeen;
  out.set(address, 1);
  new DataView(out.buffer).setBigUint64(1 + address.length, nonce);
  return out;
}

/**
 * The sender's recent-transactions record under a key of its own: execution layout 2 only. Since
 * layout 3 the record lives in the account value (src/exec/codec.ts) and this key is not written.
 */
export function recentTxsKey(address: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(StateKeyPrefix.recentTxs), address);
}

/** An account's holding of a pool's token B (token A is the native balance). */
export function ammHoldingKey(poolId: string, address: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(StateKeyPrefix.ammPool), utf8Bytes(poolId), Uint8Array.of(0), address);
}

/** Sub-prefixes under StateKeyPrefix.staking (src/staking owns the values). Append-only. */
export enum StakingKeyKind {
  /** current epoch and the staking rules */
  meta = 0x00,
  /** operator address -> validator record */
  validator = 0x01,
  /** consensus key -> operator address (kept forever: a key is never reused) */
  consensusKey = 0x02,
  /** address -> delegator record (free bonded stake, ballot, unbonding queue) */
  delegator = 0x03,
  /** sorted list of every registered operator */
  registry = 0x04,
  /** u128 total slashed */
  slashed = 0x05,
  /** u64be epoch -> elected set and the stakes behind it */
  epochSet = 0x06,
}

export function stakingKey(kind: StakingKeyKind, id: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concatBytes(Uint8Array.of(StateKeyPrefix.staking, kind), id);
}
