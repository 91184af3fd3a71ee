// Transaction semantics: the nonce/duplicate/gas/fee frame every transaction goes through, the
// native programs (the generic interpreter over a TxContext overlay), the outcomes they return
// and the block's fees. Deterministic: BigInt arithmetic, no floats, no clocks. Both executors
// call applyTx; they differ only in how they schedule it over state. The decoded transaction
// lives in decodedTx.ts (re-exported here), and the parallel executor's transfer hot paths,
// which must give applyTx's results, in transfer.ts.
import { TxStatus } from "../gen/parabft/v1/types_pb.js";
import { runStakingCall, StakingFailure, type StakingFailureCode } from "../staking/index.js";
import { bytesEqual } from "../types/bytes.js";
import {
  accountKey,
  ammHoldingKey,
  ammPoolKey,
  computeKey,
  kvKey,
  StateKeyPrefix,
} from "../types/stateKeys.js";
import {
  consumedAccount,
  decodeAccount,
  decodePool,
  decodeU128,
  encodePool,
  encodeU128,
  hex,
  keyStr,
  recentlyConsumed,
  U128_MAX,
  withAccount,
} from "./codec.js";
import { type DecodedTx, declaresRead, declaresWrite, type SenderKeys } from "./decodedTx.js";
import { DECIMAL_RE, FEE_COLLECTOR_ADDRESS, GAS, gasOf, gasPrice, LIMITS } from "./fees.js";
import { sha256Iterate } from "./sha256iter.js";

export type FailureCode =
  | "MALFORMED"
  | "BAD_NONCE"
  | "OUT_OF_GAS"
  | "INSUFFICIENT_FUNDS"
  | "ACCESS_VIOLATION"
  | "CAS_MISMATCH"
  | "SLIPPAGE"
  | "POOL_NOT_FOUND"
  | "OVERFLOW"
  | "INSUFFICIENT_FEE"
  | "UNSUPPORTED_PROGRAM"
  | StakingFailureCode;

export interface OutcomeEvent {
  kind: string;
  attrs: [string, string][];
}

/** What a transaction did; turned into a Receipt by the executor (same code path for both). */
export interface TxOutcome {
  status: TxStatus;
  gasUsed: number;
  /** "" when OK; otherwise a FailureCode, optionally followed by ": detail". */
  error: string;
  events: OutcomeEvent[];
}

/** The decoded transaction (decodedTx.ts), as importers of this file have always found it. */
export { type DecodedTx, declaresRead, declaresWrite, decodeTx, touchedKeys } from "./decodedTx.js";

const ACCOUNT_PREFIX = String.fromCharCode(StateKeyPrefix.account);

/** The receipt events of a successful transfer (one place for the generic and the fast path). */
export function transferEvents(tx: DecodedTx, to: Uint8Array, amount: string): OutcomeEvent[] {
  return transferEventsOf(senderHex(tx), to, amount);
}

function transferEventsOf(fromHex: string, to: Uint8Array, amount: string): OutcomeEvent[] {
  return [
    {
      kind: "bank.transfer",
      attrs: [
        ["from", fromHex],
        ["to", hex(to)],
        ["amount", amount],
      ],
    },
  ];
}

/**
 * The outcome of a transfer that succeeded on the hot path (applyTxFast), without its event:
 * `events` is built on first read (a receipt someone asks for, the lane wire, tests), and the
 * block's receipts value is encoded straight from `from`, `to` and `amount`
 * (storage/execLog.ts#encodeBlockReceipts): no hex strings, arrays or objects per transfer.
 * Reads as the plain outcome { status: OK, gasUsed, error: "", events } of the generic path.
 */
