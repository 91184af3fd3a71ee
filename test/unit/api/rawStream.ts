// A StreamBlocks subscriber that never reads: a raw HTTP/2 client, so that nothing (grpc-js's
// own buffering included) drains the server's writes. Shared with test/cluster/hostile-peers.
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { StreamBlocksRequestSchema } from "../../../src/gen/parabft/v1/api_pb.js";

export interface UnreadStream {
  req: http2.ClientHttp2Stream;
  /** Resolves with the RST_STREAM code (0 for a clean end) once the server is done with it. */
  closed: Promise<number>;
}

export function grpcFrame(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  return frame;
}

export function openUnreadStreamBlocks(session: http2.ClientHttp2Session, fromHeight: bigint): UnreadStream {
  const req = session.request({
    ":method": "POST",
    ":path": "/parabft.v1.ApiService/StreamBlocks",
    "content-type": "application/grpc",
    te: "trailers",
  });
  req.on("error", () => {});
  const closed = new Promise<number>((resolve) => req.once("close", () => resolve(req.rstCode ?? 0)));
  req.end(grpcFrame(toBinary(StreamBlocksRequestSchema, create(StreamBlocksRequestSchema, { fromHeight }))));
  // Never read: the client's receive window stays full and the server's writes back up.
  req.pause();
  return { req, closed };
}

export function connectRaw(address: string): http2.ClientHttp2Session {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => {});
  return session;
}

/**
 * Opens a TCP connection: true when the server closed it (a refusal at accept), false when it
 * kept it for `holdMs` (then it is closed here).
 */
export function tcpClosedByServer(port: number, holdMs = 1_500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => resolve(true));
    s.on("close", () => resolve(true));
    setTimeout(() => {
      s.destroy();
      resolve(false);
    }, holdMs).unref();
  });
}
