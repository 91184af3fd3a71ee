// The peer streams' HTTP/2 windows (src/net/flowControl.ts): the listener side is widened through
// grpc-js internals, so this pins that path for the grpc-js in use (behind an interceptor, as the
// peer server has one), and the window a dialer's channel option asks for.
import assert from "node:assert/strict";
import type { ServerHttp2Session } from "node:http2";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { dialerWindowOptions, widenInboundWindow } from "../../../src/net/flowControl.js";

const WINDOW = 4 << 20;
const bytes = (b: Uint8Array) => Buffer.from(b);
const service: grpc.ServiceDefinition = {
  exchange: {
    path: "/parabft.test.Flow/Exchange",
    requestStream: true,
    responseStream: true,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

/** The inbound call's session as flowControl.ts finds it, to read its windows. */
function sessionOf(call: grpc.ServerDuplexStream<Buffer, Buffer>): ServerHttp2Session {
  let c = (call as unknown as { call?: { nextCall?: unknown; stream?: { session: ServerHttp2Session } } })
    .call;
  while (c !== undefined && c.stream === undefined) c = c.nextCall as typeof c;
  assert.ok(c?.stream, "the http2 stream behind the call");
  return c.stream.session;
}

describe("peer stream flow-control windows", () => {
  it("widens an inbound call's session behind an interceptor, and a message as large arrives whole", async () => {
    const passThrough: grpc.ServerInterceptor = (_m, call) => new grpc.ServerInterceptingCall(call);
    const server = new grpc.Server({
      interceptors: [passThrough],
      "grpc.max_receive_message_length": WINDOW,
    });
    const seen: { widened: boolean; localWindow: number | undefined; got: number }[] = [];
    const done = new Promise<void>((resolve) => {
      server.addService(service, {
        exchange: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
          const widened = widenInboundWindow(call as grpc.ServerDuplexStream<unknown, unknown>, WINDOW);
          call.on("data", (b: Buffer) => {
            seen.push({ widened, localWindow: sessionOf(call).state.localWindowSize, got: b.length });
            call.end();
            resolve();
          });
        },
      });
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const Client = grpc.makeGenericClientConstructor(service, "Flow");
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      ...dialerWindowOptions(WINDOW),
      "grpc.max_receive_message_length": WINDOW,
    });
    try {
      const call = (client as unknown as { exchange(): grpc.ClientDuplexStream<Buffer, Buffer> }).exchange();
      call.on("error", () => {});
      call.write(Buffer.alloc(3 << 20, 7));
      await done;
      call.end();
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.widened, true, "the session was reached through grpc-js's call internals");
      assert.ok(
        (seen[0]!.localWindow ?? 0) >= WINDOW / 2,
        `connection window ${seen[0]!.localWindow} (default 65,535)`,
      );
      assert.equal(seen[0]!.got, 3 << 20);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });

  it("leaves a call it cannot see into alone, and says so", () => {
    const fake = { call: { nextCall: { nextCall: null } } } as unknown as grpc.ServerDuplexStream<
      unknown,
      unknown
    >;
    assert.equal(widenInboundWindow(fake, WINDOW), false);
    assert.equal(widenInboundWindow({} as grpc.ServerDuplexStream<unknown, unknown>, WINDOW), false);
  });

  it("asks grpc-js for the dialer's window by its channel option", () => {
    assert.deepEqual(dialerWindowOptions(WINDOW), { "grpc-node.flow_control_window": WINDOW });
  });
});
