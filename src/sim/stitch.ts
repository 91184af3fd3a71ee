// The `stitch` fault: a scripted adversary (one Byzantine replica plus an adversarial, asynchronous
// network before T) that drives n = 4 replicas through five views so that, at height 1, every
// honest replica is prepared in a different view for alternating digests, and no single view ever
// gathers a quorum of COMMITs. A correct core therefore commits nothing during the attack and
// converges after T. A core that counts COMMITs of different views together (the test-only
// `stitchCertificates` switch) stitches one certificate for X and another for Y: a safety
// violation. Random seeds do not find this (it needs four consecutive adversarial views, see
// docs/CONSENSUS.md); the script below is that schedule, made deterministic per seed.
//
// Replica 0 is Byzantine (primary of views 0 and 4); 1, 2, 3 are honest. Primary of view v = v mod 4.
//   view 0 (primary 0): X proposed to 1 and 2; only 1 gets a quorum of PREPAREs: 1 prepared X@0,
//           COMMITs X@0 (to 3 only). 0 sends a COMMIT X@0 to 3.          X: {1@0, 0@0}
//   view 1 (primary 1): its NEW-VIEW (which would re-propose X) is lost; the view times out.
//   view 2 (primary 2): NEW-VIEW quorum {0,2,3} proves nothing, 2 proposes a fresh Y; only 2
//           gets a quorum of PREPAREs: 2 prepared Y@2. 0 sends a COMMIT Y@2 to 2. Y: {2@2, 0@2}
//   view 3 (primary 3): NEW-VIEW quorum {0,1,3} carries "X prepared in 0" (1) and not "Y prepared
//           in 2" (2): X is re-proposed; only 3 gets a quorum: 3 prepared X@3, COMMITs X@3.
//           3 now holds X: {1@0, 0@0, 3@3}: three signers, no view with more than two.
//   view 4 (primary 0): NEW-VIEW quorum {0,1,2}: Y@2 outranks X@0, Y is re-proposed; only 1 gets a
//           quorum: 1 prepared Y@4, COMMITs Y@4 (to 2 only). 2 holds Y: {2@2, 0@2, 1@4}.
// The Byzantine replica's own core is kept unprepared (PREPAREs to it are lost), so its
// VIEW-CHANGEs prove nothing; its COMMITs are the two injected ones. Phase messages at other
// heights are lost while the script runs; from view 5 on, and from T on, everything flows.
import { create, fromBinary } from "@bufbuild/protobuf";
import { sealMessage } from "../consensus/envelope.js";
import { EnvelopeSchema, type PeerMessage, PeerMessageSchema } from "../gen/parabft/v1/consensus_pb.js";
import { toHex } from "../types/bytes.js";
import { commitSignBytes } from "../types/signing.js";
import type { StandInSigner } from "./signer.js";

/** The replica the script makes Byzantine. */
export const STITCH_BYZANTINE = 0;
/** Validators the script is written for (with any other n the fault is inert). */
export const STITCH_VALIDATORS = 4;
const H = 1n;

export interface StitchContext {
  chainId: string;
  epoch: bigint;
  /** The Byzantine replica's signer (it signs the injected COMMITs). */
  signer: StandInSigner;
  /** The adversary controls the network only before T. */
  stableAtMs: number;
}

export interface StitchDecision {
  deliver: boolean;
  /** Messages the Byzantine replica sends in reaction (sender STITCH_BYZANTINE). */
  inject: { to: number; bytes: Uint8Array }[];
}

type Rule = { from?: readonly number[]; to?: readonly number[] } | null;

/**
 * Which copies of each phase message of height 1 get through, per (kind, view). null: none;
 * a missing kind: all. from/to: allowed senders/recipients (absent: any).
 */
const SCRIPT: Record<number, Partial<Record<string, Rule>>> = {
  0: {
    prePrepare: { from: [0], to: [1, 2] },
    prepare: { from: [0, 2], to: [1] },
    commit: { from: [1], to: [3] },
  },
  1: { newView: null, prePrepare: null, prepare: null, commit: null },
  2: {
    viewChange: { from: [0, 2, 3] },
    newView: { to: [0, 3] },
    prePrepare: { from: [2], to: [0, 3] },
    prepare: { from: [0, 3], to: [2] },
    commit: null,
  },
  3: {
    viewChange: { from: [0, 1, 3] },
    newView: { to: [0, 1] },
    prePrepare: null,
    prepare: { from: [0, 1], to: [3] },
    commit: null,
  },
  4: {
    viewChange: { from: [0, 1, 2] },
    newView: { to: [1, 2] },
    prePrepare: null,
    prepare: { from: [0, 2], to: [1] },
    commit: { from: [1], to: [2] },
  },
};
/** VIEW-CHANGEs excluded from a NEW-VIEW quorum are kept from the new primary only. */
const VIEW_CHANGE_TO: Record<number, number> = { 2: 2, 3: 3, 4: 0 };

