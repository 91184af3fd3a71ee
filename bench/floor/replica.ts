// The normal case of PBFT and nothing else, as a pure state machine: the protocol work the stack
// floor (bench/stackFloor.ts) puts on the wire for each height's block. No view change, no
// checkpoints, no mempool, no storage: what is left is the message pattern every PBFT height
// needs (PRE-PREPARE from the primary, PREPARE and COMMIT from every replica to every other), so
// its cost on this box is a floor under what src/consensus can cost.
//
// The shell (floor/process.ts) verifies a message's signature only when `needed` says the core
// would use it: votes beyond a quorum are dropped unverified, as the node does (NOT_NEEDED).

import { bytesEqual } from "../../src/types/bytes.js";

/** Message kinds on the floor's wire (their byte in wire.ts). */
export const FloorKind = { PrePrepare: 1, Prepare: 2, Commit: 3 } as const;
export type FloorKind = (typeof FloorKind)[keyof typeof FloorKind];

export interface FloorMessage {
  kind: FloorKind;
  /** Sender's replica index. */
  from: number;
  height: bigint;
  /** SHA-256 of the block the height orders (one request or more, wire.ts). */
  digest: Uint8Array;
  /** The block itself: PRE-PREPARE only. */
  request?: Uint8Array;
}

/** What the shell does next: sign and send to every other replica, or report a commit. */
export type FloorAction =
  | { type: "broadcast"; messages: FloorMessage[] }
  /** `request`: what the committed height ordered (null if its PRE-PREPARE never came here). */
  | { type: "committed"; height: bigint; digest: Uint8Array; request: Uint8Array | null };

interface Slot {
  digest: Uint8Array | null;
  request: Uint8Array | null;
  /** Votes by sender, with the digest each named (one that arrived before the proposal may differ). */
  prepares: Map<number, Uint8Array>;
  commits: Map<number, Uint8Array>;
  sentCommit: boolean;
  committed: boolean;
}

/** Votes that name `digest` (votes that came before the proposal may name another). */
function matching(votes: Map<number, Uint8Array>, digest: Uint8Array): number {
  let n = 0;
  for (const d of votes.values()) if (bytesEqual(d, digest)) n++;
  return n;
}

export class FloorReplica {
  /** 2f + 1 with n = 3f + 1. */
  readonly quorum: number;
  private readonly slots = new Map<bigint, Slot>();
  private nextHeight = 1n;
  /** Every height at or below this one is committed here and forgotten. */
  private committedUpTo = 0n;

  constructor(
    readonly id: number,
    readonly n: number,
  ) {
    if (n < 4 || (n - 1) % 3 !== 0 || id < 0 || id >= n) {
      throw new Error(`replica ${id} of ${n}: need n = 3f + 1 ≥ 4 and 0 ≤ id < n`);
    }
    this.quorum = 2 * Math.floor((n - 1) / 3) + 1;
  }

  get isPrimary(): boolean {
    return this.id === 0;
  }

  /** A height proposed (or seen proposed) here is not committed here yet. */
  get inFlight(): boolean {
    return this.nextHeight - 1n > this.committedUpTo;
  }

  /** The primary orders a block at the next height: PRE-PREPARE and its own PREPARE. */
  propose(request: Uint8Array, digest: Uint8Array): FloorAction[] {
    if (!this.isPrimary) throw new Error(`replica ${this.id} is not the primary`);
    const height = this.nextHeight++;
    const slot = this.slot(height);
    slot.digest = digest;
    slot.request = request;
    slot.prepares.set(this.id, digest);
    return [
      {
        type: "broadcast",
        messages: [
          { kind: FloorKind.PrePrepare, from: this.id, height, digest, request },
          { kind: FloorKind.Prepare, from: this.id, height, digest },
        ],
      },
    ];
  }

  /** Whether `m` would change anything: the shell skips verifying the rest. */
  needed(m: FloorMessage): boolean {
    if (m.from < 0 || m.from >= this.n || m.from === this.id || m.height <= this.committedUpTo) return false;
    const slot = this.slots.get(m.height);
    if (m.kind === FloorKind.PrePrepare) return m.from === 0 && (slot === undefined || slot.digest === null);
    if (slot === undefined) return true;
    if (slot.digest !== null && !bytesEqual(slot.digest, m.digest)) return false;
    if (m.kind === FloorKind.Prepare) return !slot.sentCommit && !slot.prepares.has(m.from);
    return !slot.committed && !slot.commits.has(m.from);
  }

  /** A verified message from another replica. */
  receive(m: FloorMessage): FloorAction[] {
    if (!this.needed(m)) return [];
    const slot = this.slot(m.height);
    const out: FloorAction[] = [];
    if (m.kind === FloorKind.PrePrepare) {
      slot.digest = m.digest;
      slot.request = m.request ?? null;
      slot.prepares.set(m.from, m.digest);
      slot.prepares.set(this.id, m.digest);
      out.push({
        type: "broadcast",
        messages: [{ kind: FloorKind.Prepare, from: this.id, height: m.height, digest: m.digest }],
      });
    } else if (m.kind === FloorKind.Prepare) {
      slot.prepares.set(m.from, m.digest);
    } else {
      slot.commits.set(m.from, m.digest);
    }
    this.advance(m.height, slot, out);
    return out;
  }

  private advance(height: bigint, slot: Slot, out: FloorAction[]): void {
    if (slot.digest === null) return;
    const digest = slot.digest;
    if (!slot.sentCommit && matching(slot.prepares, digest) >= this.quorum) {
      slot.sentCommit = true;
      slot.commits.set(this.id, digest);
      out.push({
        type: "broadcast",
        messages: [{ kind: FloorKind.Commit, from: this.id, height, digest: slot.digest }],
      });
    }
    if (slot.sentCommit && !slot.committed && matching(slot.commits, digest) >= this.quorum) {
      slot.committed = true;
      out.push({
        type: "committed",
        height,
        digest: slot.digest,
        request: slot.request,
      });
      // Heights commit in order in a closed loop of one; forget everything up to this one.
      if (height === this.committedUpTo + 1n) {
        this.committedUpTo = height;
        this.slots.delete(height);
        while (this.slots.get(this.committedUpTo + 1n)?.committed) {
          this.slots.delete(++this.committedUpTo);
        }
      }
      if (height >= this.nextHeight) this.nextHeight = height + 1n;
    }
  }

  private slot(height: bigint): Slot {
    let s = this.slots.get(height);
    if (s === undefined) {
      s = {
        digest: null,
        request: null,
        prepares: new Map(),
        commits: new Map(),
        sentCommit: false,
        committed: false,
      };
      this.slots.set(height, s);
    }
    return s;
  }

  /** Heights held in memory (for tests). */
  get openHeights(): number {
    return this.slots.size;
  }
}
