// The floor's peer links, two ways: grpc-js bidi streams (the node's transport) or bare sockets
// with a 4-byte length before each frame (no HTTP/2, no gRPC framing), each over TLS or
// plaintext. The bare form is not a candidate transport (ParaBFT's peers speak gRPC); it
// measures what grpc-js itself costs on the floor.
import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, connect as tlsConnect } from "node:tls";
import * as grpc from "@grpc/grpc-js";

export const PEER_PATH = "/floor.Peer/Exchange";

export const raw = {
  serialize: (b: Buffer) => b,
  deserialize: (b: Buffer) => b,
};

export interface LinkOpts {
  transport: "grpc" | "socket";
  tls?: { certPem: string; keyPem: string };
  /** Every frame received from a peer. */
  onFrame: (frame: Buffer) => void;
  /** Called once, when a link from every other replica has arrived. */
  onAllInbound: () => void;
  /** Other replicas. */
  peers: number;
}

export interface PeerLinks {
  listen(port: number): Promise<void>;
  dial(ports: readonly number[]): void;
  /** Sends a frame to every dialed peer; returns how many. */
  broadcast(frame: Buffer): number;
  close(): void;
}

export function peerLinks(o: LinkOpts): PeerLinks {
  return o.transport === "grpc" ? grpcLinks(o) : socketLinks(o);
}

function grpcLinks(o: LinkOpts): PeerLinks {
  let inbound = 0;
  const server = new grpc.Server();
  server.addService(
    {
      exchange: {
        path: PEER_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: raw.serialize,
        requestDeserialize: raw.deserialize,
        responseSerialize: raw.serialize,
        responseDeserialize: raw.deserialize,
      },
    },
    {
      exchange: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on("data", o.onFrame);
        call.on("error", () => {});
        call.on("end", () => call.end());
        if (++inbound === o.peers) o.onAllInbound();
      },
    },
  );
  const clients: grpc.Client[] = [];
  const streams: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  return {
    listen: (port) =>
      new Promise((resolve, reject) =>
        server.bindAsync(
          `127.0.0.1:${port}`,
          o.tls
            ? grpc.ServerCredentials.createSsl(
                null,
                [{ private_key: Buffer.from(o.tls.keyPem), cert_chain: Buffer.from(o.tls.certPem) }],
                false,
              )
            : grpc.ServerCredentials.createInsecure(),
          (err) => (err ? reject(err) : resolve()),
        ),
      ),
    dial(ports) {
      for (const port of ports) {
        const creds = o.tls
          ? grpc.credentials.createSsl(null, Buffer.from(o.tls.keyPem), Buffer.from(o.tls.certPem), {
              rejectUnauthorized: false,
            })
          : grpc.credentials.createInsecure();
        // Peers are known by key, not by name: no server name to check (and none sent, which an
        // IP address as TLS ServerName would be, with a deprecation warning).
        const c = new grpc.Client(`127.0.0.1:${port}`, creds, { "grpc.ssl_target_name_override": "floor" });
        clients.push(c);
        const s = c.makeBidiStreamRequest(PEER_PATH, raw.serialize, raw.deserialize);
        s.on("data", () => {});
        s.on("error", () => {});
        streams.push(s);
      }
    },
    broadcast(frame) {
      for (const s of streams) s.write(frame);
      return streams.length;
    },
    close() {
      for (const s of streams) s.end();
      for (const c of clients) c.close();
      server.forceShutdown();
    },
  };
}

/** Splits a socket's bytes into length-prefixed frames. */
function readFrames(socket: Socket, onFrame: (frame: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      onFrame(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
    }
  });
}

function socketLinks(o: LinkOpts): PeerLinks {
  let inbound = 0;
  const accepted: Socket[] = [];
  const onSocket = (s: Socket) => {
    s.setNoDelay(true);
    accepted.push(s);
    readFrames(s, o.onFrame);
    s.on("error", () => {});
    if (++inbound === o.peers) o.onAllInbound();
  };
  const server: Server = o.tls
    ? createTlsServer(
        { key: o.tls.keyPem, cert: o.tls.certPem, requestCert: true, rejectUnauthorized: false },
        onSocket,
      )
    : createNetServer(onSocket);
  const out: Socket[] = [];
  return {
    listen: (port) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve());
      }),
    dial(ports) {
      for (const port of ports) {
        const s = o.tls
          ? tlsConnect({
              host: "127.0.0.1",
              port,
              key: o.tls.keyPem,
              cert: o.tls.certPem,
              rejectUnauthorized: false,
            })
          : netConnect({ host: "127.0.0.1", port });
        s.setNoDelay(true);
        s.on("error", () => {});
        out.push(s);
      }
    },
    broadcast(frame) {
      const prefixed = Buffer.allocUnsafe(4 + frame.length);
      prefixed.writeUInt32BE(frame.length, 0);
      frame.copy(prefixed, 4);
      for (const s of out) s.write(prefixed);
      return out.length;
    },
    close() {
      for (const s of [...out, ...accepted]) s.destroy();
      server.close();
    },
  };
}
