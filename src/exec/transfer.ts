// The bank-transfer hot paths of the parallel executor (issue 13): applyTxFast (a transfer's
// frame and program written once, in doubles when every value fits, else in BigInt), and
// transferArena (the same on the account arena's bytes, staged straight from its slots). They
// must give the results of programs.ts#applyTx, the generic path the reference executor runs
// (test/unit/exec/hotpath.test.ts pins every edge). Separate from programs.ts because they are
// a second, faster spelling of one program, read and measured on their own; programs.ts holds
// the semantics they reproduce and does not import this file.
import { TxStatus } from "../gen/parabft/v1/types_pb.js";
import { ADDRESS_LENGTH } from "../types/block.js";
import { StateKeyPrefix } from "../types/stateKeys.js";
import { type AccountArena, SLOT_BYTES } from "./arena.js";
import {
  accountSmallInto,
  consumedAccount,
  consumedSmallInto,
  decodeAccount,
  getSmall,
  hex,
  isSmallAccount,
  putSmall,
  RECENT_TXS,
  recentlyConsumed,
  smallBalance,
  smallNonce,
  U128_MAX,
  withAccount,
} from "./codec.js";
import { accountKeyStr20, type DecodedTx, declaresRead, declaresWrite } from "./decodedTx.js";
import { DECIMAL_RE, GAS, gasPrice } from "./fees.js";
import {
  addSmallFee,
  applyTx,
  type FeeTotal,
  MAX_SAFE,
  type OutcomeEvent,
  type StateView,
  strBytes,
  TransferOk,
  type TxOutcome,
  transferEvents,
} from "./programs.js";

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

/** Where transferArena stages its two writes (writeStage.WriteStage). */
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
