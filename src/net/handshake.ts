// The stream handshake: a challenge–response that binds a stream to a validator identity and
// proves it fresh. Each side signs the other's fresh nonce together with both identities, both
// epochs and the chain id, under a domain tag no other signature uses:
//
//   dialer -> server   CHALLENGE     { chain, dialer, server, dialerEpoch, nonceD }
//   server -> dialer   SERVER_PROOF  { chain, server, dialer, serverEpoch, nonceS, sig_S(transcript, "server") }
//   dialer -> server   DIALER_PROOF  { chain, dialer, server, dialerEpoch, sig_D(transcript, "dialer") }
//
// transcript = tag ‖ chain ‖ dialer ‖ server ‖ dialerEpoch ‖ serverEpoch ‖ nonceD ‖ nonceS. A
// recorded handshake is worthless: the next stream has other nonces. After it, each side sends its
// signed StatusReport (makeHello) as its first ordinary envelope; later envelopes are verified by
// the node, not here.
import { randomBytes } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Envelope,
  EnvelopeSchema,
  PeerMessageSchema,
  StatusReportSchema,
} from "../gen/parabft/v1/consensus_pb.js";
import { decodeEnvelopeFast } from "../types/fastWire.js";
import {
  envelopeSignBytes,
  type MessageSigner,
  PROTOCOL_VERSION,
  type SignatureVerifier,
} from "../types/signing.js";
import type { LocalStatus, NetRejectReason } from "./types.js";

export const NONCE_LENGTH = 32;
const MAGIC = [0x50, 0x42, 0x48, 0x53]; // "PBHS"
const HANDSHAKE_VERSION = 1;
const TAG = new TextEncoder().encode("PARABFT/PEER-HANDSHAKE/V1\0");

export const FrameKind = { Challenge: 1, ServerProof: 2, DialerProof: 3 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** One handshake frame. `nonce` is empty in a DIALER_PROOF, `signature` empty in a CHALLENGE. */
export interface HandshakeFrame {
  kind: FrameKind;
  chainId: string;
  /** The sender of this frame and the validator it addresses. */
  from: number;
  to: number;
  epoch: bigint;
  nonce: Uint8Array;
  signature: Uint8Array;
}

export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_LENGTH));
}

export function encodeFrame(f: HandshakeFrame): Uint8Array {
  const chain = new TextEncoder().encode(f.chainId);
  if (chain.length > 255) throw new RangeError("chain id too long");
  const out = new Uint8Array(4 + 2 + 1 + chain.length + 16 + 1 + f.nonce.length + 1 + f.signature.length);
  const dv = new DataView(out.buffer);
  let o = 0;
  out.set(MAGIC, o);
  o += 4;
  out[o++] = f.kind;
  out[o++] = HANDSHAKE_VERSION;
  out[o++] = chain.length;
  out.set(chain, o);
  o += chain.length;
  dv.setUint32(o, f.from);
  dv.setUint32(o + 4, f.to);
  dv.setBigUint64(o + 8, f.epoch);
  o += 16;
  out[o++] = f.nonce.length;
  out.set(f.nonce, o);
  o += f.nonce.length;
  out[o++] = f.signature.length;
  out.set(f.signature, o);
  return out;
}

/** A frame, or null when the bytes are not exactly one well-formed frame of `kind`. */
export function decodeFrame(bytes: Uint8Array, kind: FrameKind): HandshakeFrame | null {
  try {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let o = 0;
    for (const m of MAGIC) if (bytes[o++] !== m) return null;
    if (bytes[o++] !== kind || bytes[o++] !== HANDSHAKE_VERSION) return null;
    const chainLen = bytes[o++]!;
    const chainId = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(o, o + chainLen));
    o += chainLen;
    const from = dv.getUint32(o);
    const to = dv.getUint32(o + 4);
    const epoch = dv.getBigUint64(o + 8);
    o += 16;
    const nonceLen = bytes[o++];
    if (nonceLen !== (kind === FrameKind.DialerProof ? 0 : NONCE_LENGTH)) return null;
    const nonce = bytes.slice(o, o + nonceLen);
    o += nonceLen;
    const sigLen = bytes[o++];
    if (sigLen === undefined || (kind === FrameKind.Challenge ? sigLen !== 0 : sigLen !== 64)) return null;
    const signature = bytes.slice(o, o + sigLen);
    o += sigLen;
    if (o !== bytes.length) return null;
    return { kind, chainId, from, to, epoch, nonce, signature };
  } catch {
    return null;
  }
}

