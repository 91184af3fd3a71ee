// Transaction semantics: decoding, the nonce/duplicate/gas frame every transaction goes
// through, and the native programs. Deterministic: BigInt arithmetic, no floats, no clocks.
// Both executors call applyTx; they differ only in how they schedule it over state.
import { hash as nodeHash } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { type TxBody, TxBodySchema, TxStatus } from "../gen/parabft/v1/types_pb.js";
import { runStakingCall, StakingFailure, type StakingFailureCode } from "../staking/index.js";
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
import { type AccountArena, SLOT_BYTES } from "./arena.js";
import {
  accountSmallInto,
  consumedAccount,
  consumedSmallInto,
  decodeAccount,
  decodePool,
  decodeU128,
  encodePool,
  encodeU128,
  getSmall,
  hex,
  isSmallAccount,
  keyStr,
  keyStr21,
  putSmall,
  RECENT_TXS,
  recentlyConsumed,
  smallBalance,
  smallNonce,
  U128_MAX,
  withAccount,
} from "./codec.js";
import { DECIMAL_RE, FEE_COLLECTOR_ADDRESS, GAS, gasOf, gasPrice, LIMITS } from "./fees.js";
import { sha256Iterate } from "./sha256iter.js";
import { fastDecodeTxBody } from "./txDecode.js";
import type { PreDecodedTx } from "./types.js";

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

/** A transaction decoded for execution. Keys are binary strings (see codec.keyStr). */
export interface DecodedTx {
  /** The sender's cached keys (shared by every tx of the sender). */
  keys?: SenderKeys;
  hash: Uint8Array;
  body: TxBody;
  sender: Uint8Array;
  /**
   * keyStr(accountKey(sender)): its value also holds the sender's recent-transactions record.
   * Read-only, like reads and writes: decodeTx's DecodedTxOf builds them on first read.
   */
  readonly senderKey: string;
  /** Declared keys, as listed (may repeat): see declaresRead / declaresWrite. */
  readonly reads: string[];
  readonly writes: string[];
  /** Built on first use for long access lists only (short ones are scanned). */
  readSet?: Set<string>;
  writeSet?: Set<string>;
}

const SCAN_MAX = 16;

/** True when the access list lets the tx write `key` (the sender's account is implicit). */
export function declaresWrite(tx: DecodedTx, key: string): boolean {
  if (key === tx.senderKey) return true;
  const w = tx.writes;
  if (w.length <= SCAN_MAX) {
    for (let i = 0; i < w.length; i++) if (w[i] === key) return true;
    return false;
  }
  tx.writeSet ??= new Set(w);
  return tx.writeSet.has(key);
}

/** True when the access list lets the tx read `key` (declared read or write, or its account). */
export function declaresRead(tx: DecodedTx, key: string): boolean {
  if (declaresWrite(tx, key)) return true;
  const r = tx.reads;
  if (r.length <= SCAN_MAX) {
    for (let i = 0; i < r.length; i++) if (r[i] === key) return true;
    return false;
  }
  tx.readSet ??= new Set(r);
  return tx.readSet.has(key);
}

interface SenderKeys {
  /** The public key (a copy when cached: see senderKeys). */
  publicKey: Uint8Array;
  sender: Uint8Array;
  senderKey: string;
  /** hex(sender), filled on first use (transfer events). */
  hex?: string;
}

/**
 * Public key -> address and key strings. A pure cache (the same key always maps to the same
 * address), so it cannot change results; it saves a SHA-256 and two key builds per transaction
 * from a returning sender. Looked up by the key's first 30 bits (a small-integer Map key: no
 * string built per transaction), confirmed by comparing the whole key; the rare second key with
 * the same first bits goes to a map by the whole key. Cleared when full.
 */
const senderCache = new Map<number, SenderKeys>();
const senderCollisions = new Map<string, SenderKeys>();
const SENDER_CACHE_MAX = 1 << 20;