export class TransferOk implements TxOutcome {
  // status, gasUsed and error are the same for every instance: prototype properties (below), so
  // each outcome is 3 fields smaller (round 11: a block's 10k outcomes wait for persist).
  declare readonly status: TxStatus;
  declare readonly gasUsed: number;
  declare readonly error: string;
  private built: OutcomeEvent[] | undefined = undefined;
  constructor(
    private readonly keys: SenderKeys | undefined,
    /** The sender's 20-byte address. */
    readonly from: Uint8Array,
    /** The recipient's 20-byte address. */
    readonly to: Uint8Array,
    /** Canonical decimal. */
    readonly amount: string,
  ) {}
  get events(): OutcomeEvent[] {
    if (this.built === undefined) {
      let fromHex: string;
      if (this.keys !== undefined) {
        this.keys.hex ??= hex(this.keys.sender);
        fromHex = this.keys.hex;
      } else fromHex = hex(this.from);
      this.built = transferEventsOf(fromHex, this.to, this.amount);
    }
    return this.built;
  }
  /** The plain-object form (what the generic path returns). */
  toJSON(): TxOutcome {
    return { status: this.status, gasUsed: this.gasUsed, error: this.error, events: this.events };
  }
}

for (const [name, value] of [
  ["status", TxStatus.OK],
  ["gasUsed", GAS.base + GAS.transfer],
  ["error", ""],
] as const) {
  Object.defineProperty(TransferOk.prototype, name, { value, enumerable: true });
}

function senderHex(tx: DecodedTx): string {
  const k = tx.keys;
  if (k === undefined) return hex(tx.sender);
  k.hex ??= hex(k.sender);
  return k.hex;
}

/** How many consumed nonces an account remembers (the duplicate window; codec.ts). */
export { RECENT_TXS, recentlyConsumed } from "./codec.js";

/** Executor-side state as applyTx sees it. */
export interface StateView {
  /** The value, or null when absent. Throws when the key was not loaded: an executor bug. */
  get(key: string): Uint8Array | null;
  set(key: string, value: Uint8Array | null): void;
}

export const MALFORMED_OUTCOME: TxOutcome = Object.freeze({
  status: TxStatus.FAILED,
  gasUsed: 0,
  error: "MALFORMED: undecodable body or bad sender key",
  events: [],
}) as TxOutcome;

/** Control flow inside a program; caught in applyTx and never escapes it. */
class ProgramFailure {
  constructor(
    readonly code: FailureCode,
    readonly detail = "",
  ) {}
}

const fail = (code: FailureCode, detail = ""): never => {
  throw new ProgramFailure(code, detail);
};

/**
 * A program's window on state: reads need the key declared (reads or writes), writes need it
 * in writes. The sender's account is implicitly readable and writable. Writes stay in an
 * overlay until the program succeeds, so a failure reverts them all.
 */
class TxContext {
  // A program writes a handful of keys: two parallel arrays beat a Map per transaction.
  private readonly keys: string[] = [];
  private readonly values: (Uint8Array | null)[] = [];
  constructor(
    private readonly view: StateView,
    private readonly tx: DecodedTx,
  ) {}

  read(key: string): Uint8Array | null {
    if (!declaresRead(this.tx, key)) {
      fail("ACCESS_VIOLATION", `read of undeclared key ${hex(strBytes(key))}`);
    }
    const i = this.keys.lastIndexOf(key);
    return i >= 0 ? this.values[i]! : this.view.get(key);
  }

  write(key: string, value: Uint8Array | null): void {
    if (!declaresWrite(this.tx, key)) {
      fail("ACCESS_VIOLATION", `write of undeclared key ${hex(strBytes(key))}`);
    }
    this.keys.push(key);
    this.values.push(value);
  }

  /** Applies the writes in order (a key written twice ends with its last value). */
  commit(): void {
    for (let i = 0; i < this.keys.length; i++) this.view.set(this.keys[i]!, this.values[i]!);
  }
}

export function strBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function parseAmount(s: string, field: string): bigint {
  if (!DECIMAL_RE.test(s)) fail("MALFORMED", `${field} is not a decimal amount`);
  const v = BigInt(s);
  if (v > U128_MAX) fail("MALFORMED", `${field} exceeds u128`);
  return v;
}

const checked = (v: bigint): bigint => (v > U128_MAX ? fail("OVERFLOW") : v);

const POOL_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidPoolId(id: string): boolean {
  return POOL_ID_RE.test(id);
}

