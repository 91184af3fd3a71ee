// The stream handshake: each side's first envelope is a signed StatusReport. It binds the stream
// to a validator identity; later envelopes are re-verified by the node, not here.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Envelope,
  EnvelopeSchema,
  PeerMessageSchema,
  StatusReportSchema,
} from "../gen/parabft/v1/consensus_pb.js";

import {
  envelopeSignBytes,
  type MessageSigner,
  PROTOCOL_VERSION,
  type SignatureVerifier,
} from "../types/signing.js";
import type { LocalStatus, NetRejectReason } from "./types.js";

/** The encoded, signed handshake envelope announcing `status` as validator `localIndex`. */
export function makeHello(
  chainId: string,
  localIndex: number,
  status: LocalStatus,
  signer: MessageSigner,
): Uint8Array {
  const payload = toBinary(
    PeerMessageSchema,
    create(PeerMessageSchema, {
      kind: {
        case: "status",
        value: create(StatusReportSchema, {
          committedHeight: status.committedHeight,
          view: status.view,
          stableCheckpoint: status.stableCheckpoint,
          executedHeight: status.executedHeight,
        }),
      },
    }),
  );
  const signature = signer.sign(envelopeSignBytes(chainId, status.epoch, localIndex, payload));
  return toBinary(
    EnvelopeSchema,
    create(EnvelopeSchema, {
      version: PROTOCOL_VERSION,
      chainId,
      epoch: status.epoch,
      sender: localIndex,
      payload,
      signature,
    }),
  );
}

export interface HelloContext {
  chainId: string;
  localIndex: number;
  localEpoch: bigint;
  epochSlack: number;
  publicKeyOf(index: number): Uint8Array | undefined;
  verifier: SignatureVerifier;
}

export type HelloResult = { ok: true; peer: number; epoch: bigint } | { ok: false; reason: NetRejectReason };

/**
 * Checks a handshake envelope: a well-formed StatusReport for this chain, from a known validator
 * other than us, within the epoch slack, signed by that validator's key. Cheap checks run first
 * so that an anonymous stream cannot make us spend a signature verification on obvious junk.
 */
export function verifyHello(bytes: Uint8Array, ctx: HelloContext): HelloResult {
  let env: Envelope;
  try {
    env = fromBinary(EnvelopeSchema, bytes);
  } catch {
    return { ok: false, reason: "handshake_malformed" };
  }
  if (env.version !== PROTOCOL_VERSION) return { ok: false, reason: "handshake_version" };
  if (env.chainId !== ctx.chainId) return { ok: false, reason: "handshake_chain" };
  const gap = env.epoch > ctx.localEpoch ? env.epoch - ctx.localEpoch : ctx.localEpoch - env.epoch;
  if (gap > BigInt(ctx.epochSlack)) return { ok: false, reason: "handshake_epoch" };
  const key = env.sender === ctx.localIndex ? undefined : ctx.publicKeyOf(env.sender);
  if (key === undefined) return { ok: false, reason: "handshake_unknown_sender" };
  try {
    const msg = fromBinary(PeerMessageSchema, env.payload);
    if (msg.kind.case !== "status") return { ok: false, reason: "handshake_malformed" };
  } catch {
    return { ok: false, reason: "handshake_malformed" };
  }
  if (env.signature.length === 0) return { ok: false, reason: "handshake_bad_signature" };
  const signed = envelopeSignBytes(env.chainId, env.epoch, env.sender, env.payload);
  if (!ctx.verifier.verify(key, signed, env.signature))
    return { ok: false, reason: "handshake_bad_signature" };
  return { ok: true, peer: env.sender, epoch: env.epoch };
}

/**
 * The `sender` field of an encoded envelope, or null when the bytes are not an Envelope.
 * Used to bind post-handshake traffic to the authenticated peer without verifying it twice.
 */
export function envelopeSender(bytes: Uint8Array): number | null {
  try {
    return fromBinary(EnvelopeSchema, bytes).sender;
  } catch {
    return null;
  }
}
