// Safety rules (as Aptos splits out `safety-rules`): the one place that decides whether this
// replica may sign a consensus message, and the owner of what it has signed (the signing state the
// driver persists beside the key). Everything else in the replica proposes; this module disposes.
// Rules (DESIGN §2, docs/CONSENSUS.md):
// - at most one PRE-PREPARE, one PREPARE and one COMMIT per (view, height);
// - a COMMIT of view v only with a prepared certificate of view v for the same digest, or for a
//   digest that already has a commit certificate; no commit lock across views;
// - nothing at all while silent (a replica without signing state, until the amnesia rule lets it);
// - CHECKPOINTs are always allowed: their content is fixed by the executed chain.
import type { PreparedCertificate } from "../../gen/parabft/v1/consensus_pb.js";
import { bytesEqual, toHex } from "../../types/bytes.js";
import type { Hash } from "../../types/hash.js";
import {
  checkpointSignBytes,
  commitSignBytes,
  type MessageSigner,
  prepareSignBytes,
} from "../../types/signing.js";
import type { Epoch, Height, PersistedState, TestOnlyFaults, View } from "./types.js";

type Phase = "prePrepare" | "prepare" | "commit";

export class SafetyRules {
  /** phase -> height -> view -> digest hex signed. */
  private readonly signed: Record<Phase, Map<Height, Map<View, string>>> = {
    prePrepare: new Map(),
    prepare: new Map(),
    commit: new Map(),
  };
  private silentFlag: boolean;

  constructor(
    private readonly chainId: string,
    private readonly epoch: Epoch,
    private readonly signer: MessageSigner,
    private readonly faults: TestOnlyFaults | undefined,
    silent: boolean,
  ) {
    this.silentFlag = silent;
  }

  /** True while the replica may sign nothing but CHECKPOINTs (signing state lost, amnesia rule). */
  get silent(): boolean {
    return this.silentFlag;
  }

  /** The amnesia rule holds: from now on the replica signs like any other. */
  rejoin(): void {
    this.silentFlag = false;
  }

  /** Loads what was signed before a crash (records above the stable height only). */
  restore(p: PersistedState, above: (h: Height) => boolean): void {
    for (const r of p.prePrepares)
      if (r.epoch === this.epoch && above(r.height))
        this.note("prePrepare", r.height, r.view, toHex(r.digest));
    for (const r of p.prepares)
      if (r.epoch === this.epoch && above(r.height)) this.note("prepare", r.height, r.view, toHex(r.digest));
    for (const r of p.commits)
      if (r.epoch === this.epoch && above(r.height)) this.note("commit", r.height, r.view, toHex(r.digest));
  }

  /** Digest (hex) signed in `phase` at (view, height), if any. */
  signedIn(phase: Phase, height: Height, view: View): string | undefined {
    return this.signed[phase].get(height)?.get(view);
  }

  /** May send a PRE-PREPARE (or a NEW-VIEW re-proposal) for `hex` at (view, height)? Records it. */
  prePrepare(view: View, height: Height, hex: string): boolean {
    if (this.silentFlag || this.signedIn("prePrepare", height, view) !== undefined) return false;
    this.note("prePrepare", height, view, hex);
    return true;
  }

  /**
   * May a NEW-VIEW for `view` re-propose these digests? Not when a height was already
   * pre-prepared in `view` for another digest: that NEW-VIEW would equivocate (reachable only
   * after a lost view record). Each re-proposal is then recorded by prePrepare.
   */
  newViewAllowed(view: View, proposals: readonly { height: Height; hex: string }[]): boolean {
    for (const p of proposals) {
      const signed = this.signedIn("prePrepare", p.height, view);
      if (signed !== undefined && signed !== p.hex) return false;
    }
    return true;
  }

  /**
   * Signs a PREPARE unless it conflicts with one already signed in this view. `fresh` is true when
   * it is the first for (view, height): the caller persists it (with the body) before sending.
   */
  prepare(view: View, height: Height, digest: Hash): { signature: Uint8Array; fresh: boolean } | null {
    if (this.silentFlag) return null;
    const hex = toHex(digest);
    const prev = this.signedIn("prepare", height, view);
    if (prev !== undefined && prev !== hex && !this.faults?.acceptSecondPrePrepare) return null;
    const signature = this.signer.sign(prepareSignBytes(this.chainId, this.epoch, view, height, digest));
    if (prev === undefined) this.note("prepare", height, view, hex);
    return { signature, fresh: prev !== hex };
  }

  /**
   * THE COMMIT RULE's gate (the argument is at VoteLog.maybeCommit and in docs/CONSENSUS.md):
   * signs COMMIT(view, height, digest) only once per view, and only with `prepared` = a prepared
   * certificate of this very view for this digest, or when `certified` (the digest already has a
   * commit certificate, so it is the only one any certificate at this height can carry).
   */
  commit(
    view: View,
    height: Height,
    digest: Hash,
    justification: { prepared: PreparedCertificate } | { certified: true },
  ): Uint8Array | null {
    if (this.silentFlag) return null;
    const hex = toHex(digest);
    const sent = this.signedIn("commit", height, view);
    if (sent === hex) return null;
    if (sent !== undefined && !this.faults?.acceptSecondPrePrepare) return null;
    if ("prepared" in justification) {
      const pc = justification.prepared;
      if (pc.view !== view || pc.height !== height || !bytesEqual(pc.blockDigest, digest)) return null;
    }
    if (this.faults?.commitLock) {
      // The old, deadlocking rule: never a second digest at a height, whatever the view.
      for (const d of this.signed.commit.get(height)?.values() ?? []) if (d !== hex) return null;
    }
    this.note("commit", height, view, hex);
    return this.signer.sign(commitSignBytes(this.chainId, this.epoch, view, height, digest));
  }

  /** May send a VIEW-CHANGE? (Its content is what the replica prepared; only silence forbids it.) */
  viewChange(): boolean {
    return !this.silentFlag;
  }

  checkpoint(height: Height, chainHash: Hash, stateRoot: Hash): Uint8Array {
    return this.signer.sign(checkpointSignBytes(this.chainId, this.epoch, height, chainHash, stateRoot));
  }

  /** Forgets heights at or below a stable checkpoint: nothing is signed there any more. */
  prune(stable: Height): void {
    for (const m of Object.values(this.signed)) for (const h of [...m.keys()]) if (h <= stable) m.delete(h);
  }

  private note(phase: Phase, height: Height, view: View, hex: string): void {
    let m = this.signed[phase].get(height);
    if (m === undefined) {
      m = new Map();
      this.signed[phase].set(height, m);
    }
    m.set(view, hex);
  }
}
