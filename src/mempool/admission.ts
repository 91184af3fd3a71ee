// Paid admission: the stateless price, gas and amount checks a transaction must pass before it
// may occupy the pool, and what it may cost its sender at most (src/exec/fees.ts is the contract;
// execution charges gasUsed × price, never more than gasLimit × price).

import { U128_MAX } from "../exec/codec.js";
import { gasOf, gasPrice, MIN_GAS_PRICE } from "../exec/fees.js";
import type { SignedTx, TxBody } from "../gen/parabft/v1/types_pb.js";
import { addressOf } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { decodeInput, encodedSize } from "./decode.js";
import { MempoolError } from "./errors.js";
import type { MempoolOpts, PoolTx } from "./types.js";

/** A sender's account in the latest executed state. */
export interface AccountState {
  nonce: bigint;
  balance: bigint;
}

/**
 * The sender's account in the latest executed state, or null when no account exists (admission
 * refuses it: UNKNOWN_ACCOUNT). The node reads RocksDB; the pool caches answers per sender.
 */
export type AccountLookup = (address: Uint8Array) => AccountState | null | Promise<AccountState | null>;

/** What admission learned from a transaction's fee fields and call. */
export interface TxCost {
  /** Gas price offered (TxBody.fee). */
  price: bigint;
  /** gasLimit × price: the most it can pay in fees. */
  maxFee: bigint;
  /** Native tokens the call moves out of the sender's balance. */
  value: bigint;
  /** maxFee + value: what the sender's balance must cover. */
  cost: bigint;
}

const AMOUNT_RE = /^(0|[1-9][0-9]*)$/;

/** A decimal amount bounded to u128: MALFORMED when not a decimal, AMOUNT_OUT_OF_RANGE above u128. */
function amount(s: string, field: string, hash: string | undefined): bigint {
  if (!AMOUNT_RE.test(s)) {
    throw new MempoolError(
      "MALFORMED",
      { hash, reason: field },
      `${field} '${clip(s)}' is not a decimal amount`,
    );
  }
  const v = s.length > 40 ? U128_MAX + 1n : BigInt(s);
  if (v > U128_MAX) {
    throw new MempoolError(
      "AMOUNT_OUT_OF_RANGE",
      { hash, reason: field },
      `${field} exceeds the u128 maximum ${U128_MAX}`,
    );
  }
  return v;
}

function clip(s: string): string {
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
}

/**
 * Checks the fee fields and every amount of `body`, in this order: a call is present (MALFORMED),
 * the price parses (BAD_FEE) and is at least MIN_GAS_PRICE (FEE_TOO_LOW), the gas limit is
 * nonzero and covers gasOf(call) (GAS_LIMIT_TOO_LOW), every amount the call names is a decimal
 * u128 (MALFORMED / AMOUNT_OUT_OF_RANGE), and maxFee + value fits u128 (AMOUNT_OUT_OF_RANGE).
 */
