// Byzantine replicas. A Byzantine replica runs the real core with its own key, and this
// adversary rewrites what it sends: equivocating and silent primaries, forged senders, replays
// of others' messages, wrong views and epochs, garbage. Colluding replicas share what they know
// about conflicting blocks, so a double vote can back an equivocation.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { sealMessage } from "../consensus/envelope.js";
import { epochFloor } from "../consensus/epochs.js";
import { computeNewViewProposals } from "../consensus/pbft/newView.js";
import type { OutMessage } from "../consensus/pbft/types.js";
import type { ValidatorSet } from "../consensus/valset/index.js";
import {
  EnvelopeSchema,
  NewViewSchema,
  type PeerMessage,
  PeerMessageSchema,
  type ViewChange,
} from "../gen/parabft/v1/consensus_pb.js";
import { type Block, BlockSchema } from "../gen/parabft/v1/types_pb.js";
import { blockDigest } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { commitSignBytes, envelopeSignBytes, PROTOCOL_VERSION, prepareSignBytes } from "../types/signing.js";
import type { ByzantineBehaviour } from "./faults.js";
import type { Prng } from "./prng.js";
import type { StandInSigner } from "./signer.js";

/** What an honest receiver's verdict must be for a message the adversary knows is bad. */
export type Expectation = "reject" | "ignore" | "notAccept";

export interface Outgoing {
  to: number;
  bytes: Uint8Array;
  /** Extra delay before this copy enters the network (a deliberately late second variant). */
  extraDelayMs: number;
  expect?: Expectation;
}

type Send = (to: number, b: Uint8Array, extraDelayMs?: number, expect?: Expectation) => void;

interface Conflict {
  view: bigint;
  digests: Map<string, Uint8Array>;
  /** Which block each recipient was shown first. */
  firstSeen: Map<number, string>;
}

/** Knowledge shared by colluding Byzantine replicas. */
export class Collusion {
  /** height -> conflicting digests proposed by an equivocating primary. */
  readonly conflicts = new Map<bigint, Conflict>();
  members: number[] = [];
}

export interface AdversaryContext {
  index: number;
  n: number;
  chainId: string;
  epoch: bigint;
  signer: StandInSigner;
  behaviours: readonly ByzantineBehaviour[];
  doubleVote: boolean;
  alwaysCross: boolean;
  /** A new primary picks which VIEW-CHANGEs its NEW-VIEW carries: those that prove the least. */
  nvQuorum?: boolean;
  /** A primary sends its PRE-PREPARE (the only carrier of the body) to fewer than a quorum. */
  withhold?: boolean;
  /** Floods correctly signed future-view votes at the receivers' buffers. */
  flood?: boolean;
  set?: ValidatorSet;
  /** (Epochs) heights per epoch: the adversary follows its core into each new epoch (enterEpoch). */
  epochLength?: number;
  rng: Prng;
  collusion: Collusion;
  /** A block this primary built (so the validity checker knows it was proposed by a primary). */
  onProposed: (block: Block) => void;
}

export class Adversary {
  private readonly replayBuffer: Uint8Array[] = [];
  private readonly has: (b: ByzantineBehaviour) => boolean;
  stats = { equivocations: 0, forged: 0, replayed: 0, wrongView: 0, garbage: 0, silenced: 0, doubleVotes: 0 };

  constructor(private readonly ctx: AdversaryContext) {
    this.has = (b) => ctx.behaviours.includes(b);
  }

  /** VIEW-CHANGEs seen per target view: sender -> signed envelope (for nvQuorum). */
  private readonly viewChanges = new Map<bigint, Map<number, { bytes: Uint8Array; vc: ViewChange }>>();

  private keepViewChange(sender: number, bytes: Uint8Array, vc: ViewChange): void {
    let m = this.viewChanges.get(vc.newView);
    if (m === undefined) {
      m = new Map();
      this.viewChanges.set(vc.newView, m);
      // Old views are useless: keep a few.
      for (const v of [...this.viewChanges.keys()]) if (v + 4n < vc.newView) this.viewChanges.delete(v);
    }
    if (!m.has(sender)) m.set(sender, { bytes, vc });
  }