export class StitchAttack {
  readonly stats = { dropped: 0, injected: 0, highestScriptedView: 0 };
  private readonly injected = new Set<string>();
  /** Height-1 COMMITs signed during the script: digest -> view -> signers. */
  private readonly commits = new Map<string, Map<bigint, Set<number>>>();

  constructor(private readonly ctx: StitchContext) {}

  /**
   * The script reached its goal: two digests each signed by COMMITs of a quorum of replicas
   * (3 of 4) when views are ignored, while no single view holds a quorum for either. A core that
   * stitches can then certify both; a correct one certifies neither.
   */
  get stitchable(): boolean {
    let sides = 0;
    for (const byView of this.commits.values()) {
      const all = new Set<number>();
      let maxPerView = 0;
      for (const s of byView.values()) {
        for (const i of s) all.add(i);
        if (s.size > maxPerView) maxPerView = s.size;
      }
      if (all.size >= 3 && maxPerView < 3) sides++;
    }
    return sides >= 2;
  }

  private noteCommit(signer: number, view: bigint, digest: Uint8Array): void {
    const hex = toHex(digest);
    let byView = this.commits.get(hex);
    if (byView === undefined) {
      byView = new Map();
      this.commits.set(hex, byView);
    }
    let s = byView.get(view);
    if (s === undefined) {
      s = new Set();
      byView.set(view, s);
    }
    s.add(signer);
  }

  route(from: number, to: number, bytes: Uint8Array, nowMs: number): StitchDecision {
    const pass: StitchDecision = { deliver: true, inject: [] };
    if (nowMs >= this.ctx.stableAtMs) return pass;
    let message: PeerMessage;
    try {
      const env = fromBinary(EnvelopeSchema, bytes);
      if (env.epoch !== this.ctx.epoch) return pass;
      message = fromBinary(PeerMessageSchema, env.payload);
    } catch {
      return pass;
    }
    const m = message.kind;
    let view: bigint;
    let height: bigint | null = null;
    switch (m.case) {
      case "prePrepare":
      case "prepare":
      case "commit":
        view = m.value.view;
        height = m.value.height;
        break;
      case "viewChange":
        view = m.value.newView;
        break;
      case "newView":
        view = m.value.view;
        break;
      case "blockResponse":
        // No catch-up while the script runs: a replica must not learn a block from a peer.
        this.stats.dropped++;
        return { deliver: false, inject: [] };
      default:
        return pass;
    }
    if (view > 4n) return pass;
    const v = Number(view);
    if (v > this.stats.highestScriptedView) this.stats.highestScriptedView = v;
    const inject: StitchDecision["inject"] = [];
    // The Byzantine replica backs each side once it learns the digest (X in view 0, Y in view 2).
    if (m.case === "prePrepare" && height === H && (view === 0n || view === 2n) && from === primaryOf(v)) {
      const target = view === 0n ? 3 : 2;
      const key = `${view}:${toHex(m.value.blockDigest)}`;
      if (!this.injected.has(key)) {
        this.injected.add(key);
        this.stats.injected++;
        this.noteCommit(STITCH_BYZANTINE, view, m.value.blockDigest);
        inject.push({ to: target, bytes: this.commit(view, m.value.blockDigest) });
      }
    }
    if (m.case === "commit" && height === H) this.noteCommit(from, view, m.value.blockDigest);
    let deliver: boolean;
    if (height !== null && height !== H) deliver = false;
    else if (m.case === "viewChange") {
      const rule = SCRIPT[v]?.viewChange;
      deliver = rule?.from === undefined || rule.from.includes(from) || to !== VIEW_CHANGE_TO[v];
    } else {
      const rule = SCRIPT[v]?.[m.case];
      deliver =
        rule === undefined ||
        (rule !== null &&
          (rule.from === undefined || rule.from.includes(from)) &&
          (rule.to === undefined || rule.to.includes(to)));
    }
    if (!deliver) this.stats.dropped++;
    return { deliver, inject };
  }

  private commit(view: bigint, digest: Uint8Array): Uint8Array {
    const { chainId, epoch, signer } = this.ctx;
    const msg = create(PeerMessageSchema, {
      kind: {
        case: "commit",
        value: {
          view,
          height: H,
          blockDigest: digest,
          voteSignature: signer.sign(commitSignBytes(chainId, epoch, view, H, digest)),
        },
      },
    });
    return sealMessage(chainId, epoch, STITCH_BYZANTINE, signer, msg).bytes;
  }
}

/** The primary of a scripted view (n = 4, epoch 0). */
function primaryOf(v: number): number {
  return v % STITCH_VALIDATORS;
}
