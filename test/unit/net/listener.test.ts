// GatedListener's abuse cool-down on a fake clock: after strike() closes a connection, new
// connections from its address are closed at accept for the cool-down, repeated abuse doubles it up
// to its bound, a clean spell resets it, and open connections from the address are never touched.
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { silentLogger } from "../../../src/logger/index.js";
import { type ConnectionRefusal, GatedListener } from "../../../src/net/listener.js";
import { tcpClosedByServer } from "../api/rawStream.js";

/** An open connection, and its key for strike() (the server's view: remote address:port). */
async function openConnection(port: number): Promise<{ socket: net.Socket; peer: string }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((r) => socket.once("connect", r));
  return { socket, peer: `127.0.0.1:${socket.localPort}` };
}

function closed(socket: net.Socket): Promise<void> {
  return new Promise((r) => (socket.destroyed ? r() : socket.once("close", () => r())));
}

describe("net: GatedListener abuse cool-down", () => {
  let clock = 1_000_000;
  const refused = new Map<ConnectionRefusal, number>();
  const server = new grpc.Server();
  let listener: GatedListener;
  let port = 0;

  before(async () => {
    listener = new GatedListener(
      server,
      grpc.ServerCredentials.createInsecure(),
      {
        maxConnections: 100,
        maxConnectionsPerAddress: 100,
        newConnectionsPerSecondPerAddress: 1_000,
        maxStrikesPerConnection: 1,
        abuseCooldownMs: 1_000,
        abuseCooldownMaxMs: 4_000,
      },
      {
        log: silentLogger(),
        onRefused: (r) => refused.set(r, (refused.get(r) ?? 0) + 1),
        now: () => clock,
      },
    );
    port = await listener.listen("127.0.0.1", 0);
  });

  after(() => {
    listener.close();
    server.forceShutdown();
  });

  /** Strikes a fresh connection out; resolves once the server closed it. */
  async function abuse(): Promise<void> {
    const c = await openConnection(port);
    // The server registers the socket on accept; wait until strike() finds it.
    for (let i = 0; i < 200 && !c.socket.destroyed; i++) {
      listener.strike(c.peer, 1);
      await new Promise((r) => setTimeout(r, 10));
    }
    await closed(c.socket);
  }

  it("refuses an abuser's address for the cool-down, doubling on repeat up to the bound, and keeps open connections", async () => {
    const honest = await openConnection(port);
    await abuse();
    assert.equal(refused.get("abusive_connection_closed"), 1);
    // 1 s cool-down: refused until it ends, by the clock, not by how long the test takes.
    assert.equal(await tcpClosedByServer(port, 1_000), true);
    assert.equal(refused.get("abuse_cooldown"), 1);
    clock += 999;
    assert.equal(await tcpClosedByServer(port, 1_000), true);
    clock += 1;
    assert.equal(await tcpClosedByServer(port, 1_000), false, "accepted when the cool-down ended");
    // Abuse again soon after: 2 s, then 4 s, then the bound (4 s).
    for (const ms of [2_000, 4_000, 4_000]) {
      await abuse();
      clock += ms - 1;
      assert.equal(await tcpClosedByServer(port, 1_000), true, `still refused just before ${ms} ms`);
      clock += 1;
      assert.equal(await tcpClosedByServer(port, 1_000), false, `accepted after ${ms} ms`);
    }
    // Clean for the bound after the last cool-down: back to 1 s.
    clock += 4_000;
    await abuse();
    clock += 1_000;
    assert.equal(await tcpClosedByServer(port, 1_000), false, "a clean spell resets the cool-down");
    // The connection open before all this was never touched.
    assert.equal(honest.socket.destroyed, false);
    honest.socket.destroy();
  });
});