  /**
   * (Epochs) The adversary's core moved to `epoch` with `set` (the simulator keeps Byzantine
   * replicas at the same index in every set, so `index` and `n` hold).
   */
  enterEpoch(epoch: bigint, set: ValidatorSet): void {
    this.ctx.epoch = epoch;
    this.ctx.set = set;
    this.viewChanges.clear();
  }

  /** Remembers messages from others so they can be replayed later. */
  onReceived(bytes: Uint8Array): void {
    if (this.ctx.nvQuorum) {
      try {
        const env = fromBinary(EnvelopeSchema, bytes);
        const pm = fromBinary(PeerMessageSchema, env.payload);
        if (pm.kind.case === "viewChange" && env.epoch === this.ctx.epoch)
          this.keepViewChange(env.sender, bytes, pm.kind.value);
      } catch {
        // Not a message: nothing to keep.
      }
    }
    if (!this.has("replay")) return;
    if (this.replayBuffer.length < 64) this.replayBuffer.push(bytes);
    else this.replayBuffer[this.ctx.rng.int(64)] = bytes;
  }

  /** Rewrites one message the core wants to send to `recipients`. */
  onOutgoing(recipients: readonly number[], msg: OutMessage): Outgoing[] {
    const { rng } = this.ctx;
    const out: Outgoing[] = [];
    const send: Send = (to, bytes, extraDelayMs = 0, expect) => out.push({ to, bytes, extraDelayMs, expect });
    const message = fromBinary(PeerMessageSchema, msg.envelope.payload);
    const kind = message.kind.case;

    const conflict =
      this.ctx.doubleVote && (kind === "prepare" || kind === "commit")
        ? this.ctx.collusion.conflicts.get(message.kind.value.height)
        : undefined;
    if (kind === "viewChange" && this.ctx.nvQuorum && message.kind.case === "viewChange")
      this.keepViewChange(this.ctx.index, msg.bytes, message.kind.value);
    if (this.has("silent") && (kind === "prePrepare" || kind === "newView")) {
      this.stats.silenced++;
    } else if (kind === "newView" && this.ctx.nvQuorum && message.kind.case === "newView") {
      const bytes = this.pickNewViewQuorum(message.kind.value.view) ?? msg.bytes;
      for (const to of recipients) send(to, bytes);
    } else if (kind === "prePrepare" && this.ctx.withhold && !this.has("equivocate")) {
      this.withholdBody(recipients, msg, send);
    } else if (kind === "prePrepare" && message.kind.value.block !== undefined && this.has("equivocate")) {
      this.equivocate(recipients, msg, message, send);
    } else if (conflict !== undefined) {
      this.splitVote(recipients, msg, message, conflict, send);
    } else {
      for (const to of recipients) send(to, msg.bytes);
    }

    if (this.has("forge") && rng.chance(1, 3)) this.forge(recipients, message, send);
    if (this.has("forge") && kind === "prePrepare" && rng.chance(1, 2))
      this.forgeTx(recipients, message, send);
    if (this.has("wrongview") && rng.chance(1, 3)) this.wrongView(recipients, message, send);
    if (this.has("replay") && this.replayBuffer.length > 0 && rng.chance(1, 3)) {
      this.stats.replayed++;
      send(rng.pick(recipients.length > 0 ? recipients : [0]), rng.pick(this.replayBuffer), rng.int(500));
    }
    if (this.has("garbage") && rng.chance(1, 4)) this.garbage(recipients, send);
    if (this.ctx.flood && rng.chance(1, 3)) this.flood(recipients, message, send);
    return out.filter((o) => o.to !== this.ctx.index);
  }

