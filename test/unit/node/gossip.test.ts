// TxGossip: API-admitted transactions leave in unsigned TxBatch envelopes, batched per turn of the
// event loop (or per GOSSIP_BATCH_TXS), never from a follower; the repair loop re-gossips what the
// pool reports stale.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { EnvelopeSchema, PeerMessageSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { type SignedTx, SignedTxSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { GOSSIP_BATCH_TXS, TxGossip } from "../../../src/node/gossip.js";

function tx(i: number): SignedTx {
  return create(SignedTxSchema, { body: new Uint8Array([i & 0xff, i >> 8]), signature: new Uint8Array(64) });
}

function batchOf(bytes: Uint8Array): { sender: number; epoch: bigint; signed: boolean; txs: SignedTx[] } {
  const env = fromBinary(EnvelopeSchema, bytes);
  const msg = fromBinary(PeerMessageSchema, env.payload);
  assert.equal(msg.kind.case, "txBatch");
  return {
    sender: env.sender,
    epoch: env.epoch,
    signed: env.signature.length > 0,
    txs: msg.kind.case === "txBatch" ? msg.kind.value.txs : [],
  };
}

function gossip(self: number | null, stale: SignedTx[] = []) {
  const sent: Uint8Array[] = [];
  let regossiped = 0;
  const g = new TxGossip(
    { chainId: "test-chain" },
    {
      sender: () => ({ self, epoch: 3n }),
      broadcast: (bytes) => sent.push(bytes),
      staleOwn: (_olderThanMs, max) => stale.splice(0, max),
      regossiped: {
        inc: (n?: unknown) => {
          regossiped += typeof n === "number" ? n : 1;
        },
      },
    },
  );
  return { g, sent, regossiped: () => regossiped };
}

const turn = () => new Promise((r) => setImmediate(r));

describe("TxGossip", () => {
  it("sends one unsigned TxBatch per event-loop turn, naming this validator and epoch", async () => {
    const { g, sent } = gossip(2);
    g.queue([tx(1), tx(2)]);
    g.queue([tx(3)]);
    assert.equal(sent.length, 0, "not before the end of the turn");
    await turn();
    assert.equal(sent.length, 1);
    const b = batchOf(sent[0]!);
    assert.deepEqual(
      { sender: b.sender, epoch: b.epoch, signed: b.signed, n: b.txs.length },
      { sender: 2, epoch: 3n, signed: false, n: 3 },
    );
    assert.deepEqual(
      b.txs.map((t) => t.body[0]),
      [1, 2, 3],
    );
    g.stop();
  });

  it("splits a large burst into envelopes of GOSSIP_BATCH_TXS", async () => {
    const { g, sent } = gossip(0);
    g.queue(Array.from({ length: 2 * GOSSIP_BATCH_TXS + 5 }, (_, i) => tx(i)));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      sent.map((b) => batchOf(b).txs.length),
      [GOSSIP_BATCH_TXS, GOSSIP_BATCH_TXS, 5],
    );
    g.stop();
  });

  it("sends nothing from a follower (no index in the current set)", async () => {
    const { g, sent } = gossip(null);
    g.queue([tx(1)]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sent.length, 0);
    g.stop();
  });

  it("re-gossips what the pool reports stale, and counts it", async (t) => {
    t.mock.timers.enable({ apis: ["setInterval"] });
    const { g, sent, regossiped } = gossip(1, [tx(7), tx(8)]);
    g.start();
    t.mock.timers.tick(1_500);
    await turn();
    assert.equal(regossiped(), 2);
    assert.equal(sent.length, 1);
    assert.deepEqual(
      batchOf(sent[0]!).txs.map((x) => x.body[0]),
      [7, 8],
    );
    g.stop();
    t.mock.timers.tick(10_000);
    await turn();
    assert.equal(sent.length, 1, "stopped: no more repair rounds");
  });
});
