// One replica of the stack floor (bench/stackFloor.ts), as its own process: the FloorReplica core
// behind the I/O the node's transport has: peer links (links.ts: grpc-js bidi streams as the node,
// or bare sockets to price grpc-js), TLS or plaintext, Ed25519 with node:crypto and cached keys,
// and one write and fdatasync before a signed vote leaves (a group of votes shares a sync, and its
// record holds the votes and the block bodies they vote for, as in the node's signing-state log).
// Replica 0 also serves the client's unary Submit (grpc-js, plaintext, as the node's API) and
// answers it at its commit.
//
// Driven over stdin/stdout by the parent: it prints LISTENING, dials on DIAL, prints CONNECTED once
// every peer's stream arrived, starts its window on MARK, prints one JSON line on REPORT, exits on
// EXIT or when stdin closes. The config comes as JSON in FLOOR_CONFIG.
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync, write, writeSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { nativeSha256 as sha256 } from "../../src/crypto/hash.js";
import { NodeSigner, NodeVerifier } from "../../src/crypto/node.js";
import { bytesEqual, fromHex } from "../../src/types/bytes.js";
import { type PeerLinks, peerLinks, raw } from "./links.js";
import { type FloorAction, FloorKind, type FloorMessage, FloorReplica } from "./replica.js";
import {
  decodeFrame,
  encodeUnsigned,
  HEADER_BYTES,
  REQUEST_BYTES,
  REQUEST_SIGNED_BYTES,
  SUBMIT_PATH,
  setSignature,
} from "./wire.js";

export interface FloorConfig {
  id: number;
  /** Peer port of every replica, by index. */
  peerPorts: number[];
  /** Replica 0's client port. */
  apiPort: number;
  /** This replica's secret key and every replica's public key (hex). */
  secretKeyHex: string;
  publicKeysHex: string[];
  /** grpc-js streams (the node's transport) or length-prefixed frames on bare sockets. */
  transport: "grpc" | "socket";
  /** PEM certificate and PKCS#8 key of this replica; absent: plaintext peer links. */
  tls?: { certPem: string; keyPem: string };
  /** Signing-state file for the syncs; absent: no sync. */
  syncFile?: string;
  /**
   * "pool": write, then fdatasync on libuv's thread pool (the node's signing-state log);
   * "inline": both on the main thread, which blocks for the sync but skips the pool's round trip.
   */
  syncMode?: "pool" | "inline";
}

/**
 * Bytes of the preallocated sync file (the node's signing-state log preallocates 8 MiB); records
 * wrap around to its start, so a write never grows the file.
 */
