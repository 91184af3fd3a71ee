// A small staking chain for tests: a state map, the executor's applyTx (the same frame and
// programs both executors run), the epoch hook between epochs, and honest access lists.
import { hash as nodeHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ed25519 } from "@noble/curves/ed25519.js";
import { decodeAccount, encodeAccount, keyStr } from "../../src/exec/codec.js";
import {
  applyTx,
  creditFees,
  decodeTx,
  feeSum,
  newFeeTotal,
  type StateView,
  type TxOutcome,
} from "../../src/exec/programs.js";
import { hashBody } from "../../src/exec/reference.js";
import { buildTx, makeAccounts, type TestAccount } from "../../src/exec/workload.js";
import { type StakingCall, StakingCallSchema } from "../../src/gen/parabft/v1/types_pb.js";
import { minimalParams } from "../../src/params/index.js";
import {
  bin,
  decodeDelegator,
  decodeValidator,
  type EpochEndResult,
  endEpoch,
  type KeyValue,
  loadValidators,
  rulesFrom,
  type SigningTally,
  type StakingAccessHints,
  type StakingRules,
  StakingStore,
  stakingAccess,
  stakingGenesis,
  stakingKeys,
} from "../../src/staking/index.js";
import { commitSignBytes } from "../../src/types/signing.js";
import { accountKey, StakingKeyKind, StateKeyPrefix } from "../../src/types/stateKeys.js";

export const CHAIN_ID = "bench"; // workload.buildTx signs for this chain id

export const testRules = (extra: Partial<StakingRules> = {}): StakingRules =>
  rulesFrom(minimalParams.staking, { minSelfStake: 100n, minValidators: 2, ...extra });

export interface ConsensusKey {
  secret: Uint8Array;
  publicKey: Uint8Array;
}

export function consensusKey(i: number): ConsensusKey {
  const secret = new Uint8Array(nodeHash("sha256", `parabft-test-consensus-key-${i}`, "buffer"));
  return { secret, publicKey: ed25519.getPublicKey(secret) };
}

export function call(c: StakingCall["call"]): StakingCall {
  return create(StakingCallSchema, { call: c });
}

export const register = (key: Uint8Array, selfStake: bigint, peer = "127.0.0.1:7000"): StakingCall =>
  call({
    case: "registerValidator",
    value: {
      $typeName: "parabft.v1.RegisterValidator",
      consensusKey: key,
      selfStake: selfStake.toString(),
      commissionBps: 500,
      peerAddress: peer,
    },
  });
export const delegate = (amount: bigint): StakingCall =>
  call({ case: "delegate", value: { $typeName: "parabft.v1.Delegate", amount: amount.toString() } });
export const undelegate = (amount: bigint): StakingCall =>
  call({ case: "undelegate", value: { $typeName: "parabft.v1.Undelegate", amount: amount.toString() } });
export const unjail = (): StakingCall => call({ case: "unjail", value: { $typeName: "parabft.v1.Unjail" } });
export const vote = (entries: { validator: Uint8Array; amount: bigint }[]): StakingCall =>
  call({
    case: "vote",
    value: {
      $typeName: "parabft.v1.VoteBallot",
      entries: [...entries]
        .sort((a, b) => Buffer.compare(a.validator, b.validator))
        .map((e) => ({
          $typeName: "parabft.v1.VoteEntry",
          validator: e.validator,
          amount: e.amount.toString(),
        })),
    },
  });

/** Two conflicting COMMIT signatures by `key` at (epoch, height). */
export function equivocation(key: ConsensusKey, epoch: bigint, height: bigint, salt = 0): StakingCall {
  const a = new Uint8Array(32).fill(1 + (salt & 0x3f));
  const b = new Uint8Array(32).fill(0x80 + (salt & 0x3f));
  return call({
    case: "submitEvidence",
    value: {
      $typeName: "parabft.v1.SubmitEvidence",
      consensusKey: key.publicKey,
      phase: "commit",
      epoch,
      view: 0n,
      height,
      digestA: a,
      signatureA: ed25519.sign(commitSignBytes(CHAIN_ID, epoch, 0n, height, a), key.secret),
      digestB: b,
      signatureB: ed25519.sign(commitSignBytes(CHAIN_ID, epoch, 0n, height, b), key.secret),
    },
  });
}

export class MiniChain {
  readonly state = new Map<string, Uint8Array>();
  readonly accounts: TestAccount[];
  private readonly nonces = new Map<string, bigint>();
  readonly initialLiquid: bigint;

