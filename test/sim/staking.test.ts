// The simulator's stand-in executor (src/sim/staking.ts) runs the real staking programs and the
// real epoch hook: a registration plus a delegation and a vote elect the new validator into the
// set of e + 2 at B(e); failed calls (too large a ballot, an undeclared key, a replayed nonce)
// change nothing; copies of one genesis executing the same blocks elect the same sets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { delegateTx, voteTx } from "../../src/client/txBuilder.js";
import {
  type SignedTx,
  SignedTxSchema,
  type TxBody,
  TxBodySchema,
} from "../../src/gen/parabft/v1/types_pb.js";
import { Prng } from "../../src/sim/prng.js";
import { StandInKeyRegistry, type StandInSigner } from "../../src/sim/signer.js";
import { SIM_SELF_STAKE, SimStakingState, simStakingRules } from "../../src/sim/staking.js";
import { registerTx, SimDelegator } from "../../src/sim/workload.js";
import type { EpochSnapshot } from "../../src/staking/index.js";
import { addressOf } from "../../src/types/block.js";
import { toHex } from "../../src/types/bytes.js";
import { txSignBytes } from "../../src/types/signing.js";

const CHAIN = "parabft-sim";
const L = 5;
const secret = (s: string) => new TextEncoder().encode(s.padEnd(32, "."));

function world() {
  const reg = new StandInKeyRegistry();
  const keys = [0, 1, 2, 3, 4].map((i) => reg.newSigner(secret(`key${i}`)));
  const ops = [0, 1, 2, 3, 4].map((i) => reg.newSigner(secret(`op${i}`)));
  const holder = reg.newSigner(secret("holder"));
  const balances = new Map([
    [toHex(addressOf(ops[4]!.publicKey)), SIM_SELF_STAKE],
    [toHex(addressOf(holder.publicKey)), 400n],
  ]);
  const genesis = SimStakingState.genesis({
    chainId: CHAIN,
    epochLength: L,
    rules: simStakingRules(4, L),
    validators: [0, 1, 2, 3].map((i) => ({
      operator: addressOf(ops[i]!.publicKey),
      consensusKey: keys[i]!.publicKey,
      peerAddress: `127.0.0.1:${26000 + i}`,
      selfStake: SIM_SELF_STAKE,
    })),
    balances,
  });
  return { keys, ops, holder, genesis };
}

function signed(signer: StandInSigner, body: TxBody): SignedTx {
  const bytes = toBinary(TxBodySchema, body);
  return create(SignedTxSchema, { body: bytes, signature: signer.sign(txSignBytes(bytes)) });
}

/** Executes heights 1..to with `blocks[h]` (empty otherwise); returns the snapshots elected. */
function run(state: SimStakingState, blocks: Map<number, SignedTx[]>, to: number) {
  const out: EpochSnapshot[] = [];
  const results: string[] = [];
  for (let h = 1; h <= to; h++) {
    const r = state.executeBlock(BigInt(h), blocks.get(h) ?? []);
    results.push(...r.effects.filter((e) => !e.startsWith("election")).map((e) => e.split(" ")[1]!));
    if (r.snapshot !== null) out.push(r.snapshot);
  }
  return { snapshots: out, results };
}

const keysOf = (s: EpochSnapshot) => s.members.map((m) => toHex(m.consensusKey));

describe("simulator stand-in staking executor", () => {
  it("registration, delegation and a vote elect the new validator into the set of e + 2 at B(e)", () => {
    const w = world();
    const c = { chainId: CHAIN, sender: w.holder.publicKey };
    const extra = addressOf(w.ops[4]!.publicKey);
    const blocks = new Map([
      [1, [registerTx(CHAIN, w.ops[4]!, w.keys[4]!.publicKey, SIM_SELF_STAKE, "127.0.0.1:26004").tx]],
      [2, [signed(w.holder, delegateTx({ ...c, nonce: 0n }, 400n))]],
      [6, [signed(w.holder, voteTx({ ...c, nonce: 1n }, [{ validator: extra, amount: 300n }]))]],
    ]);
    const { snapshots, results } = run(w.genesis.clone(), blocks, 2 * L);
    assert.deepEqual(results, ["OK", "OK", "OK"]);
    assert.deepEqual(
      snapshots.map((s) => s.epoch),
      [2n, 3n],
    );
    // B(0) = 4: registered, no votes yet: five equal powers, the operator order decides.
    assert.equal(snapshots[0]!.members.length, 4);
    // B(1) = 9: the vote (height 6) puts the extra validator first with 10,300.
    const top = snapshots[1]!.members[0]!;
    assert.equal(toHex(top.consensusKey), toHex(w.keys[4]!.publicKey));
    assert.equal(top.power, SIM_SELF_STAKE + 300n);
    assert.equal(snapshots[1]!.members.length, 4);
    assert.equal(snapshots[1]!.kept, false);
  });

  it("failed calls change nothing: ballot above stake, undeclared key, replayed nonce", () => {
    const w = world();
    const c = { chainId: CHAIN, sender: w.holder.publicKey };
    const v0 = addressOf(w.ops[0]!.publicKey);
    const undeclared = voteTx({ ...c, nonce: 2n }, [{ validator: v0, amount: 10n }]);
    // Drop the validator's key from the access list: the vote must touch it, so it fails.
    undeclared.access!.writes = undeclared.access!.writes.slice(0, 1);
    const delegate = signed(w.holder, delegateTx({ ...c, nonce: 0n }, 100n));
    const blocks = new Map([
      [1, [delegate]],
      [2, [signed(w.holder, voteTx({ ...c, nonce: 1n }, [{ validator: v0, amount: 101n }]))]],
      [3, [signed(w.holder, undeclared), delegate]],
    ]);
    const failed = run(w.genesis.clone(), blocks, L);
    assert.deepEqual(failed.results, ["OK", "BALLOT_EXCEEDS_STAKE", "ACCESS_VIOLATION", "DUPLICATE"]);
    // The same chain with only the delegation elects the same set with the same stakes.
    const only = run(w.genesis.clone(), new Map([[1, [delegate]]]), L);
    assert.deepEqual(failed.snapshots, only.snapshots);
    assert.equal(failed.snapshots[0]!.members[0]!.delegated, 0n);
  });

  it("copies of one genesis elect the same sets from the same blocks, independently", () => {
    const w = world();
    const d = new SimDelegator(CHAIN, w.holder, 400n);
    const rng = new Prng(99);
    const candidates = [1, 2, 3].map((i) => addressOf(w.ops[i]!.publicKey));
    const blocks = new Map<number, SignedTx[]>();
    for (let h = 1; h <= 4 * L; h++) blocks.set(h, [d.next(rng, candidates).tx]);
    const a = run(w.genesis.clone(), blocks, 4 * L);
    const b = run(w.genesis.clone(), blocks, 4 * L);
    const untouched = run(w.genesis.clone(), new Map(), 4 * L);
    assert.deepEqual(a, b);
    assert.ok(a.results.filter((r) => r === "OK").length >= 10, a.results.join(","));
    // The votes moved the sets; the genesis copy the others were cloned from did not change.
    assert.ok(a.snapshots.some((s, i) => keysOf(s).join() !== keysOf(untouched.snapshots[i]!).join()));
    assert.deepEqual(run(w.genesis.clone(), new Map(), 4 * L), untouched);
  });
});
