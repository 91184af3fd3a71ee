// A hand-driven peer stream for the cluster attack tests: dials a validator's peer port (over
// mTLS with a given certificate, or in the clear) and plays the dialer's side of the handshake.
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ed25519PrivateKeyPem, NodeSigner, readKeyFile } from "../../src/crypto/index.js";
import { PeerService } from "../../src/gen/parabft/v1/consensus_pb.js";
import { grpcServiceDefinition } from "../../src/net/grpcAdapter.js";
import {
  challengeFrame,
  decodeFrame,
  dialerProofFrame,
  FrameKind,
  newNonce,
} from "../../src/net/handshake.js";
import { sleep } from "./lib.js";

export interface PeerIdentity {
  index: number;
  secretKey: Uint8Array;
  signer: NodeSigner;
  certPem: string;
  trustedPem: string;
}

/** Validator `index`'s key and TLS files, read from its home. */
export async function peerIdentity(home: string, index: number): Promise<PeerIdentity> {
  const key = await readKeyFile(path.join(home, "keys", "validator.json"));
  return {
    index,
    secretKey: key.secretKey,
    signer: new NodeSigner(key.secretKey),
    certPem: await readFile(path.join(home, "tls", "validator.crt"), "utf8"),
    trustedPem: await readFile(path.join(home, "tls", "validators.pem"), "utf8"),
  };
}

export class PeerStream {
  readonly received: Uint8Array[] = [];
  readonly errors: string[] = [];
  ended = false;
  private readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<Uint8Array, Uint8Array>;

  /**
   * `tls`: the identity whose certificate is presented; null dials in the clear. `reuse`: open
   * this stream on an existing client (its connection) instead of a new one.
   */
  constructor(address: string, tls: PeerIdentity | null, reuse?: grpc.Client) {
    const creds = tls
      ? grpc.credentials.createSsl(
          Buffer.from(tls.trustedPem),
          Buffer.from(ed25519PrivateKeyPem(tls.secretKey)),
          Buffer.from(tls.certPem),
          { checkServerIdentity: () => undefined },
        )
      : grpc.credentials.createInsecure();
    const Client = grpc.makeGenericClientConstructor(
      grpcServiceDefinition(PeerService, { raw: true }),
      "PeerService",
    );
    this.client =
      reuse ??
      new Client(address, creds, {
        "grpc.use_local_subchannel_pool": 1,
        "grpc.ssl_target_name_override": "parabft-validator",
      });
    this.call = (
      this.client as unknown as { exchange(): grpc.ClientDuplexStream<Uint8Array, Uint8Array> }
    ).exchange();
    this.call.on("data", (b: Uint8Array) => this.received.push(b));
    this.call.on("error", (e: Error) => {
      this.errors.push(e.message);
      this.ended = true;
    });
    this.call.on("status", () => {
      this.ended = true;
    });
  }

  write(bytes: Uint8Array): boolean {
    return this.call.write(Buffer.from(bytes));
  }

  /**
   * The dialer's side of the handshake as `as` towards validator `server`; resolves once our
   * proof is written, with the frames sent (to replay them elsewhere). Throws if refused.
   */
  async handshake(
    chainId: string,
    as: { index: number; signer: NodeSigner },
    server: number,
    timeoutMs = 10_000,
  ): Promise<{ challenge: Uint8Array; proof: Uint8Array }> {
    const nonce = newNonce();
    const challenge = challengeFrame(chainId, as.index, server, 0n, nonce);
    this.write(challenge);
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      if (this.ended || Date.now() > deadline)
        throw new Error(`handshake refused: ${this.errors.join("; ") || "timeout"}`);
      await sleep(10);
    }
    const f = decodeFrame(this.received[0]!, FrameKind.ServerProof);
    if (!f) throw new Error("no server proof");
    const proof = dialerProofFrame(
      {
        chainId,
        dialer: as.index,
        server,
        dialerEpoch: 0n,
        serverEpoch: f.epoch,
        dialerNonce: nonce,
        serverNonce: f.nonce,
      },
      as.signer,
    );
    this.write(proof);
    return { challenge, proof };
  }

  /** The client, to open further streams on its connection. */
  get grpcClient(): grpc.Client {
    return this.client;
  }

  close(keepClient = false): void {
    this.call.cancel();
    if (!keepClient) this.client.close();
  }
}
