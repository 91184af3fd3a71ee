import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { EnvelopeSchema, PeerMessageSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { challengeFrame, makeHello, newNonce } from "../../../src/net/handshake.js";
import {
  CHAIN,
  envelope,
  makeKeys,
  makeNet,
  payload,
  payloadsFrom,
  peerList,
  RawPeer,
  status,
  type TestNet,
  waitFor,
} from "./helpers.js";

const keys = makeKeys(3);

async function stopAll(nets: (TestNet | null)[], raws: RawPeer[] = []): Promise<void> {
  for (const r of raws) r.close();
  for (const n of nets) await n?.net.stop();
}

/** Starts networks for the given indices on ephemeral ports and tells each where the others are. */
async function cluster(
  indices: number[],
  opts: Parameters<typeof makeNet>[2] = {},
): Promise<(TestNet | null)[]> {
  const nets: (TestNet | null)[] = keys.map(() => null);
  for (const i of indices) nets[i] = makeNet(i, keys, opts);
  for (const n of nets) await n?.net.start();
  const peers = peerList(keys, nets);
  for (const n of nets) n?.net.setPeers(peers);
  return nets;
}

function kindOf(bytes: Uint8Array): string | undefined {
  return fromBinary(PeerMessageSchema, fromBinary(EnvelopeSchema, bytes).payload).kind.case;
}

describe("PeerNetwork", () => {
  it("three networks authenticate and exchange envelopes both ways over one stream per pair", async () => {
    const nets = await cluster([0, 1, 2]);
    try {
      const all = nets as TestNet[];
      await waitFor("full mesh", () => all.every((n) => n.net.connectedCount === 2));
      // The higher index dials the lower: each pair has exactly one stream, seen from both ends.
      assert.deepEqual(
        all[1]!.net.peers().map((p) => [p.index, p.direction]),
        [
          [0, "out"],
          [2, "in"],
        ],
      );
      for (const n of all) {
        for (const m of all)
          if (m !== n)
            assert.ok(
              n.net.send(m.index, envelope(n.index, keys[n.index]!, payload(`${n.index}->${m.index}`))),
            );
        assert.equal(n.net.broadcast(envelope(n.index, keys[n.index]!, payload(`bcast ${n.index}`))), 2);
      }
      await waitFor("all envelopes", () => all.every((n) => n.inbox.length === 2 * 3));
      for (const n of all) {
        for (const m of all) {
          if (m === n) continue;
          // The peer's handshake StatusReport is delivered first; then its traffic, in order.
          const from = n.inbox.filter((x) => x.from === m.index);
          assert.equal(kindOf(from[0]!.bytes), "status");
          assert.deepEqual(payloadsFrom(n.inbox, m.index), [`${m.index}->${n.index}`, `bcast ${m.index}`]);
        }
        assert.equal(n.metrics.connected, 2);
        assert.equal(n.metrics.rejects.size, 0);
      }
    } finally {
      await stopAll(nets);
    }
  });

  it("a burst far beyond the stream buffer arrives complete and in order (write backpressure)", async () => {
    // Rate limits off for this one: it is about stream backpressure, not peer accountability.
    const nets = await cluster([0, 1], {
      queueLimit: 4096,
      rateLimits: { bodyRequest: { perSecond: 1e9, burst: 1e9 } },
    });
    try {
      const [a, b] = nets as TestNet[];
      await waitFor("connected", () => a!.net.connectedCount === 1 && b!.net.connectedCount === 1);
      const filler = "x".repeat(8 * 1024);
      const total = 500;
      for (let i = 0; i < total; i++) assert.ok(b!.net.send(0, envelope(1, null, payload(`${i} ${filler}`))));
      await waitFor("burst", () => a!.inbox.length === total + 1, 30_000);
      const got = payloadsFrom(a!.inbox, 1).map((s) => Number(s.split(" ")[0]));
      assert.deepEqual(
        got,
        Array.from({ length: total }, (_, i) => i),
      );
      assert.equal(b!.metrics.drops.size, 0);
    } finally {
      await stopAll(nets);
    }
  });

  it("a stream that never authenticates gets nothing delivered and is closed", async () => {
    const nets = await cluster([0], { handshakeTimeoutMs: 300 });
    const a = nets[0]!;
    const raws: RawPeer[] = [];
    try {
      const silent = new RawPeer(a.net.port);
      raws.push(silent);
      const bad = [
        ["handshake_malformed", envelope(2, keys[2]!, payload("traffic before hello"))],
        // The old one-message handshake (a signed StatusReport) is not a challenge: a recording of
        // it opens nothing.
        ["handshake_malformed", makeHello(CHAIN, 2, status, keys[2]!.signer)],
        ["handshake_chain", challengeFrame("another-chain", 2, 0, 0n, newNonce())],
        ["handshake_unknown_sender", challengeFrame(CHAIN, 7, 0, 0n, newNonce())],
        ["handshake_unexpected_peer", challengeFrame(CHAIN, 2, 1, 0n, newNonce())],
        ["handshake_epoch", challengeFrame(CHAIN, 2, 0, 9n, newNonce())],
      ] as const;
      const peersBad = bad.map(([, bytes]) => {
        const r = new RawPeer(a.net.port);
        raws.push(r);
        r.write(bytes);
        // Anything after a failed hello must not get through either.
        r.write(envelope(2, keys[2]!, payload("smuggled")));
        return r;
      });
      await waitFor("all rejected", () => [silent, ...peersBad].every((r) => r.status !== null));
      for (const r of [silent, ...peersBad]) {
        assert.equal(r.status!.code, grpc.status.UNAUTHENTICATED);
        assert.equal(r.received.length, 0, "nothing is sent to an unauthenticated stream");
      }
      assert.equal(a.inbox.length, 0);
      assert.equal(a.metrics.rejects.get("handshake_timeout"), 1);
      for (const [reason] of bad)
        assert.equal(a.metrics.rejects.get(reason), bad.filter(([r]) => r === reason).length, reason);
      assert.equal(a.net.connectedCount, 0);
    } finally {
      await stopAll(nets, raws);
    }
  });

  it("refuses inbound streams beyond the pending-handshake limit", async () => {
    const nets = await cluster([0], { handshakeTimeoutMs: 500, maxPendingHandshakes: 2 });
    const raws = [0, 1, 2].map(() => new RawPeer(nets[0]!.net.port));
    try {
      await waitFor("all closed", () => raws.every((r) => r.status !== null));
      const codes = raws.map((r) => r.status!.code).sort();
      assert.deepEqual(
        codes,
        [grpc.status.RESOURCE_EXHAUSTED, grpc.status.UNAUTHENTICATED, grpc.status.UNAUTHENTICATED].sort(),
      );
      assert.equal(nets[0]!.metrics.rejects.get("too_many_streams"), 1);
      assert.equal(nets[0]!.metrics.rejects.get("handshake_timeout"), 2);
    } finally {
      await stopAll(nets, raws);
    }
  });

  it("binds the stream to the authenticated peer: a wrong sender is rejected and penalised", async () => {
    const nets = await cluster([0]);
    const a = nets[0]!;
    const raw = new RawPeer(a.net.port);
    try {
      // The server proves itself over our nonce (checked inside handshake()), then sends its status.
      await raw.handshake(2, keys[2]!, 0, keys);
      await waitFor("server hello", () => raw.received.length === 2);
      assert.equal(kindOf(raw.received[1]!), "status");
      raw.write(envelope(1, keys[1]!, payload("claims to be 1")));
      raw.write(envelope(2, keys[2]!, payload("honest")));
      await waitFor("honest envelope", () => payloadsFrom(a.inbox, 2).length === 1);
      assert.deepEqual(payloadsFrom(a.inbox, 2), ["honest"]);
      assert.equal(payloadsFrom(a.inbox, 1).length, 0);
      assert.equal(a.metrics.rejects.get("wrong_sender"), 1);
      assert.equal(a.metrics.penalties.get("wrong_sender"), 1);
      const p2 = a.net.peers().find((p) => p.index === 2)!;
      assert.ok(p2.connected && p2.score > 0.9 && p2.score <= 1);
      // A higher index must dial a lower one, never the reverse.
      const wrongWay = makeNet(1, keys);
      nets.push(wrongWay);
      await wrongWay.net.start();
      const raw2 = new RawPeer(wrongWay.net.port);
      try {
        raw2.write(challengeFrame(CHAIN, 0, 1, 0n, newNonce()));
        await waitFor("wrong direction refused", () => raw2.status !== null);
        assert.equal(wrongWay.metrics.rejects.get("handshake_unknown_sender"), 1, "no peers configured yet");
      } finally {
        raw2.close();
      }
      wrongWay.net.setPeers(peerList(keys, [null, null, null]));
      const raw3 = new RawPeer(wrongWay.net.port);
      try {
        raw3.write(challengeFrame(CHAIN, 0, 1, 0n, newNonce()));
        await waitFor("wrong direction refused", () => raw3.status !== null);
        assert.equal(wrongWay.metrics.rejects.get("handshake_wrong_direction"), 1);
      } finally {
        raw3.close();
      }
    } finally {
      await stopAll(nets, [raw]);
    }
  });

  it("garbage reaches onEnvelope as bytes; penalties past the threshold disconnect and ban until expiry", async () => {
    let clock = 1_000_000;
    const a: TestNet = makeNet(
      0,
      keys,
      { banThreshold: 3, banMs: 60_000 },
      {
        now: () => clock,
        onEnvelope: (from, bytes) => {
          // Stand-in for the node's verdict: anything that is not an Envelope is a reject.
          try {
            fromBinary(EnvelopeSchema, bytes);
          } catch {
            a.net.penalize(from, "malformed");
          }
        },
      },
    );
    const b = makeNet(1, keys);
    const nets = [a, b];
    try {
      await a.net.start();
      await b.net.start();
      a.net.setPeers(peerList(keys, [a, b, null]));
      b.net.setPeers(peerList(keys, [a, b, null]));
      await waitFor("connected", () => a.net.connectedCount === 1 && b.net.connectedCount === 1);
      const garbage = [0, 1, 2].map((i) => new Uint8Array([0xff, 0xff, 0xff, i]));
      for (const g of garbage) b.net.send(0, g);
      await waitFor("banned", () => a.net.peers()[0]!.banned);
      const delivered = a.inbox.filter((m) => m.from === 1).slice(1);
      assert.deepEqual(
        delivered.map((m) => [...m.bytes]),
        garbage.map((g) => [...g]),
      );
      assert.equal(a.metrics.penalties.get("malformed"), 3);
      assert.equal(a.metrics.bans.get(1), 1);
      await waitFor("disconnected", () => a.net.connectedCount === 0 && b.net.connectedCount === 0);
      // The banned dialer keeps redialing and is refused after its handshake.
      await waitFor("redial refused", () => (a.metrics.rejects.get("banned") ?? 0) >= 2);
      assert.equal(a.net.connectedCount, 0);
      assert.equal(a.net.send(1, envelope(0, keys[0]!, payload("to a banned peer"))), false);
      assert.equal(a.metrics.drops.get("banned"), 1);
      clock += 60_001;
      await waitFor(
        "reconnected after the ban",
        () => a.net.connectedCount === 1 && b.net.connectedCount === 1,
      );
      const p1 = a.net.peers()[0]!;
      assert.equal(p1.banned, false);
      assert.equal(p1.score, 0);
    } finally {
      await stopAll(nets);
    }
  });

  it("an oversized message, either direction, does not crash the receiver and the stream recovers", async () => {
    // A (index 0) accepts 64 KiB; B (index 1, the dialer) is misconfigured to send up to 1 MiB.
    const a = makeNet(0, keys, { maxMessageBytes: 64 * 1024 });
    const b = makeNet(1, keys, { maxMessageBytes: 1024 * 1024 });
    const nets = [a, b];
    try {
      await a.net.start();
      await b.net.start();
      for (const n of nets) n.net.setPeers(peerList(keys, [a, b, null]));
      await waitFor("connected", () => a.net.connectedCount === 1 && b.net.connectedCount === 1);
      const big = envelope(1, keys[1]!, payload(`big ${"y".repeat(100 * 1024)}`));
      assert.ok(b.net.send(0, big));
      await waitFor("server-side oversize counted", () => a.metrics.rejects.get("oversized") === 1);
      assert.equal(a.metrics.penalties.get("oversized"), 1);
      await waitFor("redialed", () => (b.metrics.reconnects.get(0) ?? 0) >= 1 && b.net.connectedCount === 1);
      await waitFor("A sees B again", () => a.net.connectedCount === 1);
      b.net.send(0, envelope(1, keys[1]!, payload("after big")));
      await waitFor("small message after recovery", () => payloadsFrom(a.inbox, 1).includes("after big"));
      assert.ok(!payloadsFrom(a.inbox, 1).some((s) => s.startsWith("big")));

      // The other way: A cannot send above its own limit (dropped locally, counted) ...
      assert.equal(a.net.send(1, big), false);
      assert.equal(a.metrics.drops.get("oversized"), 1);
      // ... while B's client refuses what exceeds B's receive limit.
      const c = makeNet(0, keys, { maxMessageBytes: 1024 * 1024 });
      const d = makeNet(1, keys, { maxMessageBytes: 64 * 1024 });
      nets.push(c, d);
      await c.net.start();
      await d.net.start();
      for (const n of [c, d]) n.net.setPeers(peerList(keys, [c, d, null]));
      await waitFor("connected", () => c.net.connectedCount === 1 && d.net.connectedCount === 1);
      assert.ok(c.net.send(1, envelope(0, keys[0]!, payload(`big ${"z".repeat(100 * 1024)}`))));
      await waitFor("client-side oversize counted", () => d.metrics.rejects.get("oversized") === 1);
      assert.equal(d.metrics.penalties.get("oversized"), 1);
      await waitFor("recovered", () => c.net.connectedCount === 1 && d.net.connectedCount === 1);
      c.net.send(1, envelope(0, keys[0]!, payload("small again")));
      await waitFor("delivered after recovery", () => payloadsFrom(d.inbox, 0).includes("small again"));
    } finally {
      await stopAll(nets);
    }
  });

  it("reconnects after a peer restarts on the same port and messages flow again", async () => {
    const nets = await cluster([0, 1, 2]);
    try {
      const all = nets as TestNet[];
      await waitFor("full mesh", () => all.every((n) => n.net.connectedCount === 2));
      const port = all[0]!.net.port;
      await all[0]!.net.stop();
      await waitFor(
        "peers notice",
        () => all[1]!.net.connectedCount === 1 && all[2]!.net.connectedCount === 1,
      );
      const restarted = makeNet(0, keys, { listenPort: port });
      nets[0] = restarted;
      await restarted.net.start();
      assert.equal(restarted.net.port, port);
      restarted.net.setPeers(peerList(keys, nets));
      await waitFor("mesh again", () => (nets as TestNet[]).every((n) => n.net.connectedCount === 2));
      assert.ok((all[1]!.metrics.reconnects.get(0) ?? 0) >= 1);
      restarted.net.broadcast(envelope(0, keys[0]!, payload("back")));
      all[2]!.net.send(0, envelope(2, keys[2]!, payload("welcome back")));
      await waitFor(
        "both ways",
        () =>
          payloadsFrom(all[1]!.inbox, 0).includes("back") && payloadsFrom(all[2]!.inbox, 0).includes("back"),
      );
      await waitFor("to the restarted node", () => payloadsFrom(restarted.inbox, 2).includes("welcome back"));
    } finally {
      await stopAll(nets);
    }
  });

  it("setPeers drops a peer that left the set, refuses it, and takes it back when it returns", async () => {
    const nets = await cluster([0, 1, 2]);
    try {
      const [a, b, c] = nets as TestNet[];
      await waitFor("full mesh", () => [a, b, c].every((n) => n!.net.connectedCount === 2));
      const full = peerList(keys, nets);
      a!.net.setPeers(full.filter((p) => p.index !== 2));
      await waitFor("2 dropped by 0", () => a!.net.connectedCount === 1 && c!.net.connectedCount === 1);
      await waitFor(
        "2's redial refused",
        () => (a!.metrics.rejects.get("handshake_unknown_sender") ?? 0) >= 1,
      );
      assert.equal(a!.net.send(2, envelope(0, keys[0]!, payload("gone"))), false);
      assert.equal(a!.metrics.drops.get("unknown_peer"), 1);
      assert.deepEqual(
        a!.net.peers().map((p) => p.index),
        [1],
      );
      a!.net.setPeers(full);
      await waitFor("2 back", () => a!.net.connectedCount === 2 && c!.net.connectedCount === 2);
      // stop() and start() again on the same object: it rebinds its port and peers redial it.
      const port = b!.net.port;
      await b!.net.stop();
      await waitFor("1 gone", () => a!.net.connectedCount === 1);
      await b!.net.start();
      assert.equal(b!.net.port, port);
      await waitFor("1 back", () => [a, b, c].every((n) => n!.net.connectedCount === 2));
      c!.net.send(1, envelope(2, keys[2]!, payload("hello again")));
      await waitFor("delivered", () => payloadsFrom(b!.inbox, 2).includes("hello again"));
    } finally {
      await stopAll(nets);
    }
  });

  it("bounds the outbound queue of a peer that is down and delivers what it kept once it is up", async () => {
    // Learn a free port, then leave it unbound while B queues for it.
    const probe = makeNet(0, keys);
    await probe.net.start();
    const port = probe.net.port;
    await probe.net.stop();
    const peers = peerList(keys, [null, null, null]).map((p) =>
      p.index === 0 ? { ...p, address: `127.0.0.1:${port}` } : p,
    );
    const b = makeNet(1, keys, { queueLimit: 5, peers });
    const c = makeNet(2, keys, { queueLimit: 5, dropPolicy: "newest", peers });
    const a = makeNet(0, keys, { listenPort: port, peers });
    const nets = [b, c, a];
    try {
      await b.net.start();
      await c.net.start();
      for (let i = 0; i < 20; i++) {
        b.net.send(0, envelope(1, keys[1]!, payload(`b${i}`)));
        c.net.send(0, envelope(2, keys[2]!, payload(`c${i}`)));
      }
      for (const n of [b, c]) {
        const p0 = n.net.peers().find((p) => p.index === 0)!;
        assert.equal(p0.connected, false);
        assert.equal(p0.queued, 5);
        assert.equal(p0.dropped, 15);
        assert.equal(n.metrics.drops.get("full"), 15);
      }
      await a.net.start();
      await waitFor(
        "delivered",
        () => payloadsFrom(a.inbox, 1).length === 5 && payloadsFrom(a.inbox, 2).length === 5,
      );
      assert.deepEqual(
        payloadsFrom(a.inbox, 1),
        ["b15", "b16", "b17", "b18", "b19"],
        "drop-oldest keeps the newest",
      );
      assert.deepEqual(
        payloadsFrom(a.inbox, 2),
        ["c0", "c1", "c2", "c3", "c4"],
        "drop-newest keeps the first",
      );
    } finally {
      await stopAll(nets);
    }
  });
});
