// Shared fixtures for the peer transport tests: noble Ed25519 keys, networks on ephemeral
// loopback ports, a raw gRPC peer that speaks whatever bytes a test hands it, and bounded waits.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { pino } from "pino";
import { EnvelopeSchema, PeerMessageSchema, PeerService } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { type Logger, silentLogger } from "../../../src/logger/index.js";
import { methodPath } from "../../../src/net/grpcAdapter.js";
import {
  challengeFrame,
  checkServerProof,
  dialerProofFrame,
  newNonce,
  type Transcript,
} from "../../../src/net/handshake.js";
import { CountingNetMetrics } from "../../../src/net/metrics.js";
import { PeerNetwork } from "../../../src/net/peerNetwork.js";
import type { LocalStatus, PeerCredentials, PeerInfo, PeerNetworkOpts } from "../../../src/net/types.js";
import {
  envelopeSignBytes,
  type MessageSigner,
  PROTOCOL_VERSION,
  type SignatureVerifier,
} from "../../../src/types/signing.js";

export const CHAIN = "net-test";

export interface Key {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  signer: MessageSigner;
}

export function makeKeys(n: number): Key[] {
  const keys: Key[] = [];
  for (let i = 0; i < n; i++) {
    const secretKey = ed25519.utils.randomSecretKey();
    const publicKey = ed25519.getPublicKey(secretKey);
    keys.push({ secretKey, publicKey, signer: { publicKey, sign: (m) => ed25519.sign(m, secretKey) } });
  }
  return keys;
}

export const verifier: SignatureVerifier = {
  verify: (pk, msg, sig) => {
    try {
      return ed25519.verify(sig, msg, pk);
    } catch {
      return false;
    }
  },
};

export const status: LocalStatus = {
  epoch: 0n,
  committedHeight: 7n,
  view: 0n,
  stableCheckpoint: 5n,
  executedHeight: 7n,
};

export interface TestNet {
  net: PeerNetwork;
  metrics: CountingNetMetrics;
  /** Every delivered envelope, in order. */
  inbox: { from: number; bytes: Uint8Array }[];
  index: number;
}

export function makeNet(
  index: number,
  keys: Key[],
  opts: Partial<PeerNetworkOpts> = {},
  extra: {
    onEnvelope?: (from: number, bytes: Uint8Array) => void;
    now?: () => number;
    log?: Logger;
    credentials?: PeerCredentials;
  } = {},
): TestNet {
  const metrics = new CountingNetMetrics();
  const inbox: TestNet["inbox"] = [];
  const net = new PeerNetwork(
    {
      chainId: CHAIN,
      localIndex: index,
      listenPort: 0,
      peers: [],
      maxMessageBytes: 64 * 1024,
      reconnectBaseMs: 20,
      reconnectMaxMs: 200,
      handshakeTimeoutMs: 2000,
      ...opts,
    },
    {
      signer: keys[index]!.signer,
      verifier,
      onEnvelope: (from, bytes) => {
        inbox.push({ from, bytes });
        extra.onEnvelope?.(from, bytes);
      },
      localStatus: () => status,
      metrics,
      log: extra.log ?? silentLogger(),
      now: extra.now,
      credentials: extra.credentials,
    },
  );
  return { net, metrics, inbox, index };
}

/** Peer list for `keys`, addressed at each started network's bound port. */
export function peerList(keys: Key[], nets: (TestNet | null)[]): PeerInfo[] {
  return keys.map((k, i) => ({
    index: i,
    publicKey: k.publicKey,
    address: nets[i] ? `127.0.0.1:${nets[i]!.net.port}` : "",
  }));
}

/**
 * An application envelope from `sender` carrying `payload`, signed unless `key` is null (the
 * transport does not re-verify traffic after the handshake, so bulk tests skip the cost).
 */
