// Checkpoints: CHECKPOINT votes, stable checkpoints, garbage collection of the log, divergence.
// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.
import { create } from "@bufbuild/protobuf";
import {
  type Checkpoint,
  type CheckpointCertificate,
  CheckpointCertificateSchema,
  CheckpointSchema,
} from "../../gen/parabft/v1/consensus_pb.js";
import { bytesEqual, toHex } from "../../types/bytes.js";
import type { Hash } from "../../types/hash.js";
import {
  ACCEPTED,
  CHECKPOINT_VOTES_PER_SENDER,
  cmpBig,
  ign,
  PAST_STABLE_KEPT,
  rej,
  sortedSigs,
} from "./base.js";
import type { CheckedMessage, Height, ValidatorIndex, Verdict } from "./types.js";
import { VoteLog } from "./voteLog.js";

export abstract class Checkpoints extends VoteLog {
  protected onCheckpoint(msg: CheckedMessage, c: Checkpoint): Verdict {
    if (c.height === 0n || (c.height % this.interval !== 0n && c.height !== this.lastHeight))
      return rej("MALFORMED");
    // A checkpoint above this epoch's last height belongs to a later epoch's set.
    if (this.lastHeight !== null && c.height > this.lastHeight) return ign("FUTURE_EPOCH");
    this.observe(msg.sender, -1n, null);
    if (c.height <= this._stable) return ign("BELOW_WATERMARK");
    const key = `${toHex(c.chainHash)}:${toHex(c.stateRoot)}`;
    let mine = this.checkpointBySender.get(msg.sender);
    if (mine === undefined) {
      mine = new Map();
      this.checkpointBySender.set(msg.sender, mine);
    }
    const prev = mine.get(c.height);
    if (prev !== undefined) return ign(prev === key ? "DUPLICATE" : "CONFLICT");
    mine.set(c.height, key);
    // Keep only the sender's most recent few heights so a flood cannot grow memory.
    if (mine.size > CHECKPOINT_VOTES_PER_SENDER) {
      let lowest: Height | null = null;
      for (const h of mine.keys()) if (lowest === null || h < lowest) lowest = h;
      if (lowest !== null) {
        const lk = mine.get(lowest)!;
        mine.delete(lowest);
        this.checkpointVotes.get(lowest)?.get(lk)?.delete(msg.sender);
      }
    }
    if (!mine.has(c.height)) return ign("BELOW_WATERMARK");
    this.addCheckpointVote(c.height, key, msg.sender, c.voteSignature, c.chainHash, c.stateRoot);
    return ACCEPTED;
  }

  protected onExecuted(height: Height, stateRoot: Hash, chainHash: Hash | undefined): void {
    if (height > this._executed) this._executed = height;
    if (!this.isCheckpointHeight(height)) return;
    const ch = this.chainHashes.get(height) ?? chainHash;
    if (ch === undefined) return;
    this.ownCheckpoints.set(height, { chainHash: ch, stateRoot });
    // Compared with the stable checkpoint of this height even when the replica executes it late,
    // after later checkpoints already went stable (a lagging replica).
    const sc = this.stableCert?.height === height ? this.stableCert : this.pastStable.get(height);
    if (sc !== undefined) {
      this.pastStable.delete(height);
      if (!bytesEqual(sc.chainHash, ch) || !bytesEqual(sc.stateRoot, stateRoot)) {
        this.diverge(height, stateRoot, sc.stateRoot);
      }
      return;
    }
    if (height <= this._stable) return;
    const signature = this.safety.checkpoint(height, ch, stateRoot);
    this.persist({ kind: "checkpoint", epoch: this.epochNo, height, chainHash: ch, stateRoot });
    this.broadcast(
      this.seal({
        case: "checkpoint",
        value: create(CheckpointSchema, { height, chainHash: ch, stateRoot, voteSignature: signature }),
      }),
    );
    const key = `${toHex(ch)}:${toHex(stateRoot)}`;
    let mine = this.checkpointBySender.get(this.self);
    if (mine === undefined) {
      mine = new Map();
      this.checkpointBySender.set(this.self, mine);
    }
    mine.set(height, key);
    this.addCheckpointVote(height, key, this.self, signature, ch, stateRoot);
  }

