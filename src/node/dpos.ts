// DPoS in the node (issue 11): the chain genesis with staking genesis, the epoch hook the
// executor runs (with the signing tally read from the chain's last_commit fields), and the live
// epoch sets (genesis set for epochs 0 and 1, the persisted election snapshot for e+2 once the
// last block of epoch e has executed).
import { create } from "@bufbuild/protobuf";
import { ValidatorSet } from "../consensus/valset/index.js";
import { keyStr } from "../exec/codec.js";
import { buildGenesis } from "../exec/genesis.js";
import { buildResult, ZERO_ROOT } from "../exec/result.js";
import type { ExecutionResult } from "../exec/types.js";
import {
  type Block,
  ValidatorSchema,
  type ValidatorSet as ValidatorSetMsg,
  ValidatorSetSchema,
} from "../gen/parabft/v1/types_pb.js";
import type { ChainParams } from "../params/index.js";
import {
  decodeSnapshot,
  type EpochHook,
  type EpochSnapshot,
  rulesFrom,
  type SetMember,
  type SigningTally,
  type StakingRules,
  stakingGenesis,
  stakingKeys,
} from "../staking/index.js";
import { addressOf } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { type Genesis, genesisValidatorSet } from "./genesis.js";

/** The chain's staking rules: its StakingParams with the execution-side defaults. */
export function stakingRulesOf(params: ChainParams): StakingRules {
  return rulesFrom(params.staking);
}

/**
 * The height-0 execution result: accounts and pools (src/exec/genesis.ts) plus staking genesis
 * (rules, genesis validators registered with their self stake, the sets of epochs 0 and 1).
 */
export function buildChainGenesis(g: Genesis): ExecutionResult {
  const base = buildGenesis({ accounts: g.accounts, pools: g.ammPools });
  const writes = new Map<string, Uint8Array | null>();
  for (const w of base.writeSet) writes.set(keyStr(w.key), w.value);
  stakingGenesis(
    { read: (k) => writes.get(k) ?? null, write: (k, v) => writes.set(k, v) },
    stakingRulesOf(g.params),
    g.validators.map((v) => ({
      operator: v.operator ?? addressOf(v.publicKey),
      consensusKey: v.publicKey,
      peerAddress: v.peerAddress ?? "",
      selfStake: v.selfStake ?? v.power,
    })),
  );
  return buildResult(0n, ZERO_ROOT, writes, []);
}

/**
 * DPoS is on when the genesis makes an election meaningful (some genesis validator bonds at least
 * minSelfStake, e.g. `parabft testnet --self-stake`) or this node is not a genesis validator (a
 * joiner, `genesisIndex` undefined). Otherwise (old genesis files) every election keeps the
 * genesis set, and the node runs one epoch forever, as before issue 11.
 */
export function dposEnabled(g: Genesis, genesisIndex: number | undefined): boolean {
  const minSelfStake = stakingRulesOf(g.params).minSelfStake;
  return genesisIndex === undefined || g.validators.some((v) => (v.selfStake ?? 0n) >= minSelfStake);
}

/** What the node reads from storage for the hook and the live sets. */
export interface DposStore {
  getBlock(height: bigint): Promise<{ block: Block | null } | undefined>;
  getState(key: Uint8Array): Promise<Uint8Array | undefined>;
}

/** The persisted election snapshot of `epoch`, or null. */
export async function readSnapshot(db: DposStore, epoch: bigint): Promise<EpochSnapshot | null> {
  const raw = await db.getState(stakingKeys.epochSet(epoch));
  return raw === undefined || raw === null ? null : decodeSnapshot(raw);
}

/** Heights [first, end) whose last_commit make up the signing tally of `epoch`. */
function tallyRange(epoch: bigint, epochLength: number): { first: bigint; end: bigint } {
  const len = BigInt(epochLength);
  return { first: epoch === 0n ? 1n : epoch * len, end: (epoch + 1n) * len };
}

