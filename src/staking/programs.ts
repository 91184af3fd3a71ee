// The staking programs (DESIGN §6): RegisterValidator, Delegate, Undelegate, Vote, Unjail,
// SubmitEvidence. Pure and deterministic: BigInt arithmetic, sorted records, no clocks, no
// iteration over maps. The executor calls runStakingCall inside a transaction overlay; a
// StakingFailure reverts every write of the call.
//
// Money model (conserved: liquid + bonded + unbonding + slashed is constant):
// - liquid: the sender's account balance;
// - bonded: a delegator's `free` stake, a validator's `selfStake`, and the `tokens` of each
//   validator's vote pool (delegators hold shares of it, so a slash lowers every share at once);
// - unbonding: delegators' unbonding entries, released to liquid on their next staking call from
//   `matureEpoch` on;
// - slashed: one u128 pool.
import type { StakingCall, SubmitEvidence, VoteEntry } from "../gen/parabft/v1/types_pb.js";
import { compareBytes, toHex } from "../types/bytes.js";
import { U128_MAX } from "./codec.js";
import { StakingFailure, stakingFail } from "./errors.js";
import { checkEvidence, ed25519Check, type SignatureCheck } from "./evidence.js";
import { candidateRecord, type KeyValue, StakingStore } from "./state.js";
import {
  CONSENSUS_KEY_LENGTH,
  type DelegatorRecord,
  type Exposure,
  OPERATOR_LENGTH,
  type StakingMeta,
  type ValidatorRecord,
  ValidatorStatus,
} from "./types.js";

export interface StakingEvent {
  kind: string;
  attrs: [string, string][];
}

/** What the executor hands a staking call: its key window and the sender's liquid balance. */
export interface StakingContext extends KeyValue {
  balance(): bigint;
  setBalance(balance: bigint): void;
}

export interface StakingEnv {
  /** The sender's 20-byte address (operator or delegator). */
  sender: Uint8Array;
  chainId: string;
  /** Signature check for evidence; Ed25519 when omitted (the simulator may plug a stand-in). */
  verify?: SignatureCheck;
}

export const MAX_REGISTERED = 10_000;
const AMOUNT_RE = /^(0|[1-9][0-9]{0,38})$/;
const PEER_RE = /^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$/;

export { StakingFailure };

export function parseStakeAmount(s: string, field: string): bigint {
  if (!AMOUNT_RE.test(s)) stakingFail("MALFORMED", `${field} is not a decimal amount`);
  const v = BigInt(s);
  if (v > U128_MAX) stakingFail("MALFORMED", `${field} exceeds u128`);
  return v;
}

export function isValidPeerAddress(a: string): boolean {
  if (!PEER_RE.test(a)) return false;
  const port = Number(a.slice(a.lastIndexOf(":") + 1));
  return port >= 1 && port <= 65535;
}

const checked = (v: bigint): bigint => (v > U128_MAX ? stakingFail("OVERFLOW") : v);
const bps = (amount: bigint, b: number): bigint => (amount * BigInt(b)) / 10_000n;

/** Current token value of `shares` of a validator's vote pool (floor). */
export function shareValue(v: Pick<ValidatorRecord, "tokens" | "shares">, shares: bigint): bigint {
  return v.shares === 0n ? 0n : (shares * v.tokens) / v.shares;
}

function deposit(v: ValidatorRecord, amount: bigint): bigint {
  let minted: bigint;
  if (v.shares === 0n) minted = amount;
  else if (v.tokens === 0n) return stakingFail("MALFORMED", "validator vote pool is empty");
  else minted = (amount * v.shares) / v.tokens;
  if (minted === 0n) stakingFail("MALFORMED", "vote amount too small for the pool's share price");
  v.tokens = checked(v.tokens + amount);
  v.shares = checked(v.shares + minted);
  return minted;
}

function withdraw(v: ValidatorRecord, shares: bigint): bigint {
  const value = shareValue(v, shares);
  v.tokens -= value;
  v.shares -= shares;
  return value;
}

