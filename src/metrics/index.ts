export { noopCounter, noopGauge, noopHistogram, noopMetrics } from "./noop.js";
export {
  LATENCY_BUCKETS_SECONDS,
  MetricsError,
  type MetricsErrorCode,
  MetricsRegistry,
  type MetricsRegistryOpts,
} from "./registry.js";
export { MetricsServer, type MetricsServerOpts } from "./server.js";
export type {
  Counter,
  Gauge,
  Histogram,
  HistogramOpts,
  LabelValues,
  MetricOpts,
  MetricsFactory,
} from "./types.js";
