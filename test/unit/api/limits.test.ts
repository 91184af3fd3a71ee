// Resource limits of the public API: connection caps, block-stream caps, a subscriber that stops
// reading is dropped after a bounded buffer, and reflection is off unless configured.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { ApiLimitReason } from "../../../src/api/callLimits.js";
import { ApiServer, type ApiServerOpts } from "../../../src/api/index.js";
import type { GetBlockResponse } from "../../../src/gen/parabft/v1/api_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { newKey, signedTx } from "../mempool/helpers.js";
import { apiClient, call, callError, eventually, reflectionClient, request } from "./client.js";
import { FakeNode } from "./fakeNode.js";
import { connectRaw, openUnreadStreamBlocks, tcpClosedByServer } from "./rawStream.js";

async function withLimits(
  opts: Partial<ApiServerOpts>,
  fn: (ctx: { node: FakeNode; server: ApiServer; limited: Map<ApiLimitReason, number> }) => Promise<void>,
): Promise<void> {
  const node = new FakeNode();
  const limited = new Map<ApiLimitReason, number>();
  const server = new ApiServer(
    { address: "127.0.0.1:0", ...opts },
    {
      backend: node,
      log: silentLogger(),
      metrics: { call() {}, limited: (r) => limited.set(r, (limited.get(r) ?? 0) + 1) },
    },
  );
  try {
    await server.start();
    await fn({ node, server, limited });
  } finally {
    await server.stop();
  }
}