/** Releases matured unbonding entries to the sender's liquid balance; returns the amount. */
function releaseMatured(ctx: StakingContext, d: DelegatorRecord, epoch: bigint): bigint {
  let released = 0n;
  const keep = [];
  for (const u of d.unbonding) {
    if (u.matureEpoch <= epoch) released += u.amount;
    else keep.push(u);
  }
  if (released > 0n) {
    d.unbonding = keep;
    ctx.setBalance(checked(ctx.balance() + released));
  }
  return released;
}

function addExposure(d: DelegatorRecord, e: Exposure): void {
  const same = d.exposures.find(
    (x) => x.sinceEpoch === e.sinceEpoch && compareBytes(x.validator, e.validator) === 0,
  );
  if (same) same.amount = checked(same.amount + e.amount);
  else d.exposures.push(e);
  d.exposures.sort(
    (a, b) => compareBytes(a.validator, b.validator) || (a.sinceEpoch < b.sinceEpoch ? -1 : 1),
  );
}

/**
 * Settles the delegator's exposures before anything else it does (so before unbonding stake is
 * released): an exposure to a validator slashed for an offence at or before the exposure's epoch
 * is charged now (unbonding newest first, then free stake; the amount is added to the
 * validator's lateSlashed); an exposure older than the unbonding period can no longer be charged
 * (evidence that old is rejected) and is dropped. Reads each exposed validator: the caller
 * declares them (stakingAccess with the delegator's exposures as hints).
 */
function settleExposures(
  store: StakingStore,
  d: DelegatorRecord,
  sender: Uint8Array,
  meta: StakingMeta,
): StakingEvent[] {
  if (d.exposures.length === 0) return [];
  const horizon = BigInt(meta.rules.unbondingEpochs);
  const events: StakingEvent[] = [];
  const keep: Exposure[] = [];
  const touched = new Map<string, ValidatorRecord>();
  for (const x of d.exposures) {
    const k = toHex(x.validator);
    let v = touched.get(k) ?? null;
    if (v === null) {
      v = store.validator(x.validator);
      if (v === null) return stakingFail("CORRUPT_STATE", "exposure names an unknown validator");
      touched.set(k, v);
    }
    if (v.doubleSign !== null && v.doubleSign.offenceEpoch <= x.sinceEpoch) {
      const owed = bps(x.amount, v.doubleSign.bps);
      let got = charge(d, owed);
      // Stake re-voted elsewhere does not escape: take the rest from the ballot (the entry is
      // withdrawn; what is left of it becomes free stake).
      while (got < owed && d.ballot.length > 0) {
        const entry = d.ballot.shift()!;
        const yk = toHex(entry.validator);
        let y = touched.get(yk) ?? null;
        if (y === null) {
          y = store.validator(entry.validator);
          if (y === null) return stakingFail("CORRUPT_STATE", "ballot names an unknown validator");
          touched.set(yk, y);
        }
        const value = withdraw(y, entry.shares);
        const take = value < owed - got ? value : owed - got;
        got += take;
        d.free = checked(d.free + value - take);
      }
      v.lateSlashed = checked(v.lateSlashed + got);
      events.push(
        ev("slash_settled", [
          ["operator", k],
          ["delegator", toHex(sender)],
          ["amount", got.toString()],
          ["uncollected", (owed - got).toString()],
        ]),
      );
    } else if (x.sinceEpoch + horizon > meta.epoch) {
      keep.push(x);
    }
  }
  d.exposures = keep;
  for (const k of [...touched.keys()].sort()) store.putValidator(touched.get(k)!);
  return events;
}

const ev = (kind: string, attrs: [string, string][]): StakingEvent => ({ kind: `staking.${kind}`, attrs });

function releasedEvents(sender: Uint8Array, released: bigint): StakingEvent[] {
  return released > 0n
    ? [
        ev("unbonded", [
          ["address", toHex(sender)],
          ["amount", released.toString()],
        ]),
      ]
    : [];
}

