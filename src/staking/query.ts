// Read-side views for the API and CLI: validators of an epoch with power, status and the epoch's
// height range; a delegator's stake. Pure over a key lookup of executed state.
import { toHex } from "../types/bytes.js";
import { powerOf } from "./elect.js";
import { loadValidators } from "./epoch.js";
import { bin, stakingKeys } from "./keys.js";
import { shareValue } from "./programs.js";
import { type KeyValue, StakingStore } from "./state.js";
import { type DisplayStatus, ValidatorStatus } from "./types.js";

export interface ValidatorView {
  operator: string;
  consensusKey: string;
  peerAddress: string;
  status: DisplayStatus;
  power: bigint;
  selfStake: bigint;
  delegated: bigint;
  commissionBps: number;
  jailedUntil: bigint;
}

export interface ValidatorsView {
  epoch: bigint;
  /** Heights of the epoch, inclusive. */
  firstHeight: bigint;
  lastHeight: bigint;
  /** Whether the set of `epoch` is known (elected) yet. */
  setKnown: boolean;
  validators: ValidatorView[];
}

export interface DelegationView {
  address: string;
  free: bigint;
  ballot: { validator: string; shares: bigint; value: bigint }[];
  unbonding: { amount: bigint; matureEpoch: bigint }[];
  /** Validators this address's stake left within the unbonding period (still slashable). */
  exposures: { validator: string; amount: bigint; sinceEpoch: bigint }[];
}

const statusName: Record<ValidatorStatus, DisplayStatus> = {
  [ValidatorStatus.candidate]: "candidate",
  [ValidatorStatus.jailed]: "jailed",
  [ValidatorStatus.tombstoned]: "tombstoned",
};

/** Read-only window over a key lookup (writes are refused). */
export function readOnly(get: (key: string) => Uint8Array | null): KeyValue {
  return {
    read: get,
    write: () => {
      throw new Error("read-only staking view");
    },
  };
}

/** The validators of `epoch` (default: the execution epoch): members first in election order. */
export function queryValidators(kv: KeyValue, epoch?: bigint): ValidatorsView {
  const store = new StakingStore(kv);
  const meta = store.meta();
  const e = epoch ?? meta.epoch;
  const snap = store.snapshot(e);
  const members = new Map((snap?.members ?? []).map((m, i) => [toHex(m.operator), i]));
  const validators = loadValidators(store).map(
    (v): ValidatorView => ({
      operator: toHex(v.operator),
      consensusKey: toHex(v.consensusKey),
      peerAddress: v.peerAddress,
      status:
        members.has(toHex(v.operator)) && v.status === ValidatorStatus.candidate
          ? "active"
          : statusName[v.status],
      power: powerOf(v),
      selfStake: v.selfStake,
      delegated: v.tokens,
      commissionBps: v.commissionBps,
      jailedUntil: v.jailedUntil,
    }),
  );
  const rank = (op: string) => members.get(op) ?? Number.MAX_SAFE_INTEGER;
  validators.sort((a, b) => rank(a.operator) - rank(b.operator) || (a.operator < b.operator ? -1 : 1));
  const len = BigInt(meta.rules.epochLength);
  return {
    epoch: e,
    firstHeight: e * len,
    lastHeight: (e + 1n) * len - 1n,
    setKnown: snap !== null,
    validators,
  };
}

export function queryDelegations(kv: KeyValue, address: Uint8Array): DelegationView {
  const store = new StakingStore(kv);
  const d = store.delegator(address);
  return {
    address: toHex(address),
    free: d.free,
    ballot: d.ballot.map((b) => {
      const v = store.validator(b.validator);
      return {
        validator: toHex(b.validator),
        shares: b.shares,
        value: v === null ? 0n : shareValue(v, b.shares),
      };
    }),
    unbonding: d.unbonding.map((u) => ({ ...u })),
    exposures: d.exposures.map((x) => ({
      validator: toHex(x.validator),
      amount: x.amount,
      sinceEpoch: x.sinceEpoch,
    })),
  };
}

/** Reads executed state one key at a time (the API's getState). */
export type AsyncGet = (key: Uint8Array) => Promise<Uint8Array | null>;

/** Fetches the keys a query needs into a map, then answers it with the synchronous view. */
class Prefetch {
  readonly map = new Map<string, Uint8Array | null>();
  constructor(private readonly get: AsyncGet) {}
  async load(keys: Uint8Array[]): Promise<void> {
    const missing = keys.filter((k) => !this.map.has(bin(k)));
    const values = await Promise.all(missing.map((k) => this.get(k)));
    for (const [i, k] of missing.entries()) this.map.set(bin(k), values[i] ?? null);
  }
  kv(): KeyValue {
    return readOnly((k) => {
      const v = this.map.get(k);
      if (v === undefined) throw new Error("staking query read a key it did not prefetch");
      return v;
    });
  }
}

export async function queryValidatorsAsync(get: AsyncGet, epoch?: bigint): Promise<ValidatorsView> {
  const p = new Prefetch(get);
  await p.load([stakingKeys.meta(), stakingKeys.registry()]);
  const store = new StakingStore(p.kv());
  const e = epoch ?? store.meta().epoch;
  await p.load([stakingKeys.epochSet(e), ...store.registry().map((op) => stakingKeys.validator(op))]);
  return queryValidators(p.kv(), e);
}

export async function queryDelegationsAsync(get: AsyncGet, address: Uint8Array): Promise<DelegationView> {
  const p = new Prefetch(get);
  await p.load([stakingKeys.delegator(address)]);
  const d = new StakingStore(p.kv()).delegator(address);
  await p.load(d.ballot.map((b) => stakingKeys.validator(b.validator)));
  return queryDelegations(p.kv(), address);
}
