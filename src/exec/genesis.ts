// Genesis: the initial state built from a spec (funded accounts, AMM pools), as the execution
// result of height 0. Every node derives the same genesis root from the same spec.
import { ParabftError } from "../types/errors.js";
import { accountKey, ammHoldingKey, ammPoolKey } from "../types/stateKeys.js";
import { encodeAccount, encodePool, encodeU128, keyStr, U128_MAX } from "./codec.js";
import { isValidPoolId } from "./programs.js";
import { buildResult, ZERO_ROOT } from "./result.js";
import type { ExecutionResult } from "./types.js";

export interface GenesisAccount {
  /** 20-byte address. */
  address: Uint8Array;
  balance: bigint;
  /** Optional holdings of pools' token B, by pool id. */
  holdings?: Record<string, bigint>;
}

export interface GenesisPool {
  id: string;
  reserveA: bigint;
  reserveB: bigint;
  feeBps: number;
}

export interface GenesisSpec {
  accounts: readonly GenesisAccount[];
  pools?: readonly GenesisPool[];
}

export type GenesisErrorCode = "INVALID_GENESIS";

function invalid(field: string, why: string): never {
  throw new ParabftError<GenesisErrorCode, { field: string }>(
    "INVALID_GENESIS",
    { field },
    `genesis ${field}: ${why}`,
  );
}

const amountOk = (v: bigint) => v >= 0n && v <= U128_MAX;

/** Builds the height-0 result: its write set is the whole initial state. */
export function buildGenesis(spec: GenesisSpec): ExecutionResult {
  const writes = new Map<string, Uint8Array | null>();
  for (const [i, p] of (spec.pools ?? []).entries()) {
    if (!isValidPoolId(p.id)) invalid(`pools[${i}].id`, "must match [A-Za-z0-9._-]{1,64}");
    if (!amountOk(p.reserveA) || !amountOk(p.reserveB)) invalid(`pools[${i}]`, "reserves must be u128");
    if (!Number.isInteger(p.feeBps) || p.feeBps < 0 || p.feeBps >= 10_000) {
      invalid(`pools[${i}].feeBps`, "must be an integer in [0, 10000)");
    }
    const k = keyStr(ammPoolKey(p.id));
    if (writes.has(k)) invalid(`pools[${i}].id`, "duplicate pool");
    writes.set(k, encodePool(p));
  }
  for (const [i, a] of spec.accounts.entries()) {
    if (a.address.length !== 20) invalid(`accounts[${i}].address`, "must be 20 bytes");
    if (!amountOk(a.balance)) invalid(`accounts[${i}].balance`, "must be u128");
    const k = keyStr(accountKey(a.address));
    if (writes.has(k)) invalid(`accounts[${i}].address`, "duplicate account");
    writes.set(k, encodeAccount({ nonce: 0n, balance: a.balance }));
    for (const [pool, amount] of Object.entries(a.holdings ?? {})) {
      if (!writes.has(keyStr(ammPoolKey(pool)))) invalid(`accounts[${i}].holdings.${pool}`, "unknown pool");
      if (!amountOk(amount)) invalid(`accounts[${i}].holdings.${pool}`, "must be u128");
      writes.set(keyStr(ammHoldingKey(pool, a.address)), encodeU128(amount));
    }
  }
  return buildResult(0n, ZERO_ROOT, writes, []);
}