/**
 * The signing tally of epoch e from the chain: the commit certificates carried as last_commit by
 * the blocks of epoch e whose own epoch is e. Every node reads the same blocks, so every node
 * computes the same tally. Signer indices are resolved against the epoch's set. With `tallies`
 * (the node's fold of the blocks it committed) the epoch's blocks are read from storage only when
 * the fold does not hold all of them (a restart inside the epoch, a block committed without body).
 */
export async function signingTally(
  db: DposStore,
  sets: LiveEpochSets,
  epoch: bigint,
  epochLength: number,
  tallies?: EpochTallies,
): Promise<SigningTally | undefined> {
  const set = sets.get(epoch);
  if (set === undefined) return undefined;
  const folded = tallies?.take(epoch);
  if (folded !== undefined) return folded.resolve(set);
  const { first, end } = tallyRange(epoch, epochLength);
  const fold = new SignerCounts();
  for (let h = first; h < end; h++) fold.add((await db.getBlock(h))?.block?.lastCommit, epoch);
  return fold.resolve(set);
}

/**
 * One epoch's certificates by signer index (each index once per certificate), resolved against
 * the epoch's set only at the end: `resolve` gives exactly what reading the blocks one by one
 * and resolving each signature at once gives (same counts, same first-seen order of keys).
 */
class SignerCounts {
  total = 0;
  private readonly byIndex = new Map<number, number>();

  add(cert: Block["lastCommit"], epoch: bigint): void {
    if (cert === undefined || cert.epoch !== epoch) return;
    this.total++;
    const seen = new Set<number>();
    for (const s of cert.signatures) {
      if (seen.has(s.validator)) continue;
      seen.add(s.validator);
      this.byIndex.set(s.validator, (this.byIndex.get(s.validator) ?? 0) + 1);
    }
  }

  resolve(set: { members: readonly ({ publicKey: Uint8Array } | undefined)[] }): SigningTally {
    const signed = new Map<string, number>();
    for (const [index, n] of this.byIndex) {
      const m = set.members[index];
      if (m === undefined) continue;
      const k = toHex(m.publicKey);
      signed.set(k, (signed.get(k) ?? 0) + n);
    }
    return { total: this.total, signed };
  }
}

/**
 * The signing tallies of the epochs in progress, folded from each committed block as the commit
 * stage takes it (issue 14: the epoch's last block otherwise read all `epochLength` blocks back
 * from storage, one awaited read and decode each, ~1 % of a validator's main thread at closed
 * loop ×1). An epoch's fold is used only when it saw every height of the epoch in order; any gap
 * or a block without body drops it, and the tally then reads storage as before.
 */
export class EpochTallies {
  private readonly open = new Map<bigint, { next: bigint; end: bigint; counts: SignerCounts }>();

  constructor(private readonly epochLength: number) {}

  /** The committed block at `height` (null: committed without its body here). */
  add(height: bigint, block: Block | null): void {
    if (height === 0n) return;
    const epoch = height / BigInt(this.epochLength);
    const range = tallyRange(epoch, this.epochLength);
    let t = this.open.get(epoch);
    if (t === undefined) {
      // Only a fold that starts at the epoch's first height can be complete.
      if (height !== range.first) return;
      t = { next: range.first, end: range.end, counts: new SignerCounts() };
      this.open.set(epoch, t);
      // Older epochs whose tally was never asked for (e.g. DPoS off): forget them.
      for (const e of this.open.keys()) if (e < epoch - 1n) this.open.delete(e);
    }
    if (height !== t.next || block === null) {
      this.open.delete(epoch);
      return;
    }
    t.counts.add(block.lastCommit, epoch);
    t.next++;
  }

  /** The complete fold of `epoch`, once (undefined when it is incomplete or absent). */
  take(epoch: bigint): SignerCounts | undefined {
    const t = this.open.get(epoch);
    this.open.delete(epoch);
    return t !== undefined && t.next === t.end ? t.counts : undefined;
  }
}