export interface Transcript {
  chainId: string;
  dialer: number;
  server: number;
  dialerEpoch: bigint;
  serverEpoch: bigint;
  dialerNonce: Uint8Array;
  serverNonce: Uint8Array;
}

/** What each side signs; `role` keeps a server's proof from ever serving as a dialer's. */
export function transcriptSignBytes(t: Transcript, role: "server" | "dialer"): Uint8Array {
  const chain = new TextEncoder().encode(t.chainId);
  const out = new Uint8Array(TAG.length + 1 + 1 + chain.length + 8 + 16 + 2 * NONCE_LENGTH);
  const dv = new DataView(out.buffer);
  let o = 0;
  out.set(TAG, o);
  o += TAG.length;
  out[o++] = role === "server" ? 1 : 2;
  out[o++] = chain.length;
  out.set(chain, o);
  o += chain.length;
  dv.setUint32(o, t.dialer);
  dv.setUint32(o + 4, t.server);
  dv.setBigUint64(o + 8, t.dialerEpoch);
  dv.setBigUint64(o + 16, t.serverEpoch);
  o += 24;
  out.set(t.dialerNonce, o);
  out.set(t.serverNonce, o + NONCE_LENGTH);
  return out;
}

export interface HandshakeIdentity {
  chainId: string;
  localIndex: number;
  localEpoch: bigint;
  epochSlack: number;
  publicKeyOf(index: number): Uint8Array | undefined;
  verifier: SignatureVerifier;
}

export type Checked<T> = ({ ok: true } & T) | { ok: false; reason: NetRejectReason };

function epochGap(a: bigint, b: bigint): bigint {
  return a > b ? a - b : b - a;
}

/** Server side, step 1: a dialer's CHALLENGE (no signature yet; cheap checks only). */
export function checkChallenge(
  bytes: Uint8Array,
  id: HandshakeIdentity,
): Checked<{ dialer: number; epoch: bigint; nonce: Uint8Array }> {
  const f = decodeFrame(bytes, FrameKind.Challenge);
  if (!f) return { ok: false, reason: "handshake_malformed" };
  if (f.chainId !== id.chainId) return { ok: false, reason: "handshake_chain" };
  if (f.to !== id.localIndex) return { ok: false, reason: "handshake_unexpected_peer" };
  if (epochGap(f.epoch, id.localEpoch) > BigInt(id.epochSlack))
    return { ok: false, reason: "handshake_epoch" };
  if (f.from === id.localIndex || id.publicKeyOf(f.from) === undefined)
    return { ok: false, reason: "handshake_unknown_sender" };
  return { ok: true, dialer: f.from, epoch: f.epoch, nonce: f.nonce };
}

/** Dialer side: the server's proof over our nonce. */
export function checkServerProof(
  bytes: Uint8Array,
  id: HandshakeIdentity,
  expected: { server: number; dialerNonce: Uint8Array },
): Checked<{ epoch: bigint; nonce: Uint8Array; transcript: Transcript }> {
  const f = decodeFrame(bytes, FrameKind.ServerProof);
  if (!f) return { ok: false, reason: "handshake_malformed" };
  if (f.chainId !== id.chainId) return { ok: false, reason: "handshake_chain" };
  if (f.from !== expected.server || f.to !== id.localIndex)
    return { ok: false, reason: "handshake_unexpected_peer" };
  if (epochGap(f.epoch, id.localEpoch) > BigInt(id.epochSlack))
    return { ok: false, reason: "handshake_epoch" };
  const key = id.publicKeyOf(f.from);
  if (!key) return { ok: false, reason: "handshake_unknown_sender" };
  const transcript: Transcript = {
    chainId: id.chainId,
    dialer: id.localIndex,
    server: f.from,
    dialerEpoch: id.localEpoch,
    serverEpoch: f.epoch,
    dialerNonce: expected.dialerNonce,
    serverNonce: f.nonce,
  };
  if (!id.verifier.verify(key, transcriptSignBytes(transcript, "server"), f.signature))
    return { ok: false, reason: "handshake_bad_proof" };
  return { ok: true, epoch: f.epoch, nonce: f.nonce, transcript };
}

