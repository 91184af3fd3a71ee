// The metric shapes components depend on. They are the subset of prom-client's Counter, Gauge
// and Histogram that components use, so prom-client objects satisfy them directly and tests can
// pass the no-op versions without a registry.

export type LabelValues<L extends string> = Partial<Record<L, string | number>>;

export interface Counter<L extends string = string> {
  inc(value?: number): void;
  inc(labels: LabelValues<L>, value?: number): void;
}

export interface Gauge<L extends string = string> {
  set(value: number): void;
  set(labels: LabelValues<L>, value: number): void;
  inc(value?: number): void;
  inc(labels: LabelValues<L>, value?: number): void;
  dec(value?: number): void;
  dec(labels: LabelValues<L>, value?: number): void;
}

export interface Histogram<L extends string = string> {
  observe(value: number): void;
  observe(labels: LabelValues<L>, value: number): void;
  /** Starts a timer; calling the result observes the elapsed seconds and returns them. */
  startTimer(labels?: LabelValues<L>): (labels?: LabelValues<L>) => number;
}

export interface MetricOpts<L extends string> {
  /** snake_case; counters end in `_total`, measured quantities carry their unit (`_seconds`, `_bytes`). */
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface HistogramOpts<L extends string> extends MetricOpts<L> {
  /** Upper bounds; default: latency buckets in seconds from 0.5 ms to 30 s. */
  buckets?: readonly number[];
}

/**
 * What a component's metrics constructor receives: real (prom-client, registered in the node's
 * registry) or no-op. Components never import prom-client themselves.
 */
export interface MetricsFactory {
  counter<L extends string = never>(opts: MetricOpts<L>): Counter<L>;
  gauge<L extends string = never>(opts: MetricOpts<L>): Gauge<L>;
  histogram<L extends string = never>(opts: HistogramOpts<L>): Histogram<L>;
}