function runProgram(ctx: TxContext, tx: DecodedTx): OutcomeEvent[] {
  const call = tx.body.call?.call;
  if (call === undefined) return fail("MALFORMED", "no program call");
  switch (call.case) {
    case "transfer": {
      const to = call.value.to;
      if (to.length !== 20) fail("MALFORMED", "recipient is not a 20-byte address");
      const amount = parseAmount(call.value.amount, "amount");
      const fromValue = ctx.read(tx.senderKey);
      const from = decodeAccount(fromValue);
      if (from.balance < amount) fail("INSUFFICIENT_FUNDS");
      const toKey = ACCOUNT_PREFIX + keyStr(to);
      if (toKey !== tx.senderKey) {
        const destValue = ctx.read(toKey);
        const dest = decodeAccount(destValue);
        const credited = checked(dest.balance + amount);
        ctx.write(
          tx.senderKey,
          withAccount(fromValue, { nonce: from.nonce, balance: from.balance - amount }),
        );
        ctx.write(toKey, withAccount(destValue, { nonce: dest.nonce, balance: credited }));
      }
      return transferEvents(tx, to, amount.toString());
    }
    case "kvPut": {
      const { key, value } = call.value;
      if (key.length === 0 || key.length > LIMITS.maxKvKeyBytes) fail("MALFORMED", "kv key length");
      if (value.length > LIMITS.maxKvValueBytes) fail("MALFORMED", "kv value too large");
      ctx.write(keyStr(kvKey(key)), value.slice());
      return [{ kind: "kv.put", attrs: [["key", hex(key)]] }];
    }
    case "kvCas": {
      const { key, expected, expectAbsent, value } = call.value;
      if (key.length === 0 || key.length > LIMITS.maxKvKeyBytes) fail("MALFORMED", "kv key length");
      if (value.length > LIMITS.maxKvValueBytes) fail("MALFORMED", "kv value too large");
      const k = keyStr(kvKey(key));
      const current = ctx.read(k);
      const matches = expectAbsent ? current === null : current !== null && bytesEqual(current, expected);
      if (!matches) fail("CAS_MISMATCH");
      ctx.write(k, value.slice());
      return [{ kind: "kv.cas", attrs: [["key", hex(key)]] }];
    }
    case "ammSwap": {
      const { pool: poolId, aToB } = call.value;
      if (!isValidPoolId(poolId)) fail("MALFORMED", "pool id");
      const amountIn = parseAmount(call.value.amountIn, "amount_in");
      const minOut = parseAmount(call.value.minAmountOut, "min_amount_out");
      const poolKey = keyStr(ammPoolKey(poolId));
      const holdKey = keyStr(ammHoldingKey(poolId, tx.sender));
      const pool = decodePool(ctx.read(poolKey));
      if (pool === null) return fail("POOL_NOT_FOUND", poolId);
      const acctValue = ctx.read(tx.senderKey);
      const acct = decodeAccount(acctValue);
      const holding = decodeU128(ctx.read(holdKey));
      const [rIn, rOut] = aToB ? [pool.reserveA, pool.reserveB] : [pool.reserveB, pool.reserveA];
      if ((aToB ? acct.balance : holding) < amountIn) fail("INSUFFICIENT_FUNDS");
      const inWithFee = amountIn * BigInt(10_000 - pool.feeBps);
      const denominator = rIn * 10_000n + inWithFee;
      const out = denominator === 0n ? 0n : (inWithFee * rOut) / denominator;
      if (out === 0n || out < minOut) fail("SLIPPAGE", `out ${out} < min ${minOut}`);
      if (aToB) {
        ctx.write(
          tx.senderKey,
          withAccount(acctValue, { nonce: acct.nonce, balance: acct.balance - amountIn }),
        );
        ctx.write(holdKey, encodeU128(checked(holding + out)));
        ctx.write(
          poolKey,
          encodePool({
            reserveA: checked(pool.reserveA + amountIn),
            reserveB: pool.reserveB - out,
            feeBps: pool.feeBps,
          }),
        );
      } else {
        ctx.write(holdKey, encodeU128(holding - amountIn));
        ctx.write(
          tx.senderKey,
          withAccount(acctValue, { nonce: acct.nonce, balance: checked(acct.balance + out) }),
        );
        ctx.write(
          poolKey,
          encodePool({
            reserveA: pool.reserveA - out,
            reserveB: checked(pool.reserveB + amountIn),
            feeBps: pool.feeBps,
          }),
        );
      }
      return [
        {
          kind: "amm.swap",
          attrs: [
            ["pool", poolId],
            ["direction", aToB ? "a_to_b" : "b_to_a"],
            ["amountIn", amountIn.toString()],
            ["amountOut", out.toString()],
          ],
        },
      ];
    }
    case "compute": {
      const { iterations, seed } = call.value;
      if (iterations > LIMITS.maxComputeIterations) fail("MALFORMED", "too many iterations");
      if (seed.length > LIMITS.maxComputeSeedBytes) fail("MALFORMED", "seed too long");
      const k = keyStr(computeKey(tx.sender));
      // Check access before burning CPU on a result that could not be stored.
      ctx.write(k, null);
      const result = sha256Iterate(seed, iterations);
      ctx.write(k, result);
      return [{ kind: "compute.work", attrs: [["result", hex(result)]] }];
    }
    case "staking": {
      // src/staking runs the call through this context (declared keys only); the sender's
      // liquid balance is its account balance.
      const account = () => decodeAccount(ctx.read(tx.senderKey));
      const stakingCtx = {
        read: (k: string) => ctx.read(k),
        write: (k: string, v: Uint8Array | null) => ctx.write(k, v),
        balance: () => account().balance,
        setBalance: (b: bigint) => {
          const prev = ctx.read(tx.senderKey);
          ctx.write(
            tx.senderKey,
            withAccount(prev, { nonce: decodeAccount(prev).nonce, balance: checked(b) }),
          );
        },
      };
      try {
        return runStakingCall(stakingCtx, { sender: tx.sender, chainId: tx.body.chainId }, call.value);
      } catch (err: unknown) {
        if (err instanceof StakingFailure) return fail(err.code, err.detail);
        throw err;
      }
    }
    default:
      return fail("MALFORMED", "unknown program call");
  }
}