  protected addCheckpointVote(
    h: Height,
    key: string,
    sender: ValidatorIndex,
    sig: Uint8Array,
    chainHash: Hash,
    stateRoot: Hash,
  ): void {
    let byKey = this.checkpointVotes.get(h);
    if (byKey === undefined) {
      byKey = new Map();
      this.checkpointVotes.set(h, byKey);
    }
    let sigs = byKey.get(key);
    if (sigs === undefined) {
      sigs = new Map();
      byKey.set(key, sigs);
    }
    sigs.set(sender, sig);
    if (h > this._stable && this.quorumReached(sigs.keys())) {
      this.makeStable(
        create(CheckpointCertificateSchema, {
          epoch: this.epochNo,
          height: h,
          chainHash,
          stateRoot,
          signatures: sortedSigs(sigs),
        }),
      );
    }
  }

  protected makeStable(cert: CheckpointCertificate): void {
    const h = cert.height;
    if (h <= this._stable) return;
    const own = this.ownCheckpoints.get(h);
    if (
      own !== undefined &&
      (!bytesEqual(own.chainHash, cert.chainHash) || !bytesEqual(own.stateRoot, cert.stateRoot))
    ) {
      this.diverge(h, own.stateRoot, cert.stateRoot);
      return;
    }
    const ch = this.chainHashes.get(h);
    if (ch !== undefined && !bytesEqual(ch, cert.chainHash)) {
      this.diverge(h, ch, cert.chainHash);
      return;
    }
    this._stable = h;
    // Kept for a replica that executes h only later (bounded: the last PAST_STABLE_KEPT).
    if (this._executed < h) {
      this.pastStable.set(h, cert);
      for (const k of [...this.pastStable.keys()])
        if (this.pastStable.size > PAST_STABLE_KEPT) this.pastStable.delete(k);
    }
    this.stableCert = cert;
    this.persist({ kind: "stable", epoch: this.epochNo, height: h, certificate: cert });
    this.out.push({
      kind: "stableCheckpoint",
      height: h,
      chainHash: cert.chainHash,
      stateRoot: cert.stateRoot,
    });
    this.gc(h);
    if (this._committed < h) {
      const peer = this.pickPeer(cert.signatures.map((s) => s.validator));
      if (peer !== null && this.fetchTarget === null) this.startFetch(peer, h);
    }
    this.replayBuffer();
  }

  /** Re-broadcasts this replica's own checkpoint votes above the stable checkpoint. */
  protected repeatCheckpoints(): void {
    const heights = [...this.ownCheckpoints.keys()].filter((h) => h > this._stable).sort(cmpBig);
    for (const h of heights) {
      const own = this.ownCheckpoints.get(h)!;
      const voteSignature = this.safety.checkpoint(h, own.chainHash, own.stateRoot);
      this.broadcast(
        this.seal({
          case: "checkpoint",
          value: create(CheckpointSchema, {
            height: h,
            chainHash: own.chainHash,
            stateRoot: own.stateRoot,
            voteSignature,
          }),
        }),
      );
    }
  }

  protected gc(h: Height): void {
    this.safety.prune(h);
    for (const k of [...this.slots.keys()]) if (k <= h) this.slots.delete(k);
    for (const [hex, b] of [...this.bodies]) if (b.height <= h) this.bodies.delete(hex);
    for (const [hex, bh] of [...this.neededBodies]) if (bh <= h) this.neededBodies.delete(hex);
    for (const k of [...this.checkpointVotes.keys()]) if (k <= h) this.checkpointVotes.delete(k);
    for (const m of this.checkpointBySender.values()) for (const k of [...m.keys()]) if (k <= h) m.delete(k);
    for (const k of [...this.chainHashes.keys()]) if (k < h) this.chainHashes.delete(k);
    for (const k of [...this.ownCheckpoints.keys()]) if (k < h) this.ownCheckpoints.delete(k);
    for (const [k, eh] of [...this.evidenceKeys]) if (eh <= h) this.evidenceKeys.delete(k);
    for (const k of [...this.nullDigests.keys()]) if (k <= h) this.nullDigests.delete(k);
    for (const k of [...this.deliveredDigests.keys()]) if (k <= h) this.deliveredDigests.delete(k);
  }

  protected diverge(height: Height, ours: Hash, stable: Hash): void {
    this._status = "diverged";
    this.out.push({ kind: "diverged", height, ours, stable });
    if (this.timerArmed) {
      this.timerArmed = false;
      this.out.push({ kind: "cancelTimer", timer: "view" });
    }
  }
}
