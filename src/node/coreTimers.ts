// The core's timers at the consensus driver: the core asks for them by name and token (setTimer,
// cancelTimer actions), and a due one comes back to the core as a timer event.
import type { TimerName } from "../consensus/pbft/types.js";

/** A core timer: the deadline, and the Node timeout serving it. */
interface LazyTimer {
  handle: NodeJS.Timeout | null;
  /** performance.now() when `handle` fires. */
  handleDue: number;
  /** performance.now() when the timer is due; meaningful while armed. */
  due: number;
  token: number;
  armed: boolean;
}

export interface CoreTimersModules {
  /** A due timer: its event for the core. */
  fire(timer: TimerName, token: number): void;
  /** Whether the driver stopped: a due timer then does nothing. */
  stopped(): boolean;
  /** PRE-PREPAREs whose block is being verified now (a due view timer waits for them). */
  blockChecks(): ReadonlySet<Promise<unknown>>;
}

/**
 * The core's timers, re-armed lazily: the core re-arms its view timer at every commit, and a Node
 * timeout re-armed per height costs a clear + set (timer-list work and a new Timeout each); instead
 * an armed timer keeps its handle and only moves its deadline. When the handle fires before the
 * deadline it waits out the rest; a cancel only disarms (the handle fires idle).
 */
export class CoreTimers {
  private readonly timers = new Map<TimerName, LazyTimer>();
  /** How late (ms) the view timer's last firing ran behind its due time (event-loop lag). */
  private lateMs = 0;

  constructor(private readonly mod: CoreTimersModules) {}

  /** How late (ms) the view timer's last firing ran behind its due time. */
  get viewTimerLateMs(): number {
    return this.lateMs;
  }

  /** The timer's state, if it was ever set (tests read its handle). */
  get(timer: TimerName): Readonly<LazyTimer> | undefined {
    return this.timers.get(timer);
  }

  set(timer: TimerName, afterMs: number, token: number): void {
    const due = performance.now() + afterMs;
    let t = this.timers.get(timer);
    if (t === undefined) {
      t = { handle: null, handleDue: 0, due, token, armed: true };
      this.timers.set(timer, t);
    }
    t.due = due;
    t.token = token;
    t.armed = true;
    // A handle due later than the new deadline cannot serve it (a shorter timeout after a longer one).
    if (t.handle !== null && t.handleDue <= due) return;
    if (t.handle !== null) clearTimeout(t.handle);
    this.armHandle(timer, t, afterMs);
  }

  cancel(timer: TimerName): void {
    const t = this.timers.get(timer);
    if (t !== undefined) t.armed = false;
  }

  stop(): void {
    for (const t of this.timers.values()) if (t.handle !== null) clearTimeout(t.handle);
    this.timers.clear();
  }

  private armHandle(timer: TimerName, t: LazyTimer, afterMs: number): void {
    t.handleDue = performance.now() + afterMs;
    t.handle = setTimeout(() => {
      t.handle = null;
      if (!t.armed || this.mod.stopped()) return;
      const left = t.due - performance.now();
      // Node timers run on a millisecond clock and may fire up to ~1 ms before `due`.
      if (left >= 1) {
        this.armHandle(timer, t, left);
        return;
      }
      t.armed = false;
      const token = t.token;
      if (timer !== "view") {
        this.mod.fire(timer, token);
        return;
      }
      this.lateMs = -left;
      // The view timer's expiry waits one turn of the event loop: after a stall libuv runs due
      // timers before reading the sockets, so the progress that would have re-armed it may be
      // sitting there unread. Read first; the core then ignores this event's stale token
      // (counted as superseded), or starts a view change as before. Liveness only.
      //
      // Likewise a PRE-PREPARE that arrived before the expiry but whose block is still being
      // verified (a large block on a loaded box takes hundreds of ms): the expiry waits for the
      // checks in flight now (not for later ones, so a stream of proposals cannot hold it off
      // for longer than one check), and the proposal, once checked, re-arms the timer first.
      // Issue 14's overload runs: a backup timed out 24 ms before the PRE-PREPARE it was
      // verifying reached its core, started a view change nobody joined, and sat out the rest of
      // the run (the cluster then needs all three others for every quorum).
      const expire = () => {
        if (!this.mod.stopped()) this.mod.fire(timer, token);
      };
      setImmediate(() => {
        const checks = this.mod.blockChecks();
        if (checks.size === 0) expire();
        else void Promise.allSettled([...checks]).then(() => setImmediate(expire));
      });
    }, afterMs);
  }
}
