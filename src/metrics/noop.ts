// Metrics that record nothing: for tests, the simulator and benchmarks that must not pay for
// label lookups. Shapes match src/metrics/types.ts.
import type { Counter, Gauge, Histogram, MetricsFactory } from "./types.js";

const noop = (): void => {};

export const noopCounter: Counter<never> = { inc: noop };
export const noopGauge: Gauge<never> = { set: noop, inc: noop, dec: noop };
export const noopHistogram: Histogram<never> = { observe: noop, startTimer: () => () => 0 };

export const noopMetrics: MetricsFactory = {
  counter: <L extends string>() => noopCounter as Counter<L>,
  gauge: <L extends string>() => noopGauge as Gauge<L>,
  histogram: <L extends string>() => noopHistogram as Histogram<L>,
};
