// Fault scenarios in containers, part 3: a rolling restart, a node restarted 30+ blocks behind,
// garbage and oversized peer messages (n = 4, f = 1); the equivocating node is in part 4.
// Skipped without a Docker engine unless CI=true (then it fails).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { PeerService } from "../../src/gen/parabft/v1/consensus_pb.js";
import { grpcServiceDefinition } from "../../src/net/index.js";
import { suiteGate } from "./lib/gate.js";
import { runScenario, summary, until } from "./lib/scenario.js";

const gate = await suiteGate();
const ALL = [0, 1, 2, 3];

describe("fault scenarios in containers: restarts and bad peers", {
  skip: gate.skip,
  timeout: 900_000,
}, () => {
  before(gate.before);

  it("a rolling restart of every validator", { timeout: 180_000 }, async () => {
    const r = await runScenario("rolling restart", async (ctx) => {
      const startMs = performance.now();
      for (const i of ALL) {
        ctx.history.avoid(i);
        const before = await ctx.height([i]);
        await ctx.cluster.stopNode(i);
        await ctx.cluster.startNode(i);
        // Rejoined: it commits a height it did not have before the restart.
        await ctx.waitHeight([i], before + 1n);
        ctx.history.allow(i);
      }
      return { startMs, healMs: performance.now(), maxFaulty: 1 };
    });
    assert.ok(r.pass, summary(r));
  });

  it("a node restarted 30+ blocks behind catches up", { timeout: 180_000 }, async () => {
    const r = await runScenario("lagging node (30+ blocks)", async (ctx) => {
      const { primary } = await ctx.primary();
      const v = ALL.find((i) => i !== primary)!;
      const others = ALL.filter((i) => i !== v);
      ctx.history.avoid(v);
      const startMs = performance.now();
      await ctx.cluster.stopNode(v);
      const from = await ctx.height(others);
      await until(
        "the others to commit 30 more blocks",
        async () => (await ctx.height(others)) >= from + 30n,
        90_000,
      );
      await ctx.cluster.startNode(v);
      const healMs = performance.now();
      const target = await ctx.height(others);
      await ctx.waitHeight([v], target);
      const secs = (performance.now() - healMs) / 1000;
      ctx.note(`node ${v}: ${target - from} blocks behind, caught up in ${secs.toFixed(1)} s`);
      ctx.history.allow(v);
      return { startMs, healMs, maxFaulty: 1 };
    });
    assert.ok(r.pass, summary(r));
  });

  it("garbage and oversized peer messages: rejected, no crash, the cluster keeps committing", {
    timeout: 150_000,
  }, async () => {
    const r = await runScenario("garbage + oversized peer messages", async (ctx) => {
      const c = ctx.cluster;
      const startMs = performance.now();
      // Raw bytes that are not HTTP/2 at all, on every validator's peer port.
      for (const i of ALL) {
        await new Promise<void>((resolve) => {
          const s = connect({ host: c.ip(i), port: 26656 }, () => s.end(randomBytes(64 * 1024)));
          s.on("error", () => resolve());
          s.on("close", () => resolve());
          s.setTimeout(5000, () => s.destroy());
        });
      }
      // A gRPC peer stream with no handshake: random frames and a 5 MB frame (over the 4 MB limit).
      const Client = grpc.makeGenericClientConstructor(
        grpcServiceDefinition(PeerService, { raw: true }),
        "PeerService",
      );
      const peer = new Client(c.peerAddress(0), grpc.credentials.createInsecure(), {
        "grpc.max_send_message_length": 8 * 1024 * 1024,
      });
      try {
        const stream = (
          peer as unknown as { exchange(): grpc.ClientDuplexStream<Uint8Array, Uint8Array> }
        ).exchange();
        stream.on("data", () => {});
        stream.on("error", () => {});
        for (let k = 0; k < 50; k++) stream.write(randomBytes(1 + ((k * 7919) % 4000)));
        stream.write(randomBytes(5 * 1024 * 1024));
        stream.end();
        await sleep(1000);
      } finally {
        peer.close();
      }
      await ctx.moreAcks(5);
      for (const i of ALL) assert.ok(await c.running(i), `validator ${i} is no longer running`);
      const text = await (await fetch(`http://${c.metricsAddress(0)}/metrics`)).text();
      const rejected = text
        .split("\n")
        .filter((l) => /^parabft_net_(rejected|penalties)_total/.test(l))
        .map((l) => l.replace(/^parabft_/, ""));
      ctx.note(`node 0 counted: ${rejected.join(", ") || "no rejects"}`);
      return { startMs, healMs: performance.now(), maxFaulty: 0 };
    });
    assert.ok(r.pass, summary(r));
  });
});
