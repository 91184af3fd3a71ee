// The simulator's stand-in executor for staking (issue 11): each replica keeps an in-memory
// staking state and runs the real staking programs (src/staking runStakingCall) over the staking
// calls of every committed block, in height order, then the real epoch hook (endEpoch through
// runEpochHookInMemory), so the set of epoch e + 2 comes from `elect` when B(e) executes. Bank
// transfers are not executed (the fake executor's hash chain stands for them); fees are not
// charged. The state is durable like the executed height: it survives a crash, a wiped data
// directory starts again from genesis.
//
// Power rule (the simulator asserts it on every elected set): honest validators bond
// SIM_SELF_STAKE, Byzantine replica i bonds SIM_BYZANTINE_SELF_STAKE − i and nobody votes for
// it, and delegators together can never bond more than SIM_DELEGATION_CAP. So every power lies in
// [10,000, 12,450], max/min < 1.25: any f members of a set of n ≤ 7 hold less than 1/3 of its
// power (the fault budget by count stays a budget by power), and the Byzantine replicas always
// head the election order (indices 0..k−1 in every set, the adversary's fixed index).
import { fromBinary } from "@bufbuild/protobuf";
import { type SignedTx, type StakingCall, type TxBody, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import { defaultParams } from "../params/index.js";
import {
  bin,
  type EpochSnapshot,
  encodeSnapshot,
  type GenesisValidator,
  rulesFrom,
  runEpochHookInMemory,
  runStakingCall,
  StakingFailure,
  type StakingRules,
  stakingGenesis,
} from "../staking/index.js";
import { addressOf } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { sha256 } from "../types/hash.js";

/** Self stake of an honest validator (genesis and registered). */
export const SIM_SELF_STAKE = 10_000n;
/** Self stake of Byzantine replica 0 (replica i bonds this − i): above any honest power. */
export const SIM_BYZANTINE_SELF_STAKE = 12_450n;
/** Everything all delegators together may ever delegate (each gets its share as a cap). */
export const SIM_DELEGATION_CAP = 2_400n;

/** The staking rules of a simulated chain with n validators and `epochLength` heights per epoch. */
export function simStakingRules(n: number, epochLength: number): StakingRules {
  return rulesFrom(
    {
      ...defaultParams.staking,
      epochLength,
      maxValidators: n,
      minValidators: n,
      // Short enough that undelegated stake matures within a seed.
      unbondingEpochs: 2,
    },
    { maxVotes: 3 },
  );
}

export interface SimStakingGenesis {
  chainId: string;
  epochLength: number;
  rules: StakingRules;
  validators: GenesisValidator[];
  /** Liquid balances at genesis by address (hex): operators who register, delegators. */
  balances: ReadonlyMap<string, bigint>;
}

class AccessViolation extends Error {
  readonly code = "ACCESS_VIOLATION";
}

/** What executing one block's staking produced. */
export interface StakingBlockOutcome {
  /** One line per staking call (tx hash prefix, result) and per election, or empty. */
  effects: string[];
  /** The set elected when the block ends an epoch. */
  snapshot: EpochSnapshot | null;
  calls: number;
  failed: number;
}

/** One replica's staking state: staking keys, liquid balances and nonces of staking senders. */
export class SimStakingState {
  /** Test only (the `election` invariant's teeth): this executor ignores every Vote call. */
  testOnlySkipVotes = false;

  private constructor(
    private readonly epochLength: number,
    private readonly chainId: string,
    private readonly kv: Map<string, Uint8Array>,
    private readonly balances: Map<string, bigint>,
    private readonly nonces: Map<string, bigint>,
  ) {}

  static genesis(g: SimStakingGenesis): SimStakingState {
    const kv = new Map<string, Uint8Array>();
    stakingGenesis(
      {
        read: (k) => kv.get(k) ?? null,
        write: (k, v) => {
          if (v === null) kv.delete(k);
          else kv.set(k, v);
        },
      },
      g.rules,
      g.validators,
    );
    return new SimStakingState(g.epochLength, g.chainId, kv, new Map(g.balances), new Map());
  }

  /** An independent copy (stored values are never mutated in place, so they are shared). */
  clone(): SimStakingState {
    return new SimStakingState(
      this.epochLength,
      this.chainId,
      new Map(this.kv),
      new Map(this.balances),
      new Map(this.nonces),
    );
  }

  /** Executes the staking calls of the block at `height` in order, then the epoch hook. */
  executeBlock(height: bigint, txs: readonly SignedTx[]): StakingBlockOutcome {
    const out: StakingBlockOutcome = { effects: [], snapshot: null, calls: 0, failed: 0 };
    for (const tx of txs) {
      let body: TxBody;
      try {
        body = fromBinary(TxBodySchema, tx.body);
      } catch {
        continue;
      }
      const call = body.call?.call;
      if (call?.case !== "staking") continue;
      out.calls++;
      const id = toHex(sha256(tx.body)).slice(0, 16);
      const result = this.runCall(body, call.value);
      if (result !== "OK") out.failed++;
      out.effects.push(`${id} ${result}`);
    }
    const end = runEpochHookInMemory(this.epochLength, height, {
      get: (k) => this.kv.get(k) ?? null,
      set: (k, v) => {
        if (v === null) this.kv.delete(k);
        else this.kv.set(k, v);
      },
    });
    if (end !== null) {
      out.snapshot = end.snapshot;
      out.effects.push(`election ${toHex(sha256(encodeSnapshot(end.snapshot)))}`);
    }
    return out;
  }

  /** One call: nonce frame, declared keys enforced, every write reverted on failure. */
  private runCall(body: TxBody, call: StakingCall): string {
    const sender = addressOf(body.sender);
    const who = toHex(sender);
    const expected = this.nonces.get(who) ?? 0n;
    // A replayed or early transaction consumes nothing (the executor's nonce rule).
    if (body.nonce !== expected) return body.nonce < expected ? "DUPLICATE" : "BAD_NONCE";
    this.nonces.set(who, expected + 1n);
    if (this.testOnlySkipVotes && call.call.case === "vote") return "OK";
    const writable = new Set((body.access?.writes ?? []).map(bin));
    const readable = new Set([...writable, ...(body.access?.reads ?? []).map(bin)]);
    const overlay = new Map<string, Uint8Array | null>();
    let balance = this.balances.get(who) ?? 0n;
    try {
      runStakingCall(
        {
          read: (k) => {
            if (!readable.has(k)) throw new AccessViolation("read of an undeclared key");
            const o = overlay.get(k);
            return o !== undefined ? o : (this.kv.get(k) ?? null);
          },
          write: (k, v) => {
            if (!writable.has(k)) throw new AccessViolation("write of an undeclared key");
            overlay.set(k, v);
          },
          balance: () => balance,
          setBalance: (b) => {
            balance = b;
          },
        },
        { sender, chainId: this.chainId },
        call,
      );
    } catch (err: unknown) {
      if (err instanceof StakingFailure || err instanceof AccessViolation) return err.code;
      throw err;
    }
    for (const [k, v] of overlay) {
      if (v === null) this.kv.delete(k);
      else this.kv.set(k, v);
    }
    this.balances.set(who, balance);
    return "OK";
  }
}
