// The driver's epoch plumbing (issue 11, src/node/driver.ts): sends routed by (epoch, index),
// broadcasts by the envelope's epoch, epochChanged handed to the node with the envelope context
// moved on, serveBlocks answered with its epoch, and a peer's envelope judged by consensus key.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { sealMessage } from "../../../src/consensus/envelope.js";
import type { Action, Event, StepResult } from "../../../src/consensus/pbft/types.js";
import { StaticEpochSets, ValidatorSet } from "../../../src/consensus/valset/index.js";
import {
  BlockRequestSchema,
  EnvelopeSchema,
  PeerMessageSchema,
  StatusReportSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import { ConsensusDriver, type DriverOpts, type EpochChange } from "../../../src/node/driver.js";
import { CHAIN, testSigner, testVerifier } from "../consensus/harness.js";
import { noop, stubDriverModules } from "./driverStubs.js";

const tick = () => new Promise((r) => setImmediate(r));

function setup(withPeerKey = true) {
  const keys = [0, 1, 2, 3].map((i) => testSigner(i).publicKey);
  const sets = new StaticEpochSets([
    ValidatorSet.uniform(0n, keys),
    ValidatorSet.uniform(1n, [keys[3]!, keys[2]!, keys[1]!]),
  ]);
  const events: Event[] = [];
  const routed: string[] = [];
  const penalized: string[] = [];
  const changes: EpochChange[] = [];
  const envelopeContext = {
    chainId: CHAIN,
    sets,
    verifier: testVerifier,
    maxMessageBytes: 1 << 20,
    currentEpoch: 0n,
  };
  const replica = {
    handle: (e: Event): StepResult => {
      events.push(e);
      return { actions: [], verdict: { kind: "accept" }, sender: null };
    },
    set: sets.get(0n)!,
    view: 0n,
    primary: 0,
    committedHeight: 0n,
    executedHeight: 0n,
    stableHeight: 0n,
    stableCheckpoint: undefined,
    status: "validating",
    epoch: 0n,
  };
  const mod = stubDriverModules({
    replica,
    envelopeContext,
    net: {
      broadcast: noop,
      send: noop,
      penalize: (from: number, reason: string) => penalized.push(`${from}:${reason}`),
    },
    route: {
      send: (epoch: bigint, to: number, _b: Uint8Array) => routed.push(`send e${epoch} #${to}`),
      broadcast: (epoch: bigint, _b: Uint8Array) => routed.push(`broadcast e${epoch}`),
    },
    ...(withPeerKey ? { peerKey: (from: number) => (from === 7 ? keys[2] : keys[0]) } : {}),
    onEpochChanged: (c: EpochChange) => changes.push(c),
    readCommitted: async () => [],
  });
  const driver = new ConsensusDriver({ chainId: CHAIN, self: 0 } as DriverOpts, mod);
  const perform = (actions: Action[]) =>
    (driver as unknown as { perform(a: Action[]): void }).perform(actions);
  return { driver, perform, events, routed, penalized, changes, envelopeContext, sets, keys };
}

function status(epoch: bigint, sender: number, signerIndex: number) {
  return sealMessage(
    CHAIN,
    epoch,
    sender,
    testSigner(signerIndex),
    create(PeerMessageSchema, {
      kind: { case: "status", value: create(StatusReportSchema, { committedHeight: 3n }) },
    }),
  );
}

describe("driver epoch plumbing", () => {
  it("routes sends by (epoch, index), broadcasts by the envelope's epoch, and hands epochChanged on", async () => {
    const d = setup();
    const old = status(0n, 0, 0);
    const next = status(1n, 2, 1);
    d.perform([
      { kind: "send", to: 2, msg: old, epoch: 1n },
      { kind: "send", to: 1, msg: old },
      { kind: "broadcast", msg: next },
      { kind: "epochChanged", epoch: 1n, set: d.sets.get(1n)!, self: 2, boundary: 9n },
    ]);
    await tick();
    assert.deepEqual(d.routed, ["send e1 #2", "send e0 #1", "broadcast e1"]);
    assert.equal(d.changes.length, 1);
    assert.equal(d.changes[0]!.self, 2);
    assert.equal(d.envelopeContext.currentEpoch, 1n, "later envelopes are judged in the new epoch");
  });

  it("answers serveBlocks with blocksForPeer carrying the action's epoch; steps setsChanged and followBlocks", async () => {
    const d = setup();
    d.perform([{ kind: "serveBlocks", to: 1, from: 1n, toHeight: 4n, epoch: 0n }]);
    d.driver.setsChanged();
    d.driver.followBlocks([]);
    await tick();
    await tick();
    const kinds = d.events.map((e) => e.kind);
    assert.deepEqual(kinds.sort(), ["blocksForPeer", "followBlocks", "setsChanged"]);
    const ev = d.events.find((e) => e.kind === "blocksForPeer");
    assert.ok(ev !== undefined && ev.kind === "blocksForPeer");
    assert.equal(ev.epoch, 0n, "the index `to` belongs to the set of the request's epoch");
    assert.equal(ev.to, 1);
  });

  it("judges a peer's envelope by consensus key: its index differs per epoch", async () => {
    const d = setup();
    d.envelopeContext.currentEpoch = 1n;
    // Transport peer 7 holds key 2, which is index 1 in epoch 1 (index 2 in epoch 0).
    d.driver.onEnvelope(7, status(1n, 1, 2).bytes);
    await tick();
    assert.equal(d.events.filter((e) => e.kind === "checked").length, 1);
    assert.deepEqual(d.penalized, []);
    // Transport peer 5 (key 0) sending as index 1 of epoch 1 (key 2): not its own sender.
    d.driver.onEnvelope(5, status(1n, 1, 2).bytes);
    await tick();
    assert.deepEqual(d.penalized, ["5:UNKNOWN_SENDER"]);
    // Without peerKey (one epoch forever) the old rule holds: sender index == transport index.
    const plain = setup(false);
    plain.driver.onEnvelope(2, status(0n, 2, 2).bytes);
    await tick();
    assert.equal(plain.events.filter((e) => e.kind === "checked").length, 1);
  });

  it("judges an envelope src/net already decoded exactly as its bytes: accept, bad signature, oversized", async () => {
    const d = setup(false);
    const good = status(0n, 2, 2);
    d.driver.onEnvelope(2, good.bytes, fromBinary(EnvelopeSchema, good.bytes));
    await tick();
    const checked = d.events.filter((e) => e.kind === "checked");
    assert.equal(checked.length, 1);
    assert.ok(checked[0]!.kind === "checked" && checked[0]!.msg.message.kind.case === "status");
    // Signed by key 1 while claiming sender 2: the decoded path still verifies the signature (a
    // BlockRequest: a status on its sender's stream skips it, test/unit/node/driverVerify.test.ts).
    const forged = sealMessage(
      CHAIN,
      0n,
      2,
      testSigner(1),
      create(PeerMessageSchema, {
        kind: { case: "blockRequest", value: create(BlockRequestSchema, { fromHeight: 1n, toHeight: 1n }) },
      }),
    );
    d.driver.onEnvelope(2, forged.bytes, fromBinary(EnvelopeSchema, forged.bytes));
    await tick();
    assert.deepEqual(d.penalized, ["2:BAD_SIGNATURE"]);
    // Bytes over the limit are refused as OVERSIZED whether or not they come decoded.
    d.envelopeContext.maxMessageBytes = good.bytes.length - 1;
    d.driver.onEnvelope(2, good.bytes, fromBinary(EnvelopeSchema, good.bytes));
    await tick();
    assert.deepEqual(d.penalized, ["2:BAD_SIGNATURE", "2:OVERSIZED"]);
    assert.equal(d.events.filter((e) => e.kind === "checked").length, 1);
  });
});
