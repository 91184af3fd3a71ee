// A peer's gossip at the driver (src/node/gossipIntake.ts): its batches are admitted one
// admission at a time in arrival order, the ones that arrived meanwhile together in one admission
// (p24: one admission per batch queued them behind each other for seconds on a loaded box), and
// one peer's queue never holds up another's.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { sealGossip } from "../../../src/consensus/envelope.js";
import { PeerMessageSchema, TxBatchSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { type SignedTx, SignedTxSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import type { BatchResult } from "../../../src/mempool/index.js";
import { ConsensusDriver, type DriverOpts } from "../../../src/node/driver.js";
import { CHAIN, envCtx, makeSets } from "../consensus/harness.js";
import { stubDriverModules } from "./driverStubs.js";

const tick = () => new Promise((r) => setImmediate(r));

/** A tx the mock pool tells apart by its first body byte. */
const tx = (k: number): SignedTx =>
  create(SignedTxSchema, { body: Uint8Array.of(k), signature: new Uint8Array(64) });

function gossip(from: number, ks: number[]): Uint8Array {
  const msg = create(PeerMessageSchema, {
    kind: { case: "txBatch", value: create(TxBatchSchema, { txs: ks.map(tx) }) },
  });
  return sealGossip(CHAIN, 0n, from, msg).bytes;
}

function setup() {
  const { sets } = makeSets(4);
  /** Each addBatch call: the peer's txs (first body bytes) and the gate that answers it. */
  const calls: { ks: number[]; open: () => void }[] = [];
  const mempool = {
    addBatch: (txs: SignedTx[], origin: string) => {
      assert.equal(origin, "peer");
      return new Promise<BatchResult[]>((resolve) =>
        calls.push({
          ks: txs.map((t) => t.body[0]!),
          open: () => resolve(txs.map(() => ({ ok: true, hash: new Uint8Array(32), hashHex: "" }))),
        }),
      );
    },
  };
  const mod = stubDriverModules({ envelopeContext: envCtx(sets), mempool });
  const driver = new ConsensusDriver({ chainId: CHAIN, self: 0, tickMs: 500 } as DriverOpts, mod);
  return { driver, calls };
}

describe("driver: a peer's gossip admission queue", () => {
  it("admits the batches that arrived during an admission together, in arrival order", async () => {
    const d = setup();
    d.driver.onEnvelope(1, gossip(1, [1, 2]));
    await tick();
    assert.deepEqual(
      d.calls.map((c) => c.ks),
      [[1, 2]],
      "the first batch is admitted at once",
    );
    d.driver.onEnvelope(1, gossip(1, [3]));
    d.driver.onEnvelope(1, gossip(1, [4, 5]));
    d.driver.onEnvelope(1, gossip(1, [6]));
    await tick();
    assert.equal(d.calls.length, 1, "nothing else starts while the peer's admission runs");
    d.calls[0]!.open();
    await tick();
    await tick();
    assert.deepEqual(
      d.calls.map((c) => c.ks),
      [
        [1, 2],
        [3, 4, 5, 6],
      ],
      "the three waiting batches went as one admission, in arrival order",
    );
    d.calls[1]!.open();
    await tick();
    d.driver.onEnvelope(1, gossip(1, [7]));
    await tick();
    assert.deepEqual(d.calls[2]!.ks, [7], "idle again: the next batch goes at once");
    d.calls[2]!.open();
  });

  it("one peer's running admission does not hold up another peer's batch", async () => {
    const d = setup();
    d.driver.onEnvelope(1, gossip(1, [1]));
    d.driver.onEnvelope(1, gossip(1, [2]));
    d.driver.onEnvelope(2, gossip(2, [9]));
    await tick();
    assert.deepEqual(
      d.calls.map((c) => c.ks),
      [[1], [9]],
    );
    for (const c of d.calls) c.open();
    await tick();
    await tick();
    assert.deepEqual(
      d.calls.map((c) => c.ks),
      [[1], [9], [2]],
    );
    d.calls[2]!.open();
  });
});
