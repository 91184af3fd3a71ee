/**
 * The rates of an open-loop sweep, step by step: which rate to run next given how the steps so
 * far went, and when to stop. Pure (no cluster, no clock), so the schedule is tested on its own;
 * `bench/cluster.ts` runs the steps and judges each one.
 *
 * Why the overload probe needs more than "×1.25 until the first step fails" (s18-lead-notes):
 * - one stalled step (a GC pause, a burst of fsyncs from another process) ended a probe at half
 *   the rate the cluster then sustained for a minute (571 probed, 1,064 sustained);
 * - a slow geometric climb from a low start ran out of steps while still keeping up (12 steps from
 *   100 tx/s end at 1,163), so "saturation" was where the probe stopped, not where the cluster did.
 * So a failing step can be run once more before it counts (`confirm`), the climb can be coarse
 * and then refined between the last rate that kept up and the first that failed twice
 * (`refineFactor`), and the schedule says whether it found a rate that failed at all.
 */

export interface StepSchedulePlan {
  /** The first step's rate, tx/s. */
  rate: number;
  /** The climb: each step that keeps up is followed by one at `rate × factor`. */
  factor: number;
  maxSteps: number;
  /** When the first steps fail, divide the rate by `factor` until one keeps up. */
  stepDown?: boolean;
  /** After stepping down to a rate that keeps up, climb again (else stop there). */
  stepUpAgain?: boolean;
  /** Run a failing step once more; only a second failure at that rate counts. */
  confirm?: boolean;
  /**
   * After a counted failure, climb again from the last rate that kept up by this smaller factor,
   * while below the failing rate.
   */
  refineFactor?: number;
}

export interface ScheduledStep {
  rate: number;
  /** Why the step did not keep up, or null. */
  why: string | null;
}

export interface ScheduleOutcome {
  /** The highest rate that kept up, or null when none did. */
  lastGood: number | null;
  /** The lowest rate whose failure counted (confirmed when `confirm`), or null: not found. */
  ceiling: number | null;
  /** Rates that failed once and then kept up when run again. */
  stalls: number[];
  reason: string;
}

export class StepSchedule {
  private readonly steps: ScheduledStep[] = [];
  private rate: number;
  private factor: number;
  private lastGood: number | null = null;
  private ceiling: number | null = null;
  private ceilingWhy = "";
  /** Set while the step just run failed once and runs again. */
  private retrying = false;
  /** The cold start: failures before any step kept up (stepped down, never a ceiling). */
  private steppedDownFrom: { rate: number; why: string } | null = null;
  private readonly stalls: number[] = [];
  private stopped: string | null = null;

  constructor(private readonly plan: StepSchedulePlan) {
    if (!(plan.rate >= 1) || !(plan.factor > 1) || !(plan.maxSteps >= 1)) {
      throw new RangeError("a step schedule needs rate >= 1, factor > 1 and maxSteps >= 1");
    }
    if (plan.refineFactor !== undefined && !(plan.refineFactor > 1 && plan.refineFactor < plan.factor)) {
      throw new RangeError("refineFactor must lie between 1 and factor");
    }
    this.rate = Math.round(plan.rate);
    this.factor = plan.factor;
  }

  /** The rate of the next step, or null when the schedule is done. */
  next(): number | null {
    if (this.stopped === null && this.steps.length >= this.plan.maxSteps) {
      this.stopped =
        this.ceiling === null
          ? `not reached: ran out of steps (${this.plan.maxSteps}; raise --sweep-steps) before a step failed`
          : `ran out of steps refining below ${this.ceiling} tx/s (${this.ceilingWhy})`;
    }
    return this.stopped === null ? this.rate : null;
  }

  /** Records how the step at `next()`'s rate went. */
  record(why: string | null): void {
    const rate = this.next();
    if (rate === null) throw new Error("the schedule is done");
    this.steps.push({ rate, why });
    if (why === null) this.keptUp(rate);
    else this.failed(rate, why);
  }

  outcome(): ScheduleOutcome {
    return {
      lastGood: this.lastGood,
      ceiling: this.ceiling,
      stalls: [...this.stalls],
      reason: this.stopped ?? "not finished",
    };
  }

  private keptUp(rate: number): void {
    if (this.retrying) this.stalls.push(rate);
    this.retrying = false;
    this.lastGood = Math.max(this.lastGood ?? 0, rate);
    if (this.steppedDownFrom !== null && !this.plan.stepUpAgain) {
      this.stopped = `the step above (${this.steppedDownFrom.rate} tx/s) failed: ${this.steppedDownFrom.why}`;
      return;
    }
    this.steppedDownFrom = null;
    const next = Math.max(rate + 1, Math.round(rate * this.factor));
    if (this.ceiling !== null && next >= this.ceiling) {
      this.stopped = `${rate} tx/s kept up, ${this.ceiling} tx/s did not (${this.ceilingWhy})`;
      return;
    }
    this.rate = next;
  }

  private failed(rate: number, why: string): void {
    if (this.lastGood === null && this.plan.stepDown) {
      // A cold cluster fails its first steps (JIT, first view): step down, and count no ceiling
      // from these (the climb after them meets that rate again).
      this.steppedDownFrom = { rate, why };
      if (rate <= 1) {
        this.stopped = `below the first step (${rate} tx/s): ${why}`;
        return;
      }
      this.rate = Math.max(1, Math.round(rate / this.factor));
      return;
    }
    if (this.plan.confirm && !this.retrying) {
      this.retrying = true;
      return; // the same rate once more
    }
    this.retrying = false;
    this.ceiling = Math.min(this.ceiling ?? rate, rate);
    this.ceilingWhy = why;
    const refine = this.plan.refineFactor;
    if (this.lastGood === null) {
      this.stopped = `below the first step (${rate} tx/s): ${why}`;
      return;
    }
    if (refine !== undefined && this.factor !== refine) {
      this.factor = refine;
      const next = Math.max(this.lastGood + 1, Math.round(this.lastGood * refine));
      if (next < this.ceiling) {
        this.rate = next;
        return;
      }
    }
    this.stopped = `${this.lastGood} tx/s kept up, ${this.ceiling} tx/s did not (${why})`;
  }
}

/**
 * The median of what the probe's top steps sustained (each at most its offered rate): the steps
 * offered at least `share` × saturation, the best of which is the reference. A diagnostic beside
 * the reference, not the goal's: the reference is the best of a few noisy 10 s steps, so it sits
 * above what the same steps sustain typically (3.7-14 % in the six probed runs of bench/results
 * up to session 21, o22-notes.md). Null when no step qualifies.
 */
export function topStepsMedian(
  steps: readonly { offeredRate: number; sustained: number }[],
  saturation: number,
  share = 0.9,
): { steps: number; medianTps: number } | null {
  const top = steps
    .filter((s) => s.offeredRate >= share * saturation)
    .map((s) => Math.min(s.offeredRate, s.sustained))
    .sort((a, b) => a - b);
  if (top.length === 0) return null;
  const mid = top.length >> 1;
  const medianTps = top.length % 2 === 1 ? top[mid]! : (top[mid - 1]! + top[mid]!) / 2;
  return { steps: top.length, medianTps: Math.round(medianTps * 10) / 10 };
}