  /**
   * A valid NEW-VIEW whose quorum of VIEW-CHANGEs is chosen to prove the least: senders with no or
   * only old prepared certificates first. Correct replicas must still accept it, and it must
   * still re-propose every digest that may have committed.
   */
  private pickNewViewQuorum(view: bigint): Uint8Array | null {
    const set = this.ctx.set;
    const m = this.viewChanges.get(view);
    if (set === undefined || m === undefined) return null;
    const weight = (vc: ViewChange) => {
      let w = 0n;
      for (const pc of vc.prepared) w += 1000n + pc.view;
      return w;
    };
    const order = [...m.entries()].sort((a, b) => {
      const d = weight(a[1].vc) - weight(b[1].vc);
      return d < 0n ? -1 : d > 0n ? 1 : a[0] - b[0];
    });
    const chosen: [number, { bytes: Uint8Array; vc: ViewChange }][] = [];
    for (const e of order) {
      if (set.isQuorum(chosen.map((c) => c[0]))) break;
      chosen.push(e);
    }
    if (!set.isQuorum(chosen.map((c) => c[0]))) return null;
    chosen.sort((a, b) => a[0] - b[0]);
    const { proposals } = computeNewViewProposals(
      this.ctx.chainId,
      this.ctx.epoch,
      chosen.map((c) => c[1].vc),
      epochFloor(this.ctx.epoch, this.ctx.epochLength),
    );
    return this.seal(
      create(PeerMessageSchema, {
        kind: {
          case: "newView",
          value: create(NewViewSchema, { view, viewChanges: chosen.map((c) => c[1].bytes), proposals }),
        },
      }),
    );
  }

  /** The PRE-PREPARE goes to the colluders and to fewer honest replicas than a quorum needs. */
  private withholdBody(recipients: readonly number[], msg: OutMessage, send: Send): void {
    const { rng, collusion } = this.ctx;
    const honest = rng.shuffle(recipients.filter((r) => !collusion.members.includes(r)));
    const keep = rng.int(Math.max(1, honest.length));
    for (const to of recipients) if (collusion.members.includes(to)) send(to, msg.bytes);
    for (const to of honest.slice(0, keep)) send(to, msg.bytes);
  }

  /** Correctly signed PREPAREs for views ahead, with random digests: they fill future buffers. */
  private flood(recipients: readonly number[], message: PeerMessage, send: Send): void {
    const { rng } = this.ctx;
    const m = message.kind;
    const view = m.case === "prepare" || m.case === "commit" || m.case === "prePrepare" ? m.value.view : 0n;
    const height =
      m.case === "prepare" || m.case === "commit" || m.case === "prePrepare" ? m.value.height : 1n;
    const to = rng.pick(recipients.length > 0 ? recipients : [0]);
    for (let i = 0; i < 40; i++) {
      const vote = this.vote(
        "prepare",
        view + 1n + BigInt(rng.int(3)),
        height + BigInt(rng.int(4)),
        rng.bytes(32),
      );
      send(to, this.seal(vote), rng.int(20));
    }
  }

  private seal(message: PeerMessage, sender = this.ctx.index, epoch = this.ctx.epoch): Uint8Array {
    return sealMessage(this.ctx.chainId, epoch, sender, this.ctx.signer, message).bytes;
  }

  /** Different blocks to the two halves; sometimes each half later also gets the other one. */
  private equivocate(recipients: readonly number[], msg: OutMessage, message: PeerMessage, send: Send): void {
    if (message.kind.case !== "prePrepare") return;
    const pp = message.kind.value;
    const { rng } = this.ctx;
    const alt = create(BlockSchema, fromBinary(BlockSchema, toBinary(BlockSchema, pp.block!)));
    alt.header!.timestampMs += 1n + BigInt(rng.int(5));
    const altDigest = blockDigest(alt.header!);
    this.ctx.onProposed(alt);
    const altBytes = this.seal(
      create(PeerMessageSchema, {
        kind: {
          case: "prePrepare",
          value: { view: pp.view, height: pp.height, blockDigest: altDigest, block: alt },
        },
      }),
    );
    const c = this.ctx.collusion.conflicts.get(pp.height) ?? {
      view: pp.view,
      digests: new Map(),
      firstSeen: new Map(),
    };
    c.view = pp.view;
    c.digests.set(toHex(pp.blockDigest), pp.blockDigest);
    c.digests.set(toHex(altDigest), altDigest);
    this.ctx.collusion.conflicts.set(pp.height, c);
    this.stats.equivocations++;
    const shuffled = rng.shuffle(recipients);
    if (this.ctx.alwaysCross && shuffled.length >= 3) {
      // Targeted: one replica sees only the first block, one only the second, and the rest (the
      // swing) see both, first then second. A replica that votes for both lets each side reach
      // its own quorum; a correct one votes only for the first it saw, and the second side starves.
      shuffled.forEach((to, i) => {
        if (i === 0) {
          send(to, msg.bytes);
          c.firstSeen.set(to, toHex(pp.blockDigest));
        } else if (i === 1) {
          send(to, altBytes);
          c.firstSeen.set(to, toHex(altDigest));
        } else {
          send(to, msg.bytes);
          send(to, altBytes, rng.int(3));
        }
      });
      return;
    }
    const half = Math.ceil(shuffled.length / 2);
    const cross = rng.chance(1, 2);
    shuffled.forEach((to, i) => {
      const inFirst = i < half;
      send(to, inFirst ? msg.bytes : altBytes);
      c.firstSeen.set(to, toHex(inFirst ? pp.blockDigest : altDigest));
      if (cross) send(to, inFirst ? altBytes : msg.bytes, rng.int(50));
    });
  }

