// Transaction semantics: decoding, the nonce/duplicate/gas frame every transaction goes
// through, and the native programs. Deterministic: BigInt arithmetic, no floats, no clocks.
// Both executors call applyTx; they differ only in how they schedule it over state.
import { hash as nodeHash } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { type TxBody, TxBodySchema, TxStatus } from "../gen/parabft/v1/types_pb.js";
import { ADDRESS_LENGTH, PUBLIC_KEY_LENGTH } from "../types/block.js";
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
  decodeAccount,
  decodePool,
  decodeU128,
  encodeAccount,
  encodePool,
  encodeU128,
  hex,
  keyStr,
  U128_MAX,
} from "./codec.js";
import { DECIMAL_RE, gasOf, LIMITS } from "./fees.js";
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
  | "UNSUPPORTED_PROGRAM";

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

/** A transaction decoded for execution. Keys are binary strings (see codec.keyStr). */
export interface DecodedTx {
  hash: Uint8Array;
  body: TxBody;
  sender: Uint8Array;
  /** keyStr(accountKey(sender)). */
  senderKey: string;
  reads: Set<string>;
  writes: Set<string>;
}

/**
 * Decodes a signed body. A body that does not decode, or whose sender is not a 32-byte key,
 * is MALFORMED with no effects at all: without a sender there is no nonce to consume.
 */
export function decodeTx(body: Uint8Array, hash: Uint8Array): DecodedTx | null {
  let tx: TxBody;
  try {
    tx = fromBinary(TxBodySchema, body);
  } catch {
    return null;
  }
  if (tx.sender.length !== PUBLIC_KEY_LENGTH) return null;
  // addressOf (src/types) is the same SHA-256 prefix; node:crypto is several times faster.
  const sender = new Uint8Array(nodeHash("sha256", tx.sender, "buffer").subarray(0, ADDRESS_LENGTH));
  const reads = new Set<string>();
  const writes = new Set<string>();
  if (tx.access) {
    for (const k of tx.access.reads) reads.add(keyStr(k));
    for (const k of tx.access.writes) writes.add(keyStr(k));
  }
  return { hash, body: tx, sender, senderKey: keyStr(accountKey(sender)), reads, writes };
}

const SEEN_PREFIX = String.fromCharCode(StateKeyPrefix.txSeen);

/**
 * keyStr(txSeenKey(sender, nonce)), built from the sender's account key string (same address
 * bytes after the prefix) without allocating the byte key: it runs twice per transaction.
 */
export function seenKeyStr(tx: DecodedTx, nonce: bigint): string {
  let hi: number;
  let lo: number;
  if (nonce <= 0x1f_ffff_ffff_ffffn) {
    const n = Number(nonce);
    lo = n % 0x1_0000_0000;
    hi = (n - lo) / 0x1_0000_0000;
  } else {
    hi = Number(nonce >> 32n);
    lo = Number(nonce & 0xffff_ffffn);
  }
  return (
    SEEN_PREFIX +
    tx.senderKey.slice(1) +
    String.fromCharCode(
      hi >>> 24,
      (hi >>> 16) & 255,
      (hi >>> 8) & 255,
      hi & 255,
      lo >>> 24,
      (lo >>> 16) & 255,
      (lo >>> 8) & 255,
      lo & 255,
    )
  );
}

/** Every key a transaction may touch, implicit ones included: the conflict-graph input. */
export function touchedKeys(tx: DecodedTx): { keys: string[]; writes: boolean[] } {
  const keys: string[] = [tx.senderKey];
  const writes: boolean[] = [true];
  for (const k of tx.writes) {
    if (k === tx.senderKey) continue;
    keys.push(k);
    writes.push(true);
  }
  for (const k of tx.reads) {
    if (k === tx.senderKey || tx.writes.has(k)) continue;
    keys.push(k);
    writes.push(false);
  }
  return { keys, writes };
}

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
  readonly overlay = new Map<string, Uint8Array | null>();
  constructor(
    private readonly view: StateView,
    private readonly tx: DecodedTx,
  ) {}

  read(key: string): Uint8Array | null {
    if (key !== this.tx.senderKey && !this.tx.writes.has(key) && !this.tx.reads.has(key)) {
      fail("ACCESS_VIOLATION", `read of undeclared key ${hex(strBytes(key))}`);
    }
    const v = this.overlay.get(key);
    return v !== undefined ? v : this.view.get(key);
  }

  write(key: string, value: Uint8Array | null): void {
    if (key !== this.tx.senderKey && !this.tx.writes.has(key)) {
      fail("ACCESS_VIOLATION", `write of undeclared key ${hex(strBytes(key))}`);
    }
    this.overlay.set(key, value);
  }

  commit(): void {
    for (const [k, v] of this.overlay) this.view.set(k, v);
  }
}