/**
 * Fees charged by the transactions of one block (or one lane of it), credited to the fee
 * collector once, after the block's last transaction (creditFees): every transaction writing the
 * collector's account would put all of them in one lane.
 *
 * A block's (or a bin's) fees so far: `total` plus `small`. The transfer hot path adds its fee
 * to `small`, a double kept exact (≤ 2^53 − 1; a sum that would pass it moves `small` into
 * `total` first), so a transfer allocates no BigInt for its fee (round 11). Read with feeSum.
 */
export interface FeeTotal {
  total: bigint;
  small: number;
}

/** A fresh FeeTotal (nothing charged). */
export function newFeeTotal(): FeeTotal {
  return { total: 0n, small: 0 };
}

/** The fees a FeeTotal holds. */
export function feeSum(f: FeeTotal): bigint {
  return f.small === 0 ? f.total : f.total + BigInt(f.small);
}

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Adds a safe-integer fee (> 0) to `f` without a BigInt while the double sum stays exact. */
export function addSmallFee(f: FeeTotal, fee: number): void {
  const s = f.small + fee;
  if (s <= MAX_SAFE) f.small = s;
  else {
    f.total += BigInt(f.small);
    f.small = fee;
  }
}

/** keyStr(accountKey(FEE_COLLECTOR_ADDRESS)). */
export const FEE_COLLECTOR_KEY = keyStr(accountKey(FEE_COLLECTOR_ADDRESS));

/**
 * Credits a block's fees to the fee collector, after all its transactions (both executors).
 * Nothing is written when the block collected no fee, so fee-less blocks keep their write sets.
 * The credit saturates at u128 (the collector cannot overflow; unreachable with real supplies).
 */
export function creditFees(view: StateView, fees: bigint): void {
  if (fees === 0n) return;
  const prev = view.get(FEE_COLLECTOR_KEY);
  const acct = decodeAccount(prev);
  const sum = acct.balance + fees;
  view.set(
    FEE_COLLECTOR_KEY,
    withAccount(prev, { nonce: acct.nonce, balance: sum > U128_MAX ? U128_MAX : sum }),
  );
}