  /**
   * At a height where the collusion equivocated, each recipient gets a vote for the block it was
   * shown first (both blocks when unknown), pushing the two halves towards different quorums.
   */
  private splitVote(
    recipients: readonly number[],
    msg: OutMessage,
    message: PeerMessage,
    c: Conflict,
    send: Send,
  ): void {
    const m = message.kind;
    if (m.case !== "prepare" && m.case !== "commit") return;
    const own = toHex(m.value.blockDigest);
    const bytesFor = new Map<string, Uint8Array>([[own, msg.bytes]]);
    const voteFor = (hex: string): Uint8Array => {
      let b = bytesFor.get(hex);
      if (b === undefined) {
        b = this.seal(this.vote(m.case, m.value.view, m.value.height, c.digests.get(hex)!));
        bytesFor.set(hex, b);
        this.stats.doubleVotes++;
      }
      return b;
    };
    for (const to of recipients) {
      const first = c.firstSeen.get(to);
      if (first !== undefined) send(to, voteFor(first));
      else for (const hex of c.digests.keys()) send(to, voteFor(hex));
    }
  }

  private vote(kind: "prepare" | "commit", view: bigint, height: bigint, d: Uint8Array): PeerMessage {
    const { chainId, epoch, signer } = this.ctx;
    return kind === "prepare"
      ? create(PeerMessageSchema, {
          kind: {
            case: "prepare",
            value: {
              view,
              height,
              blockDigest: d,
              voteSignature: signer.sign(prepareSignBytes(chainId, epoch, view, height, d)),
            },
          },
        })
      : create(PeerMessageSchema, {
          kind: {
            case: "commit",
            value: {
              view,
              height,
              blockDigest: d,
              voteSignature: signer.sign(commitSignBytes(chainId, epoch, view, height, d)),
            },
          },
        });
  }

  /** Claims to be another validator: the signature cannot verify under that validator's key. */
  private forge(recipients: readonly number[], message: PeerMessage, send: Send): void {
    const { rng, n, index } = this.ctx;
    let victim = rng.int(n);
    if (victim === index) victim = (victim + 1) % n;
    this.stats.forged++;
    const bytes = this.seal(message, victim);
    for (const to of recipients) if (rng.chance(1, 2)) send(to, bytes, 0, "reject");
  }

  /**
   * The same PRE-PREPARE with one transaction's signature zeroed. Signatures are outside the
   * digest (txsRoot covers body hashes), so the digest still matches: only the stateless check
   * of every transaction stops a replica from accepting and later delivering this body.
   */
  private forgeTx(recipients: readonly number[], message: PeerMessage, send: Send): void {
    const m = message.kind;
    if (m.case !== "prePrepare" || m.value.block === undefined || m.value.block.txs.length === 0) return;
    const { rng } = this.ctx;
    const clone = fromBinary(PeerMessageSchema, toBinary(PeerMessageSchema, message));
    if (clone.kind.case !== "prePrepare") return;
    const txs = clone.kind.value.block!.txs;
    txs[rng.int(txs.length)]!.signature = new Uint8Array(64);
    this.stats.forged++;
    const bytes = this.seal(clone);
    // To a random half, alongside the genuine copy: either may arrive first.
    for (const to of recipients) if (rng.chance(1, 2)) send(to, bytes, 0, "notAccept");
  }

