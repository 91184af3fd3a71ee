// Per-program behaviour of the staking programs and the slashing edge cases, through the
// executor's applyTx frame (nonce, gas, overlay revert) over a small state map.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestAccount } from "../../../src/exec/workload.js";
import { TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { stakingKeys, ValidatorStatus } from "../../../src/staking/index.js";
import {
  consensusKey,
  delegate,
  equivocation,
  MiniChain,
  register,
  testRules,
  undelegate,
  unjail,
  vote,
} from "../../property/stakingGen.js";

const ok = (o: { status: TxStatus; error: string }) => assert.equal(o.status, TxStatus.OK, o.error);
const failed = (o: { status: TxStatus; error: string }, code: string) => {
  assert.equal(o.status, TxStatus.FAILED);
  assert.ok(o.error.startsWith(code), `expected ${code}, got ${o.error}`);
};

function setup(n = 6) {
  const c = new MiniChain(n, 1_000_000n);
  const [a, b, d1, d2] = c.accounts as [TestAccount, TestAccount, TestAccount, TestAccount];
  return { c, a, b, d1, d2 };
}

describe("staking programs", () => {
  it("RegisterValidator bonds the self stake and indexes the key; duplicates are rejected", () => {
    const { c, a, b } = setup();
    const k = consensusKey(1);
    const before = c.totals().sum;
    const o = c.submit(a, register(k.publicKey, 5000n));
    ok(o);
    assert.equal(o.events[0]!.kind, "staking.register_validator");
    assert.equal(c.liquidOf(a), 1_000_000n - 5000n);
    const v = c.store().validator(a.address)!;
    assert.equal(v.selfStake, 5000n);
    assert.equal(v.status, ValidatorStatus.candidate);
    failed(c.submit(b, register(k.publicKey, 5000n)), "DUPLICATE_CONSENSUS_KEY");
    failed(c.submit(a, register(consensusKey(2).publicKey, 5000n)), "ALREADY_REGISTERED");
    failed(c.submit(b, register(consensusKey(3).publicKey, 99n)), "SELF_STAKE_TOO_LOW");
    failed(c.submit(b, register(consensusKey(3).publicKey, 2_000_000n)), "INSUFFICIENT_FUNDS");
    failed(c.submit(b, register(consensusKey(3).publicKey, 500n, "no-port")), "MALFORMED");
    failed(c.submit(b, register(new Uint8Array(31), 500n)), "MALFORMED");
    assert.equal(c.totals().sum, before);
    assert.equal(c.store().registry().length, 1);
  });

  it("an undeclared key fails with ACCESS_VIOLATION and reverts everything", () => {
    const { c, a } = setup();
    const k = consensusKey(1);
    const o = c.submit(a, register(k.publicKey, 5000n), {
      reads: [stakingKeys.meta()],
      writes: [stakingKeys.validator(a.address)],
    });
    failed(o, "ACCESS_VIOLATION");
    assert.equal(c.store().validator(a.address), null);
    assert.equal(c.liquidOf(a), 1_000_000n);
  });

  it("Delegate, Vote and Undelegate move stake between liquid, free, the pool and unbonding", () => {
    const { c, a, d1 } = setup();
    ok(c.submit(a, register(consensusKey(1).publicKey, 5000n)));
    ok(c.submit(d1, delegate(10_000n)));
    assert.equal(c.liquidOf(d1), 990_000n);
    failed(c.submit(d1, vote([{ validator: a.address, amount: 10_001n }])), "BALLOT_EXCEEDS_STAKE");
    ok(c.submit(d1, vote([{ validator: a.address, amount: 6000n }])));
    assert.equal(c.store().validator(a.address)!.tokens, 6000n);
    // Only unallocated stake can be undelegated.
    failed(c.submit(d1, undelegate(4001n)), "INSUFFICIENT_FUNDS");
    ok(c.submit(d1, undelegate(4000n)));
    const d = c.store().delegator(d1.address);
    assert.equal(d.free, 0n);
    assert.deepEqual(d.unbonding, [{ amount: 4000n, matureEpoch: BigInt(testRules().unbondingEpochs) }]);
    // Lowering the ballot frees stake at once but records an exposure to the validator.
    ok(c.submit(d1, vote([{ validator: a.address, amount: 1000n }])));
    const v = c.store().validator(a.address)!;
    assert.equal(v.tokens, 1000n);
    assert.deepEqual(
      c
        .store()
        .delegator(d1.address)
        .exposures.map((e) => e.amount),
      [5000n],
    );
    assert.equal(c.store().delegator(d1.address).free, 5000n);
    assert.equal(c.totals().sum, c.initialLiquid);
  });

  it("the vote replaces the whole ballot; unknown and unsorted candidates are rejected", () => {
    const { c, a, b, d1 } = setup();
    ok(c.submit(a, register(consensusKey(1).publicKey, 5000n)));
    ok(c.submit(b, register(consensusKey(2).publicKey, 5000n)));
    ok(c.submit(d1, delegate(10_000n)));
    ok(
      c.submit(
        d1,
        vote([
          { validator: a.address, amount: 3000n },
          { validator: b.address, amount: 3000n },
        ]),
      ),
    );
    ok(c.submit(d1, vote([{ validator: b.address, amount: 7000n }])));
    const d = c.store().delegator(d1.address);
    assert.deepEqual(
      d.ballot.map((e) => Buffer.from(e.validator).toString("hex")),
      [Buffer.from(b.address).toString("hex")],
    );
    assert.equal(c.store().validator(a.address)!.tokens, 0n);
    assert.equal(c.store().validator(b.address)!.tokens, 7000n);
    failed(c.submit(d1, vote([{ validator: new Uint8Array(20).fill(9), amount: 1n }])), "UNKNOWN_VALIDATOR");
    const sorted = [a.address, b.address].sort(Buffer.compare);
    const unsorted = vote([]);
    if (unsorted.call.case === "vote") {
      unsorted.call.value.entries = [sorted[1]!, sorted[0]!].map((v) => ({
        $typeName: "parabft.v1.VoteEntry",
        validator: v,
        amount: "1",
      }));
    }
    failed(c.submit(d1, unsorted), "MALFORMED");
  });

  it("unbonding matures after unbondingEpochs and is released on the next staking call", () => {
    const { c, d1 } = setup();
    ok(c.submit(d1, delegate(1000n)));
    ok(c.submit(d1, undelegate(400n)));
    for (let i = 0; i < testRules().unbondingEpochs - 1; i++) c.endEpoch();
    ok(c.submit(d1, delegate(1n)));
    assert.equal(c.store().delegator(d1.address).unbonding.length, 1, "not mature one epoch early");
    c.endEpoch();
    const o = c.submit(d1, delegate(1n));
    ok(o);
    assert.equal(o.events[0]!.kind, "staking.unbonded");
    assert.equal(c.store().delegator(d1.address).unbonding.length, 0);
    assert.equal(c.liquidOf(d1), 1_000_000n - 1000n + 400n - 2n);
  });

  it("equivocation slashes self stake, the pool and stake that left after the offence, then tombstones", () => {
    const { c, a, b, d1, d2 } = setup();
    const k = consensusKey(1);
    const rules = testRules();
    ok(c.submit(a, register(k.publicKey, 10_000n)));
    ok(c.submit(d1, delegate(20_000n)));
    ok(c.submit(d1, vote([{ validator: a.address, amount: 20_000n }])));
    ok(c.submit(d2, delegate(5000n)));
    ok(c.submit(d2, vote([{ validator: a.address, amount: 5000n }])));
    // Offence in epoch 0; d1 leaves in epoch 1 and undelegates: still slashable while unbonding.
    c.endEpoch();
    ok(c.submit(d1, vote([])));
    ok(c.submit(d1, undelegate(20_000n)));
    const before = c.totals();
    const o = c.submit(b, equivocation(k, 0n, 3n));
    ok(o);
    const rate = BigInt(rules.slashDoubleSignBps);
    const now = (10_000n * rate) / 10_000n + (5000n * rate) / 10_000n;
    assert.equal(o.events[0]!.kind, "staking.slash");
    assert.equal(o.events[0]!.attrs.find(([k]) => k === "amount")![1], now.toString());
    const v = c.store().validator(a.address)!;
    assert.equal(v.status, ValidatorStatus.tombstoned);
    assert.equal(c.totals().slashed - before.slashed, now);
    // d1's stake left after the offence: it is charged before d1 can do anything else, and
    // d1 cannot act without declaring the validator it is exposed to.
    failed(
      c.submit(d1, delegate(1n), {
        reads: [stakingKeys.meta()],
        writes: [stakingKeys.delegator(d1.address)],
      }),
      "ACCESS_VIOLATION",
    );
    for (let i = 0; i < rules.unbondingEpochs; i++) c.endEpoch();
    const settle = c.submit(d1, delegate(1n));
    ok(settle);
    const leaverCharge = (20_000n * rate) / 10_000n;
    assert.equal(settle.events[0]!.kind, "staking.slash_settled");
    assert.equal(settle.events[0]!.attrs.find(([k]) => k === "amount")![1], leaverCharge.toString());
    assert.equal(settle.events[1]!.kind, "staking.unbonded");
    assert.equal(
      settle.events[1]!.attrs.find(([k]) => k === "amount")![1],
      (20_000n - leaverCharge).toString(),
    );
    const after = c.totals();
    assert.equal(after.slashed - before.slashed, now + leaverCharge);
    assert.equal(after.sum, before.sum);
    assert.deepEqual(c.store().delegator(d1.address).exposures, []);
    // Duplicate evidence is a no-op.
    const again = c.submit(d2, equivocation(k, 0n, 3n));
    ok(again);
    assert.equal(again.events[0]!.kind, "staking.evidence_duplicate");
    assert.deepEqual(c.totals(), after);
    // The key can never rejoin, and nobody can unjail or vote for the tombstoned validator.
    failed(c.submit(c.accounts[4]!, register(k.publicKey, 10_000n)), "DUPLICATE_CONSENSUS_KEY");
    failed(c.submit(a, unjail()), "VALIDATOR_TOMBSTONED");
    failed(c.submit(d2, vote([{ validator: a.address, amount: 1n }])), "VALIDATOR_TOMBSTONED");
  });

  it("stake that left before the offence epoch is not charged", () => {
    const { c, a, b, d1 } = setup();
    const k = consensusKey(1);
    ok(c.submit(a, register(k.publicKey, 10_000n)));
    ok(c.submit(d1, delegate(20_000n)));
    ok(c.submit(d1, vote([{ validator: a.address, amount: 20_000n }])));
    ok(c.submit(d1, vote([])));
    c.endEpoch();
    const o = c.submit(b, equivocation(k, 1n, 25n));
    ok(o);
    const settle = c.submit(d1, delegate(1n));
    ok(settle);
    assert.equal(settle.events[0]!.kind, "staking.delegate", "nothing to settle");
    assert.equal(c.store().delegator(d1.address).free, 20_001n);
  });

  it("evidence older than the unbonding period, forged or non-conflicting evidence is rejected", () => {
    const { c, a, b } = setup();
    const k = consensusKey(1);
    ok(c.submit(a, register(k.publicKey, 10_000n)));
    for (let i = 0; i < testRules().unbondingEpochs; i++) c.endEpoch();
    failed(c.submit(b, equivocation(k, 0n, 3n)), "EVIDENCE_TOO_OLD");
    const forged = equivocation(k, 1n, 25n);
    if (forged.call.case === "submitEvidence") forged.call.value.signatureB = new Uint8Array(64).fill(7);
    failed(c.submit(b, forged), "BAD_EVIDENCE");
    const same = equivocation(k, 1n, 25n);
    if (same.call.case === "submitEvidence") {
      same.call.value.digestB = same.call.value.digestA;
      same.call.value.signatureB = same.call.value.signatureA;
    }
    failed(c.submit(b, same), "BAD_EVIDENCE");
    failed(c.submit(b, equivocation(consensusKey(9), 1n, 25n)), "UNKNOWN_VALIDATOR");
    assert.equal(c.store().validator(a.address)!.status, ValidatorStatus.candidate);
  });

  it("downtime jails for the next election with slashDowntimeBps; Unjail only after the jail", () => {
    const { c, a, b } = setup();
    ok(c.submit(a, register(consensusKey(1).publicKey, 10_000n)));
    ok(c.submit(b, register(consensusKey(2).publicKey, 10_000n)));
    c.endEpoch(); // epoch 0 ends: set of epoch 2 = {a, b}
    c.endEpoch(); // epoch 1 ends
    const signed = new Map([[Buffer.from(consensusKey(2).publicKey).toString("hex"), 20]]);
    const r = c.endEpoch({ total: 20, signed }); // epoch 2 ends: a signed 0/20
    assert.deepEqual(
      r.jailed.map((x) => Buffer.from(x).toString("hex")),
      [Buffer.from(a.address).toString("hex")],
    );
    const v = c.store().validator(a.address)!;
    assert.equal(v.status, ValidatorStatus.jailed);
    assert.equal(v.selfStake, 10_000n - (10_000n * BigInt(testRules().slashDowntimeBps)) / 10_000n);
    // Too few eligible (1 < minValidators 2): the previous set is kept.
    assert.equal(r.snapshot.kept, true);
    failed(c.submit(a, unjail()), "STILL_JAILED");
    c.endEpoch(); // now epoch 4 = jailedUntil
    ok(c.submit(a, unjail()));
    failed(c.submit(a, unjail()), "NOT_JAILED");
    assert.equal(c.totals().sum, c.initialLiquid);
  });

  it("malformed amounts are typed failures, never crashes", () => {
    const { c, d1 } = setup();
    for (const bad of ["", "-1", "01", "1.5", "9".repeat(40)]) {
      const call = delegate(1n);
      if (call.call.case === "delegate") call.call.value.amount = bad;
      failed(c.submit(d1, call), "MALFORMED");
    }
    failed(c.submit(d1, delegate(0n)), "MALFORMED");
  });
});
