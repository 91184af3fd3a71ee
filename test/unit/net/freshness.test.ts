// Stream freshness: a recorded handshake cannot open a stream, and even a fresh, proven stream may
// not replace a live one more often than replaceMinIntervalMs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { EnvelopeSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import {
  capturingLogger,
  envelope,
  makeKeys,
  makeNet,
  payload,
  peerList,
  RawPeer,
  type TestNet,
  waitFor,
} from "./helpers.js";

const keys = makeKeys(3);

function received(raw: RawPeer, tag: string): boolean {
  return raw.received.some((b) => {
    try {
      return new TextDecoder().decode(fromBinary(EnvelopeSchema, b).payload).includes(tag);
    } catch {
      return false;
    }
  });
}

describe("PeerNetwork: handshake freshness", () => {
  it("a replayed handshake is refused with a reason in logs and metrics; the live stream stays", async () => {
    const { log, records } = capturingLogger();
    const a: TestNet = makeNet(0, keys, {}, { log });
    const raws: RawPeer[] = [];
    try {
      await a.net.start();
      a.net.setPeers(peerList(keys, [a, null, null]));
      const live = new RawPeer(a.net.port);
      raws.push(live);
      const recorded = await live.handshake(2, keys[2]!, 0, keys);
      await waitFor("validator 2 connected", () => a.net.peers().find((p) => p.index === 2)!.connected);

      // The attacker replays the recorded frames verbatim on a new stream.
      const replay = new RawPeer(a.net.port);
      raws.push(replay);
      replay.write(recorded.challenge);
      await waitFor("a fresh server proof", () => replay.received.length === 1);
      replay.write(recorded.proof);
      await waitFor("replay refused", () => replay.status !== null);
      assert.equal(replay.status!.code, grpc.status.UNAUTHENTICATED);
      assert.match(replay.status!.details, /handshake_bad_proof/);
      assert.equal(a.metrics.rejects.get("handshake_bad_proof"), 1);
      assert.equal(a.metrics.replacements.size, 0);
      assert.ok(
        records.some((r) => r.msg === "peer stream rejected" && r.reason === "handshake_bad_proof"),
        "the refusal is logged with its reason",
      );
      // The live stream was not displaced: traffic still reaches it, and nothing reached the replayer.
      a.net.send(2, envelope(0, keys[0]!, payload("after the replay")));
      await waitFor("live stream gets traffic", () => received(live, "after the replay"));
      assert.equal(replay.received.length, 1, "the replayer got only the server's proof");
    } finally {
      for (const r of raws) r.close();
      await a.net.stop();
    }
  });

  it("a fresh proven stream replaces a live one only after replaceMinIntervalMs, and is counted", async () => {
    let clock = 1_000_000;
    const a: TestNet = makeNet(0, keys, { replaceMinIntervalMs: 10_000 }, { now: () => clock });
    const raws: RawPeer[] = [];
    try {
      await a.net.start();
      a.net.setPeers(peerList(keys, [a, null, null]));
      const first = new RawPeer(a.net.port);
      raws.push(first);
      await first.handshake(2, keys[2]!, 0, keys);
      await waitFor("connected", () => a.net.connectedCount === 1);

      const tooSoon = new RawPeer(a.net.port);
      raws.push(tooSoon);
      await tooSoon.handshake(2, keys[2]!, 0, keys);
      await waitFor("refused", () => tooSoon.status !== null);
      assert.equal(tooSoon.status!.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(a.metrics.rejects.get("replace_too_soon"), 1);
      assert.equal(first.status, null, "the live stream is untouched");

      clock += 10_001;
      const later = new RawPeer(a.net.port);
      raws.push(later);
      await later.handshake(2, keys[2]!, 0, keys);
      await waitFor("old stream ended", () => first.status !== null);
      assert.equal(first.status!.code, grpc.status.ABORTED);
      assert.equal(a.metrics.replacements.get(2), 1);
      a.net.send(2, envelope(0, keys[0]!, payload("to the new stream")));
      await waitFor("new stream gets traffic", () => received(later, "to the new stream"));
    } finally {
      for (const r of raws) r.close();
      await a.net.stop();
    }
  });
});