export function txCost(body: TxBody, hash?: string): TxCost {
  const call = body.call?.call;
  if (call === undefined || call.case === undefined) {
    throw new MempoolError("MALFORMED", { hash, reason: "call" }, "transaction has no program call");
  }
  const price = gasPrice(body);
  if (price === null) {
    throw new MempoolError("BAD_FEE", { hash }, `fee '${clip(body.fee)}' is not a decimal u128 gas price`);
  }
  if (price < MIN_GAS_PRICE) {
    throw new MempoolError(
      "FEE_TOO_LOW",
      { hash, expected: MIN_GAS_PRICE.toString() },
      `gas price ${price} is below the minimum ${MIN_GAS_PRICE}`,
    );
  }
  const need = BigInt(gasOf(call));
  if (body.gasLimit === 0n || body.gasLimit < need) {
    throw new MempoolError(
      "GAS_LIMIT_TOO_LOW",
      { hash, expected: need.toString() },
      `gas limit ${body.gasLimit} does not cover the call's ${need} gas`,
    );
  }
  let value = 0n;
  switch (call.case) {
    case "transfer":
      value = amount(call.value.amount, "amount", hash);
      break;
    case "ammSwap": {
      const amountIn = amount(call.value.amountIn, "amount_in", hash);
      amount(call.value.minAmountOut, "min_amount_out", hash);
      // a_to_b pays token A, the native balance; b_to_a pays from the pool holding.
      if (call.value.aToB) value = amountIn;
      break;
    }
    case "staking": {
      const s = call.value.call;
      if (s.case === "delegate" || s.case === "undelegate") amount(s.value.amount, "amount", hash);
      else if (s.case === "registerValidator") amount(s.value.selfStake, "self_stake", hash);
      else if (s.case === "vote") for (const e of s.value.entries) amount(e.amount, "amount", hash);
      break;
    }
    default:
      break;
  }
  const maxFee = body.gasLimit * price;
  const cost = maxFee + value;
  if (cost > U128_MAX) {
    throw new MempoolError(
      "AMOUNT_OUT_OF_RANGE",
      { hash, reason: "cost" },
      "gas limit × price + value exceeds the u128 maximum",
    );
  }
  return { price, maxFee, value, cost };
}

/**
 * The checks that need nothing but the bytes, in order: decode (MALFORMED), size (TX_TOO_LARGE),
 * chain id (WRONG_CHAIN), fee fields and amounts (txCost). Returns the transaction with what
 * admission reads from it; it is hashed only later, once the account checks passed.
 */
export function statelessCheck(
  input: Uint8Array | SignedTx,
  opts: Pick<MempoolOpts, "maxTxBytes" | "chainId">,
): Omit<PoolTx, "hash" | "hashHex"> {
  const { tx, body } = decodeInput(input);
  const bytes = encodedSize(tx.body.length, tx.signature.length);
  if (bytes > opts.maxTxBytes) {
    throw new MempoolError("TX_TOO_LARGE", {}, `transaction is ${bytes} bytes, limit ${opts.maxTxBytes}`);
  }
  if (body.chainId !== opts.chainId) {
    throw new MempoolError(
      "WRONG_CHAIN",
      {},
      `transaction is for chain '${body.chainId}', this is '${opts.chainId}'`,
    );
  }
  const { price, cost } = txCost(body);
  const address = addressOf(body.sender);
  return {
    tx,
    body,
    sender: body.sender,
    address,
    senderKey: toHex(address),
    nonce: body.nonce,
    bytes,
    price,
    cost,
  };
}

/**
 * The sender's account after one of its committed transactions executes, from the account before
 * it, by execution's rule (src/exec/programs.ts `applyTx`): a nonce other than the account's
 * (BAD_NONCE, or a re-included DUPLICATE) changes nothing and pays nothing; the account's nonce
 * is consumed whatever happens next, and the balance loses at most `cost` (maxFee + value: the
 * fee is gasUsed × price ≤ gasLimit × price, an INSUFFICIENT_FEE sender pays its whole balance,
 * the value moves only if the call succeeds). So the nonce is exact and the balance a lower bound
 * (other senders' transactions only credit it). null when that bound does not hold or is unknown:
 * a staking call (delegate and register move liquid balance into stake beyond `cost`) or a cost
 * admission could not compute (gas limit 0 means no limit in execution). The pool then reads the
 * account again, as before it kept projections.
 */
export function projectCommitted(
  acct: AccountState,
  nonce: bigint,
  cost: bigint | null,
  body: TxBody,
): AccountState | null {
  if (nonce !== acct.nonce) return acct;
  if (cost === null || body.call?.call.case === "staking") return null;
  return { nonce: nonce + 1n, balance: acct.balance > cost ? acct.balance - cost : 0n };
}

/** txCost(body).cost, or null when admission would refuse the body's fee fields or amounts. */
export function costOrNull(body: TxBody): bigint | null {
  try {
    return txCost(body).cost;
  } catch (err) {
    if (err instanceof MempoolError) return null;
    throw err;
  }
}