/**
 * Whether an executed inclusion consumed its tx's nonce (step 2 of applyTx): false for a
 * DUPLICATE or BAD_NONCE, which left state untouched and let the same tx count elsewhere.
 */
export function consumedNonce(r: { status: TxStatus; error: string }): boolean {
  return r.status !== TxStatus.DUPLICATE && !r.error.startsWith("BAD_NONCE");
}

/**
 * Executes one decoded transaction against `view`, in this order:
 * 1. nonce: tx.nonce must equal the sender's nonce. A lower nonce that the sender's
 *    recent-transactions record shows this very tx consumed (one of the last RECENT_TXS nonces)
 *    is a DUPLICATE (committed before, in an earlier block or earlier in this one); any other
 *    mismatch is BAD_NONCE. Both leave state untouched, use no gas and pay no fee.
 * 2. the nonce is consumed: the sender's account is written with nonce + 1 and this tx's hash
 *    first in its recent-transactions record (codec.ts: one value since layout 3),
 *    whatever happens next, and gas is charged.
 * 3. gas: a gas limit (0 = unlimited) below the call's gas fails OUT_OF_GAS, gasUsed = limit.
 * 4. fee (docs/FEES.md): gasUsed × gas price (TxBody.fee) is debited from the sender BEFORE the
 *    program runs and added to `fees` (credited to the collector at the end of the block). A
 *    sender who cannot pay it fails INSUFFICIENT_FEE, pays its whole balance, and the program
 *    never runs. A fee that is not a decimal u128 fails MALFORMED and pays nothing.
 * 5. the program runs in an overlay; any failure (access violation included) reverts the
 *    overlay, so only steps 2 and 4 remain.
 */
export function applyTx(view: StateView, tx: DecodedTx, fees: FeeTotal): TxOutcome {
  const sv = view.get(tx.senderKey);
  const acct = decodeAccount(sv);
  const nonce = tx.body.nonce;
  if (nonce !== acct.nonce) {
    if (nonce < acct.nonce && recentlyConsumed(sv, acct.nonce, nonce, tx.hash)) {
      return { status: TxStatus.DUPLICATE, gasUsed: 0, error: "", events: [] };
    }
    return { status: TxStatus.FAILED, gasUsed: 0, error: `BAD_NONCE: expected ${acct.nonce}`, events: [] };
  }
  const price = gasPrice(tx.body);
  if (price === null) {
    view.set(tx.senderKey, consumedAccount(sv, { nonce: nonce + 1n, balance: acct.balance }, tx.hash));
    return { status: TxStatus.FAILED, gasUsed: 0, error: "MALFORMED: fee is not a decimal u128", events: [] };
  }
  const call = tx.body.call?.call ?? { case: undefined, value: undefined };
  const gas = gasOf(call);
  const limit = tx.body.gasLimit;
  const outOfGas = limit !== 0n && BigInt(gas) > limit;
  const gasUsed = outOfGas ? Number(limit) : gas;
  const fee = price === 0n ? 0n : BigInt(gasUsed) * price;
  if (fee > acct.balance) {
    view.set(tx.senderKey, consumedAccount(sv, { nonce: nonce + 1n, balance: 0n }, tx.hash));
    fees.total += acct.balance;
    return {
      status: TxStatus.FAILED,
      gasUsed,
      error: `INSUFFICIENT_FEE: paid ${acct.balance} of ${fee}`,
      events: [],
    };
  }
  view.set(tx.senderKey, consumedAccount(sv, { nonce: nonce + 1n, balance: acct.balance - fee }, tx.hash));
  fees.total += fee;
  if (outOfGas) return { status: TxStatus.FAILED, gasUsed, error: "OUT_OF_GAS", events: [] };
  const ctx = new TxContext(view, tx);
  try {
    const events = runProgram(ctx, tx);
    ctx.commit();
    return { status: TxStatus.OK, gasUsed: gas, error: "", events };
  } catch (err: unknown) {
    if (!(err instanceof ProgramFailure)) throw err;
    return {
      status: TxStatus.FAILED,
      gasUsed: gas,
      error: err.detail === "" ? err.code : `${err.code}: ${err.detail}`,
      events: [],
    };
  }
}