function newSenderKeys(publicKey: Uint8Array): SenderKeys {
  // addressOf (src/types) is the same SHA-256 prefix; node:crypto is several times faster.
  // A caller that already derived it (the mempool) passes it in (decodeTx: no SenderKeys then).
  const sender = new Uint8Array(nodeHash("sha256", publicKey, "buffer").subarray(0, ADDRESS_LENGTH));
  return {
    publicKey: publicKey.slice(),
    sender,
    senderKey: accountKeyStr20(sender),
  };
}

function senderKeys(publicKey: Uint8Array): SenderKeys {
  // Public keys are 32 bytes (checked by the caller) and uniformly random in their first bytes.
  const id = (publicKey[0]! << 22) | (publicKey[1]! << 14) | (publicKey[2]! << 6) | (publicKey[3]! >>> 2);
  const k = senderCache.get(id);
  if (k !== undefined) {
    const pk = k.publicKey;
    let same = true;
    for (let i = 4; i < PUBLIC_KEY_LENGTH; i++) {
      if (pk[i] !== publicKey[i]) {
        same = false;
        break;
      }
    }
    if (same && pk[0] === publicKey[0] && pk[3] === publicKey[3]) return k;
    const full = keyStr(publicKey);
    let c = senderCollisions.get(full);
    if (c === undefined) {
      c = newSenderKeys(publicKey);
      if (senderCollisions.size >= SENDER_CACHE_MAX) senderCollisions.clear();
      senderCollisions.set(full, c);
    }
    return c;
  }
  const fresh = newSenderKeys(publicKey);
  if (senderCache.size >= SENDER_CACHE_MAX) senderCache.clear();
  senderCache.set(id, fresh);
  return fresh;
}

/** keyStr(key) for a declared key, reusing the sender's account key string when it is that key. */
function declaredKeyStr(key: Uint8Array, sender: Uint8Array, tx: { senderKey: string }): string {
  if (key.length === 1 + ADDRESS_LENGTH && key[0] === StateKeyPrefix.account) {
    let i = 0;
    while (i < ADDRESS_LENGTH && key[i + 1] === sender[i]) i++;
    if (i === ADDRESS_LENGTH) return tx.senderKey;
  }
  return keyStr(key);
}

/**
 * Decodes a signed body. A body that does not decode, or whose sender is not a 32-byte key,
 * is MALFORMED with no effects at all: without a sender there is no nonce to consume.
 */
export function decodeTx(body: Uint8Array, hash: Uint8Array, pre?: PreDecodedTx): DecodedTx | null {
  let tx: TxBody | null = pre === undefined ? fastDecodeTxBody(body) : pre.body;
  if (tx === null) {
    try {
      tx = fromBinary(TxBodySchema, body);
    } catch {
      return null;
    }
  }
  if (tx.sender.length !== PUBLIC_KEY_LENGTH) return null;
  // The caller derived the address (the mempool): no lookup in a cache of every sender (a cold
  // Map entry and key compare per transaction), and no SenderKeys object (round 10). Round 16:
  // no key string either until something asks (DecodedTxOf): transfers on the arena are looked
  // up by the address bytes.
  const address = pre?.address;
  if (address !== undefined && address.length === ADDRESS_LENGTH) {
    return new DecodedTxOf(undefined, hash, tx, address, undefined);
  }
  const keys = senderKeys(tx.sender);
  return new DecodedTxOf(keys, hash, tx, keys.sender, keys.senderKey);
}

/**
 * A decoded tx whose key strings (the sender's, the declared reads and writes) are built on
 * first read (round 16): the transfer path on the arena reads none of them.
 */
class DecodedTxOf implements DecodedTx {
  readSet: Set<string> | undefined = undefined;
  writeSet: Set<string> | undefined = undefined;
  private readKeys: string[] | undefined = undefined;
  private writeKeys: string[] | undefined = undefined;
  constructor(
    readonly keys: SenderKeys | undefined,
    readonly hash: Uint8Array,
    readonly body: TxBody,
    readonly sender: Uint8Array,
    private key: string | undefined,
  ) {}

  get senderKey(): string {
    if (this.key === undefined) this.key = accountKeyStr20(this.sender);
    return this.key;
  }

  get reads(): string[] {
    if (this.readKeys === undefined) this.readKeys = this.declared(this.body.access?.reads);
    return this.readKeys;
  }

