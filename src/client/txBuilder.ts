// Transaction builders, one per program, each declaring the access list the executor will
// enforce (DESIGN §4): a program touching an undeclared key fails deterministically, so the
// builder, not the caller, owns the list. The sender's own account key is always written
// (every transaction bumps the sender's nonce).
import { create } from "@bufbuild/protobuf";
import { gasOf, MIN_GAS_PRICE } from "../exec/fees.js";
import {
  type AccessList,
  AccessListSchema,
  type ProgramCall,
  ProgramCallSchema,
  type TxBody,
  TxBodySchema,
} from "../gen/parabft/v1/types_pb.js";
import { ADDRESS_LENGTH, addressOf, PUBLIC_KEY_LENGTH } from "../types/block.js";
import { bytesEqual, compareBytes } from "../types/bytes.js";
import { accountKey, ammHoldingKey, ammPoolKey, computeKey, kvKey } from "../types/stateKeys.js";
import { ClientError } from "./errors.js";

/** Fields common to every transaction. */
export interface TxCommon {
  chainId: string;
  /** 32-byte Ed25519 public key of the sender. */
  sender: Uint8Array;
  nonce: bigint;
  /** Default: exactly the gas the call needs (gasOf, src/exec/fees.ts). */
  gasLimit?: bigint;
  /** Gas price, a decimal string (token units per gas). Default: MIN_GAS_PRICE. See docs/FEES.md. */
  fee?: string;
}

export type Amount = bigint | number | string;

function amountString(field: string, v: Amount): string {
  let n: bigint;
  try {
    n = typeof v === "bigint" ? v : BigInt(v);
  } catch {
    throw new ClientError("BAD_ARGUMENT", { field }, `${field} must be a non-negative integer, got '${v}'`);
  }
  if (n < 0n) throw new ClientError("BAD_ARGUMENT", { field }, `${field} must be non-negative, got ${n}`);
  return n.toString();
}

function checkCommon(c: TxCommon): void {
  if (c.sender.length !== PUBLIC_KEY_LENGTH) {
    throw new ClientError("BAD_ARGUMENT", { field: "sender" }, "sender must be a 32-byte public key");
  }
  if (c.nonce < 0n) throw new ClientError("BAD_ARGUMENT", { field: "nonce" }, "nonce must be non-negative");
  if (c.chainId.length === 0) throw new ClientError("BAD_ARGUMENT", { field: "chainId" }, "chainId is empty");
}

/** Sorted, de-duplicated keys: a canonical list, so equal intents encode to equal bodies. */
function canonicalKeys(keys: Uint8Array[]): Uint8Array[] {
  const sorted = [...keys].sort(compareBytes);
  return sorted.filter((k, i) => i === 0 || !bytesEqual(k, sorted[i - 1]!));
}

/**
 * Builds the access list. A declared write also allows reading the key (the executor's rule,
 * src/exec/programs.ts), so `reads` lists only keys read and not written.
 */
export function accessList(sender: Uint8Array, reads: Uint8Array[], writes: Uint8Array[]): AccessList {
  const w = canonicalKeys([accountKey(addressOf(sender)), ...writes]);
  const r = canonicalKeys(reads).filter((k) => !w.some((x) => bytesEqual(x, k)));
  return create(AccessListSchema, { reads: r, writes: w });
}

function body(c: TxCommon, call: ProgramCall, access: AccessList): TxBody {
  checkCommon(c);
  return create(TxBodySchema, {
    chainId: c.chainId,
    sender: c.sender,
    nonce: c.nonce,
    gasLimit: c.gasLimit ?? BigInt(gasOf(call.call)),
    fee: c.fee ?? MIN_GAS_PRICE.toString(),
    access,
    call,
  });
}

export function transferTx(c: TxCommon, to: Uint8Array, amount: Amount): TxBody {
  if (to.length !== ADDRESS_LENGTH) {
    throw new ClientError(
      "BAD_ARGUMENT",
      { field: "to" },
      `recipient must be a ${ADDRESS_LENGTH}-byte address`,
    );
  }
  const call = create(ProgramCallSchema, {
    call: { case: "transfer", value: { to, amount: amountString("amount", amount) } },
  });
  return body(c, call, accessList(c.sender, [], [accountKey(to)]));
}

export function kvPutTx(c: TxCommon, key: Uint8Array, value: Uint8Array): TxBody {
  const call = create(ProgramCallSchema, { call: { case: "kvPut", value: { key, value } } });
  return body(c, call, accessList(c.sender, [], [kvKey(key)]));
}

/**
 * Compare-and-set: writes `value` when the register holds `expected`, or when it is absent and
 * `expected` is null.
 */
export function kvCasTx(
  c: TxCommon,
  key: Uint8Array,
  expected: Uint8Array | null,
  value: Uint8Array,
): TxBody {
  const call = create(ProgramCallSchema, {
    call: {
      case: "kvCas",
      value: { key, expected: expected ?? new Uint8Array(0), expectAbsent: expected === null, value },
    },
  });
  return body(c, call, accessList(c.sender, [], [kvKey(key)]));
}

export function ammSwapTx(
  c: TxCommon,
  pool: string,
  aToB: boolean,
  amountIn: Amount,
  minAmountOut: Amount = 0n,
): TxBody {
  if (pool.length === 0) throw new ClientError("BAD_ARGUMENT", { field: "pool" }, "pool id is empty");
  const call = create(ProgramCallSchema, {
    call: {
      case: "ammSwap",
      value: {
        pool,
        aToB,
        amountIn: amountString("amountIn", amountIn),
        minAmountOut: amountString("minAmountOut", minAmountOut),
      },
    },
  });
  // Token A is the native balance (the sender's account); token B is a per-pool holding.
  return body(
    c,
    call,
    accessList(c.sender, [], [ammPoolKey(pool), ammHoldingKey(pool, addressOf(c.sender))]),
  );
}

export function computeWorkTx(c: TxCommon, iterations: number, seed: Uint8Array = new Uint8Array(0)): TxBody {
  if (!Number.isInteger(iterations) || iterations < 0 || iterations > 0xffff_ffff) {
    throw new ClientError("BAD_ARGUMENT", { field: "iterations" }, "iterations must be a uint32");
  }
  const call = create(ProgramCallSchema, { call: { case: "compute", value: { iterations, seed } } });
  return body(c, call, accessList(c.sender, [], [computeKey(addressOf(c.sender))]));
}
