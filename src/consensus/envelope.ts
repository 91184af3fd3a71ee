// Envelope authentication and stateless message checks (DESIGN §2 "Verdicts", §3). Pure: the node
// may run it in a verify worker, the simulator runs it with its stand-in signature scheme.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type CheckpointCertificate,
  type CommittedBlock,
  type Envelope,
  EnvelopeSchema,
  type NewView,
  type PeerMessage,
  PeerMessageSchema,
  type PreparedCertificate,
  type ViewChange,
} from "../gen/parabft/v1/consensus_pb.js";
import type { Block, CommitCertificate, VoteSignature } from "../gen/parabft/v1/types_pb.js";
import { blockBodyMatchesHeader, blockDigest, nullBlockDigest } from "../types/block.js";
import { bytesEqual } from "../types/bytes.js";
import { decodeEnvelopeFast, decodeVoteFast, encodeEnvelopeFast, encodeVoteFast } from "../types/fastWire.js";
import type { Hash } from "../types/hash.js";
import {
  checkpointSignBytes,
  commitSignBytes,
  envelopeSignBytes,
  type MessageSigner,
  PROTOCOL_VERSION,
  prepareSignBytes,
  type SignatureVerifier,
} from "../types/signing.js";
import { epochFloor } from "./epochs.js";
import { computeNewViewProposals } from "./pbft/newView.js";
import type {
  CheckedMessage,
  Epoch,
  IgnoreReason,
  OutMessage,
  PeerMessageKind,
  RejectReason,
  ValidatorIndex,
  Verdict,
  VoteQuery,
} from "./pbft/types.js";
import type { EpochSets, ValidatorSet } from "./valset/index.js";

export interface EnvelopeContext {
  chainId: string;
  sets: EpochSets;
  verifier: SignatureVerifier;
  maxMessageBytes: number;
  /** The receiver's epoch: an unknown epoch above it is "future" (ignore + catch up), below it "stale". */
  currentEpoch: Epoch;
  /** Heights per epoch (ReplicaConfig.epochLength): NEW-VIEW proposals start above the epoch's floor. */
  epochLength?: number;
}

export type EnvelopeCheck =
  | { verdict: { kind: "accept" }; msg: CheckedMessage; epoch?: undefined; sender?: undefined }
  | { verdict: { kind: "ignore"; reason: IgnoreReason }; msg?: undefined; epoch?: Epoch; sender?: number }
  | { verdict: { kind: "reject"; reason: RejectReason }; msg?: undefined; epoch?: Epoch; sender?: number };

const VOTE_KINDS: ReadonlySet<PeerMessageKind> = new Set(["prepare", "commit", "checkpoint"]);

/**
 * Gossip that carries its own signatures and asserts nothing as its sender: a TxBatch (each tx is
 * signed by its account). It may travel unsigned (sealGossip); its sender is then the peer that
 * the authenticated stream proved (src/net's wrong_sender check, the driver's senderIs), which
 * is all a penalty for a bad batch needs. Saves one signature and three verifications per batch.
 */
const TRANSPORT_AUTHENTICATED_KINDS: ReadonlySet<PeerMessageKind> = new Set(["txBatch"]);

const reject = (reason: RejectReason, epoch?: Epoch, sender?: number): EnvelopeCheck => ({
  verdict: { kind: "reject", reason },
  epoch,
  sender,
});
const ignore = (reason: IgnoreReason, epoch?: Epoch, sender?: number): EnvelopeCheck => ({
  verdict: { kind: "ignore", reason },
  epoch,
  sender,
});

/**
 * Asked for a PREPARE or COMMIT before its vote signature is verified: false = the core could not
 * use it (ConsensusCore.voteNeeded), so it is ignored unverified as NOT_NEEDED. Must be pure.
 */
export type VoteFilter = (q: VoteQuery) => boolean;

export interface CheckOptions {
  /** See VoteFilter; without it every vote is verified. */
  voteNeeded?: VoteFilter;
  /**
   * The caller received these bytes on a stream authenticated as a validator and rejects the
   * envelope unless its `sender` is that validator (the driver's senderIs, src/net's
   * wrong_sender). A StatusReport's envelope signature is then not verified: a status is never
   * relayed, stored or evidence, so its signature proves nothing the stream did not (issue 14:
   * 0.6 of ~7 verifies a height at 10 tx/s). Senders still sign it, for older builds.
   */
  senderAuthenticated?: boolean;
}

