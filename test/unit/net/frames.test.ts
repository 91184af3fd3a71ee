// Batch frames (src/net/frames.ts): several envelopes per stream write, only to a peer that
// announced it reads them, each entry judged like a bare envelope, a malformed frame refused
// with a typed reason and a penalty (never a crash).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  BATCH_METADATA_KEY,
  BATCH_METADATA_VALUE,
  BatchFrameError,
  decodeBatch,
  encodeBatch,
  isBatchFrame,
  MAX_BATCH_ENTRIES,
} from "../../../src/net/frames.js";
import {
  envelope,
  type Key,
  makeKeys,
  makeNet,
  payload,
  payloadsFrom,
  peerList,
  RawPeer,
  type TestNet,
  waitFor,
} from "./helpers.js";

const keys = makeKeys(3);
const bytes = (...xs: number[]) => new Uint8Array(xs);

function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof BatchFrameError, `a BatchFrameError, not ${String(err)}`);
    return err.code;
  }
  assert.fail("did not throw");
}

/** A batch frame built by hand: magic, then the given (declared length, bytes) entries. */
function rawBatch(entries: [number, Uint8Array][]): Uint8Array {
  const parts: number[] = [0x50, 0x42, 0x45, 0x42];
  for (const [len, b] of entries)
    parts.push(len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255, ...b);
  return new Uint8Array(parts);
}

describe("batch frames: encoding", () => {
  it("round-trips two or more envelopes as views into the frame", () => {
    const a = bytes(1, 2, 3);
    const b = bytes(9);
    const c = new Uint8Array(300).fill(7);
    const frame = encodeBatch([a, b, c]);
    assert.ok(isBatchFrame(frame));
    assert.equal(frame.length, 4 + 3 * 4 + 3 + 1 + 300);
    const out = decodeBatch(frame);
    assert.deepEqual(
      out.map((x) => [...x]),
      [[...a], [...b], [...c]],
    );
    assert.equal(out[0]!.buffer, frame.buffer, "entries are views, not copies");
  });

  it("an encoded Envelope is never taken for a batch frame", () => {
    assert.equal(isBatchFrame(envelope(1, keys[1]!, payload("x"))), false);
    assert.equal(isBatchFrame(envelope(0, null, new Uint8Array())), false);
    assert.equal(isBatchFrame(bytes(0x50, 0x42, 0x45)), false);
  });

  it("refuses malformed frames with a typed code", () => {
    const e = bytes(5, 5);
    assert.equal(
      errorCode(() => decodeBatch(rawBatch([[2, e]]))),
      "batch_too_few",
    );
    assert.equal(
      errorCode(() => decodeBatch(rawBatch([]))),
      "batch_too_few",
    );
    assert.equal(
      errorCode(() =>
        decodeBatch(
          rawBatch([
            [2, e],
            [3, e],
          ]),
        ),
      ),
      "batch_truncated",
      "an entry longer than what is left",
    );
    const partialPrefix = new Uint8Array([...rawBatch([[2, e]]), 0, 0]);
    assert.equal(
      errorCode(() => decodeBatch(partialPrefix)),
      "batch_truncated",
      "a cut length prefix",
    );
    assert.equal(
      errorCode(() =>
        decodeBatch(
          rawBatch([
            [2, e],
            [0, bytes()],
            [2, e],
          ]),
        ),
      ),
      "batch_empty_entry",
    );
    const huge = rawBatch([
      [2, e],
      [0xffffffff, e],
    ]);
    assert.equal(
      errorCode(() => decodeBatch(huge)),
      "batch_truncated",
      "a length past the end",
    );
    const many = rawBatch(
      Array.from({ length: MAX_BATCH_ENTRIES + 1 }, () => [1, bytes(1)] as [number, Uint8Array]),
    );
    assert.equal(
      errorCode(() => decodeBatch(many)),
      "batch_too_many",
    );
    assert.equal(
      errorCode(() => decodeBatch(bytes(1, 2, 3, 4, 5))),
      "batch_truncated",
      "not a batch at all",
    );
    assert.throws(() => encodeBatch([e]), RangeError);
    assert.throws(() => encodeBatch([e, bytes()]), RangeError);
  });
});

async function serverWithRaw(
  announce: boolean,
): Promise<{ a: TestNet; raw: RawPeer; stop: () => Promise<void> }> {
  const a = makeNet(0, keys, { rateLimits: { bodyRequest: { perSecond: 1e9, burst: 1e9 } } });
  await a.net.start();
  a.net.setPeers(peerList(keys, [a, null, null]));
  const md = new grpc.Metadata();
  if (announce) md.set(BATCH_METADATA_KEY, BATCH_METADATA_VALUE);
  const raw = new RawPeer(a.net.port, undefined, md);
  const stop = async () => {
    raw.close();
    await a.net.stop();
  };
  try {
    await raw.handshake(2, keys[2]!, 0, keys);
    // The server's hello status comes after its proof.
    await waitFor("server hello", () => raw.received.length === 2);
  } catch (err) {
    await stop();
    throw err;
  }
  return { a, raw, stop };
}