export function envelope(sender: number, key: Key | null, payload: Uint8Array, epoch = 0n): Uint8Array {
  const signature = key
    ? key.signer.sign(envelopeSignBytes(CHAIN, epoch, sender, payload))
    : new Uint8Array();
  return toBinary(
    EnvelopeSchema,
    create(EnvelopeSchema, { version: PROTOCOL_VERSION, chainId: CHAIN, epoch, sender, payload, signature }),
  );
}

/** A TxBatch-shaped payload whose bytes are unique per `tag`: lets tests tell envelopes apart. */
export function payload(tag: string): Uint8Array {
  return toBinary(
    PeerMessageSchema,
    create(PeerMessageSchema, {
      kind: { case: "bodyRequest", value: { blockDigest: new TextEncoder().encode(tag) } },
    }),
  );
}

export function payloadsFrom(inbox: TestNet["inbox"], from: number): string[] {
  const dec = new TextDecoder();
  const out: string[] = [];
  for (const m of inbox) {
    if (m.from !== from) continue;
    try {
      const env = fromEnvelope(m.bytes);
      if (env.kind.case === "bodyRequest") out.push(dec.decode(env.kind.value.blockDigest));
    } catch {
      // garbage envelopes have no payload to report
    }
  }
  return out;
}

function fromEnvelope(bytes: Uint8Array) {
  return fromBinary(PeerMessageSchema, fromBinary(EnvelopeSchema, bytes).payload);
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bare gRPC peer: writes exactly the bytes a test gives it, records what comes back. */
export class RawPeer {
  readonly received: Uint8Array[] = [];
  status: grpc.StatusObject | null = null;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Uint8Array, Uint8Array>;

  /** Response metadata of the server (the stream's headers), once they arrived. */
  metadata: grpc.Metadata | null = null;

  constructor(
    port: number,
    creds: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    metadata: grpc.Metadata = new grpc.Metadata(),
  ) {
    const raw = {
      ser: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length),
      de: (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length),
    };
    this.client = new grpc.Client(`127.0.0.1:${port}`, creds, {
      "grpc.use_local_subchannel_pool": 1,
      "grpc.ssl_target_name_override": "parabft-validator",
    });
    this.call = this.client.makeBidiStreamRequest(
      methodPath(PeerService, "Exchange"),
      raw.ser,
      raw.de,
      metadata,
    );
    this.call.on("metadata", (md: grpc.Metadata) => {
      this.metadata = md;
    });
    this.call.on("data", (b: Uint8Array) => this.received.push(b));
    this.call.on("error", () => {});
    this.call.on("status", (s: grpc.StatusObject) => {
      this.status = s;
    });
  }

  write(bytes: Uint8Array): void {
    this.call.write(bytes);
  }

  /**
   * Plays the dialer's side of the handshake as validator `as` (signing with `key`) towards
   * validator `server`. Returns the frames it sent, so a test can replay them elsewhere.
   */
  async handshake(
    as: number,
    key: Key,
    server: number,
    keys: Key[],
  ): Promise<{ challenge: Uint8Array; proof: Uint8Array; transcript: Transcript }> {
    const nonce = newNonce();
    const challenge = challengeFrame(CHAIN, as, server, 0n, nonce);
    const seen = this.received.length;
    this.write(challenge);
    await waitFor("the server's proof", () => this.received.length > seen || this.status !== null);
    if (this.received.length === seen) throw new Error(`refused: ${this.status?.details}`);
    const r = checkServerProof(
      this.received[seen]!,
      {
        chainId: CHAIN,
        localIndex: as,
        localEpoch: 0n,
        epochSlack: 1,
        publicKeyOf: (i) => keys[i]?.publicKey,
        verifier,
      },
      { server, dialerNonce: nonce },
    );
    if (!r.ok) throw new Error(`bad server proof: ${r.reason}`);
    const proof = dialerProofFrame(r.transcript, key.signer);
    this.write(proof);
    return { challenge, proof, transcript: r.transcript };
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** A logger that keeps every record, so tests can assert what was logged and why. */
export function capturingLogger(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => records.push(JSON.parse(line)) });
  return { log, records };
}
