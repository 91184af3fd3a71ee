// Transaction builders, one per program, each declaring the access list the executor will
// enforce (DESIGN §4): a program touching an undeclared key fails deterministically, so the
// builder, not the caller, owns the list. The sender's own account key is always written
// (every transaction bumps the sender's nonce).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { gasOf, MIN_GAS_PRICE } from "../exec/fees.js";
import {
  type AccessList,
  AccessListSchema,
  type ProgramCall,
  ProgramCallSchema,
  type StakingCall,
  StakingCallSchema,
  SubmitEvidenceSchema,
  type TxBody,
  TxBodySchema,
} from "../gen/parabft/v1/types_pb.js";
import { type StakingAccessHints, stakingAccess } from "../staking/access.js";
import { isValidPeerAddress } from "../staking/programs.js";
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

// --- Staking (DPoS, src/staking). Access lists come from stakingAccess, the executor's own rule.

function stakingBody(c: TxCommon, call: StakingCall, hints: StakingAccessHints = {}): TxBody {
  const acc = stakingAccess(addressOf(c.sender), call, hints);
  const program = create(ProgramCallSchema, { call: { case: "staking", value: call } });
  return body(c, program, accessList(c.sender, acc.reads, acc.writes));
}

function addressArg(field: string, v: Uint8Array): Uint8Array {
  if (v.length !== ADDRESS_LENGTH) {
    throw new ClientError("BAD_ARGUMENT", { field }, `${field} must be a ${ADDRESS_LENGTH}-byte address`);
  }
  return v;
}

export interface RegisterValidatorArgs {
  /** 32-byte Ed25519 consensus key the validator will sign votes with. */
  consensusKey: Uint8Array;
  selfStake: Amount;
  commissionBps?: number;
  /** host:port other validators dial once it is elected. */
  peerAddress: string;
}

export function registerValidatorTx(c: TxCommon, a: RegisterValidatorArgs): TxBody {
  if (a.consensusKey.length !== PUBLIC_KEY_LENGTH) {
    throw new ClientError("BAD_ARGUMENT", { field: "consensusKey" }, "consensus key must be 32 bytes");
  }
  const commissionBps = a.commissionBps ?? 0;
  if (!Number.isInteger(commissionBps) || commissionBps < 0 || commissionBps > 10_000) {
    throw new ClientError("BAD_ARGUMENT", { field: "commissionBps" }, "commission must be 0..10000 bps");
  }
  if (!isValidPeerAddress(a.peerAddress)) {
    throw new ClientError("BAD_ARGUMENT", { field: "peerAddress" }, "peer address must be host:port");
  }
  const call = create(StakingCallSchema, {
    call: {
      case: "registerValidator",
      value: {
        consensusKey: a.consensusKey,
        selfStake: amountString("selfStake", a.selfStake),
        commissionBps,
        peerAddress: a.peerAddress,
      },
    },
  });
  return stakingBody(c, call);
}

/**
 * `touched`: the validators of the sender's current ballot and exposures (getDelegations:
 * ballot ∪ exposedTo). Delegate, undelegate and vote first settle exposures against them.
 */
export function delegateTx(c: TxCommon, amount: Amount, touched: Uint8Array[] = []): TxBody {
  const call = create(StakingCallSchema, {
    call: { case: "delegate", value: { amount: amountString("amount", amount) } },
  });
  return stakingBody(c, call, { ballot: touched.map((v) => addressArg("touched", v)) });
}

export function undelegateTx(c: TxCommon, amount: Amount, touched: Uint8Array[] = []): TxBody {
  const call = create(StakingCallSchema, {
    call: { case: "undelegate", value: { amount: amountString("amount", amount) } },
  });
  return stakingBody(c, call, { ballot: touched.map((v) => addressArg("touched", v)) });
}

/**
 * Replaces the sender's whole ballot. `currentBallot` lists the validators of the ballot being
 * replaced and of the sender's exposures (getDelegations: ballot ∪ exposedTo): the executor lets
 * the vote touch only declared validators.
 */
export function voteTx(
  c: TxCommon,
  entries: { validator: Uint8Array; amount: Amount }[],
  currentBallot: Uint8Array[] = [],
): TxBody {
  const sorted = entries
    .map((e) => ({
      validator: addressArg("validator", e.validator),
      amount: amountString("amount", e.amount),
    }))
    .sort((x, y) => compareBytes(x.validator, y.validator));
  for (let i = 1; i < sorted.length; i++) {
    if (bytesEqual(sorted[i - 1]!.validator, sorted[i]!.validator)) {
      throw new ClientError(
        "BAD_ARGUMENT",
        { field: "validator" },
        "a validator appears twice on the ballot",
      );
    }
  }
  const call = create(StakingCallSchema, { call: { case: "vote", value: { entries: sorted } } });
  return stakingBody(c, call, { ballot: currentBallot.map((v) => addressArg("currentBallot", v)) });
}

export function unjailTx(c: TxCommon): TxBody {
  return stakingBody(c, create(StakingCallSchema, { call: { case: "unjail", value: {} } }));
}

/** Equivocation evidence. `operator` is the validator registered with the key (a state query). */
export function submitEvidenceTx(
  c: TxCommon,
  evidence: Omit<MessageInitShape<typeof SubmitEvidenceSchema>, "$typeName">,
  operator: Uint8Array,
): TxBody {
  const call = create(StakingCallSchema, {
    call: { case: "submitEvidence", value: create(SubmitEvidenceSchema, evidence) },
  });
  return stakingBody(c, call, { evidenceOperator: addressArg("operator", operator) });
}