/** Field number of `status` in PeerMessage's oneof (proto/parabft/v1/consensus.proto). */
const STATUS_FIELD = 7;

/**
 * Decodes and authenticates one envelope and every signature nested in it. Stateless: views and
 * watermarks are the replica's business. Never throws on peer input. `decoded`: the Envelope of
 * these very bytes, when the transport already decoded them (not decoded again).
 */
export function checkEnvelope(
  bytes: Uint8Array,
  ctx: EnvelopeContext,
  decoded?: Envelope,
  opts?: CheckOptions,
): EnvelopeCheck {
  if (bytes.length > ctx.maxMessageBytes) return reject("OVERSIZED");
  let env = decoded ?? decodeEnvelopeFast(bytes);
  if (env === undefined) {
    try {
      env = fromBinary(EnvelopeSchema, bytes);
    } catch {
      return reject("MALFORMED");
    }
  }
  return checkDecodedEnvelope(env, bytes, ctx, opts);
}

/** The payload decoded when it is a StatusReport (its first tag names field 7), else undefined. */
function statusPayload(payload: Uint8Array): PeerMessage | undefined {
  // Field 7, wire type 2 (length-delimited): tag byte 0x3a. Anything else is decoded later.
  if (payload.length === 0 || payload[0] !== ((STATUS_FIELD << 3) | 2)) return undefined;
  try {
    const m = fromBinary(PeerMessageSchema, payload);
    // A later field of the oneof wins over the first: only a real status qualifies.
    return m.kind.case === "status" ? m : undefined;
  } catch {
    return undefined;
  }
}

export function checkDecodedEnvelope(
  env: Envelope,
  bytes: Uint8Array,
  ctx: EnvelopeContext,
  opts?: CheckOptions,
): EnvelopeCheck {
  if (env.version !== PROTOCOL_VERSION) return reject("BAD_VERSION");
  if (env.chainId !== ctx.chainId) return reject("WRONG_CHAIN");
  const set = ctx.sets.get(env.epoch);
  if (set === undefined) {
    return env.epoch > ctx.currentEpoch
      ? ignore("FUTURE_EPOCH", env.epoch)
      : ignore("STALE_EPOCH", env.epoch);
  }
  if (!set.has(env.sender)) return reject("UNKNOWN_SENDER", env.epoch);
  const senderKey = set.members[env.sender]!.publicKey;
  const signed = env.signature.length !== 0;
  // A status on an authenticated stream needs no signature check (CheckOptions).
  const status = signed && opts?.senderAuthenticated === true ? statusPayload(env.payload) : undefined;
  // Signed envelopes are authenticated before their payload is even decoded.
  if (
    signed &&
    status === undefined &&
    !ctx.verifier.verify(
      senderKey,
      envelopeSignBytes(env.chainId, env.epoch, env.sender, env.payload),
      env.signature,
    )
  ) {
    return reject("BAD_SIGNATURE", env.epoch, env.sender);
  }
  let message: PeerMessage | undefined = status ?? decodeVoteFast(env.payload);
  if (message === undefined) {
    try {
      message = fromBinary(PeerMessageSchema, env.payload);
    } catch {
      return reject(signed ? "MALFORMED" : "BAD_SIGNATURE", env.epoch, env.sender);
    }
  }
  const kind = message.kind.case;
  if (kind === undefined) return reject(signed ? "MALFORMED" : "BAD_SIGNATURE", env.epoch, env.sender);
  if (VOTE_KINDS.has(kind)) {
    // Votes are authenticated by the vote signature that certificates reuse; the envelope carries none.
    if (signed) return reject("MALFORMED", env.epoch, env.sender);
    const voteNeeded = opts?.voteNeeded;
    if (voteNeeded !== undefined && !voteNeededOf(voteNeeded, env, message))
      return ignore("NOT_NEEDED", env.epoch, env.sender);
    const signBytes = voteSignBytes(ctx.chainId, env.epoch, message);
    if (!ctx.verifier.verify(senderKey, signBytes, voteSignatureOf(message))) {
      return reject("BAD_SIGNATURE", env.epoch, env.sender);
    }
  } else if (!signed && !TRANSPORT_AUTHENTICATED_KINDS.has(kind)) {
    return reject("BAD_SIGNATURE", env.epoch, env.sender);
  }

  const nested = checkNested(message, env, set, ctx);
  if (nested !== null) return reject(nested, env.epoch, env.sender);
  return {
    verdict: { kind: "accept" },
    msg: { envelope: env, bytes, epoch: env.epoch, sender: env.sender, message },
  };
}

