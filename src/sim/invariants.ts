// Invariant checkers, run incrementally after every simulator step (DESIGN §10). Each checker
// keeps just enough state to check the next event in O(1)-ish time, and returns a violation
// instead of throwing so the runner can print the seed that replays it.
import { bytesEqual, toHex } from "../types/bytes.js";

/** `verdict`: an honest replica rejected an honest message; `exception`: the core threw. */
/** `epoch`: a block carries a certificate of another epoch's set than its height's (issue 11). */
/** `election`: honest executors elected different sets for one epoch, or a set breaks the power rule. */
export type InvariantName =
  | "agreement"
  | "order"
  | "validity"
  | "liveness"
  | "verdict"
  | "exception"
  | "epoch"
  | "election";

export interface Violation {
  invariant: InvariantName;
  atMs: number;
  replica?: number;
  height?: bigint;
  detail: string;
}

/** No two honest replicas commit different digests at one height. */
export class AgreementChecker {
  private readonly byHeight = new Map<bigint, { digest: Uint8Array; replica: number }>();

  get heights(): number {
    return this.byHeight.size;
  }

  digestAt(height: bigint): Uint8Array | undefined {
    return this.byHeight.get(height)?.digest;
  }

  onCommit(atMs: number, replica: number, height: bigint, digest: Uint8Array): Violation | null {
    const prev = this.byHeight.get(height);
    if (prev === undefined) {
      this.byHeight.set(height, { digest, replica });
      return null;
    }
    if (bytesEqual(prev.digest, digest)) return null;
    return {
      invariant: "agreement",
      atMs,
      replica,
      height,
      detail: `replica ${replica} committed ${toHex(digest).slice(0, 16)} at height ${height}, replica ${prev.replica} committed ${toHex(prev.digest).slice(0, 16)}`,
    };
  }
}

/** Each replica delivers heights to execution strictly in order, without gaps or repeats. */
export class OrderChecker {
  private readonly last = new Map<number, bigint>();

  /** After a restart a replica resumes from what it persisted; it must continue from there. */
  resume(replica: number, deliveredHeight: bigint): void {
    this.last.set(replica, deliveredHeight);
  }

  lastDelivered(replica: number): bigint {
    return this.last.get(replica) ?? 0n;
  }

  onDeliver(atMs: number, replica: number, height: bigint): Violation | null {
    const prev = this.last.get(replica) ?? 0n;
    if (height !== prev + 1n) {
      return {
        invariant: "order",
        atMs,
        replica,
        height,
        detail: `replica ${replica} delivered height ${height} after ${prev}`,
      };
    }
    this.last.set(replica, height);
    return null;
  }
}

export interface ProposedBlockInfo {
  /** Validator index recorded as the block's proposer when it was built. */
  proposer: number;
}

/**
 * A committed block is either the null block of its height, or a block some primary built
 * and proposed (re-proposals keep the digest), and every transaction in it passes the
 * stateless checks. `txValid` is the simulator's own check, independent of the core.
 */
export class ValidityChecker {
  private readonly proposed = new Map<string, ProposedBlockInfo>();

  constructor(private readonly nullDigest: (height: bigint) => Uint8Array) {}

  recordProposal(digest: Uint8Array, info: ProposedBlockInfo): void {
    const k = toHex(digest);
    if (!this.proposed.has(k)) this.proposed.set(k, info);
  }

  onCommit(
    atMs: number,
    replica: number,
    height: bigint,
    digest: Uint8Array,
    body: { height: bigint; proposer: number; recomputedDigest: Uint8Array; invalidTx: string | null } | null,
  ): Violation | null {
    const bad = (detail: string): Violation => ({ invariant: "validity", atMs, replica, height, detail });
    if (body === null) {
      if (!bytesEqual(digest, this.nullDigest(height)))
        return bad(`block without body at height ${height} is not the null block`);
      return null;
    }
    if (!bytesEqual(body.recomputedDigest, digest))
      return bad(`delivered block body does not hash to its committed digest`);
    if (body.height !== height) return bad(`block for height ${body.height} committed at ${height}`);
    const info = this.proposed.get(toHex(digest));
    if (info === undefined) return bad(`committed block ${toHex(digest).slice(0, 16)} was never proposed`);
    if (info.proposer !== body.proposer)
      return bad(`proposer field ${body.proposer} ≠ builder ${info.proposer}`);
    if (body.invalidTx !== null)
      return bad(`committed block contains an invalid transaction: ${body.invalidTx}`);
    return null;
  }
}

