// The node's DPoS plumbing (src/node/dpos.ts): staking genesis from the genesis file (old files
// without self stake still load and keep their set), the live epoch sets (genesis set for
// epochs 0 and 1, snapshots from 2 on, loaded back after a restart), and the signing tally read
// from the blocks' last_commit fields.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ValidatorSet } from "../../../src/consensus/valset/index.js";
import { keyStr } from "../../../src/exec/codec.js";
import { BlockSchema, CommitCertificateSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import {
  buildChainGenesis,
  LiveEpochSets,
  signingTally,
  validatorSetMessage,
} from "../../../src/node/dpos.js";
import { parseGenesis } from "../../../src/node/genesis.js";
import { StakingStore, stakingKeys } from "../../../src/staking/index.js";
import { addressOf } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";
import { consensusKey } from "../../property/stakingGen.js";

const keys = [0, 1, 2, 3].map((i) => consensusKey(i).publicKey);

function genesisJson(extra: (i: number) => Record<string, unknown> = () => ({})) {
  return {
    chainId: "dpos-test",
    genesisTimeMs: 0,
    preset: "minimal",
    validators: keys.map((k, i) => ({ name: `v${i}`, publicKey: toHex(k), power: 1, ...extra(i) })),
    accounts: [],
    ammPools: [],
  };
}

function storeOf(writeSet: { key: Uint8Array; value: Uint8Array | null }[]): StakingStore {
  const m = new Map(writeSet.map((w) => [keyStr(w.key), w.value]));
  return new StakingStore({ read: (k) => m.get(k) ?? null, write: () => {} });
}

describe("node DPoS: staking genesis", () => {
  it("registers the genesis validators with their self stake, operator and peer address", () => {
    const g = parseGenesis(
      genesisJson((i) => ({ selfStake: String(5000 + i), peerAddress: `127.0.0.1:${9000 + i}` })),
    );
    const st = storeOf(buildChainGenesis(g).writeSet);
    assert.equal(st.registry().length, 4);
    const v = st.validator(addressOf(keys[2]!))!;
    assert.equal(v.selfStake, 5002n);
    assert.equal(v.peerAddress, "127.0.0.1:9002");
    assert.equal(st.meta().rules.epochLength, 20);
    // Sets of epochs 0 and 1: the genesis validators, highest self stake first.
    assert.deepEqual(
      st.snapshot(1n)!.members.map((m) => toHex(m.consensusKey)),
      [3, 2, 1, 0].map((i) => toHex(keys[i]!)),
    );
  });

  it("loads an old genesis file (no self stake): self stake = power, a round trip keeps the fields", () => {
    const g = parseGenesis(genesisJson());
    assert.equal(g.validators[0]!.selfStake, undefined);
    const st = storeOf(buildChainGenesis(g).writeSet);
    assert.equal(st.validator(addressOf(keys[0]!))!.selfStake, 1n);
    assert.throws(
      () => parseGenesis(genesisJson(() => ({ peerAddress: "nope" }))),
      (e: Error & { code?: string }) => e.code === "GENESIS_INVALID" && /peerAddress/.test(e.message),
    );
  });
});

describe("node DPoS: live epoch sets and the signing tally", () => {
  const genesisSet = ValidatorSet.uniform(0n, keys);

  it("genesis set for epochs 0 and 1, snapshots from 2 on, each set full and for its own epoch", async () => {
    const sets = new LiveEpochSets(genesisSet);
    assert.equal(sets.get(1n)!.epoch, 1n);
    assert.equal(sets.get(2n), undefined);
    const member = (i: number, power: bigint) => ({
      operator: addressOf(keys[i]!),
      consensusKey: keys[i]!,
      peerAddress: `127.0.0.1:${9000 + i}`,
      power,
      selfStake: power,
      delegated: 0n,
    });
    const snap = { epoch: 2n, kept: false, members: [member(3, 9n), member(1, 5n)] };
    assert.equal(sets.add(snap), true);
    assert.equal(sets.add(snap), false, "a known epoch is never replaced");
    assert.equal(sets.get(2n)!.size, 2);
    assert.equal(sets.get(2n)!.indexOf(keys[3]!), 0);
    assert.equal(sets.get(2n)!.totalPower, 14n);
    assert.equal(sets.latest, 2n);
    // After a restart the snapshots persisted in state come back.
    const state = new Map<string, Uint8Array>();
    const st = new StakingStore({ read: (k) => state.get(k) ?? null, write: (k, v) => state.set(k, v!) });
    st.putSnapshot(snap);
    st.putSnapshot({ ...snap, epoch: 3n });
    const db = {
      getBlock: async () => undefined,
      getState: async (k: Uint8Array) => state.get(keyStr(k)),
    };
    const again = new LiveEpochSets(genesisSet);
    assert.equal(await again.load(db), 2);
    assert.equal(again.get(3n)!.epoch, 3n);
    assert.equal(again.membersOf(3n)![1]!.peerAddress, "127.0.0.1:9001");
    assert.ok(state.has(keyStr(stakingKeys.epochSet(2n))));
  });

  it("answers GetValidators: genesis set for epochs 0 and 1, the elected set once known, names kept", () => {
    const g = parseGenesis(genesisJson());
    const sets = new LiveEpochSets(genesisSet);
    const one = validatorSetMessage(g, sets, 1n)!;
    assert.equal(one.epoch, 1n);
    assert.deepEqual(
      one.validators.map((v) => v.name),
      ["v0", "v1", "v2", "v3"],
    );
    assert.equal(validatorSetMessage(g, sets, 2n), null, "not elected yet");
    const outsider = consensusKey(9).publicKey;
    sets.add({
      epoch: 2n,
      kept: false,
      members: [keys[2]!, outsider].map((k, i) => ({
        operator: addressOf(k),
        consensusKey: k,
        peerAddress: "",
        power: 7n - BigInt(i),
        selfStake: 7n - BigInt(i),
        delegated: 0n,
      })),
    });
    const two = validatorSetMessage(g, sets, 2n)!;
    assert.equal(two.epoch, 2n);
    assert.deepEqual(
      two.validators.map((v) => [v.name, v.power, toHex(v.publicKey)]),
      [
        ["v2", 7n, toHex(keys[2]!)],
        ["", 6n, toHex(outsider)],
      ],
    );
  });

  it("tallies the epoch's own certificates from last_commit, once per signer per certificate", async () => {
    const sets = new LiveEpochSets(genesisSet);
    const cert = (epoch: bigint, signers: number[]) =>
      create(CommitCertificateSchema, {
        epoch,
        height: 1n,
        signatures: signers.map((validator) => ({ validator, signature: new Uint8Array(64) })),
      });
    const blocks = new Map<bigint, ReturnType<typeof create<typeof BlockSchema>>>([
      [20n, create(BlockSchema, { lastCommit: cert(0n, [0, 1, 2]) })], // epoch 0's cert: not counted
      [21n, create(BlockSchema, { lastCommit: cert(1n, [0, 1, 2, 2]) })],
      [25n, create(BlockSchema, { lastCommit: cert(1n, [0, 3, 7]) })],
      [39n, create(BlockSchema, {})],
    ]);
    const db = {
      getBlock: async (h: bigint) => ({ block: blocks.get(h) ?? null }),
      getState: async () => undefined,
    };
    const t = (await signingTally(db, sets, 1n, 20))!;
    assert.equal(t.total, 2);
    assert.equal(t.signed.get(toHex(keys[0]!)), 2);
    assert.equal(t.signed.get(toHex(keys[2]!)), 1, "a duplicate index counts once");
    assert.equal(t.signed.get(toHex(keys[3]!)), 1);
    assert.equal(await signingTally(db, sets, 5n, 20), undefined, "no set known: no judgement");
  });
});