/** The executor's epoch hook for this chain. */
export function nodeEpochHook(
  params: ChainParams,
  db: DposStore,
  sets: LiveEpochSets,
  tallies?: EpochTallies,
): EpochHook {
  const epochLength = params.staking.epochLength;
  return { epochLength, signing: (e) => signingTally(db, sets, e, epochLength, tallies) };
}

/**
 * EpochSets backed by the persisted snapshots: epochs 0 and 1 are the genesis set (genesis
 * order: index i = genesis validator i); epoch e ≥ 2 is the election snapshot of e (election
 * order), added when the last block of epoch e−2 has executed. Sets are full, never diffs.
 */
export class LiveEpochSets {
  private readonly sets = new Map<bigint, ValidatorSet>();
  private readonly members = new Map<bigint, readonly SetMember[]>();

  constructor(readonly genesis: ValidatorSet) {
    this.sets.set(0n, new ValidatorSet(0n, genesis.members));
    this.sets.set(1n, new ValidatorSet(1n, genesis.members));
  }

  get(epoch: bigint): ValidatorSet | undefined {
    return this.sets.get(epoch);
  }

  /** Highest epoch with a known set. */
  get latest(): bigint {
    let top = 0n;
    for (const e of this.sets.keys()) if (e > top) top = e;
    return top;
  }

  /** Registration data (operator, peer address) of epoch e's members, when known from a snapshot. */
  membersOf(epoch: bigint): readonly SetMember[] | undefined {
    return this.members.get(epoch);
  }

  /** Adds a snapshot's set; false when it was known already (or is empty). */
  add(s: EpochSnapshot): boolean {
    if (s.epoch < 2n || this.sets.has(s.epoch)) return false;
    const prev = this.sets.get(s.epoch - 1n);
    if (s.members.length === 0 || s.members.some((m) => m.power <= 0n)) {
      // Cannot happen with staking genesis (the genesis set is never empty and elections keep
      // the current set when too few are eligible); keep the previous set rather than stall.
      if (prev === undefined) return false;
      this.sets.set(s.epoch, new ValidatorSet(s.epoch, prev.members));
      const regs = this.members.get(s.epoch - 1n);
      if (regs !== undefined) this.members.set(s.epoch, regs);
      return true;
    }
    this.sets.set(
      s.epoch,
      new ValidatorSet(
        s.epoch,
        s.members.map((m) => ({ publicKey: m.consensusKey, power: m.power })),
      ),
    );
    this.members.set(s.epoch, s.members);
    return true;
  }

  /** Loads every persisted snapshot from epoch 2 up (at start). Returns how many were added. */
  async load(db: DposStore): Promise<number> {
    let n = 0;
    for (let e = 2n; ; e++) {
      const s = await readSnapshot(db, e);
      if (s === null) return n;
      if (this.add(s)) n++;
    }
  }
}

/**
 * GetValidators' answer for `epoch`: the genesis set for epochs 0 and 1; later, the elected set
 * (full, in election order) once it is known, else null. Members keep their genesis names.
 */
export function validatorSetMessage(
  genesis: Genesis,
  sets: LiveEpochSets,
  epoch: bigint,
): ValidatorSetMsg | null {
  if (epoch <= 1n) return create(ValidatorSetSchema, { ...genesisValidatorSet(genesis), epoch });
  const set = sets.get(epoch);
  if (set === undefined) return null;
  const names = new Map(genesis.validators.map((v) => [toHex(v.publicKey), v.name]));
  return create(ValidatorSetSchema, {
    epoch,
    validators: set.members.map((m) =>
      create(ValidatorSchema, {
        publicKey: m.publicKey,
        power: m.power,
        name: names.get(toHex(m.publicKey)) ?? "",
      }),
    ),
  });
}