/** Runs one staking call; throws StakingFailure (or the executor's access failure) to revert. */
export function runStakingCall(ctx: StakingContext, env: StakingEnv, call: StakingCall): StakingEvent[] {
  const store = new StakingStore(ctx);
  const meta = store.meta();
  const c = call.call;
  switch (c.case) {
    case "registerValidator":
      return register(ctx, store, meta, env, c.value);
    case "delegate": {
      const amount = parseStakeAmount(c.value.amount, "amount");
      if (amount === 0n) stakingFail("MALFORMED", "amount must be positive");
      const d = store.delegator(env.sender);
      const settled = settleExposures(store, d, env.sender, meta);
      const released = releaseMatured(ctx, d, meta.epoch);
      const balance = ctx.balance();
      if (balance < amount) stakingFail("INSUFFICIENT_FUNDS");
      ctx.setBalance(balance - amount);
      d.free = checked(d.free + amount);
      store.putDelegator(env.sender, d);
      return [
        ...settled,
        ...releasedEvents(env.sender, released),
        ev("delegate", [
          ["delegator", toHex(env.sender)],
          ["amount", amount.toString()],
        ]),
      ];
    }
    case "undelegate": {
      const amount = parseStakeAmount(c.value.amount, "amount");
      if (amount === 0n) stakingFail("MALFORMED", "amount must be positive");
      const d = store.delegator(env.sender);
      const settled = settleExposures(store, d, env.sender, meta);
      const released = releaseMatured(ctx, d, meta.epoch);
      if (d.free < amount) stakingFail("INSUFFICIENT_FUNDS", "amount exceeds bonded stake not on the ballot");
      d.free -= amount;
      const matureEpoch = meta.epoch + BigInt(meta.rules.unbondingEpochs);
      const last = d.unbonding[d.unbonding.length - 1];
      if (last !== undefined && last.matureEpoch === matureEpoch) last.amount = checked(last.amount + amount);
      else d.unbonding.push({ amount, matureEpoch });
      store.putDelegator(env.sender, d);
      return [
        ...settled,
        ...releasedEvents(env.sender, released),
        ev("undelegate", [
          ["delegator", toHex(env.sender)],
          ["amount", amount.toString()],
          ["matureEpoch", matureEpoch.toString()],
        ]),
      ];
    }
    case "vote":
      return vote(ctx, store, meta, env, c.value.entries);
    case "unjail": {
      const v = store.validator(env.sender);
      if (v === null) return stakingFail("UNKNOWN_VALIDATOR", "sender is not a registered operator");
      if (v.status === ValidatorStatus.tombstoned) stakingFail("VALIDATOR_TOMBSTONED");
      if (v.status !== ValidatorStatus.jailed) stakingFail("NOT_JAILED");
      if (meta.epoch < v.jailedUntil) stakingFail("STILL_JAILED", `until epoch ${v.jailedUntil}`);
      v.status = ValidatorStatus.candidate;
      store.putValidator(v);
      return [ev("unjail", [["operator", toHex(v.operator)]])];
    }
    case "submitEvidence":
      return submitEvidence(store, meta, env, c.value);
    default:
      return stakingFail("MALFORMED", "unknown staking call");
  }
}