/**
 * After the network stabilises at `stableAtMs` (partitions healed, at most f faulty), every
 * submitted transaction commits by max(submittedAt, stableAtMs) + deadlineMs.
 */
export class LivenessChecker {
  private readonly pending = new Map<string, number>();
  private readonly committed = new Set<string>();
  commitLatencies: number[] = [];

  constructor(
    readonly stableAtMs: number,
    readonly deadlineMs: number,
  ) {}

  onSubmit(atMs: number, txHashHex: string): void {
    if (!this.committed.has(txHashHex) && !this.pending.has(txHashHex)) this.pending.set(txHashHex, atMs);
  }

  onTxCommitted(atMs: number, txHashHex: string): void {
    const at = this.pending.get(txHashHex);
    if (at !== undefined) {
      this.pending.delete(txHashHex);
      this.commitLatencies.push(atMs - at);
    }
    this.committed.add(txHashHex);
  }

  isCommitted(txHashHex: string): boolean {
    return this.committed.has(txHashHex);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get committedCount(): number {
    return this.committed.size;
  }

  deadlineFor(submittedAtMs: number): number {
    return Math.max(submittedAtMs, this.stableAtMs) + this.deadlineMs;
  }

  /** Call with the current virtual time; reports the oldest overdue transaction. */
  check(nowMs: number): Violation | null {
    // Insertion order is submission order, so the first entry is the oldest.
    for (const [tx, at] of this.pending) {
      if (nowMs > this.deadlineFor(at)) {
        return {
          invariant: "liveness",
          atMs: nowMs,
          detail: `tx ${tx.slice(0, 16)} submitted at ${at} ms not committed by ${this.deadlineFor(at)} ms (stable at ${this.stableAtMs} ms)`,
        };
      }
      break;
    }
    return null;
  }
}

/** One executor's election result: the encoded snapshot and the set's Byzantine power share. */
export interface ElectedSet {
  epoch: bigint;
  /** Hash (hex) of the encoded snapshot: members, powers and the stakes behind them. */
  snapshotHash: string;
  members: number;
  totalPower: bigint;
  byzantinePower: bigint;
}

/**
 * (Epochs, issue 11) Every honest executor elects the same snapshot for an epoch (each replica
 * runs the staking programs and the epoch hook itself, so this is agreement on execution), and
 * every elected set has `expectedSize` members with the Byzantine replicas' power below 1/3.
 */
export class ElectionChecker {
  private readonly byEpoch = new Map<bigint, { hash: string; replica: number }>();

  constructor(private readonly expectedSize: number) {}

  /** Epochs with an elected set (at least one executor ran their election). */
  get elected(): number {
    return this.byEpoch.size;
  }

  onElected(atMs: number, replica: number, s: ElectedSet): Violation | null {
    const prev = this.byEpoch.get(s.epoch);
    if (prev === undefined) this.byEpoch.set(s.epoch, { hash: s.snapshotHash, replica });
    else if (prev.hash !== s.snapshotHash) {
      return {
        invariant: "election",
        atMs,
        replica,
        detail: `replica ${replica} elected set ${s.snapshotHash.slice(0, 16)} for epoch ${s.epoch}, replica ${prev.replica} elected ${prev.hash.slice(0, 16)}`,
      };
    }
    if (s.members !== this.expectedSize || 3n * s.byzantinePower >= s.totalPower) {
      return {
        invariant: "election",
        atMs,
        replica,
        detail: `the set of epoch ${s.epoch} has ${s.members} members (want ${this.expectedSize}) and Byzantine power ${s.byzantinePower} of ${s.totalPower} (must stay below 1/3)`,
      };
    }
    return null;
  }
}
