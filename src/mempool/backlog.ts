// Backpressure for API submissions (OVERLOADED): the recent commit rate, the API admissions still
// in progress, and the verdict on a new submission given the pool's executable backlog. Owns only
// these counters; the pool (mempool.ts) tells it about commits and admissions, and applies the
// verdict (price and first-comer exceptions) to each transaction.
import { MempoolError } from "./errors.js";
import type { MempoolOpts } from "./types.js";

/** A submission refused for the backlog, and how many first-comers may still get in. */
export interface Overload {
  error: MempoolError;
  /**
   * How many more submissions from senders with nothing executable pending still get in (up to
   * twice the limit), so a funded flooder at the minimum price cannot keep every other sender
   * out; a flood from many funded keys stops at twice the limit.
   */
  firstComerRoom: number;
}

export class Backlog {
  /** Recent commits (time, transactions), oldest first. */
  private readonly commits: { t: number; n: number }[] = [];
  private commitsInWindow = 0;
  /**
   * API transactions past the stateless checks whose admission has not finished (account read,
   * signature): part of the backlog, so a slow admission path cannot queue without bound either.
   */
  admitting = 0;
  /** Start time of each API admission in progress, oldest first (Map keeps insertion order). */
  private readonly started = new Map<number, number>();
  private nextAdmission = 0;

  constructor(
    private readonly opts: Pick<
      MempoolOpts,
      "backlogSeconds" | "minBacklog" | "commitRateWindowMs" | "admissionBudgetMs"
    >,
    private readonly now: () => number,
  ) {}

  /** An API admission of `n` transactions begins; call the returned function when it ends. */
  beginAdmission(n: number): () => void {
    const id = this.nextAdmission++;
    this.admitting += n;
    this.started.set(id, this.now());
    return () => {
      this.admitting -= n;
      this.started.delete(id);
    };
  }

  /** How long the oldest API admission still in progress has been waiting, ms (0: none). */
  oldestAdmissionMs(now: number = this.now()): number {
    const first = this.started.values().next();
    return first.done ? 0 : now - first.value;
  }

  /** `n` transactions committed now. */
  onCommitted(n: number): void {
    if (n <= 0) return;
    const now = this.now();
    this.commitRate(now);
    this.commits.push({ t: now, n });
    this.commitsInWindow += n;
  }

  /** Transactions committed per second over the last commitRateWindowMs. */
  commitRate(now: number = this.now()): number {
    const windowMs = this.opts.commitRateWindowMs ?? 3_000;
    while (this.commits.length > 0 && now - this.commits[0]!.t > windowMs) {
      this.commitsInWindow -= this.commits.shift()!.n;
    }
    return (this.commitsInWindow * 1000) / windowMs;
  }

  /**
   * The pool may hold `backlogSeconds` of commits at the recent commit rate, and at least
   * `minBacklog` transactions. Past that, a new submission would only wait longer than the ones
   * ahead of it (and grow blocks until heights outlast the view timer), so it is refused up front,
   * before its signature costs anything, with a retry hint. `executable`: the pool's transactions
   * in some sender's executable run (gapped ones wait for their sender, not for block space).
   */
  overloaded(executable: number): Overload | null {
    const seconds = this.opts.backlogSeconds ?? 0;
    if (!(seconds > 0)) return null;
    const now = this.now();
    const rate = this.commitRate(now);
    const limit = Math.max(this.opts.minBacklog ?? 0, Math.floor(rate * seconds));
    const backlog = executable + this.admitting;
    // Refused early, and cheaply, rather than late: while the pool is at least half full and an
    // admission already waits past the budget for its account read and signature (the verify
    // workers are the bottleneck, shared with gossip), a new one would only wait longer and
    // answer its client late (issue 14's overload run: answers after 0.3-0.5 s held the load back).
    const budgetMs = this.opts.admissionBudgetMs ?? 250 * seconds;
    const waited = this.oldestAdmissionMs(now);
    if (2 * backlog >= limit && waited > budgetMs) {
      const retryAfterMs = Math.ceil(budgetMs);
      return {
        error: new MempoolError(
          "OVERLOADED",
          { reason: "admission", retryAfterMs },
          `node overloaded: an admission has waited ${Math.round(waited)} ms for its account read and signature check (budget ${Math.round(budgetMs)} ms) with ${backlog} executable transactions pending or being admitted; retry after ${retryAfterMs} ms`,
        ),
        firstComerRoom: 0,
      };
    }
    if (backlog < limit) return null;
    // Time for the backlog above the limit, plus a share of a second, to commit.
    const retryAfterMs = Math.min(
      60_000,
      Math.ceil(((backlog - limit + 1) * 1000) / Math.max(rate, 1)) + Math.ceil(seconds * 250),
    );
    return {
      error: new MempoolError(
        "OVERLOADED",
        { reason: "backlog", retryAfterMs },
        `node overloaded: ${backlog} executable transactions pending or being admitted, limit ${limit} (${seconds} s of commits at ${Math.round(rate)} tx/s); retry after ${retryAfterMs} ms`,
      ),
      firstComerRoom: Math.max(0, 2 * limit - backlog),
    };
  }
}