function sendBurst(a: TestNet, to: number, n: number, tag: string, key: Key | null = null): void {
  for (let i = 0; i < n; i++) assert.ok(a.net.send(to, envelope(0, key, payload(`${tag} ${i}`))));
}

describe("batch frames: on the wire", () => {
  it("envelopes queued in one tick leave as one frame to a peer that announced batches", async () => {
    const { a, raw, stop } = await serverWithRaw(true);
    try {
      assert.equal(
        raw.metadata?.get(BATCH_METADATA_KEY)[0],
        BATCH_METADATA_VALUE,
        "the server announces too",
      );
      sendBurst(a, 2, 5, "b");
      await waitFor("the batch", () => raw.received.length >= 3);
      const frame = raw.received[2]!;
      assert.ok(isBatchFrame(frame));
      const entries = decodeBatch(frame);
      assert.equal(entries.length, 5);
      // A lone envelope later still travels bare.
      sendBurst(a, 2, 1, "lone");
      await waitFor("the lone one", () => raw.received.length >= 4);
      assert.equal(isBatchFrame(raw.received[3]!), false);
      assert.equal(a.metrics.messagesOut.get(2), 6 + 1, "counted per envelope (plus the hello)");
    } finally {
      await stop();
    }
  });

  it("a peer that did not announce batches (an older build) gets every envelope bare", async () => {
    const { a, raw, stop } = await serverWithRaw(false);
    try {
      sendBurst(a, 2, 5, "b");
      await waitFor("five envelopes", () => raw.received.length >= 2 + 5);
      assert.ok(raw.received.every((b) => !isBatchFrame(b)));
    } finally {
      await stop();
    }
  });

  it("each entry is judged like a bare envelope; a malformed frame is refused, penalised, and the stream lives on", async () => {
    const { a, raw, stop } = await serverWithRaw(true);
    try {
      raw.write(
        encodeBatch([
          envelope(2, null, payload("one")),
          envelope(1, null, payload("claims to be 1")),
          envelope(2, null, payload("two")),
        ]),
      );
      await waitFor("two entries", () => payloadsFrom(a.inbox, 2).length === 2);
      assert.deepEqual(payloadsFrom(a.inbox, 2), ["one", "two"]);
      assert.equal(a.metrics.rejects.get("wrong_sender"), 1);
      // Garbage entries reach the node as bytes, as bare garbage does (its verdict: malformed).
      const before = a.inbox.length;
      raw.write(encodeBatch([bytes(0xff, 0xff), envelope(2, null, payload("three"))]));
      await waitFor("the third", () => payloadsFrom(a.inbox, 2).length === 3);
      assert.equal(a.inbox.length, before + 2);
      // A frame that is not a sequence of envelopes: refused as a whole, nothing delivered.
      const n = a.inbox.length;
      raw.write(rawBatch([[2, bytes(1, 2)]]));
      raw.write(rawBatch([[9, bytes(1, 2)]]));
      await waitFor("two refusals", () => a.metrics.rejects.get("malformed_batch") === 2);
      assert.equal(a.metrics.penalties.get("batch_too_few"), 1);
      assert.equal(a.metrics.penalties.get("batch_truncated"), 1);
      raw.write(envelope(2, null, payload("after")));
      await waitFor("after", () => payloadsFrom(a.inbox, 2).includes("after"));
      assert.equal(a.inbox.length, n + 1);
      assert.equal(a.net.peers().find((p) => p.index === 2)?.connected, true);
    } finally {
      await stop();
    }
  });

  it("between two networks a burst is batched within maxMessageBytes and arrives complete and in order", async () => {
    const limits = { rateLimits: { bodyRequest: { perSecond: 1e9, burst: 1e9 } }, queueLimit: 4096 };
    const a = makeNet(0, keys, limits);
    const b = makeNet(1, keys, limits);
    try {
      await a.net.start();
      await b.net.start();
      const peers = peerList(keys, [a, b, null]);
      a.net.setPeers(peers);
      b.net.setPeers(peers);
      await waitFor("connected", () => a.net.connectedCount === 1 && b.net.connectedCount === 1);
      // 64 KiB frames at most (makeNet): 300 envelopes of ~3 KiB need many frames.
      const filler = "y".repeat(3000);
      for (let i = 0; i < 300; i++) assert.ok(b.net.send(0, envelope(1, null, payload(`${i} ${filler}`))));
      await waitFor("burst", () => payloadsFrom(a.inbox, 1).length === 300, 30_000);
      assert.deepEqual(
        payloadsFrom(a.inbox, 1).map((s) => Number(s.split(" ")[0])),
        Array.from({ length: 300 }, (_, i) => i),
      );
      assert.equal(a.metrics.rejects.size, 0, "no oversized or malformed frame");
      assert.equal(b.metrics.drops.size, 0);
    } finally {
      await b.net.stop();
      await a.net.stop();
    }
  });
});