const SYNC_FILE_BYTES = 8 << 20;

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.FLOOR_CONFIG ?? "") as FloorConfig;
  const n = cfg.peerPorts.length;
  const core = new FloorReplica(cfg.id, n);
  const signer = new NodeSigner(fromHex(cfg.secretKeyHex));
  const verifier = new NodeVerifier();
  const keys = cfg.publicKeysHex.map(fromHex);
  const counts = { received: 0, ignored: 0, rejected: 0, sent: 0, syncs: 0, committed: 0, requests: 0 };
  type Answer = (err: grpc.ServiceError | null, reply?: Buffer) => void;
  /** Client calls waiting for their height's commit (replica 0). */
  const waiting = new Map<bigint, Answer[]>();
  /** Replica 0: verified requests not yet proposed, and their callers. */
  let pending: { requests: Uint8Array[]; answers: Answer[] } = { requests: [], answers: [] };

  // Signing state: votes wait for the sync that covers them, and one sync covers every vote
  // queued while the previous one ran.
  const fd = cfg.syncFile === undefined ? null : openSync(cfg.syncFile, "w+");
  if (fd !== null) {
    // Allocated and durable before the load, so a sync covers one record, never file growth.
    writeSync(fd, Buffer.alloc(SYNC_FILE_BYTES));
    fsyncSync(fd);
  }
  let syncing = false;
  let queued: Buffer[] = [];
  /**
   * Block bodies this replica accepted since the last sync: its PREPARE's record carries the body,
   * as the node's does (docs/CONSENSUS.md, durable bodies). A primary's PRE-PREPARE frame holds it.
   */
  let bodies: Uint8Array[] = [];
  let cursor = 0;
  /** One record: the frames it guards and the bodies they vote for, at the next free offset. */
  const nextRecord = (frames: Buffer[]): { bytes: Buffer; pos: number } => {
    const bytes = Buffer.concat([...frames, ...bodies]);
    bodies = [];
    if (cursor + bytes.length > SYNC_FILE_BYTES) cursor = 0;
    const pos = cursor;
    cursor += bytes.length;
    return { bytes, pos };
  };

  // Assigned below, before any frame can be sent (sends follow a client request or a peer frame).
  let links: PeerLinks | null = null;
  const sendAll = (frames: Buffer[]) => {
    for (const f of frames) counts.sent += links!.broadcast(f);
  };
  const flushSyncs = () => {
    if (syncing || queued.length === 0) return;
    const frames = queued;
    queued = [];
    if (fd === null) {
      sendAll(frames);
      return;
    }
    const { bytes, pos } = nextRecord(frames);
    if (cfg.syncMode === "inline") {
      writeSync(fd, bytes, 0, bytes.length, pos);
      fdatasyncSync(fd);
      counts.syncs++;
      sendAll(frames);
      return;
    }
    syncing = true;
    write(fd, bytes, 0, bytes.length, pos, (err) => {
      if (err) throw err;
      fdatasync(fd, (err2) => {
        if (err2) throw err2;
        counts.syncs++;
        syncing = false;
        sendAll(frames);
        flushSyncs();
      });
    });
  };
  const apply = (actions: FloorAction[]) => {
    for (const a of actions) {
      if (a.type === "broadcast") {
        for (const m of a.messages) {
          const frame = encodeUnsigned(m);
          setSignature(frame, signer.sign(frame.subarray(0, HEADER_BYTES)));
          queued.push(frame);
        }
      } else {
        counts.committed++;
        counts.requests += Math.floor((a.request?.length ?? 0) / REQUEST_BYTES);
        const answers = waiting.get(a.height);
        if (answers) {
          waiting.delete(a.height);
          const reply = Buffer.alloc(8);
          reply.writeBigUInt64BE(a.height);
          for (const answer of answers) answer(null, reply);
        }
      }
    }
    if (core.isPrimary) proposeNext();
    flushSyncs();
  };
  // Replica 0 proposes everything pending once no height is in flight: one height at a time, so
  // blocks grow with the load instead of heights multiplying (the node's proposalDepth 1).
  function proposeNext(): void {
    if (core.inFlight || pending.requests.length === 0) return;
    const { requests, answers } = pending;
    pending = { requests: [], answers: [] };
    const block = Buffer.concat(requests);
    const actions = core.propose(block, sha256(block));
    const first = actions[0];
    if (first?.type === "broadcast") waiting.set(first.messages[0]!.height, answers);
    apply(actions);
  }
  /** Every request in a blob of whole requests carries a valid signature. */
  const requestsValid = (blob: Uint8Array) => {
    if (blob.length === 0 || blob.length % REQUEST_BYTES !== 0) return false;
    for (let at = 0; at < blob.length; at += REQUEST_BYTES) {
      const req = blob.subarray(at, at + REQUEST_BYTES);
      const ok = verifier.verify(
        req.subarray(0, 32),
        req.subarray(0, REQUEST_SIGNED_BYTES),
        req.subarray(REQUEST_SIGNED_BYTES),
      );
      if (!ok) return false;
    }
    return true;
  };
  const onFrame = (b: Buffer) => {
    counts.received++;
    const d = decodeFrame(b);
    if (d === null) {
      counts.rejected++;
      return;
    }
    const m: FloorMessage = d.message;
    if (!core.needed(m)) {
      counts.ignored++;
      return;
    }
    const key = keys[m.from];
    if (key === undefined || !verifier.verify(key, d.signed, d.signature)) {
      counts.rejected++;
      return;
    }
    if (m.kind === FloorKind.PrePrepare) {
      const req = m.request!;
      if (!bytesEqual(sha256(req), m.digest) || !requestsValid(req)) {
        counts.rejected++;
        return;
      }
      if (fd !== null) bodies.push(req);
    }
    apply(core.receive(m));
  };

  links = peerLinks({
    transport: cfg.transport,
    ...(cfg.tls ? { tls: cfg.tls } : {}),
    onFrame,
    onAllInbound: () => console.log("CONNECTED"),
    peers: n - 1,
  });
  await links.listen(cfg.peerPorts[cfg.id]!);

  let api: grpc.Server | null = null;
  if (core.isPrimary) {
    api = new grpc.Server();
    api.addService(
      {
        submit: {
          path: SUBMIT_PATH,
          requestStream: false,
          responseStream: false,
          requestSerialize: raw.serialize,
          requestDeserialize: raw.deserialize,
          responseSerialize: raw.serialize,
          responseDeserialize: raw.deserialize,
        },
      },
      {
        submit: (
          call: grpc.ServerUnaryCall<Buffer, Buffer>,
          cb: (err: grpc.ServiceError | null, reply?: Buffer) => void,
        ) => {
          // One call carries one request or more (an open loop's batch), all answered at the commit.
          const blob = call.request;
          if (!requestsValid(blob)) {
            cb({ code: grpc.status.INVALID_ARGUMENT, details: "bad request signature" } as grpc.ServiceError);
            return;
          }
          pending.requests.push(blob);
          pending.answers.push(cb);
          proposeNext();
        },
      },
    );
    await bind(api, cfg.apiPort, grpc.ServerCredentials.createInsecure());
  }
  console.log("LISTENING");

  const dial = () => links!.dial(cfg.peerPorts.filter((_, j) => j !== cfg.id));

  let mark = { cpu: process.cpuUsage(), t: performance.now(), counts: { ...counts } };
  const stop = () => {
    links?.close();
    api?.forceShutdown();
    if (fd !== null) closeSync(fd);
    process.exit(0);
  };
  const rl = createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const cmd = line.trim();
    if (cmd === "DIAL") dial();
    else if (cmd === "MARK") mark = { cpu: process.cpuUsage(), t: performance.now(), counts: { ...counts } };
    else if (cmd === "REPORT") {
      const cpu = process.cpuUsage(mark.cpu);
      const delta = Object.fromEntries(
        Object.entries(counts).map(([k, v]) => [k, v - mark.counts[k as keyof typeof counts]]),
      );
      console.log(
        JSON.stringify({
          id: cfg.id,
          wallMs: performance.now() - mark.t,
          cpuMs: (cpu.user + cpu.system) / 1000,
          ...delta,
        }),
      );
    } else if (cmd === "EXIT") stop();
  });
  rl.on("close", stop);
}

function bind(server: grpc.Server, port: number, creds: grpc.ServerCredentials): Promise<void> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, creds, (err) => (err ? reject(err) : resolve())),
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