function register(
  ctx: StakingContext,
  store: StakingStore,
  meta: StakingMeta,
  env: StakingEnv,
  r: { consensusKey: Uint8Array; selfStake: string; commissionBps: number; peerAddress: string },
): StakingEvent[] {
  if (r.consensusKey.length !== CONSENSUS_KEY_LENGTH)
    stakingFail("MALFORMED", "consensus key is not 32 bytes");
  if (r.commissionBps > 10_000) stakingFail("MALFORMED", "commission_bps above 10000");
  if (!isValidPeerAddress(r.peerAddress)) stakingFail("MALFORMED", "peer_address must be host:port");
  const selfStake = parseStakeAmount(r.selfStake, "self_stake");
  if (selfStake < meta.rules.minSelfStake) {
    stakingFail("SELF_STAKE_TOO_LOW", `minimum is ${meta.rules.minSelfStake}`);
  }
  if (store.validator(env.sender) !== null) stakingFail("ALREADY_REGISTERED");
  if (store.operatorOfKey(r.consensusKey) !== null) stakingFail("DUPLICATE_CONSENSUS_KEY");
  const registry = store.registry();
  if (registry.length >= MAX_REGISTERED) stakingFail("MALFORMED", "validator registry is full");
  const balance = ctx.balance();
  if (balance < selfStake) stakingFail("INSUFFICIENT_FUNDS");
  ctx.setBalance(balance - selfStake);
  const v = candidateRecord({
    operator: env.sender,
    consensusKey: r.consensusKey,
    commissionBps: r.commissionBps,
    selfStake,
    peerAddress: r.peerAddress,
    registeredEpoch: meta.epoch,
  });
  store.putValidator(v);
  store.putOperatorOfKey(v.consensusKey, v.operator);
  registry.push(v.operator);
  registry.sort(compareBytes);
  store.putRegistry(registry);
  return [
    ev("register_validator", [
      ["operator", toHex(v.operator)],
      ["consensusKey", toHex(v.consensusKey)],
      ["selfStake", selfStake.toString()],
      ["commissionBps", String(v.commissionBps)],
      ["peerAddress", v.peerAddress],
    ]),
  ];
}

function vote(
  ctx: StakingContext,
  store: StakingStore,
  meta: StakingMeta,
  env: StakingEnv,
  entries: VoteEntry[],
): StakingEvent[] {
  if (entries.length > meta.rules.maxVotes)
    stakingFail("MALFORMED", `more than ${meta.rules.maxVotes} candidates`);
  const wanted: { validator: Uint8Array; amount: bigint }[] = [];
  for (const [i, e] of entries.entries()) {
    if (e.validator.length !== OPERATOR_LENGTH)
      stakingFail("MALFORMED", "validator is not a 20-byte address");
    if (i > 0 && compareBytes(entries[i - 1]!.validator, e.validator) >= 0) {
      stakingFail("MALFORMED", "ballot entries must be sorted by validator and unique");
    }
    const amount = parseStakeAmount(e.amount, "amount");
    if (amount === 0n) stakingFail("MALFORMED", "ballot amounts must be positive");
    wanted.push({ validator: e.validator, amount });
  }
  const d = store.delegator(env.sender);
  // Settle first (it writes the validators it charges), then load fresh records for the ballot.
  const settled = settleExposures(store, d, env.sender, meta);
  const released = releaseMatured(ctx, d, meta.epoch);
  const records = new Map<string, ValidatorRecord>();
  const load = (op: Uint8Array): ValidatorRecord | null => {
    const k = toHex(op);
    let v = records.get(k);
    if (v === undefined) {
      const got = store.validator(op);
      if (got === null) return null;
      v = got;
      records.set(k, v);
    }
    return v;
  };
  const wantedBy = new Map(wanted.map((w) => [toHex(w.validator), w.amount]));
  for (const w of wanted) {
    const v = load(w.validator);
    if (v === null) stakingFail("UNKNOWN_VALIDATOR", toHex(w.validator));
    else if (v.status === ValidatorStatus.tombstoned) stakingFail("VALIDATOR_TOMBSTONED", toHex(w.validator));
  }
  // Withdraw every old allocation whose amount changes; stake leaving a validator stays
  // slashable for its offences (an exposure) for the unbonding period.
  const kept = new Map<string, bigint>();
  for (const old of d.ballot) {
    const v = load(old.validator);
    if (v === null) return stakingFail("CORRUPT_STATE", "ballot names an unknown validator");
    const k = toHex(old.validator);
    const target = wantedBy.get(k) ?? 0n;
    if (target > 0n && shareValue(v, old.shares) === target) {
      kept.set(k, old.shares);
      continue;
    }
    const value = withdraw(v, old.shares);
    d.free = checked(d.free + value);
    if (value > target) {
      addExposure(d, { validator: old.validator.slice(), amount: value - target, sinceEpoch: meta.epoch });
    }
  }
  let need = 0n;
  for (const w of wanted) if (!kept.has(toHex(w.validator))) need += w.amount;
  if (need > d.free)
    stakingFail("BALLOT_EXCEEDS_STAKE", `ballot needs ${need}, bonded stake free is ${d.free}`);
  const ballot = [];
  for (const w of wanted) {
    const k = toHex(w.validator);
    const keptShares = kept.get(k);
    if (keptShares !== undefined) {
      ballot.push({ validator: w.validator.slice(), shares: keptShares });
      continue;
    }
    const v = records.get(k)!;
    d.free -= w.amount;
    ballot.push({ validator: w.validator.slice(), shares: deposit(v, w.amount) });
  }
  d.ballot = ballot;
  store.putDelegator(env.sender, d);
  for (const k of [...records.keys()].sort()) store.putValidator(records.get(k)!);
  return [
    ...settled,
    ...releasedEvents(env.sender, released),
    ev("vote", [
      ["voter", toHex(env.sender)],
      ["candidates", wanted.map((w) => `${toHex(w.validator)}=${w.amount}`).join(",")],
    ]),
  ];
}