function voteNeededOf(filter: VoteFilter, env: Envelope, m: PeerMessage): boolean {
  switch (m.kind.case) {
    case "prepare":
    case "commit": {
      const v = m.kind.value;
      if (v.blockDigest.length !== 32) return true;
      return filter({
        epoch: env.epoch,
        kind: m.kind.case,
        sender: env.sender,
        view: v.view,
        height: v.height,
        digest: v.blockDigest,
      });
    }
    case "checkpoint":
      return filter({
        epoch: env.epoch,
        kind: "checkpoint",
        sender: env.sender,
        view: 0n,
        height: m.kind.value.height,
        digest: m.kind.value.chainHash,
      });
    default:
      return true;
  }
}

function voteSignBytes(chainId: string, epoch: Epoch, m: PeerMessage): Uint8Array {
  switch (m.kind.case) {
    case "prepare": {
      const v = m.kind.value;
      return prepareSignBytes(chainId, epoch, v.view, v.height, v.blockDigest);
    }
    case "commit": {
      const v = m.kind.value;
      return commitSignBytes(chainId, epoch, v.view, v.height, v.blockDigest);
    }
    case "checkpoint": {
      const v = m.kind.value;
      return checkpointSignBytes(chainId, epoch, v.height, v.chainHash, v.stateRoot);
    }
    default:
      throw new Error(`not a vote: ${m.kind.case}`);
  }
}

function voteSignatureOf(m: PeerMessage): Uint8Array {
  switch (m.kind.case) {
    case "prepare":
    case "commit":
    case "checkpoint":
      return m.kind.value.voteSignature;
    default:
      throw new Error(`not a vote: ${m.kind.case}`);
  }
}

/** Stateless checks of message content and of every signature nested inside it. */
function checkNested(
  m: PeerMessage,
  env: Envelope,
  set: ValidatorSet,
  ctx: EnvelopeContext,
): RejectReason | null {
  switch (m.kind.case) {
    case "prePrepare": {
      const pp = m.kind.value;
      if (set.primary(pp.view) !== env.sender) return "NOT_PRIMARY";
      if (pp.blockDigest.length !== 32) return "MALFORMED";
      // A fresh PRE-PREPARE always carries its block; null blocks only come through NEW-VIEW.
      if (pp.block === undefined) return "MALFORMED";
      return checkBlockAgainstDigest(pp.block, pp.blockDigest, ctx.chainId, env.epoch, pp.height);
    }
    case "prepare":
    case "commit":
      return m.kind.value.blockDigest.length === 32 ? null : "MALFORMED";
    case "checkpoint": {
      const c = m.kind.value;
      return c.chainHash.length === 32 && c.stateRoot.length === 32 ? null : "MALFORMED";
    }
    case "viewChange":
      return checkViewChange(m.kind.value, env.epoch, ctx);
    case "newView":
      return checkNewView(m.kind.value, env, set, ctx).reason;
    case "blockResponse": {
      for (const cb of m.kind.value.blocks) {
        const r = checkCommittedBlock(cb, ctx);
        if (r !== null) return r;
      }
      return null;
    }
    case "bodyResponse": {
      const br = m.kind.value;
      if (br.block?.header === undefined) return "MALFORMED";
      if (!bytesEqual(blockDigest(br.block.header), br.blockDigest)) return "BAD_DIGEST";
      return blockBodyMatchesHeader(br.block) ? null : "BAD_BLOCK";
    }
    case "blockRequest": {
      const r = m.kind.value;
      return r.fromHeight <= r.toHeight ? null : "MALFORMED";
    }
    default:
      return null;
  }
}

/** Header fields must name this chain, epoch and height; the digest must be the header's. */
export function checkBlockAgainstDigest(
  block: Block,
  digest: Hash,
  chainId: string,
  epoch: Epoch,
  height: bigint,
): RejectReason | null {
  const h = block.header;
  if (h === undefined) return "MALFORMED";
  if (!bytesEqual(blockDigest(h), digest)) return "BAD_DIGEST";
  if (h.chainId !== chainId || h.epoch !== epoch || h.height !== height) return "BAD_BLOCK";
  return blockBodyMatchesHeader(block) ? null : "BAD_BLOCK";
}