function strBytes(s: string): Uint8Array {
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
      const from = decodeAccount(ctx.read(tx.senderKey));
      if (from.balance < amount) fail("INSUFFICIENT_FUNDS");
      const toKey = keyStr(accountKey(to));
      if (toKey !== tx.senderKey) {
        const dest = decodeAccount(ctx.read(toKey));
        const credited = checked(dest.balance + amount);
        ctx.write(tx.senderKey, encodeAccount({ nonce: from.nonce, balance: from.balance - amount }));
        ctx.write(toKey, encodeAccount({ nonce: dest.nonce, balance: credited }));
      }
      return [
        {
          kind: "bank.transfer",
          attrs: [
            ["from", hex(tx.sender)],
            ["to", hex(to)],
            ["amount", amount.toString()],
          ],
        },
      ];
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
      const acct = decodeAccount(ctx.read(tx.senderKey));
      const holding = decodeU128(ctx.read(holdKey));
      const [rIn, rOut] = aToB ? [pool.reserveA, pool.reserveB] : [pool.reserveB, pool.reserveA];
      if ((aToB ? acct.balance : holding) < amountIn) fail("INSUFFICIENT_FUNDS");
      const inWithFee = amountIn * BigInt(10_000 - pool.feeBps);
      const denominator = rIn * 10_000n + inWithFee;
      const out = denominator === 0n ? 0n : (inWithFee * rOut) / denominator;
      if (out === 0n || out < minOut) fail("SLIPPAGE", `out ${out} < min ${minOut}`);
      if (aToB) {
        ctx.write(tx.senderKey, encodeAccount({ nonce: acct.nonce, balance: acct.balance - amountIn }));
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
        ctx.write(tx.senderKey, encodeAccount({ nonce: acct.nonce, balance: checked(acct.balance + out) }));
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
    case "staking":
      return fail("UNSUPPORTED_PROGRAM", "staking calls are executed by src/staking (not wired yet)");
    default:
      return fail("MALFORMED", "unknown program call");
  }
}

/**
 * Executes one decoded transaction against `view`, in this order:
 * 1. nonce: tx.nonce must equal the sender's nonce. A lower nonce whose tx-seen record holds
 *    this tx hash is a DUPLICATE (committed before, in an earlier block or earlier in this one);
 *    any other mismatch is BAD_NONCE. Both leave state untouched and use no gas.
 * 2. the nonce is consumed: sender nonce + 1 and the tx-seen record are written, whatever
 *    happens next, and gas is charged.
 * 3. gas: a gas limit (0 = unlimited) below the call's gas fails OUT_OF_GAS, gasUsed = limit.
 * 4. the program runs in an overlay; any failure (access violation included) reverts the
 *    overlay, so only step 2 remains.
 */
export function applyTx(view: StateView, tx: DecodedTx): TxOutcome {
  const acct = decodeAccount(view.get(tx.senderKey));
  const nonce = tx.body.nonce;
  if (nonce !== acct.nonce) {
    if (nonce < acct.nonce) {
      const seen = view.get(seenKeyStr(tx, nonce));
      if (seen !== null && bytesEqual(seen, tx.hash)) {
        return { status: TxStatus.DUPLICATE, gasUsed: 0, error: "", events: [] };
      }
    }
    return { status: TxStatus.FAILED, gasUsed: 0, error: `BAD_NONCE: expected ${acct.nonce}`, events: [] };
  }
  view.set(tx.senderKey, encodeAccount({ nonce: nonce + 1n, balance: acct.balance }));
  view.set(seenKeyStr(tx, nonce), tx.hash);
  const call = tx.body.call?.call ?? { case: undefined, value: undefined };
  const gas = gasOf(call);
  const limit = tx.body.gasLimit;
  if (limit !== 0n && BigInt(gas) > limit) {
    return { status: TxStatus.FAILED, gasUsed: Number(limit), error: "OUT_OF_GAS", events: [] };
  }
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
