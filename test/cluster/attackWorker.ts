// The attackers of hostile-peers.test.ts, in a worker thread: their work must not stall the event
// loop that measures honest clients' latency. Started with workerData = AttackSpec; stops when it
// receives "stop" and posts its counters back.
import type http2 from "node:http2";
import { parentPort, workerData } from "node:worker_threads";
import { create } from "@bufbuild/protobuf";
import { fromHex, signTx, TxSigner, transferTx } from "../../src/client/node.js";
import { sealMessage } from "../../src/consensus/envelope.js";
import { NodeSigner } from "../../src/crypto/index.js";
import { PeerMessageSchema, PrepareSchema, TxBatchSchema } from "../../src/gen/parabft/v1/consensus_pb.js";
import { SignedTxSchema } from "../../src/gen/parabft/v1/types_pb.js";
import { decodeFrame, FrameKind, makeHello } from "../../src/net/handshake.js";
import { prepareSignBytes } from "../../src/types/signing.js";
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
    }
  | {
      kind: "byzantine";
      chainId: string;
      /** Validator `id.index`'s key and certificate: the attacker is that validator, gone rogue. */
      id: Omit<PeerIdentity, "signer">;
      /** Peer address and index of each validator to flood. */
      targets: { peer: string; index: number }[];
      /** A funded account's secret key (hex): its transactions pass admission's pre-checks, so
       * the forged signatures are what gets them refused (provably invalid, the gossiper's fault). */
      funded: string;
    };

export interface AttackResult {
  attempts: number;
  /** Messages received that were not a handshake frame (validator traffic reaching the attacker). */
  leaked: number;
  /** byzantine: envelopes written; handshakes refused (banned). */
  sent?: number;
  refused?: number;
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

/**
 * Finding 6: a Byzantine validator floods each target with what the issue saw go unpunished: a
 * TxBatch whose every transaction has a bad signature, the same signed message again and again
 * (duplicates), messages for long-gone and far-future heights, and status reports far over their
 * rate. It reconnects as soon as a link ends (a ban ends it), and counts refused handshakes.
 */
async function byzantine(s: Extract<AttackSpec, { kind: "byzantine" }>): Promise<void> {
  const id = { ...s.id, signer: new NodeSigner(s.id.secretKey) };
  const funded = new TxSigner(fromHex(s.funded));
  const forged = Array.from({ length: 16 }, (_, nonce) => {
    const t = signTx(
      transferTx({ chainId: s.chainId, sender: funded.publicKey, nonce: BigInt(nonce) }, funded.address, 1n),
      funded,
    ).tx;
    return create(SignedTxSchema, { ...t, signature: new Uint8Array(64).fill(9) });
  });
  const seal = (m: Parameters<typeof create<typeof PeerMessageSchema>>[1]) =>
    sealMessage(s.chainId, 0n, id.index, id.signer, create(PeerMessageSchema, m)).bytes;
  const status = (height: bigint) =>
    makeHello(
      s.chainId,
      id.index,
      { epoch: 0n, committedHeight: height, view: 0n, stableCheckpoint: 0n, executedHeight: height },
      id.signer,
    );
  const prepare = (height: bigint) => {
    const digest = new Uint8Array(32).fill(7);
    return seal({
      kind: {
        case: "prepare",
        value: create(PrepareSchema, {
          view: 0n,
          height,
          blockDigest: digest,
          voteSignature: id.signer.sign(prepareSignBytes(s.chainId, 0n, 0n, height, digest)),
        }),
      },
    });
  };
  const badBatch = seal({ kind: { case: "txBatch", value: create(TxBatchSchema, { txs: forged }) } });
  const stale = prepare(1n);
  const future = Array.from({ length: 64 }, (_, k) => prepare(1_000_000n + BigInt(k)));
  const loop = async (t: { peer: string; index: number }) => {
    while (running) {
      const stream = new PeerStream(t.peer, id);
      result.attempts++;
      try {
        await stream.handshake(s.chainId, id, t.index, 10_000);
        for (let burst = 0; running && !stream.ended; burst++) {
          const frames = [
            ...Array.from({ length: 10 }, () => stale),
            ...future,
            ...Array.from({ length: 40 }, (_, k) => status(BigInt(burst * 40 + k))),
          ];
          if (burst % 5 === 4) frames.push(badBatch);
          for (const f of frames) stream.write(f);
          result.sent = (result.sent ?? 0) + frames.length;
          await sleep(100);
        }
      } catch {
        result.refused = (result.refused ?? 0) + 1;
      } finally {
        stream.close();
      }
      if (running) await sleep(500);
    }
  };
  await Promise.all(s.targets.map(loop));
}

parentPort!.on("message", (m) => {
  if (m === "stop") running = false;
});

const work =
  spec.kind === "flood"
    ? flood(spec)
    : spec.kind === "byzantine"
      ? byzantine(spec)
      : Promise.all(spec.targets.flatMap((t) => spec.modes.map((m) => replayLoop(t, m, spec.pauseMs))));
await work;
parentPort!.postMessage(result);