/** Quorum of distinct, valid signers; `signBytes` is the same for every signer. */
export function checkQuorumSignatures(
  sigs: readonly VoteSignature[],
  signBytes: Uint8Array,
  set: ValidatorSet,
  verifier: SignatureVerifier,
): boolean {
  const seen = new Set<number>();
  let power = 0n;
  for (const s of sigs) {
    if (!set.has(s.validator) || seen.has(s.validator)) return false;
    seen.add(s.validator);
    if (!verifier.verify(set.members[s.validator]!.publicKey, signBytes, s.signature)) return false;
    power += set.powerOf(s.validator);
  }
  return power >= set.quorum;
}

export function checkPreparedCertificate(
  pc: PreparedCertificate,
  epoch: Epoch,
  ctx: Pick<EnvelopeContext, "chainId" | "sets" | "verifier">,
): boolean {
  const set = ctx.sets.get(epoch);
  if (set === undefined || pc.blockDigest.length !== 32) return false;
  const sb = prepareSignBytes(ctx.chainId, epoch, pc.view, pc.height, pc.blockDigest);
  return checkQuorumSignatures(pc.prepares, sb, set, ctx.verifier);
}

export function checkCheckpointCertificate(
  cc: CheckpointCertificate,
  ctx: Pick<EnvelopeContext, "chainId" | "sets" | "verifier">,
): boolean {
  const set = ctx.sets.get(cc.epoch);
  if (set === undefined) return false;
  const sb = checkpointSignBytes(ctx.chainId, cc.epoch, cc.height, cc.chainHash, cc.stateRoot);
  return checkQuorumSignatures(cc.signatures, sb, set, ctx.verifier);
}

export function checkCommitCertificate(
  cert: CommitCertificate,
  ctx: Pick<EnvelopeContext, "chainId" | "sets" | "verifier">,
): boolean {
  const set = ctx.sets.get(cert.epoch);
  if (set === undefined || cert.blockDigest.length !== 32) return false;
  // One view for every signature: COMMITs of two views never add up to a certificate.
  const sb = commitSignBytes(ctx.chainId, cert.epoch, cert.view, cert.height, cert.blockDigest);
  return checkQuorumSignatures(cert.signatures, sb, set, ctx.verifier);
}

/** A committed block from state transfer: a valid certificate for exactly this block (or null block). */
export function checkCommittedBlock(
  cb: CommittedBlock,
  ctx: Pick<EnvelopeContext, "chainId" | "sets" | "verifier">,
): RejectReason | null {
  const cert = cb.certificate;
  if (cert === undefined || cert.height !== cb.height) return "BAD_CERTIFICATE";
  if (cb.block === undefined) {
    if (!bytesEqual(cert.blockDigest, nullBlockDigest(ctx.chainId, cert.epoch, cb.height)))
      return "BAD_DIGEST";
  } else {
    const r = checkBlockAgainstDigest(cb.block, cert.blockDigest, ctx.chainId, cert.epoch, cb.height);
    if (r !== null) return r;
  }
  return checkCommitCertificate(cert, ctx) ? null : "BAD_CERTIFICATE";
}

function checkViewChange(vc: ViewChange, epoch: Epoch, ctx: EnvelopeContext): RejectReason | null {
  if (vc.newView === 0n) return "MALFORMED";
  let low = 0n;
  if (vc.stableCheckpoint !== undefined) {
    if (vc.stableCheckpoint.epoch !== epoch) return "BAD_CERTIFICATE";
    if (!checkCheckpointCertificate(vc.stableCheckpoint, ctx)) return "BAD_CERTIFICATE";
    low = vc.stableCheckpoint.height;
  }
  const heights = new Set<bigint>();
  for (const pc of vc.prepared) {
    if (pc.view >= vc.newView || pc.height <= low || heights.has(pc.height)) return "MALFORMED";
    heights.add(pc.height);
    if (!checkPreparedCertificate(pc, epoch, ctx)) return "BAD_CERTIFICATE";
  }
  return null;
}

export interface DecodedViewChange {
  sender: ValidatorIndex;
  bytes: Uint8Array;
  vc: ViewChange;
}