  /** The same message for a far view or the next epoch, correctly signed by this replica. */
  private wrongView(recipients: readonly number[], message: PeerMessage, send: Send): void {
    const { rng, chainId, signer } = this.ctx;
    const m = message.kind;
    this.stats.wrongView++;
    let bytes: Uint8Array;
    let expect: Expectation | undefined;
    if (rng.chance(1, 2) || (m.case !== "prepare" && m.case !== "prePrepare")) {
      // Re-signed for epoch + 1: a set this replica does not know yet.
      // With epochs the next sets are known ahead: a far epoch is one no replica knows.
      const epoch = this.ctx.epoch + (this.ctx.epochLength !== undefined ? 1000n : 1n);
      const clone = fromBinary(PeerMessageSchema, toBinary(PeerMessageSchema, message));
      const c = clone.kind;
      if (c.case === "prepare")
        c.value.voteSignature = signer.sign(
          prepareSignBytes(chainId, epoch, c.value.view, c.value.height, c.value.blockDigest),
        );
      else if (c.case === "commit")
        c.value.voteSignature = signer.sign(
          commitSignBytes(chainId, epoch, c.value.view, c.value.height, c.value.blockDigest),
        );
      bytes = this.seal(clone, this.ctx.index, epoch);
      // A future epoch is ignored, never punished: the receiver may be the one lagging.
      expect = "ignore";
    } else {
      const clone = fromBinary(PeerMessageSchema, toBinary(PeerMessageSchema, message));
      const c = clone.kind;
      if (c.case !== "prepare" && c.case !== "prePrepare") return;
      const up = rng.chance(2, 3);
      c.value.view = up
        ? c.value.view + 1n + BigInt(rng.int(40))
        : c.value.view > 0n
          ? c.value.view - 1n
          : 0n;
      if (c.case === "prepare")
        c.value.voteSignature = signer.sign(
          prepareSignBytes(chainId, this.ctx.epoch, c.value.view, c.value.height, c.value.blockDigest),
        );
      bytes = this.seal(clone);
    }
    send(rng.pick(recipients.length > 0 ? recipients : [0]), bytes, rng.int(100), expect);
  }

  private garbage(recipients: readonly number[], send: Send): void {
    const { rng } = this.ctx;
    if (recipients.length === 0) return;
    this.stats.garbage++;
    const junk = rng.bytes(1 + rng.int(300));
    // Either raw junk, or a correctly signed envelope whose payload is junk.
    const { chainId, epoch, index, signer } = this.ctx;
    if (rng.chance(1, 2)) {
      send(rng.pick(recipients), junk, 0, "reject");
      return;
    }
    const bytes = envelopeWithPayload(chainId, epoch, index, junk, signer);
    send(rng.pick(recipients), bytes, 0, signedGarbageExpectation(junk));
  }
}

/**
 * What an honest replica must answer to a correctly signed envelope whose payload is random
 * bytes. Random bytes sometimes decode to a well-formed message (e.g. an all-default
 * StatusReport): its sender really signed it, so it is judged like any other message from that
 * sender (no fixed expectation). A payload that does not decode, or decodes to no kind, must be
 * rejected (issue 9, seed 7237: the expectation was wrong, not the core).
 */
export function signedGarbageExpectation(payload: Uint8Array): Expectation | undefined {
  try {
    return fromBinary(PeerMessageSchema, payload).kind.case === undefined ? "reject" : undefined;
  } catch {
    return "reject";
  }
}

function envelopeWithPayload(
  chainId: string,
  epoch: bigint,
  sender: number,
  payload: Uint8Array,
  signer: StandInSigner,
): Uint8Array {
  return toBinary(
    EnvelopeSchema,
    create(EnvelopeSchema, {
      version: PROTOCOL_VERSION,
      chainId,
      epoch,
      sender,
      payload,
      signature: signer.sign(envelopeSignBytes(chainId, epoch, sender, payload)),
    }),
  );
}