/** Takes up to `amount` from a delegator's unbonding entries (newest first), then free stake. */
function charge(d: DelegatorRecord, amount: bigint): bigint {
  let left = amount;
  for (let i = d.unbonding.length - 1; i >= 0 && left > 0n; i--) {
    const u = d.unbonding[i]!;
    const take = u.amount < left ? u.amount : left;
    u.amount -= take;
    left -= take;
  }
  d.unbonding = d.unbonding.filter((u) => u.amount > 0n);
  const take = d.free < left ? d.free : left;
  d.free -= take;
  left -= take;
  return amount - left;
}

function submitEvidence(
  store: StakingStore,
  meta: StakingMeta,
  env: StakingEnv,
  e: SubmitEvidence,
): StakingEvent[] {
  checkEvidence(env.chainId, e, env.verify ?? ed25519Check);
  const operator = store.operatorOfKey(e.consensusKey);
  if (operator === null) return stakingFail("UNKNOWN_VALIDATOR", "no validator ever registered this key");
  const v = store.validator(operator);
  if (v === null) return stakingFail("CORRUPT_STATE", "key index names a missing validator");
  if (v.status === ValidatorStatus.tombstoned) {
    // Duplicate evidence (or a second offence): the validator was slashed once and is gone.
    return [ev("evidence_duplicate", [["operator", toHex(operator)]])];
  }
  const horizon = BigInt(meta.rules.unbondingEpochs);
  if (e.epoch + horizon <= meta.epoch) {
    stakingFail("EVIDENCE_TOO_OLD", `offence epoch ${e.epoch}, current ${meta.epoch}, unbonding ${horizon}`);
  }
  const rate = meta.rules.slashDoubleSignBps;
  const fromSelf = bps(v.selfStake, rate);
  const fromPool = bps(v.tokens, rate);
  v.selfStake -= fromSelf;
  v.tokens -= fromPool;
  // Stake that backed v at the offence and left since is charged when its delegator next acts
  // (settleExposures): before any of it can be released, so it cannot escape.
  v.doubleSign = { offenceEpoch: e.epoch, bps: rate };
  v.status = ValidatorStatus.tombstoned;
  store.putValidator(v);
  const total = fromSelf + fromPool;
  store.putSlashed(checked(store.slashed() + total));
  return [
    ev("slash", [
      ["operator", toHex(operator)],
      ["reason", "double_sign"],
      ["offenceEpoch", e.epoch.toString()],
      ["offenceHeight", e.height.toString()],
      ["amount", total.toString()],
    ]),
    ev("tombstone", [["operator", toHex(operator)]]),
  ];
}