/** Server side, step 2: the dialer's proof over our nonce. */
export function checkDialerProof(
  bytes: Uint8Array,
  id: HandshakeIdentity,
  t: Transcript,
): Checked<Record<never, never>> {
  const f = decodeFrame(bytes, FrameKind.DialerProof);
  if (!f) return { ok: false, reason: "handshake_malformed" };
  if (f.chainId !== id.chainId || f.from !== t.dialer || f.to !== t.server || f.epoch !== t.dialerEpoch)
    return { ok: false, reason: "handshake_bad_proof" };
  const key = id.publicKeyOf(t.dialer);
  if (!key) return { ok: false, reason: "handshake_unknown_sender" };
  if (!id.verifier.verify(key, transcriptSignBytes(t, "dialer"), f.signature))
    return { ok: false, reason: "handshake_bad_proof" };
  return { ok: true };
}

export function challengeFrame(
  chainId: string,
  dialer: number,
  server: number,
  epoch: bigint,
  nonce: Uint8Array,
) {
  return encodeFrame({
    kind: FrameKind.Challenge,
    chainId,
    from: dialer,
    to: server,
    epoch,
    nonce,
    signature: new Uint8Array(),
  });
}

export function serverProofFrame(t: Transcript, signer: MessageSigner): Uint8Array {
  return encodeFrame({
    kind: FrameKind.ServerProof,
    chainId: t.chainId,
    from: t.server,
    to: t.dialer,
    epoch: t.serverEpoch,
    nonce: t.serverNonce,
    signature: signer.sign(transcriptSignBytes(t, "server")),
  });
}

export function dialerProofFrame(t: Transcript, signer: MessageSigner): Uint8Array {
  return encodeFrame({
    kind: FrameKind.DialerProof,
    chainId: t.chainId,
    from: t.dialer,
    to: t.server,
    epoch: t.dialerEpoch,
    nonce: new Uint8Array(),
    signature: signer.sign(transcriptSignBytes(t, "dialer")),
  });
}

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

const KIND_BY_FIELD = [
  "",
  "prePrepare",
  "prepare",
  "commit",
  "checkpoint",
  "viewChange",
  "newView",
  "status",
  "blockRequest",
  "blockResponse",
  "txBatch",
  "bodyRequest",
  "bodyResponse",
];

/**
 * The sender and PeerMessage kind (oneof case name) of an encoded envelope, without decoding the
 * payload: the kind is the field number of the payload's first tag. Null when the bytes are not
 * an Envelope; kind "unknown" when the payload does not start with a known kind. The decoded
 * Envelope comes with it, so that the node's verdict does not decode the same bytes a second time
 * (src/net hands it on with the bytes).
 */
export function decodeEnvelopeHeader(
  bytes: Uint8Array,
): { sender: number; kind: string; epoch: bigint; envelope: Envelope } | null {
  let env: Envelope | undefined = decodeEnvelopeFast(bytes);
  if (env === undefined) {
    try {
      env = fromBinary(EnvelopeSchema, bytes);
    } catch {
      return null;
    }
  }
  const p = env.payload;
  let tag = 0;
  let shift = 0;
  for (let i = 0; i < Math.min(p.length, 5); i++) {
    tag |= (p[i]! & 0x7f) << shift;
    if ((p[i]! & 0x80) === 0) break;
    shift += 7;
  }
  const field = tag >>> 3;
  return { sender: env.sender, kind: KIND_BY_FIELD[field] || "unknown", epoch: env.epoch, envelope: env };
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
