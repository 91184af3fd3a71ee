// Per-peer, per-kind rate limits: token buckets, and a flood that ends in a time-bounded ban.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { PeerMessageSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { decodeEnvelopeHeader } from "../../../src/net/handshake.js";
import { PeerRateLimiter } from "../../../src/net/rateLimit.js";
import { envelope, makeKeys, makeNet, payload, payloadsFrom, peerList, waitFor } from "./helpers.js";

/** The header fields of decodeEnvelopeHeader, without the decoded Envelope. */
function envelopeHeader(bytes: Uint8Array) {
  const h = decodeEnvelopeHeader(bytes);
  return h === null ? null : { sender: h.sender, kind: h.kind, epoch: h.epoch };
}

const keys = makeKeys(3);

describe("per-peer, per-kind rate limits", () => {
  it("a bucket allows its burst, refills at its rate, and is separate per peer and per kind", () => {
    let t = 0;
    const l = new PeerRateLimiter(
      { status: { perSecond: 10, burst: 3 } },
      { perSecond: 1, burst: 1 },
      () => t,
    );
    assert.deepEqual(
      [1, 2, 3, 4].map(() => l.take(1, "status")),
      [true, true, true, false],
    );
    assert.equal(l.take(2, "status"), true, "another peer has its own bucket");
    assert.equal(l.take(1, "prepare"), true, "another kind has its own bucket");
    assert.equal(l.take(1, "prepare"), false);
    t += 100; // 10/s: one token back
    assert.equal(l.take(1, "status"), true);
    assert.equal(l.take(1, "status"), false);
    t += 10_000; // refills to the burst, not beyond
    assert.deepEqual(
      [1, 2, 3, 4].map(() => l.take(1, "status")),
      [true, true, true, false],
    );
  });

  it("envelopeHeader reads sender and kind without decoding the payload", () => {
    const status = toBinary(
      PeerMessageSchema,
      create(PeerMessageSchema, { kind: { case: "status", value: {} } }),
    );
    assert.deepEqual(envelopeHeader(envelope(2, null, status, 3n)), { sender: 2, kind: "status", epoch: 3n });
    assert.deepEqual(envelopeHeader(envelope(1, null, payload("x"))), {
      sender: 1,
      kind: "bodyRequest",
      epoch: 0n,
    });
    assert.equal(envelopeHeader(new Uint8Array([0xff, 0xff, 0xff])), null);
  });

  it("a peer flooding one kind loses what is over the limit, is penalised, banned for banMs, and logged", async () => {
    let clock = 1_000_000;
    const a = makeNet(
      0,
      keys,
      {
        rateLimits: { bodyRequest: { perSecond: 1, burst: 5 } },
        rateLimitPenalty: 1,
        banThreshold: 10,
        banMs: 30_000,
      },
      { now: () => clock },
    );
    const b = makeNet(1, keys);
    try {
      await a.net.start();
      await b.net.start();
      for (const n of [a, b]) n.net.setPeers(peerList(keys, [a, b, null]));
      await waitFor("connected", () => a.net.connectedCount === 1 && b.net.connectedCount === 1);
      for (let i = 0; i < 30; i++) b.net.send(0, envelope(1, null, payload(`flood ${i}`)));
      await waitFor("banned", () => a.net.peers()[0]!.banned);
      assert.equal(payloadsFrom(a.inbox, 1).length, 5, "only the burst got through");
      assert.ok((a.metrics.rejects.get("rate_limited") ?? 0) >= 10);
      assert.ok((a.metrics.penalties.get("rate_limited_bodyRequest") ?? 0) >= 10);
      assert.equal(a.metrics.bans.get(1), 1);
      assert.equal(a.net.peers()[0]!.bannedUntil, clock + 30_000);
      // Time-bounded: after banMs the peer is back.
      clock += 30_001;
      await waitFor("reconnected", () => a.net.connectedCount === 1, 15_000);
      assert.equal(a.net.peers()[0]!.banned, false);
    } finally {
      await a.net.stop();
      await b.net.stop();
    }
  });
});