  get writes(): string[] {
    if (this.writeKeys === undefined) this.writeKeys = this.declared(this.body.access?.writes);
    return this.writeKeys;
  }

  private declared(list: Uint8Array[] | undefined): string[] {
    if (list === undefined || list.length === 0) return NO_KEYS;
    const out: string[] = new Array(list.length);
    const sender = this.sender;
    for (let i = 0; i < list.length; i++) out[i] = declaredKeyStr(list[i]!, sender, this);
    return out;
  }
}

const NO_KEYS: string[] = [];
const ACCOUNT_PREFIX = String.fromCharCode(StateKeyPrefix.account);

/** The receipt events of a successful transfer (one place for the generic and the fast path). */
function transferEvents(tx: DecodedTx, to: Uint8Array, amount: string): OutcomeEvent[] {
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

/** Every key a transaction may touch, implicit ones included: the conflict-graph input. */
export function touchedKeys(tx: DecodedTx): { keys: string[]; writes: boolean[] } {
  const keys: string[] = [tx.senderKey];
  const writes: boolean[] = [true];
  const long = tx.writes.length + tx.reads.length > SCAN_MAX;
  const seen = long ? new Set<string>(keys) : null;
  const add = (k: string, w: boolean) => {
    if (seen !== null) {
      if (seen.has(k)) return;
      seen.add(k);
    } else if (keys.includes(k)) return;
    keys.push(k);
    writes.push(w);
  };
  for (const k of tx.writes) add(k, true);
  for (const k of tx.reads) add(k, false);
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
 */
/**
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

/** Adds a safe-integer fee (> 0) to `f` without a BigInt while the double sum stays exact. */
function addSmallFee(f: FeeTotal, fee: number): void {
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
/**
 * Whether an executed inclusion consumed its tx's nonce (step 2 of applyTx): false for a
 * DUPLICATE or BAD_NONCE, which left state untouched and let the same tx count elsewhere.
 */
export function consumedNonce(r: { status: TxStatus; error: string }): boolean {
  return r.status !== TxStatus.DUPLICATE && !r.error.startsWith("BAD_NONCE");
}

/** keyStr(accountKey(address)) for a 20-byte address, built flat in one call (no rope). */
function accountKeyStr20(address: Uint8Array): string {
  return keyStr21(address, StateKeyPrefix.account, 0);
}

/**
 * The declared write key string of `address`'s account (so readable and writable), or null when
 * the access list's writes do not hold it (the BigInt frame then reports the violation). Compares
 * the declared bytes: no key string built per transfer.
 */
function declaredAccountKey(tx: DecodedTx, address: Uint8Array): string | null {
  const aw = tx.body.access?.writes;
  if (aw === undefined || aw.length !== tx.writes.length) return null;
  for (let w = 0; w < aw.length; w++) {
    const k = aw[w]!;
    if (k.length !== 1 + ADDRESS_LENGTH || k[0] !== StateKeyPrefix.account) continue;
    let i = 0;
    while (i < ADDRESS_LENGTH && k[i + 1] === address[i]) i++;
    if (i === ADDRESS_LENGTH) return tx.writes[w]!;
  }
  return null;
}

const TRANSFER_GAS = GAS.base + GAS.transfer;
const TRANSFER_GAS_BIG = BigInt(TRANSFER_GAS);

function failed(gasUsed: number, error: string): TxOutcome {
  return { status: TxStatus.FAILED, gasUsed, error, events: [] };
}

/**
 * applyTx with a hot path for bank transfers: the same frame (nonce, recent record, gas, fee)
 * and program, but the sender's account is written once (fee and amount together) and no
 * overlay or closure is built. Every other call goes to applyTx. The parallel executor uses it;
 * the reference executor keeps the generic path, so the differential tests compare the two.
 */
export function applyTxFast(view: StateView, tx: DecodedTx, fees: FeeTotal): TxOutcome {
  const body = tx.body;
  const call = body.call?.call;
  if (call === undefined || call.case !== "transfer") return applyTx(view, tx, fees);
  return (
    transferSmall(view, tx, call.value.to, call.value.amount, fees) ??
    transferFrame(view, tx, fees, call.value)
  );
}

/**
 * A canonical decimal (as DECIMAL_RE: no sign, no leading zero) of at most `maxDigits` digits as
 * a number, or -1 (not canonical, or longer: the BigInt path decides).
 */
function smallDecimal(s: string, maxDigits: number): number {
  const n = s.length;
  if (n === 0 || n > maxDigits || (n > 1 && s.charCodeAt(0) === 48)) return -1;
  let x = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    x = x * 10 + d;
  }
  return x;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * The common transfer entirely in doubles: every value below 2^53 (nonce and balances as stored,
 * price < 10^9, amount < 10^15, sums checked), nonce matching, fee and amount covered, the
 * recipient another declared account. Returns null BEFORE any write when anything else holds;
 * transferFrame (BigInt) then decides, with the same results.
 */
function transferSmall(
  view: StateView,
  tx: DecodedTx,
  to: Uint8Array,
  amountText: string,
  fees: FeeTotal,
): TxOutcome | null {
  const body = tx.body;
  if (body.gasLimit !== 0n && body.gasLimit < TRANSFER_GAS_BIG) return null;
  if (to.length !== ADDRESS_LENGTH) return null;
  const sv = view.get(tx.senderKey);
  if (sv === null || !isSmallAccount(sv)) return null;
  const nonce = smallNonce(sv);
  // nonce < 2^53, so equal doubles mean equal integers (a larger body nonce never rounds to it).
  if (Number(body.nonce) !== nonce) return null;
  const price = body.fee === "" ? 0 : smallDecimal(body.fee, 9);
  if (price < 0) return null;
  const fee = TRANSFER_GAS * price;
  const amount = smallDecimal(amountText, 15);
  if (amount < 0) return null;
  const balance = smallBalance(sv);
  if (fee > balance || balance - fee < amount) return null;
  const toKey = declaredAccountKey(tx, to);
  if (toKey === null || toKey === tx.senderKey) return null;
  const dv = view.get(toKey);
  let destNonce = 0;
  let destBalance = 0;
  if (dv !== null) {
    if (!isSmallAccount(dv)) return null;
    destNonce = smallNonce(dv);
    destBalance = smallBalance(dv);
  }
  if (destBalance + amount > MAX_SAFE) return null;
  // Same writes, in the same order, as the frame and the program.
  // The view writes through (no overlay to revert) and nothing else holds a StateValue: the
  // values the hot path allocated are rewritten in place (codec.StateValue).
  view.set(tx.senderKey, consumedSmallInto(sv, nonce + 1, balance - fee - amount, tx.hash));
  view.set(toKey, accountSmallInto(dv, destNonce, destBalance + amount));
  if (fee > 0) addSmallFee(fees, fee);
  // amountText is canonical here, so it is BigInt(amountText).toString().
  return new TransferOk(tx.keys, tx.sender, to, amountText);
}

/** Where transferArena stages its two writes (result.WriteStage). */
export interface SlotStage {
  addSlot(src: Uint8Array, view: DataView, at: number, vl: number): void;
}

/** isSmallAccount of an arena value (already a well-formed account) at `v` in `b`. */
function smallAt(b: Uint8Array, v: number): boolean {
  const high = b[v + 8]! | b[v + 9]! | b[v + 10]! | b[v + 11]! | b[v + 12]! | b[v + 13]! | b[v + 14]!;
  return (high | b[v + 15]! | b[v + 0]! | b[v + 16]!) === 0 && b[v + 1]! < 0x20 && b[v + 17]! < 0x20;
}

/**
 * transferSmall on the account arena (round 15): the same checks, in the same order, and the
 * same two writes with the same bytes, but both accounts are found in the arena and rewritten in
 * place there, and each write is staged straight from the arena's bytes. Returns null BEFORE any
 * write when anything else holds (not a transfer, either account not in the arena: absent, or a
 * value of another shape; anything transferSmall refuses but a declared transfer to oneself,
 * which this runs as transferFrame does): applyTxFast then decides. The caller
 * stages writes only through `stage` (no written-key list to keep) and has room for two.
 */
export function transferArena(
  arena: AccountArena,
  tx: DecodedTx,
  fees: FeeTotal,
  stage: SlotStage,
): TxOutcome | null {
  const body = tx.body;
  const call = body.call?.call;
  if (call === undefined || call.case !== "transfer") return null;
  if (body.gasLimit !== 0n && body.gasLimit < TRANSFER_GAS_BIG) return null;
  const to = call.value.to;
  if (to.length !== ADDRESS_LENGTH) return null;
  // Both accounts are found by their address bytes (round 16): no key string is read or built.
  const sender = tx.sender;
  const s = arena.findAddress(sender, 0);
  if (s < 0) return null;
  const b = arena.bytes;
  const sv = arena.valueAt(s);
  if (!smallAt(b, sv)) return null;
  const nonce = getSmall(b, sv);
  if (Number(body.nonce) !== nonce) return null;
  const price = body.fee === "" ? 0 : smallDecimal(body.fee, 9);
  if (price < 0) return null;
  const fee = TRANSFER_GAS * price;
  const amountText = call.value.amount;
  const amount = smallDecimal(amountText, 15);
  if (amount < 0) return null;
  const balance = getSmall(b, sv + 16);
  if (fee > balance || balance - fee < amount) return null;
  if (!declaresAccount(tx, to)) return null;
  const view = arena.view;
  if (sameAddress(to, sender)) {
    // A transfer to oneself (declared): the program writes nothing, so only the frame's write
    // stands, the nonce consumed and the fee paid (transferFrame / transferInto).
    consumeInArena(arena, s, tx.hash, nonce + 1, balance - fee);
    stage.addSlot(b, view, s * SLOT_BYTES, arena.lengthOf(s));
    if (fee > 0) addSmallFee(fees, fee);
    return new TransferOk(tx.keys, sender, to, amountText);
  }
  const d = arena.findAddress(to, 0);
  if (d < 0) return null;
  const dv = arena.valueAt(d);
  if (!smallAt(b, dv)) return null;
  const destBalance = getSmall(b, dv + 16);
  if (destBalance + amount > MAX_SAFE) return null;
  consumeInArena(arena, s, tx.hash, nonce + 1, balance - fee - amount);
  stage.addSlot(b, view, s * SLOT_BYTES, arena.lengthOf(s));
  putSmall(b, dv + 24, destBalance + amount);
  stage.addSlot(b, view, d * SLOT_BYTES, arena.lengthOf(d));
  if (fee > 0) addSmallFee(fees, fee);
  return new TransferOk(tx.keys, sender, to, amountText);
}

/** True when the 20-byte addresses are equal. */
function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < ADDRESS_LENGTH; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * True when the access list's writes hold `address`'s account: declaredAccountKey's test on
 * the declared bytes, with no key string.
 */
function declaresAccount(tx: DecodedTx, address: Uint8Array): boolean {
  const aw = tx.body.access?.writes;
  if (aw === undefined) return false;
  for (let w = 0; w < aw.length; w++) {
    const k = aw[w]!;
    if (k.length !== 1 + ADDRESS_LENGTH || k[0] !== StateKeyPrefix.account) continue;
    let i = 0;
    while (i < ADDRESS_LENGTH && k[i + 1] === address[i]) i++;
    if (i === ADDRESS_LENGTH) return true;
  }
  return false;
}

/**
 * The sender's account in slot `s` after `hash` consumed its nonce (consumedSmallInto's bytes,
 * in place): its record shifted by one hash (the oldest of RECENT_TXS drops out), `hash` first,
 * then `nonce` (already + 1) and `balance`.
 */
function consumeInArena(
  arena: AccountArena,
  s: number,
  hash: Uint8Array,
  nonce: number,
  balance: number,
): void {
  const b = arena.bytes;
  const sv = arena.valueAt(s);
  const held = (arena.lengthOf(s) - 24) >>> 5;
  const keep = held < RECENT_TXS - 1 ? held : RECENT_TXS - 1;
  b.copyWithin(sv + 56, sv + 24, sv + 24 + 32 * keep);
  for (let i = 0; i < 32; i++) b[sv + 24 + i] = hash[i]!;
  putSmall(b, sv + 8, nonce);
  putSmall(b, sv + 24, balance);
  arena.setLength(s, 56 + 32 * keep);
}

/** The transfer frame and program with BigInt arithmetic (every case). */
function transferFrame(
  view: StateView,
  tx: DecodedTx,
  fees: FeeTotal,
  call: { to: Uint8Array; amount: string },
): TxOutcome {
  const body = tx.body;
  const senderKey = tx.senderKey;
  const sv = view.get(senderKey);
  const acct = decodeAccount(sv);
  const nonce = body.nonce;
  if (nonce !== acct.nonce) {
    if (nonce < acct.nonce && recentlyConsumed(sv, acct.nonce, nonce, tx.hash)) {
      return { status: TxStatus.DUPLICATE, gasUsed: 0, error: "", events: [] };
    }
    return failed(0, `BAD_NONCE: expected ${acct.nonce}`);
  }
  const next = nonce + 1n;
  const price = gasPrice(body);
  if (price === null) {
    view.set(senderKey, consumedAccount(sv, { nonce: next, balance: acct.balance }, tx.hash));
    return failed(0, "MALFORMED: fee is not a decimal u128");
  }
  const limit = body.gasLimit;
  const outOfGas = limit !== 0n && BigInt(TRANSFER_GAS) > limit;
  const gasUsed = outOfGas ? Number(limit) : TRANSFER_GAS;
  const fee = price === 0n ? 0n : BigInt(gasUsed) * price;
  if (fee > acct.balance) {
    view.set(senderKey, consumedAccount(sv, { nonce: next, balance: 0n }, tx.hash));
    fees.total += acct.balance;
    return failed(gasUsed, `INSUFFICIENT_FEE: paid ${acct.balance} of ${fee}`);
  }
  fees.total += fee;
  const paid = acct.balance - fee;
  // From here the sender ends with (next, paid) and this tx's hash unless the transfer succeeds.
  const consumed = consumedAccount(sv, { nonce: next, balance: paid }, tx.hash);
  const error = transferInto(view, tx, call.to, call.amount, consumed, next, paid, outOfGas);
  if (typeof error === "string") {
    view.set(senderKey, consumed);
    return failed(outOfGas ? gasUsed : TRANSFER_GAS, error);
  }
  return { status: TxStatus.OK, gasUsed: TRANSFER_GAS, error: "", events: error };
}

/**
 * The transfer program after the frame (as runProgram's "transfer" case over a TxContext):
 * writes both accounts and returns the events, or returns the failure string and writes nothing.
 */
function transferInto(
  view: StateView,
  tx: DecodedTx,
  to: Uint8Array,
  amountText: string,
  consumed: Uint8Array,
  nonce: bigint,
  balance: bigint,
  outOfGas: boolean,
): string | OutcomeEvent[] {
  if (outOfGas) return "OUT_OF_GAS";
  if (to.length !== 20) return "MALFORMED: recipient is not a 20-byte address";
  if (!DECIMAL_RE.test(amountText)) return "MALFORMED: amount is not a decimal amount";
  const amount = BigInt(amountText);
  if (amount > U128_MAX) return "MALFORMED: amount exceeds u128";
  if (balance < amount) return "INSUFFICIENT_FUNDS";
  const toKey = accountKeyStr20(to);
  if (toKey !== tx.senderKey) {
    if (!declaresRead(tx, toKey)) return `ACCESS_VIOLATION: read of undeclared key ${hex(strBytes(toKey))}`;
    const destValue = view.get(toKey);
    const dest = decodeAccount(destValue);
    const credited = dest.balance + amount;
    if (credited > U128_MAX) return "OVERFLOW";
    if (!declaresWrite(tx, toKey)) return `ACCESS_VIOLATION: write of undeclared key ${hex(strBytes(toKey))}`;
    view.set(tx.senderKey, withAccount(consumed, { nonce, balance: balance - amount }));
    view.set(toKey, withAccount(destValue, { nonce: dest.nonce, balance: credited }));
  } else {
    // A transfer to oneself writes nothing in the program; the frame's write stands.
    view.set(tx.senderKey, consumed);
  }
  return transferEvents(tx, to, amount.toString());
}

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