export interface NewViewCheck {
  reason: RejectReason | null;
  viewChanges: DecodedViewChange[];
  /** Highest stable checkpoint among the VIEW-CHANGEs (the new view's low watermark). */
  stable: CheckpointCertificate | undefined;
}

/** Checks every nested VIEW-CHANGE and that the proposals follow from them. */
export function checkNewView(
  nv: NewView,
  env: Envelope,
  set: ValidatorSet,
  ctx: EnvelopeContext,
): NewViewCheck {
  const fail = (reason: RejectReason): NewViewCheck => ({ reason, viewChanges: [], stable: undefined });
  if (set.primary(nv.view) !== env.sender) return fail("NOT_PRIMARY");
  if (nv.view === 0n) return fail("MALFORMED");
  const decoded: DecodedViewChange[] = [];
  const senders = new Set<number>();
  for (const raw of nv.viewChanges) {
    const inner = checkEnvelope(raw, ctx);
    if (inner.msg === undefined) return fail("BAD_CERTIFICATE");
    const m = inner.msg;
    if (m.message.kind.case !== "viewChange" || m.epoch !== env.epoch) return fail("BAD_NEW_VIEW");
    const vc = m.message.kind.value;
    if (vc.newView !== nv.view || senders.has(m.sender)) return fail("BAD_NEW_VIEW");
    senders.add(m.sender);
    decoded.push({ sender: m.sender, bytes: raw, vc });
  }
  if (!set.isQuorum(senders)) return fail("BAD_NEW_VIEW");
  const expect = computeNewViewProposals(
    ctx.chainId,
    env.epoch,
    decoded.map((d) => d.vc),
    epochFloor(env.epoch, ctx.epochLength),
  );
  if (expect.proposals.length !== nv.proposals.length) return fail("BAD_NEW_VIEW");
  for (let i = 0; i < expect.proposals.length; i++) {
    const a = expect.proposals[i]!;
    const b = nv.proposals[i]!;
    if (a.height !== b.height || a.isNull !== b.isNull || !bytesEqual(a.blockDigest, b.blockDigest)) {
      return fail("BAD_NEW_VIEW");
    }
  }
  return { reason: null, viewChanges: decoded, stable: expect.stable };
}

/**
 * Builds and signs an envelope. Votes must already carry their vote signature (their envelope
 * signature stays empty); every other message is signed over envelopeSignBytes here.
 */
export function sealMessage(
  chainId: string,
  epoch: Epoch,
  sender: ValidatorIndex,
  signer: MessageSigner,
  message: PeerMessage,
): OutMessage {
  const kind = message.kind.case;
  if (kind === undefined) throw new Error("cannot seal an empty PeerMessage");
  const vote = VOTE_KINDS.has(kind);
  // Votes (most of a height's messages) are encoded by hand: toBinary's bytes (src/types/fastWire.ts).
  const payload = (vote ? encodeVoteFast(message) : undefined) ?? toBinary(PeerMessageSchema, message);
  const signature = vote
    ? new Uint8Array(0)
    : signer.sign(envelopeSignBytes(chainId, epoch, sender, payload));
  const envelope = create(EnvelopeSchema, {
    version: PROTOCOL_VERSION,
    chainId,
    epoch,
    sender,
    payload,
    signature,
  });
  return { kind, envelope, bytes: encodeEnvelopeFast(envelope) };
}

/** An unsigned envelope for a TRANSPORT_AUTHENTICATED_KINDS message (a TxBatch). */
export function sealGossip(
  chainId: string,
  epoch: Epoch,
  sender: ValidatorIndex,
  message: PeerMessage,
): OutMessage {
  const kind = message.kind.case;
  if (kind === undefined || !TRANSPORT_AUTHENTICATED_KINDS.has(kind))
    throw new Error(`a ${kind ?? "empty"} message must be signed`);
  const envelope = create(EnvelopeSchema, {
    version: PROTOCOL_VERSION,
    chainId,
    epoch,
    sender,
    payload: toBinary(PeerMessageSchema, message),
    signature: new Uint8Array(0),
  });
  return { kind, envelope, bytes: toBinary(EnvelopeSchema, envelope) };
}

export function messageKind(m: PeerMessage): PeerMessageKind | undefined {
  return m.kind.case;
}

export function verdictOf(check: EnvelopeCheck): Verdict {
  return check.verdict;
}
