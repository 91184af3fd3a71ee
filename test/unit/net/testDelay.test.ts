// The test-only inbound delay line (PeerNetwork.setTestOnlyDelay, PARABFT_TEST_PEER_DELAY_MS):
// envelopes reach the node no earlier than the delay after they arrived, in arrival order even
// with jitter, and turning it off delivers what is held and lets new envelopes straight through.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  envelope,
  makeKeys,
  makeNet,
  payload,
  payloadsFrom,
  peerList,
  type TestNet,
  waitFor,
} from "./helpers.js";

const keys = makeKeys(2);

describe("PeerNetwork test-only delay", () => {
  it("holds every envelope at least the delay, keeps their order under jitter, and can be turned off", async () => {
    const arrivedAt: number[] = [];
    const a = makeNet(
      0,
      keys,
      { rateLimits: { bodyRequest: { perSecond: 1e9, burst: 1e9 } } },
      {
        onEnvelope: () => arrivedAt.push(performance.now()),
      },
    );
    const b = makeNet(1, keys);
    const nets: TestNet[] = [a, b];
    try {
      for (const n of nets) await n.net.start();
      for (const n of nets) n.net.setPeers(peerList(keys, nets));
      await waitFor("connected", () => a.net.connectedCount === 1 && b.net.connectedCount === 1);
      // The handshake's status report has arrived; from here every envelope goes through the line.
      await waitFor("status report", () => a.inbox.length === 1);
      a.net.setTestOnlyDelay(300, 200);
      const sentAt: number[] = [];
      for (let i = 0; i < 40; i++) {
        sentAt.push(performance.now());
        assert.ok(b.net.send(0, envelope(1, keys[1]!, payload(`d${i}`))));
      }
      await waitFor("delayed envelopes", () => a.inbox.length === 41, 30_000);
      assert.deepEqual(
        payloadsFrom(a.inbox, 1),
        Array.from({ length: 40 }, (_, i) => `d${i}`),
      );
      for (let i = 0; i < 40; i++) {
        const held = arrivedAt[i + 1]! - sentAt[i]!;
        assert.ok(held >= 299, `envelope ${i} was delivered ${held.toFixed(1)} ms after it was sent`);
      }
      // Off: envelopes still held are delivered at their time, then new ones straight through,
      // all in order.
      for (let i = 0; i < 5; i++) b.net.send(0, envelope(1, keys[1]!, payload(`h${i}`)));
      await waitFor("first held envelope", () => a.inbox.length > 41, 30_000);
      a.net.setTestOnlyDelay(0);
      for (let i = 0; i < 5; i++) b.net.send(0, envelope(1, keys[1]!, payload(`n${i}`)));
      await waitFor("the rest", () => a.inbox.length === 51, 30_000);
      assert.deepEqual(payloadsFrom(a.inbox, 1).slice(40), [
        ...Array.from({ length: 5 }, (_, i) => `h${i}`),
        ...Array.from({ length: 5 }, (_, i) => `n${i}`),
      ]);
    } finally {
      for (const n of nets) await n.net.stop();
    }
  });
});
