// The overload probe's schedule (bench/cluster/probe.ts) without a cluster: a simulated cluster
// that keeps up below a capacity, optionally stalling at given rates once, drives the schedule
// as bench/cluster.ts does. The probe must find the capacity between the last rate that kept up
// and the first that failed twice, must not stop at one stalled step, and must say when it ran out
// of steps before any rate failed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StepSchedule, type StepSchedulePlan, topStepsMedian } from "../../../bench/cluster/probe.js";

/** Runs the schedule against a cluster of `capacity` tx/s; `stallOnce` rates fail on their first run. */
function drive(plan: StepSchedulePlan, capacity: number, stallOnce: number[] = [], coldSteps = 0) {
  const schedule = new StepSchedule(plan);
  const rates: number[] = [];
  const stalled = new Set<number>();
  for (let rate = schedule.next(); rate !== null; rate = schedule.next()) {
    rates.push(rate);
    let why: string | null = null;
    if (rates.length <= coldSteps) why = "cold";
    else if (rate > capacity) why = "throughput";
    else if (stallOnce.includes(rate) && !stalled.has(rate)) {
      stalled.add(rate);
      why = "stall";
    }
    schedule.record(why);
  }
  return { rates, outcome: schedule.outcome() };
}

const PROBE: StepSchedulePlan = {
  rate: 100,
  factor: 1.5,
  maxSteps: 16,
  stepDown: true,
  stepUpAgain: true,
  confirm: true,
  refineFactor: 1.15,
};

describe("StepSchedule (the overload probe)", () => {
  it("climbs coarsely, confirms the failure, then refines below it", () => {
    const { rates, outcome } = drive(PROBE, 1300);
    // 100 ×1.5 … 1139 kept up; 1709 failed twice; refine from 1139: 1310 fails twice; stop.
    assert.deepEqual(rates, [100, 150, 225, 338, 507, 761, 1142, 1713, 1713, 1313, 1313]);
    assert.equal(outcome.lastGood, 1142);
    assert.equal(outcome.ceiling, 1313);
    assert.deepEqual(outcome.stalls, []);
    assert.match(outcome.reason, /1142 tx\/s kept up, 1313 tx\/s did not/);
  });

  it("refines upwards while the finer steps keep up, and stops below the ceiling", () => {
    const { rates, outcome } = drive(PROBE, 1600);
    // 1313 and 1510 keep up; the next refined step (1737) would not be below 1713: stop.
    assert.deepEqual(rates.slice(7), [1713, 1713, 1313, 1510]);
    assert.equal(outcome.lastGood, 1510);
    assert.equal(outcome.ceiling, 1713);
  });

  it("runs a stalled step again and climbs on when it keeps up", () => {
    const { rates, outcome } = drive(PROBE, 1300, [507]);
    assert.deepEqual(rates.slice(0, 7), [100, 150, 225, 338, 507, 507, 761]);
    assert.deepEqual(outcome.stalls, [507]);
    assert.equal(outcome.lastGood, 1142);
    assert.equal(outcome.ceiling, 1313);
  });

  it("without confirm, one stalled step ends the climb (the old probe's failure)", () => {
    const { outcome } = drive({ ...PROBE, confirm: false, refineFactor: undefined }, 1300, [507]);
    assert.equal(outcome.lastGood, 338);
    assert.equal(outcome.ceiling, 507);
  });

  it("says when it ran out of steps before any rate failed", () => {
    const { rates, outcome } = drive({ ...PROBE, maxSteps: 5 }, 100_000);
    assert.equal(rates.length, 5);
    assert.equal(outcome.ceiling, null);
    assert.equal(outcome.lastGood, 507);
    assert.match(outcome.reason, /ran out of steps \(5; raise --sweep-steps\) before a step failed/);
  });

  it("steps down from a cold start without counting those failures, then climbs again", () => {
    const { rates, outcome } = drive(PROBE, 1300, [], 2);
    // 100 and 67 fail cold, 45 keeps up; the climb meets 100 again and passes it.
    assert.deepEqual(rates, [100, 67, 45, 68, 102, 153, 230, 345, 518, 777, 1166, 1749, 1749, 1341, 1341]);
    assert.equal(outcome.lastGood, 1166);
    assert.equal(outcome.ceiling, 1341);
  });

  it("without stepUpAgain, stops at the first rate that keeps up after stepping down", () => {
    const { rates, outcome } = drive({ rate: 400, factor: 2, maxSteps: 10, stepDown: true }, 150);
    assert.deepEqual(rates, [400, 200, 100]);
    assert.equal(outcome.lastGood, 100);
    assert.match(outcome.reason, /the step above \(200 tx\/s\) failed/);
  });

  it("reports a first step that fails (no step down) as below the first step", () => {
    const { rates, outcome } = drive({ rate: 400, factor: 1.5, maxSteps: 10 }, 150);
    assert.deepEqual(rates, [400]);
    assert.equal(outcome.lastGood, null);
    assert.match(outcome.reason, /below the first step/);
  });

  it("refuses a plan it cannot climb", () => {
    assert.throws(() => new StepSchedule({ rate: 100, factor: 1, maxSteps: 3 }), RangeError);
    assert.throws(
      () => new StepSchedule({ rate: 100, factor: 1.5, maxSteps: 3, refineFactor: 2 }),
      RangeError,
    );
  });
});

describe("the probe's top steps (diagnostic beside the reference)", () => {
  it("takes the median of what the steps near saturation sustained, each capped at its offered rate", () => {
    // quiet-s20-overload-new's steps: the reference 1,675 is the best of five near it.
    const steps = [
      { offeredRate: 1013, sustained: 1008.4 },
      { offeredRate: 1520, sustained: 1515.4 },
      { offeredRate: 2280, sustained: 1675.2 },
      { offeredRate: 2280, sustained: 1555.2 },
      { offeredRate: 1748, sustained: 1450.4 },
      { offeredRate: 1748, sustained: 1547.2 },
    ];
    assert.deepEqual(topStepsMedian(steps, 1675.2), { steps: 5, medianTps: 1547.2 });
    // Even count: the mean of the middle two; a burst above the offered rate counts as offered.
    assert.deepEqual(
      topStepsMedian(
        [
          { offeredRate: 100, sustained: 130 },
          { offeredRate: 100, sustained: 90 },
        ],
        100,
      ),
      { steps: 2, medianTps: 95 },
    );
    assert.equal(topStepsMedian([{ offeredRate: 50, sustained: 50 }], 100), null);
  });
});
