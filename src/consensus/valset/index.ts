// Validator sets per epoch and the weighted quorum math (DESIGN §2, §6). Pure, no I/O.
import { create } from "@bufbuild/protobuf";
import { type Validator, ValidatorSchema } from "../../gen/parabft/v1/types_pb.js";
import { validatorsHash } from "../../types/block.js";
import { toHex } from "../../types/bytes.js";
import type { Hash } from "../../types/hash.js";

export interface Member {
  readonly publicKey: Uint8Array;
  readonly power: bigint;
}

/**
 * One epoch's validator set. Quorums are weighted by power and are always "more than 2/3 of total
 * power" (never 2f+1, which is unsafe when n ≠ 3f+1).
 */
export class ValidatorSet {
  readonly members: readonly Member[];
  readonly totalPower: bigint;
  /** Smallest power strictly greater than 2/3 of the total. */
  readonly quorum: bigint;
  /** Smallest power strictly greater than 1/3 of the total: at least one honest member. */
  readonly weak: bigint;
  readonly hash: Hash;
  private readonly byKey = new Map<string, number>();

  constructor(
    readonly epoch: bigint,
    members: readonly Member[],
  ) {
    if (members.length === 0) throw new RangeError("validator set must not be empty");
    let total = 0n;
    members.forEach((m, i) => {
      if (m.power <= 0n) throw new RangeError(`validator ${i} has non-positive power`);
      const k = toHex(m.publicKey);
      if (this.byKey.has(k)) throw new RangeError(`validator ${i} has a duplicate public key`);
      this.byKey.set(k, i);
      total += m.power;
    });
    this.members = members.map((m) => ({ publicKey: m.publicKey, power: m.power }));
    this.totalPower = total;
    this.quorum = (2n * total) / 3n + 1n;
    this.weak = total / 3n + 1n;
    this.hash = validatorsHash(
      epoch,
      this.members.map((m) => create(ValidatorSchema, { publicKey: m.publicKey, power: m.power })),
    );
  }

  static fromValidators(epoch: bigint, validators: readonly Validator[]): ValidatorSet {
    return new ValidatorSet(
      epoch,
      validators.map((v) => ({ publicKey: v.publicKey, power: v.power })),
    );
  }

  /** Equal-power set, the common test shape. */
  static uniform(epoch: bigint, publicKeys: readonly Uint8Array[]): ValidatorSet {
    return new ValidatorSet(
      epoch,
      publicKeys.map((publicKey) => ({ publicKey, power: 1n })),
    );
  }

  get size(): number {
    return this.members.length;
  }

  /** Primary of `view`: members[(epoch + view) mod n]. */
  primary(view: bigint): number {
    return Number((this.epoch + view) % BigInt(this.members.length));
  }

  indexOf(publicKey: Uint8Array): number | undefined {
    return this.byKey.get(toHex(publicKey));
  }

  has(index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index < this.members.length;
  }

  powerOf(index: number): bigint {
    return this.members[index]?.power ?? 0n;
  }

  /** Sum of power of the distinct valid indices in `indices`. */
  powerOfSet(indices: Iterable<number>): bigint {
    let p = 0n;
    const seen = new Set<number>();
    for (const i of indices) {
      if (seen.has(i) || !this.has(i)) continue;
      seen.add(i);
      p += this.members[i]!.power;
    }
    return p;
  }

  isQuorum(indices: Iterable<number>): boolean {
    return this.powerOfSet(indices) >= this.quorum;
  }

  isWeak(indices: Iterable<number>): boolean {
    return this.powerOfSet(indices) >= this.weak;
  }
}

/** Validator sets are always looked up by epoch, never through a global list. */
export interface EpochSets {
  get(epoch: bigint): ValidatorSet | undefined;
}

/** A fixed map of epoch -> set; enough until DPoS hands sets over. */
export class StaticEpochSets implements EpochSets {
  private readonly sets = new Map<bigint, ValidatorSet>();
  constructor(sets: readonly ValidatorSet[]) {
    for (const s of sets) this.sets.set(s.epoch, s);
  }
  get(epoch: bigint): ValidatorSet | undefined {
    return this.sets.get(epoch);
  }
  add(set: ValidatorSet): void {
    this.sets.set(set.epoch, set);
  }
}
