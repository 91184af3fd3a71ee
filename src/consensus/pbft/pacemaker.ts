import { Checkpoints } from "./checkpoints.js";
import { Pace, type PacerReading, PRIMARY_TIMEOUT_FACTOR, type StallPoint } from "./pace.js";
import type { View } from "./types.js";

export abstract class Pacemaker extends Checkpoints {
  /** How long the request timer recently had to wait for progress (pace.ts): the timeout follows it. */
  protected readonly pace = new Pace();
  /** The view timer's last armed timeout (0: not armed) and whether it waits for requests. */
  private armedTimeout = 0;
  private armedForRequests = false;

  protected onTimer(token: number): void {
    if (token !== this.timerToken || !this.timerArmed) return;
    this.timerArmed = false;
    this.pace.disarmed();
    this.timerForViewChange = null;
    if (this.recovering) return;
    this.startViewChange(this._view + 1n);
  }

  /**
   * The paced base (clamp(2 × longest recent wait for progress, viewTimeoutMs, ceiling): pace.ts),
   * doubled per consecutive failed view, at most viewTimeoutCapMs.
   */
  protected timeoutMs(): number {
    const { viewTimeoutCapMs } = this.cfg.params;
    let t = this.pace.timeoutMs(this.cfg.params);
    for (let i = 0; i < this.failedViews && t < viewTimeoutCapMs; i++) t *= 2;
    return Math.min(t, viewTimeoutCapMs);
  }

  /** The request timeout this replica would arm now (metrics, tests). */
  get requestTimeoutMs(): number {
    return this.timeoutMs();
  }

  /** The request timer and the pace behind it, read-only (node metrics; pace.ts PacerReading). */
  get pacer(): PacerReading {
    return {
      armedTimeoutMs: this.timerArmed ? this.armedTimeout : 0,
      armedForRequests: this.timerArmed && this.armedForRequests,
      longestWaitMs: this.pace.longestWaitMs(),
      requestTimeoutMs: this.timeoutMs(),
      stall: this.stallPoint(),
    };
  }

  /** The lowest uncommitted height's step in the current view (pace.ts StallPoint). */
  private stallPoint(): StallPoint {
    const height = this._committed + 1n;
    const slot = this.slots.get(height);
    const prop = this.proposalAboveCommit();
    if (slot === undefined || prop === undefined) return { height, phase: "proposal", votes: 0 };
    const key = `${this._view}:${prop.hex}`;
    if (!this.holdsBody(height, prop.digest, prop.hex))
      return { height, phase: "body", votes: slot.prepares.get(key)?.size ?? 0 };
    if (slot.prepared === null || slot.prepared.view !== this._view)
      return { height, phase: "prepare", votes: slot.prepares.get(key)?.size ?? 0 };
    return { height, phase: "commit", votes: slot.commits.get(key)?.sigs.size ?? 0 };
  }

  /** Arms the view-change timer (a quorum of VIEW-CHANGEs is waiting for a NEW-VIEW). */
  protected armTimer(): void {
    this.pace.disarmed();
    this.armedForRequests = false;
    this.setViewTimer();
  }

  /**
   * Arms the request timer; `onProgress`: re-armed because the cluster progressed while it ran,
   * so the time it waited is one sample of the pace. The new timeout includes that sample.
   */
  private armRequestTimer(onProgress: boolean): void {
    this.pace.armed(onProgress);
    this.armedForRequests = true;
    this.setViewTimer(this.waitsForBackups() ? PRIMARY_TIMEOUT_FACTOR : 1);
  }

  /**
   * A primary whose PRE-PREPARE for the height above its commit is out: what it waits for is its
   * backups, so it suspects itself last (pace.ts PRIMARY_TIMEOUT_FACTOR).
   */
  private waitsForBackups(): boolean {
    return this.isPrimary && this.proposalAboveCommit() !== undefined;
  }

  /** This view's proposal for the height right above the commit, if any. */
  private proposalAboveCommit() {
    return this.slots.get(this._committed + 1n)?.proposals.get(this._view);
  }

  private setViewTimer(factor = 1): void {
    this.timerToken++;
    this.timerArmed = true;
    this.armedTimeout = Math.min(this.cfg.params.viewTimeoutCapMs, factor * this.timeoutMs());
    this.out.push({ kind: "setTimer", timer: "view", afterMs: this.armedTimeout, token: this.timerToken });
  }

  /**
   * Work the cluster owes: a height above our commit that is proposed in this view, or prepared in
   * an earlier one. The prepared case matters after a restart: the proposal is not in the signing
   * state, and if no client has executable work (their next nonces follow the lost height) nothing
   * else would ever arm the timer, so the height would stay prepared and uncommitted for good.
   */
  protected hasInflight(): boolean {
    for (const [h, s] of this.slots) {
      if (h > this._committed && s.committed === null && (s.proposals.has(this._view) || s.prepared !== null))
        return true;
    }
    return false;
  }

  /**
   * Request timers: armed while known work waits and the primary is not held back by backpressure;
   * re-armed on progress (a height committed or prepared in this view, or this view's proposal of
   * the next height: see `progress`), so they fire only after a whole timeout without any.
   */
  protected refreshTimer(): void {
    const progress = this.progress;
    this.progress = false;
    if (this.recovering) {
      if (this.timerArmed) {
        this.timerArmed = false;
        this.pace.disarmed();
        this.out.push({ kind: "cancelTimer", timer: "view" });
      }
      return;
    }
    if (!this.active) return;
    const paused =
      this._committed < this._stable ||
      this._committed - this._executed >= BigInt(this.cfg.params.maxExecLag) ||
      this._committed >= this.highWatermark;
    const want = !paused && (this.pendingWork > 0 || this.hasInflight());
    if (want) {
      if (!this.timerArmed || progress) this.armRequestTimer(this.timerArmed && progress);
    } else if (this.timerArmed) {
      this.timerArmed = false;
      this.pace.disarmed();
      this.out.push({ kind: "cancelTimer", timer: "view" });
    }
  }

  protected abstract startViewChange(target: View): void;
}
