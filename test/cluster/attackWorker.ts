// The attackers of hostile-peers.test.ts, in a worker thread: their work must not stall the event
// loop that measures honest clients' latency. Started with workerData = AttackSpec; stops when it
// receives "stop" and posts its counters back.
import type http2 from "node:http2";
import { parentPort, workerData } from "node:worker_threads";
import { decodeFrame, FrameKind } from "../../src/net/handshake.js";
import { connectRaw, openUnreadStreamBlocks } from "../unit/api/rawStream.js";
import { sleep } from "./lib.js";
import { type PeerIdentity, PeerStream } from "./peerAttack.js";

export type AttackSpec =
  | { kind: "flood"; api: string; connections: number; streamsPerConnection: number; spacingMs: number }
  | {
      kind: "replay";
      /** Per target: its peer address and the recorded frames to replay. */
      targets: { peer: string; challenge: Uint8Array; proof: Uint8Array }[];
      /** TLS identities to present (null: in the clear); each runs its own loop per target. */
      modes: ((Omit<PeerIdentity, "signer"> & { reuseConnection?: boolean }) | null)[];
      pauseMs: number;
    };

export interface AttackResult {
  attempts: number;
  /** Messages received that were not a handshake frame (validator traffic reaching the attacker). */
  leaked: number;
}

const spec = workerData as AttackSpec;
let running = true;
const result: AttackResult = { attempts: 0, leaked: 0 };

async function flood(s: Extract<AttackSpec, { kind: "flood" }>): Promise<void> {
  const sessions: http2.ClientHttp2Session[] = [];
  for (let c = 0; c < s.connections && running; c++) {
    const session = connectRaw(s.api);
    sessions.push(session);
    // A connection the server closes at accept (a cap) gets no streams: opening them would only
    // burn this machine's CPU, which the cluster under test shares.
    const up = await new Promise<boolean>((resolve) => {
      session.once("connect", () => resolve(true));
      session.once("close", () => resolve(false));
      setTimeout(() => resolve(false), 2_000).unref();
    });
    for (let k = 0; up && k < s.streamsPerConnection && !session.closed && !session.destroyed; k++) {
      try {
        openUnreadStreamBlocks(session, 1n);
        result.attempts++;
      } catch {
        break;
      }
    }
    await sleep(s.spacingMs);
  }
  while (running) await sleep(50);
  for (const x of sessions) x.destroy();
}

async function replayLoop(
  t: Extract<AttackSpec, { kind: "replay" }>["targets"][number],
  mode: (Omit<PeerIdentity, "signer"> & { reuseConnection?: boolean }) | null,
  pauseMs: number,
): Promise<void> {
  // A validator's own certificate passes TLS: keep that connection and replay stream after stream
  // on it (cheaper for the attacker, so the test machine's CPU goes to the cluster). The other
  // modes fail TLS and need a new connection each time.
  const reusable = mode !== null && mode.reuseConnection === true;
  let client: import("@grpc/grpc-js").Client | undefined;
  while (running) {
    const s = new PeerStream(t.peer, mode && { ...mode, signer: null as never }, client);
    if (reusable) client = s.grpcClient;
    result.attempts++;
    s.write(t.challenge);
    s.write(t.proof);
    const deadline = Date.now() + 10_000;
    while (!s.ended && Date.now() < deadline) await sleep(50);
    result.leaked += s.received.filter((b) => decodeFrame(b, FrameKind.ServerProof) === null).length;
    s.close(reusable);
    await sleep(pauseMs);
  }
  client?.close();
}

parentPort!.on("message", (m) => {
  if (m === "stop") running = false;
});

const work =
  spec.kind === "flood"
    ? flood(spec)
    : Promise.all(spec.targets.flatMap((t) => spec.modes.map((m) => replayLoop(t, m, spec.pauseMs))));
await work;
parentPort!.postMessage(result);