  constructor(nAccounts: number, balance: bigint, rules: StakingRules = testRules(), seed = 7) {
    this.accounts = makeAccounts(nAccounts, seed);
    for (const a of this.accounts)
      this.state.set(keyStr(accountKey(a.address)), encodeAccount({ nonce: 0n, balance }));
    this.initialLiquid = balance * BigInt(nAccounts);
    stakingGenesis(this.kv(), rules, []);
  }

  /** A new chain from this one's persisted bytes (a restart): values copied, nothing shared. */
  restart(): MiniChain {
    const c = Object.create(MiniChain.prototype) as MiniChain;
    Object.assign(c, {
      state: new Map([...this.state].map(([k, v]) => [k, v.slice()])),
      accounts: this.accounts,
      nonces: new Map(this.nonces),
      initialLiquid: this.initialLiquid,
    });
    return c;
  }

  kv(): KeyValue {
    return {
      read: (k) => this.state.get(k) ?? null,
      write: (k, v) => {
        if (v === null) this.state.delete(k);
        else this.state.set(k, v);
      },
    };
  }

  view(): StateView {
    const kv = this.kv();
    return { get: kv.read, set: kv.write };
  }

  store(): StakingStore {
    return new StakingStore(this.kv());
  }

  hints(sender: TestAccount, c: StakingCall): StakingAccessHints {
    const store = this.store();
    if (c.call.case === "vote" || c.call.case === "delegate" || c.call.case === "undelegate") {
      const d = store.delegator(sender.address);
      return { ballot: [...d.ballot.map((b) => b.validator), ...d.exposures.map((x) => x.validator)] };
    }
    if (c.call.case === "submitEvidence") {
      return { evidenceOperator: store.operatorOfKey(c.call.value.consensusKey) ?? undefined };
    }
    return {};
  }

  /** Builds a tx with the honest access list (or `access` when given) and applies it. */
  submit(
    sender: TestAccount,
    c: StakingCall,
    access?: { reads: Uint8Array[]; writes: Uint8Array[] },
  ): TxOutcome {
    const acc = access ?? stakingAccess(sender.address, c, this.hints(sender, c));
    const nonce = this.nonces.get(keyStr(sender.address)) ?? 0n;
    this.nonces.set(keyStr(sender.address), nonce + 1n);
    const signed = buildTx({
      sender,
      nonce,
      call: { case: "staking", value: c },
      reads: acc.reads,
      writes: acc.writes,
      // Stake moves are checked to the unit here; fees have their own tests (test/unit/exec) and
      // are paid in the staking differential test.
      price: 0n,
    });
    const tx = decodeTx(signed.body, hashBody(signed.body));
    if (tx === null) throw new Error("test tx did not decode");
    // Fees go to the collector as a block would credit them, so the bank stays whole.
    const fees = newFeeTotal();
    const view = this.view();
    const outcome = applyTx(view, tx, fees);
    creditFees(view, feeSum(fees));
    return outcome;
  }

  endEpoch(signing?: SigningTally): EpochEndResult {
    const epoch = this.store().meta().epoch;
    return endEpoch(this.kv(), { endingEpoch: epoch, signing });
  }

  liquidOf(a: TestAccount): bigint {
    return decodeAccount(this.state.get(keyStr(accountKey(a.address))) ?? null).balance;
  }

  /** liquid, bonded, unbonding, slashed (pool + validators' lateSlashed): scanned from the whole state. */
  totals(): { liquid: bigint; bonded: bigint; unbonding: bigint; slashed: bigint; sum: bigint } {
    let liquid = 0n;
    let bonded = 0n;
    let unbonding = 0n;
    let lateSlashed = 0n;
    const vPrefix = bin(Uint8Array.of(StateKeyPrefix.staking, StakingKeyKind.validator));
    const dPrefix = bin(Uint8Array.of(StateKeyPrefix.staking, StakingKeyKind.delegator));
    const aPrefix = String.fromCharCode(StateKeyPrefix.account);
    for (const [k, v] of this.state) {
      if (k.startsWith(aPrefix)) liquid += decodeAccount(v).balance;
      else if (k.startsWith(vPrefix)) {
        const r = decodeValidator(v);
        bonded += r.selfStake + r.tokens;
        lateSlashed += r.lateSlashed;
      } else if (k.startsWith(dPrefix)) {
        const d = decodeDelegator(v);
        bonded += d.free;
        for (const u of d.unbonding) unbonding += u.amount;
      }
    }
    const slashed = this.store().slashed() + lateSlashed;
    return { liquid, bonded, unbonding, slashed, sum: liquid + bonded + unbonding + slashed };
  }

  validators() {
    return loadValidators(this.store());
  }
}

export { stakingKeys };
