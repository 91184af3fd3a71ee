// The epoch hook and the codecs: the set elected at the end of epoch e is the set of e+2, the
// execution epoch advances by one, the sets already known are never rewritten; corrupt records
// are typed errors; evidence works for PREPARE votes and against a validator out of the set.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import type { TestAccount } from "../../../src/exec/workload.js";
import { TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import {
  decodeDelegator,
  decodeSnapshot,
  decodeValidator,
  encodeSnapshot,
  epochOfHeight,
  isLastHeightOfEpoch,
  StakingError,
  ValidatorStatus,
} from "../../../src/staking/index.js";
import { toHex } from "../../../src/types/bytes.js";
import { prepareSignBytes } from "../../../src/types/signing.js";
import {
  CHAIN_ID,
  call,
  consensusKey,
  delegate,
  MiniChain,
  register,
  testRules,
  vote,
} from "../../property/stakingGen.js";

const ids = (ms: { operator: Uint8Array }[]) => ms.map((m) => toHex(m.operator));

describe("staking: epoch hook", () => {
  it("elects the set of e+2 at the end of e and advances the execution epoch by one", () => {
    const c = new MiniChain(6, 1_000_000n, testRules({ maxValidators: 2, minValidators: 2 }));
    const [a, b, v3, d] = c.accounts as [TestAccount, TestAccount, TestAccount, TestAccount];
    for (const [i, acct] of [a, b, v3].entries()) {
      assert.equal(c.submit(acct, register(consensusKey(i).publicKey, 1000n)).status, TxStatus.OK);
    }
    assert.equal(c.store().snapshot(1n)?.members.length, 0, "genesis sets (no genesis validators here)");
    const r0 = c.endEpoch();
    assert.equal(r0.snapshot.epoch, 2n);
    assert.equal(c.store().meta().epoch, 1n);
    // Equal power: the lower operator addresses win the two seats.
    const sorted = [a, b, v3].map((x) => toHex(x.address)).sort();
    assert.deepEqual(ids(r0.snapshot.members), sorted.slice(0, 2));
    // Votes move the third validator to the top of the set of epoch 3; epoch 2's set is untouched.
    const third = [a, b, v3].find((x) => toHex(x.address) === sorted[2])!;
    assert.equal(c.submit(d, delegate(500n)).status, TxStatus.OK);
    assert.equal(c.submit(d, vote([{ validator: third.address, amount: 500n }])).status, TxStatus.OK);
    const r1 = c.endEpoch();
    assert.equal(r1.snapshot.epoch, 3n);
    assert.equal(ids(r1.snapshot.members)[0], sorted[2]);
    assert.deepEqual(ids(c.store().snapshot(2n)!.members), sorted.slice(0, 2));
    assert.equal(r1.snapshot.members[0]!.power, 1500n);
    assert.equal(r1.snapshot.members[0]!.delegated, 500n);
    assert.equal(c.store().meta().epoch, 2n);
  });

  it("maps heights to epochs and finds the last height of an epoch", () => {
    assert.equal(isLastHeightOfEpoch(19n, 20), true);
    assert.equal(isLastHeightOfEpoch(20n, 20), false);
    assert.equal(isLastHeightOfEpoch(0n, 20), false);
    assert.equal(epochOfHeight(19n, 20), 0n);
    assert.equal(epochOfHeight(20n, 20), 1n);
  });
});

describe("staking: codecs", () => {
  it("round-trips a snapshot and rejects truncated, trailing or mistagged bytes with CORRUPT_STATE", () => {
    const snap = {
      epoch: 7n,
      kept: false,
      members: [
        {
          operator: new Uint8Array(20).fill(1),
          consensusKey: new Uint8Array(32).fill(2),
          peerAddress: "127.0.0.1:7001",
          power: 10n ** 30n,
          selfStake: 5n,
          delegated: 10n ** 30n - 5n,
        },
      ],
    };
    const bytes = encodeSnapshot(snap);
    assert.deepEqual(decodeSnapshot(bytes), snap);
    for (const bad of [
      bytes.subarray(0, bytes.length - 1),
      Uint8Array.of(...bytes, 0),
      Uint8Array.of(99, ...bytes.subarray(1)),
    ]) {
      assert.throws(
        () => decodeSnapshot(bad),
        (e: unknown) => e instanceof StakingError && e.code === "CORRUPT_STATE",
      );
    }
    assert.throws(() => decodeValidator(new Uint8Array(3)), StakingError);
    assert.throws(() => decodeDelegator(new Uint8Array(0)), StakingError);
  });
});

describe("staking: evidence variants", () => {
  it("PREPARE equivocation slashes a validator that is no longer in the set", () => {
    const c = new MiniChain(6, 1_000_000n, testRules({ maxValidators: 1, minValidators: 1 }));
    const [a, b, reporter] = c.accounts as [TestAccount, TestAccount, TestAccount];
    const ka = consensusKey(1);
    assert.equal(c.submit(a, register(ka.publicKey, 1000n)).status, TxStatus.OK);
    assert.equal(c.submit(b, register(consensusKey(2).publicKey, 9000n)).status, TxStatus.OK);
    c.endEpoch();
    assert.deepEqual(ids(c.store().snapshot(2n)!.members), [toHex(b.address)], "a is out of the set");
    const d1 = new Uint8Array(32).fill(3);
    const d2 = new Uint8Array(32).fill(4);
    const sign = (d: Uint8Array) => ed25519.sign(prepareSignBytes(CHAIN_ID, 0n, 2n, 7n, d), ka.secret);
    const ev = call({
      case: "submitEvidence",
      value: {
        $typeName: "parabft.v1.SubmitEvidence",
        consensusKey: ka.publicKey,
        phase: "prepare",
        epoch: 0n,
        view: 2n,
        height: 7n,
        digestA: d1,
        signatureA: sign(d1),
        digestB: d2,
        signatureB: sign(d2),
      },
    });
    const o = c.submit(reporter, ev);
    assert.equal(o.status, TxStatus.OK, o.error);
    const v = c.store().validator(a.address)!;
    assert.equal(v.status, ValidatorStatus.tombstoned);
    assert.equal(v.selfStake, 1000n - (1000n * BigInt(testRules().slashDoubleSignBps)) / 10_000n);
    // A PREPARE signature does not verify as a COMMIT one: the phase is part of what is signed.
    const kb = consensusKey(2);
    const signB = (d: Uint8Array) => ed25519.sign(prepareSignBytes(CHAIN_ID, 0n, 2n, 7n, d), kb.secret);
    const asCommit = call({
      case: "submitEvidence",
      value: {
        $typeName: "parabft.v1.SubmitEvidence",
        consensusKey: kb.publicKey,
        phase: "commit",
        epoch: 0n,
        view: 2n,
        height: 7n,
        digestA: d1,
        signatureA: signB(d1),
        digestB: d2,
        signatureB: signB(d2),
      },
    });
    const o2 = c.submit(reporter, asCommit);
    assert.equal(o2.status, TxStatus.FAILED);
    assert.match(o2.error, /^BAD_EVIDENCE/);
    assert.equal(c.store().validator(b.address)!.status, ValidatorStatus.candidate);
  });
});
