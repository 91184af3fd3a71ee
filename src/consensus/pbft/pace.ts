// The cluster's recent pace, as one replica sees it: how long its request timer had to wait for
// progress. Pure: time comes only from the events' `nowMs` (the simulator's clocks replay exactly).

/**
 * How long (ms of event time) the pace remembers a wait. It used to remember the last 16 waits:
 * ~5 heights of ~0.7 s under issue 14's overload, too little of the slow tail there. Backups'
 * timers fired at 2 × a longest wait of 453-588 ms (or the 1 s base) while the primary kept
 * committing, in 3 of 12 overload runs of session 30 and in session 27's one; with 20 s
 * remembered, in none of 12 (docs/CONSENSUS.md). A memory of time holds the same stretch of
 * history whatever the height rate (at light load 16 waits were a few milliseconds of it).
 */
export const PACE_MEMORY_MS = 20_000;
/** The request timeout is this many times the longest recent wait: one phase may take twice as long. */
export const PACE_FACTOR = 2;
/**
 * The paced timeout never exceeds this many base timeouts (nor `viewTimeoutCapMs`). A slow
 * Byzantine primary can stretch every phase to just under the timeout, and the pace follows it:
 * this bounds how slow it can make the cluster, and how long a primary that then goes silent keeps
 * its view (docs/SECURITY.md, known gaps).
 */
export const PACE_CEILING_BASES = 4;
/**
 * A primary whose proposal is out waits this many times its backups' request timeout before it
 * suspects itself (at most `viewTimeoutCapMs`). Issue 14's floods: a primary timed out while its
 * backups, starved of CPU, were slow to prepare, and sat alone in a view change while the others
 * kept its view (which then needed all three of them for every quorum). Its timer cannot go: when
 * its backups know of no work (a PRE-PREPARE lost to them, no gossip), the primary's VIEW-CHANGE
 * is one of the f + 1 that start a view change (without it the simulator's crash seeds lost
 * liveness). Later, it lets the backups, who see the stall from the outside, act first.
 */
export const PRIMARY_TIMEOUT_FACTOR = 2;

export interface PaceParams {
  viewTimeoutMs: number;
  viewTimeoutCapMs: number;
}

/** The highest timeout the pace may ask for: min(cap, PACE_CEILING_BASES × base). */
export function paceCeilingMs(p: PaceParams): number {
  return Math.min(p.viewTimeoutCapMs, PACE_CEILING_BASES * p.viewTimeoutMs);
}

/**
 * What the lowest uncommitted height waits for in the current view: its proposal, its body (a
 * proposal whose block this replica does not hold yet), a quorum of PREPAREs, or a quorum of
 * COMMITs; `votes` counts the matching ones held (PREPAREs or COMMITs). Read when a request timer
 * fires, it says which step of the round stalled (issue 14: view changes under overload).
 */
export type StallPhase = "proposal" | "body" | "prepare" | "commit";
export const STALL_PHASES: readonly StallPhase[] = ["proposal", "body", "prepare", "commit"];

export interface StallPoint {
  height: bigint;
  phase: StallPhase;
  votes: number;
}

/**
 * What the request timer is doing, read-only (node metrics: why a view change happened). A
 * timeout fired with `longestWaitMs` well below half of it is a stall; one near half of it is a
 * step in phase time the pace had not yet seen.
 */
export interface PacerReading {
  /** The timeout the view timer was last armed with (request or view-change timer); 0 when not armed. */
  armedTimeoutMs: number;
  /** Whether the armed timer waits for requests (false: a view change waits for its NEW-VIEW). */
  armedForRequests: boolean;
  /** The longest wait for progress of the last PACE_MEMORY_MS (0 before any). */
  longestWaitMs: number;
  /**
   * The request timeout this replica would arm now (pace, failed views and cap applied); a
   * primary with its proposal out arms PRIMARY_TIMEOUT_FACTOR × it.
   */
  requestTimeoutMs: number;
  /** Where the lowest uncommitted height stands in the current view. */
  stall: StallPoint;
}

export class Pace {
  /** The latest `nowMs` any event carried (never moves back). */
  private nowMs: bigint | null = null;
  /** When the request timer was last armed for requests (null: not armed, or armed for a view change). */
  private armedAtMs: bigint | null = null;
  /**
   * The waits of the last PACE_MEMORY_MS that no later wait at least as long outlasts (a
   * monotonic queue: waits strictly decreasing, end times increasing), so the head is the longest
   * remembered wait. The waits are whole milliseconds, so the queue holds at most longest + 1
   * entries however many waits a light load records; a wait ends before the timeout it ran under
   * (at most viewTimeoutCapMs) fires, or a little after it when the expiry was superseded.
   */
  private readonly waits: { endMs: bigint; ms: number }[] = [];

  /** Notes an event's time. Events without one (timers, execution) leave the clock where it was. */
  observe(nowMs: bigint | undefined): void {
    if (nowMs !== undefined && (this.nowMs === null || nowMs > this.nowMs)) this.nowMs = nowMs;
  }

  /**
   * The request timer is (re)armed; `onProgress`: because the cluster progressed while it was
   * armed, so the time since it was last armed is one wait the timeout must cover.
   */
  armed(onProgress: boolean): void {
    if (onProgress && this.armedAtMs !== null && this.nowMs !== null) {
      const ms = Number(this.nowMs - this.armedAtMs);
      while (this.waits.length > 0 && this.waits[this.waits.length - 1]!.ms <= ms) this.waits.pop();
      this.waits.push({ endMs: this.nowMs, ms });
    }
    this.armedAtMs = this.nowMs;
  }

  /**
   * Drops the waits that ended more than PACE_MEMORY_MS before the latest event time. Done where
   * the longest is read (every arm reads it for the new timeout), not where a wait is recorded.
   */
  private forget(): void {
    if (this.nowMs === null) return;
    const horizon = this.nowMs - BigInt(PACE_MEMORY_MS);
    let drop = 0;
    while (drop < this.waits.length && this.waits[drop]!.endMs < horizon) drop++;
    if (drop > 0) this.waits.splice(0, drop);
  }

  /** The request timer was cancelled, fired, or re-armed for a view change: no wait is running. */
  disarmed(): void {
    this.armedAtMs = null;
  }

  /** The longest wait of the last PACE_MEMORY_MS (0 before any). */
  longestWaitMs(): number {
    this.forget();
    return this.waits[0]?.ms ?? 0;
  }

  /** The base timeout the pace asks for: clamp(PACE_FACTOR × longest recent wait, base, ceiling). */
  timeoutMs(p: PaceParams): number {
    return Math.min(paceCeilingMs(p), Math.max(p.viewTimeoutMs, PACE_FACTOR * this.longestWaitMs()));
  }
}