describe("api: resource limits", () => {
  it("closes connections beyond the per-address cap at accept, and counts them", () =>
    withLimits({ maxConnectionsPerAddress: 2 }, async ({ server, limited }) => {
      const held = [net.connect(server.port, "127.0.0.1"), net.connect(server.port, "127.0.0.1")];
      try {
        await Promise.all(held.map((s) => new Promise((r) => s.once("connect", r))));
        assert.equal(await tcpClosedByServer(server.port), true, "third connection closed");
        assert.equal(limited.get("max_connections_per_address"), 1);
      } finally {
        for (const s of held) s.destroy();
      }
      // Freed slots are reusable.
      await eventually(async () => !(await tcpClosedByServer(server.port)));
    }));

  it("closes a connection that keeps asking past a cap, and limits new connections per second", () =>
    withLimits(
      // No abuse cool-down here: the new-connection rate is what the end of this test measures.
      {
        maxStreamsPerAddress: 1,
        maxStrikesPerConnection: 2,
        newConnectionsPerSecondPerAddress: 1,
        abuseCooldownMs: 0,
      },
      async ({ node, server, limited }) => {
        node.commitTxs([]);
        const session = connectRaw(`127.0.0.1:${server.port}`);
        try {
          const held = openUnreadStreamBlocks(session, 0n);
          await eventually(() => node.subscribers === 1);
          openUnreadStreamBlocks(session, 0n);
          openUnreadStreamBlocks(session, 0n);
          // Two refusals: the connection is closed, the stream it held goes with it.
          await held.closed;
          await eventually(() => limited.get("abusive_connection_closed") === 1);
          assert.equal(limited.get("max_streams_per_address"), 2);
          await eventually(() => node.subscribers === 0);
        } finally {
          session.destroy();
        }
        // The bucket (1/s, burst 2): of three connections at once, at least one is refused at accept.
        const results = await Promise.all([0, 1, 2].map(() => tcpClosedByServer(server.port)));
        const refused = results.filter(Boolean).length;
        assert.ok(refused >= 1 && refused <= 2, `refused ${refused}`);
        assert.equal(limited.get("connection_rate"), refused);
      },
    ));

  it("closes a connection opening block streams too fast at its first refusal; its queued calls get no answer", () =>
    withLimits({ newStreamsPerSecondPerAddress: 1 }, async ({ node, server, limited }) => {
      node.commitTxs([]);
      const session = connectRaw(`127.0.0.1:${server.port}`);
      try {
        await new Promise((r) => session.once("connect", r));
        // The burst allows 4; the 5th is refused and closes the connection. Without dropping the
        // calls already queued behind it, each would be refused in turn (35 more stream_rate).
        const streams = Array.from({ length: 40 }, () => openUnreadStreamBlocks(session, 0n));
        await Promise.all(streams.map((s) => s.closed));
        await eventually(() => (limited.get("abusive_connection_closed") ?? 0) === 1);
        const refused = limited.get("stream_rate") ?? 0;
        assert.ok(refused >= 1 && refused <= 2, `${refused} stream_rate refusals`);
        await eventually(() => node.subscribers === 0);
      } finally {
        session.destroy();
      }
    }));

  it("closes a connection whose submits are refused for their own fault, not one that also gets admitted", () =>
    withLimits({ maxRefusedSubmitsPerConnection: 20, abuseCooldownMs: 0 }, async ({ server, limited }) => {
      const spammer = apiClient(server.port);
      const mixed = apiClient(server.port);
      const key = newKey();
      try {
        // Far past the nonce window (NONCE_GAP): the 20th refusal closes the spammer's connection.
        const gapped = (i: number) => ({ tx: signedTx(key, { nonce: 1000n + BigInt(i) }) });
        for (let i = 0; i < 19; i++) {
          const err = await callError(spammer, "submitTx", gapped(i));
          assert.match(err.details, /NONCE_GAP/);
        }
        assert.equal(limited.get("refused_submits"), undefined);
        await callError(spammer, "submitTx", gapped(19)).catch(() => {});
        await eventually(() => limited.get("refused_submits") === 1);
        assert.equal(limited.get("abusive_connection_closed"), 1);
        // Another connection from the same address that is admitted now and then is kept: 3
        // admitted (nonces 0..2) against 25 refused is above a tenth.
        const other = newKey();
        for (let i = 0; i < 28; i++) {
          const tx =
            i % 9 === 0
              ? signedTx(other, { nonce: BigInt(i / 9) })
              : signedTx(other, { nonce: 5000n + BigInt(i) });
          if (i % 9 === 0) await call(mixed, "submitTx", { tx });
          else assert.match((await callError(mixed, "submitTx", { tx })).details, /NONCE_GAP/);
        }
        assert.equal(limited.get("refused_submits"), 1);
        // The closed one reconnects and is answered again.
        const err = await callError(spammer, "submitTx", gapped(20));
        assert.match(err.details, /NONCE_GAP/);
      } finally {
        spammer.close();
        mixed.close();
      }
    }));

  it("refuses new connections from an address for a cool-down after one of its connections is closed for abuse; open ones keep being served", () =>
    withLimits({ maxRefusedSubmitsPerConnection: 5, abuseCooldownMs: 1_500 }, async ({ server, limited }) => {
      const spammer = apiClient(server.port, true);
      const honest = apiClient(server.port, true);
      const key = newKey();
      try {
        // The honest client's connection is open before the abuse.
        await call(honest, "getStatus", {});
        const gapped = (i: number) => ({ tx: signedTx(key, { nonce: 1000n + BigInt(i) }) });
        for (let i = 0; i < 5; i++) await callError(spammer, "submitTx", gapped(i)).catch(() => {});
        await eventually(() => limited.get("refused_submits") === 1);
        const closedAt = Date.now();
        // In the cool-down: a new connection from the address is closed at accept, counted...
        assert.equal(await tcpClosedByServer(server.port), true, "a new connection in the cool-down");
        assert.ok((limited.get("abuse_cooldown") ?? 0) >= 1);
        // ...and the spammer's reconnect gets no call through (UNAVAILABLE at its client).
        const err = await callError(spammer, "submitTx", gapped(5));
        if (Date.now() - closedAt < 1_000) assert.equal(err.code, grpc.status.UNAVAILABLE, err.details);
        // The open connection from the same address is served throughout.
        await call(honest, "getStatus", {});
        // The cool-down ends by itself: a new connection is accepted and answered.
        await eventually(() => Date.now() - closedAt > 1_600, 30_000);
        assert.equal(await tcpClosedByServer(server.port), false, "a new connection after the cool-down");
        const late = apiClient(server.port, true);
        try {
          await call(late, "getStatus", {});
        } finally {
          late.close();
        }
      } finally {
        spammer.close();
        honest.close();
      }
    }));

  it("refuses block streams beyond the per-address cap with RESOURCE_EXHAUSTED", () =>
    withLimits({ maxStreamsPerAddress: 2 }, async ({ node, server, limited }) => {
      node.commitTxs([]);
      const client = apiClient(server.port);
      const streams: grpc.ClientReadableStream<GetBlockResponse>[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          const s = client.streamBlocks(request("streamBlocks", {}));
          s.on("error", () => {});
          streams.push(s);
        }
        await eventually(() => node.subscribers === 2);
        const third = client.streamBlocks(request("streamBlocks", {}));
        const err = await new Promise<grpc.ServiceError>((resolve) => third.on("error", resolve));
        assert.equal(grpc.status[err.code], "RESOURCE_EXHAUSTED");
        assert.match(err.details, /TOO_MANY_STREAMS/);
        assert.equal(limited.get("max_streams_per_address"), 1);
        // Unary calls from the same address are not held back by the stream cap.
        await call(client, "getStatus", {});
        for (const s of streams) s.cancel();
        await eventually(() => node.subscribers === 0);
        const again = client.streamBlocks(request("streamBlocks", {}));
        again.on("error", () => {});
        await eventually(() => node.subscribers === 1);
        again.cancel();
      } finally {
        client.close();
      }
    }));

  it("drops a StreamBlocks subscriber that stops reading, freeing its stream", () =>
    withLimits({ streamStallMs: 300 }, async ({ node, server, limited }) => {
      const key = newKey();
      // ~400 KB of history: far more than an HTTP/2 receive window.
      for (let n = 0n; n < 100n; n++) node.commitTxs([signedTx(key, { nonce: n, padding: 4000 })]);
      const session = connectRaw(`127.0.0.1:${server.port}`);
      try {
        const unread = openUnreadStreamBlocks(session, 1n);
        await eventually(() => node.subscribers === 1);
        const code = await unread.closed;
        assert.equal(code, 8, "the server reset the stream (NGHTTP2_CANCEL)");
        assert.equal(limited.get("slow_consumer"), 1);
        await eventually(() => node.subscribers === 0);
        // A reader that keeps up is not affected.
        const client = apiClient(server.port);
        try {
          const heights: bigint[] = [];
          const s = client.streamBlocks(request("streamBlocks", { fromHeight: 1n }));
          s.on("error", () => {});
          s.on("data", (b: GetBlockResponse) => heights.push(b.height));
          await eventually(() => heights.length === 100);
          s.cancel();
        } finally {
          client.close();
        }
        assert.equal(limited.get("slow_consumer"), 1);
      } finally {
        session.destroy();
      }
    }));

  it("serves no reflection unless configured", () =>
    withLimits({}, async ({ server }) => {
      const refl = reflectionClient(server.port);
      try {
        const err = await new Promise<grpc.ServiceError>((resolve) => {
          const stream = refl.ServerReflectionInfo();
          stream.on("error", resolve);
          stream.on("data", () => resolve(new Error("answered") as grpc.ServiceError));
          stream.write({ list_services: "*" });
        });
        assert.equal(grpc.status[err.code], "UNIMPLEMENTED");
      } finally {
        refl.close();
      }
    }));
});
