// Canonical binary encodings of the staking records (big-endian, length-prefixed, versioned by a
// leading tag byte). Decoding is strict: trailing bytes, bad tags or out-of-range values throw
// StakingError CORRUPT_STATE. Same record ⇒ same bytes, so state roots agree across executors.
import { StakingError } from "./errors.js";
import {
  CONSENSUS_KEY_LENGTH,
  type DelegatorRecord,
  type EpochSnapshot,
  OPERATOR_LENGTH,
  type StakingMeta,
  type ValidatorRecord,
  ValidatorStatus,
} from "./types.js";

const U64_MAX = (1n << 64n) - 1n;
export const U128_MAX = (1n << 128n) - 1n;

const TAG = { meta: 1, validator: 2, delegator: 3, registry: 4, snapshot: 5, amount: 6 } as const;

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });

export class Writer {
  private parts: number[] = [];
  u8(x: number): this {
    this.parts.push(x & 255);
    return this;
  }
  u16(x: number): this {
    return this.u8(x >>> 8).u8(x);
  }
  u32(x: number): this {
    return this.u16(x >>> 16).u16(x & 0xffff);
  }
  u64(x: bigint): this {
    if (x < 0n || x > U64_MAX) throw new StakingError("OVERFLOW", `u64 out of range: ${x}`);
    for (let s = 56n; s >= 0n; s -= 8n) this.u8(Number((x >> s) & 255n));
    return this;
  }
  u128(x: bigint): this {
    if (x < 0n || x > U128_MAX) throw new StakingError("OVERFLOW", `u128 out of range: ${x}`);
    return this.u64(x >> 64n).u64(x & U64_MAX);
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  bytes(b: Uint8Array): this {
    return this.u32(b.length).raw(b);
  }
  str(s: string): this {
    return this.bytes(te.encode(s));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export class Reader {
  private pos = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly what: string,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.b.length) throw new StakingError("CORRUPT_STATE", `${this.what}: truncated`);
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u32(): number {
    return this.u16() * 0x10000 + this.u16();
  }
  u64(): bigint {
    let x = 0n;
    for (let i = 0; i < 8; i++) x = (x << 8n) | BigInt(this.u8());
    return x;
  }
  u128(): bigint {
    return (this.u64() << 64n) | this.u64();
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  bytes(): Uint8Array {
    return this.raw(this.u32());
  }
  str(): string {
    try {
      return td.decode(this.bytes());
    } catch {
      throw new StakingError("CORRUPT_STATE", `${this.what}: bad utf-8`);
    }
  }
  tag(t: number): void {
    if (this.u8() !== t) throw new StakingError("CORRUPT_STATE", `${this.what}: bad tag`);
  }
  end(): void {
    if (this.pos !== this.b.length) throw new StakingError("CORRUPT_STATE", `${this.what}: trailing bytes`);
  }
}

export function encodeMeta(m: StakingMeta): Uint8Array {
  const r = m.rules;
  return new Writer()
    .u8(TAG.meta)
    .u64(m.epoch)
    .u32(r.epochLength)
    .u32(r.maxValidators)
    .u32(r.minValidators)
    .u32(r.unbondingEpochs)
    .u16(r.slashDoubleSignBps)
    .u16(r.slashDowntimeBps)
    .u128(r.minSelfStake)
    .u32(r.maxVotes)
    .u16(r.minSignedBps)
    .finish();
}

export function decodeMeta(v: Uint8Array): StakingMeta {
  const r = new Reader(v, "staking meta");
  r.tag(TAG.meta);
  const m: StakingMeta = {
    epoch: r.u64(),
    rules: {
      epochLength: r.u32(),
      maxValidators: r.u32(),
      minValidators: r.u32(),
      unbondingEpochs: r.u32(),
      slashDoubleSignBps: r.u16(),
      slashDowntimeBps: r.u16(),
      minSelfStake: r.u128(),
      maxVotes: r.u32(),
      minSignedBps: r.u16(),
    },
  };
  r.end();
  return m;
}

export function encodeValidator(v: ValidatorRecord): Uint8Array {
  const w = new Writer()
    .u8(TAG.validator)
    .raw(v.operator)
    .raw(v.consensusKey)
    .u16(v.commissionBps)
    .u128(v.selfStake)
    .str(v.peerAddress)
    .u8(v.status)
    .u64(v.jailedUntil)
    .u64(v.registeredEpoch)
    .u128(v.tokens)
    .u128(v.shares)
    .u128(v.lateSlashed);
  if (v.doubleSign === null) w.u8(0);
  else w.u8(1).u64(v.doubleSign.offenceEpoch).u16(v.doubleSign.bps);
  return w.finish();
}

export function decodeValidator(b: Uint8Array): ValidatorRecord {
  const r = new Reader(b, "validator record");
  r.tag(TAG.validator);
  const operator = r.raw(OPERATOR_LENGTH);
  const consensusKey = r.raw(CONSENSUS_KEY_LENGTH);
  const commissionBps = r.u16();
  const selfStake = r.u128();
  const peerAddress = r.str();
  const status = r.u8();
  if (status > ValidatorStatus.tombstoned) throw new StakingError("CORRUPT_STATE", "validator status");
  const jailedUntil = r.u64();
  const registeredEpoch = r.u64();
  const tokens = r.u128();
  const shares = r.u128();
  const lateSlashed = r.u128();
  const flag = r.u8();
  if (flag > 1) throw new StakingError("CORRUPT_STATE", "validator double-sign flag");
  const doubleSign = flag === 1 ? { offenceEpoch: r.u64(), bps: r.u16() } : null;
  r.end();
  return {
    operator,
    consensusKey,
    commissionBps,
    selfStake,
    peerAddress,
    status,
    jailedUntil,
    registeredEpoch,
    tokens,
    shares,
    doubleSign,
    lateSlashed,
  };
}

export function encodeDelegator(d: DelegatorRecord): Uint8Array {
  const w = new Writer().u8(TAG.delegator).u128(d.free).u32(d.ballot.length);
  for (const e of d.ballot) w.raw(e.validator).u128(e.shares);
  w.u32(d.unbonding.length);
  for (const u of d.unbonding) w.u128(u.amount).u64(u.matureEpoch);
  w.u32(d.exposures.length);
  for (const e of d.exposures) w.raw(e.validator).u128(e.amount).u64(e.sinceEpoch);
  return w.finish();
}

export function decodeDelegator(b: Uint8Array): DelegatorRecord {
  const r = new Reader(b, "delegator record");
  r.tag(TAG.delegator);
  const free = r.u128();
  const ballot = [];
  for (let i = 0, n = r.u32(); i < n; i++)
    ballot.push({ validator: r.raw(OPERATOR_LENGTH), shares: r.u128() });
  const unbonding = [];
  for (let i = 0, n = r.u32(); i < n; i++) unbonding.push({ amount: r.u128(), matureEpoch: r.u64() });
  const exposures = [];
  for (let i = 0, n = r.u32(); i < n; i++) {
    exposures.push({ validator: r.raw(OPERATOR_LENGTH), amount: r.u128(), sinceEpoch: r.u64() });
  }
  r.end();
  return { free, ballot, unbonding, exposures };
}

export function encodeRegistry(operators: Uint8Array[]): Uint8Array {
  const w = new Writer().u8(TAG.registry).u32(operators.length);
  for (const o of operators) w.raw(o);
  return w.finish();
}

export function decodeRegistry(b: Uint8Array): Uint8Array[] {
  const r = new Reader(b, "validator registry");
  r.tag(TAG.registry);
  const out = [];
  for (let i = 0, n = r.u32(); i < n; i++) out.push(r.raw(OPERATOR_LENGTH));
  r.end();
  return out;
}

export function encodeAmount(x: bigint): Uint8Array {
  return new Writer().u8(TAG.amount).u128(x).finish();
}

export function decodeAmount(b: Uint8Array): bigint {
  const r = new Reader(b, "amount");
  r.tag(TAG.amount);
  const x = r.u128();
  r.end();
  return x;
}

export function encodeSnapshot(s: EpochSnapshot): Uint8Array {
  const w = new Writer()
    .u8(TAG.snapshot)
    .u64(s.epoch)
    .u8(s.kept ? 1 : 0)
    .u32(s.members.length);
  for (const m of s.members) {
    w.raw(m.operator)
      .raw(m.consensusKey)
      .str(m.peerAddress)
      .u128(m.power)
      .u128(m.selfStake)
      .u128(m.delegated);
  }
  return w.finish();
}

export function decodeSnapshot(b: Uint8Array): EpochSnapshot {
  const r = new Reader(b, "epoch snapshot");
  r.tag(TAG.snapshot);
  const epoch = r.u64();
  const kept = r.u8() === 1;
  const members = [];
  for (let i = 0, n = r.u32(); i < n; i++) {
    members.push({
      operator: r.raw(OPERATOR_LENGTH),
      consensusKey: r.raw(CONSENSUS_KEY_LENGTH),
      peerAddress: r.str(),
      power: r.u128(),
      selfStake: r.u128(),
      delegated: r.u128(),
    });
  }
  r.end();
  return { epoch, members, kept };
}
