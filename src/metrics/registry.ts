// The prom-client implementation of MetricsFactory: one Registry per node (never prom-client's
// global registry, so several nodes in one process, as in tests, do not collide).
import {
  collectDefaultMetrics,
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Registry,
} from "prom-client";
import { ParabftError } from "../types/errors.js";
import type {
  Counter,
  Gauge,
  Histogram,
  HistogramOpts,
  LabelValues,
  MetricOpts,
  MetricsFactory,
} from "./types.js";

export type MetricsErrorCode = "METRIC_NAME" | "METRIC_CONFLICT";

export class MetricsError extends ParabftError<MetricsErrorCode, { name: string }> {}

/** Latency buckets in seconds: 0.5 ms .. 30 s, roughly ×2.5 apart. */
export const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;

/**
 * Sampling interval (ms) of the event-loop delay histogram behind `nodejs_eventloop_lag_*`.
 * prom-client's default, 10 ms, wakes every idle validator 100 times a second: ~4 ms of CPU per
 * second on this box against ~1.4 ms at 100 ms (issue 14, bench/results/l18-notes.md). A stall
 * longer than the interval is still measured in full; shorter ones are sampled less often.
 */
export const EVENT_LOOP_MONITOR_RESOLUTION_MS = 100;

const NAME_RE = /^[a-z_][a-z0-9_]*$/;
// Base units only (Prometheus naming guide): seconds, not milliseconds.
const FORBIDDEN_UNIT_RE = /_(ms|milliseconds|us|microseconds|kb|mb)(_|$)/;

export interface MetricsRegistryOpts {
  /** Prepended to every name; default "parabft_". */
  prefix?: string;
  /** Constant labels on every series, e.g. { validator: "2" }. */
  defaultLabels?: Record<string, string>;
  /** Also export Node.js process metrics (CPU, memory, event-loop lag, GC). Default false. */
  processMetrics?: boolean;
}

type Kind = "counter" | "gauge" | "histogram";

export class MetricsRegistry implements MetricsFactory {
  readonly registry = new Registry();
  private readonly prefix: string;
  private readonly kinds = new Map<string, { kind: Kind; labels: string }>();
  /** What getOrCreate made, by full name (a counter is our wrapper, not prom-client's). */
  private readonly made = new Map<string, unknown>();

  constructor(opts: MetricsRegistryOpts = {}) {
    this.prefix = opts.prefix ?? "parabft_";
    if (opts.defaultLabels) this.registry.setDefaultLabels(opts.defaultLabels);
    if (opts.processMetrics)
      collectDefaultMetrics({
        register: this.registry,
        prefix: this.prefix,
        eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_RESOLUTION_MS,
      });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every registered metric. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  counter<L extends string = never>(opts: MetricOpts<L>): Counter<L> {
    if (!opts.name.endsWith("_total")) {
      throw new MetricsError("METRIC_NAME", { name: opts.name }, `counter ${opts.name} must end in _total`);
    }
    return this.getOrCreate("counter", opts, (name, labelNames) => {
      const buffered = new BufferedCounter(labelNames);
      buffered.prom = new PromCounter(this.promOpts(name, opts.help, labelNames, buffered));
      return buffered;
    }) as Counter<L>;
  }

  gauge<L extends string = never>(opts: MetricOpts<L>): Gauge<L> {
    return this.getOrCreate("gauge", opts, (name, labelNames) => {
      const buffered = new BufferedGauge(labelNames);
      buffered.prom = new PromGauge(this.promOpts(name, opts.help, labelNames, buffered));
      return buffered;
    }) as Gauge<L>;
  }

  histogram<L extends string = never>(opts: HistogramOpts<L>): Histogram<L> {
    return this.getOrCreate("histogram", opts, (name, labelNames) => {
      const buckets = [...(opts.buckets ?? LATENCY_BUCKETS_SECONDS)].sort((a, b) => a - b);
      const buffered = new BufferedHistogram(labelNames, buckets);
      buffered.prom = new PromHistogram({ ...this.promOpts(name, opts.help, labelNames, buffered), buckets });
      return buffered;
    }) as Histogram<L>;
  }

  /**
   * prom-client options for a buffered metric: registered here, and its buffer flushed by the
   * `collect` hook prom-client calls before every read (metrics(), get()), so what was buffered
   * (counts, the last gauge value, observations) lands first.
   */
  private promOpts<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buffered: { flush(): void },
  ) {
    return {
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        buffered.flush();
      },
    };
  }

  // A component constructed twice against one registry (a restart inside a test) gets the same
  // metric back instead of prom-client's "already registered" error; a different shape under
  // the same name is a programming error and fails loudly.
  private getOrCreate<L extends string>(
    kind: Kind,
    opts: MetricOpts<L>,
    make: (name: string, labelNames: string[]) => unknown,
  ): unknown {
    if (!NAME_RE.test(opts.name) || FORBIDDEN_UNIT_RE.test(opts.name)) {
      throw new MetricsError(
        "METRIC_NAME",
        { name: opts.name },
        `metric name ${opts.name} must be snake_case with a base unit suffix (_seconds, _bytes, _total)`,
      );
    }
    const name = this.prefix + opts.name;
    const labelNames = [...(opts.labelNames ?? [])].map(String);
    const shape = { kind, labels: labelNames.join(",") };
    const known = this.kinds.get(name);
    if (known) {
      if (known.kind !== shape.kind || known.labels !== shape.labels) {
        throw new MetricsError(
          "METRIC_CONFLICT",
          { name },
          `metric ${name} already registered as a ${known.kind} with labels [${known.labels}]`,
        );
      }
      return this.made.get(name);
    }
    this.kinds.set(name, shape);
    const metric = make(name, labelNames);
    this.made.set(name, metric);
    return metric;
  }
}

/**
 * A counter whose increments are summed in plain numbers and handed to prom-client only when the
 * registry is read (a scrape). Counters sit on per-message paths (envelopes in and out, verdicts);
 * prom-client validates and hashes the label object on every inc, which cost more than the
 * count. A label set seen for the first time goes to prom-client at once (validated, and the
 * series exists from then on), so a bad label or a negative value throws where it happens.
 */
class BufferedCounter implements Counter<string> {
  prom!: PromCounter<string>;
  private unlabeled = 0;
  private readonly pending: LabelIndex<{ labels: LabelValues<string>; value: number }>;

  constructor(private readonly labelNames: readonly string[]) {
    this.pending = new LabelIndex(labelNames);
  }

  inc(labelsOrValue?: LabelValues<string> | number, value?: number): void {
    if (labelsOrValue === undefined || typeof labelsOrValue === "number") {
      const v = labelsOrValue ?? 1;
      if (!(v >= 0)) this.prom.inc(v); // prom-client's own error for a negative or NaN value
      this.unlabeled += v;
      return;
    }
    const v = value ?? 1;
    if (!(v >= 0)) this.prom.inc(labelsOrValue, v);
    const p = this.pending.get(labelsOrValue);
    if (p !== undefined) {
      p.value += v;
      return;
    }
    // First sight of this label set: prom-client validates it (unknown label names throw) and
    // creates the series; the cheap path takes over from here.
    this.prom.inc(labelsOrValue, v);
    if (Object.keys(labelsOrValue).length === this.labelNames.length)
      this.pending.set(labelsOrValue, { labels: { ...labelsOrValue }, value: 0 });
  }

  flush(): void {
    if (this.unlabeled > 0) {
      this.prom.inc(this.unlabeled);
      this.unlabeled = 0;
    }
    for (const p of this.pending.values()) {
      if (p.value > 0) this.prom.inc(p.labels, p.value);
      p.value = 0;
    }
  }
}

/**
 * A gauge whose sets are kept as the last value per label set and handed to prom-client only when
 * the registry is read. Gauges are set on per-event paths (the pace after every core step that
 * touched the view timer, pool size on every admission and commit, queue depths per block);
 * prom-client hashes the label object on every set. As with BufferedCounter, a label set seen for
 * the first time (and any non-number value) goes through prom-client at once, so a bad label or
 * value throws where it happens; inc/dec (rare on gauges) land every pending value first and then
 * go through prom-client. Pending values land in the order they were set (1 and "1" are two entries
 * of one series: the later set wins, as it would in prom-client).
 */
class BufferedGauge implements Gauge<string> {
  prom!: PromGauge<string>;
  private readonly pending: LabelIndex<GaugeEntry>;
  private unlabeled: GaugeEntry | undefined;
  private seq = 0;
  private dirty = 0;

  constructor(private readonly labelNames: readonly string[]) {
    this.pending = new LabelIndex(labelNames);
  }

  set(labelsOrValue: LabelValues<string> | number, value?: number): void {
    const labels = typeof labelsOrValue === "number" ? undefined : labelsOrValue;
    const v = typeof labelsOrValue === "number" ? labelsOrValue : value;
    const e = labels === undefined ? this.unlabeled : this.pending.get(labels);
    if (e === undefined || typeof v !== "number") {
      if (labels === undefined) this.prom.set(v as number);
      else this.prom.set(labels, v as number);
      if (labels === undefined) {
        if (this.labelNames.length === 0) this.unlabeled = { labels: undefined, value: 0, seq: 0 };
      } else if (Object.keys(labels).length === this.labelNames.length)
        this.pending.set(labels, { labels: { ...labels }, value: 0, seq: 0 });
      return;
    }
    if (e.seq === 0) this.dirty++;
    e.value = v;
    e.seq = ++this.seq;
  }

  inc(labelsOrValue?: LabelValues<string> | number, value?: number): void {
    this.flush();
    if (labelsOrValue === undefined || typeof labelsOrValue === "number") this.prom.inc(labelsOrValue ?? 1);
    else this.prom.inc(labelsOrValue, value ?? 1);
  }

  dec(labelsOrValue?: LabelValues<string> | number, value?: number): void {
    this.flush();
    if (labelsOrValue === undefined || typeof labelsOrValue === "number") this.prom.dec(labelsOrValue ?? 1);
    else this.prom.dec(labelsOrValue, value ?? 1);
  }

  flush(): void {
    if (this.dirty === 0) return;
    const all =
      this.unlabeled === undefined ? [...this.pending.values()] : [this.unlabeled, ...this.pending.values()];
    const due = all.filter((e) => e.seq > 0).sort((a, b) => a.seq - b.seq);
    for (const e of due) this.land(e);
    this.seq = 0;
  }

  private land(e: GaugeEntry | undefined): void {
    if (e === undefined || e.seq === 0) return;
    if (e.labels === undefined) this.prom.set(e.value);
    else this.prom.set(e.labels, e.value);
    e.seq = 0;
    this.dirty--;
  }
}

interface GaugeEntry {
  labels: LabelValues<string> | undefined;
  value: number;
  /** Order of the last pending set (0: nothing pending). */
  seq: number;
}

/**
 * Buffered series by label values, as nested Maps keyed by the raw values in label-name order (no
 * key string built per update). 1 and "1" are two entries of one prom-client series: each flushes
 * its own count into it. A label set missing a label is never stored (always the slow path).
 */
class LabelIndex<E> {
  private readonly root = new Map<unknown, unknown>();
  private readonly all: E[] = [];

  constructor(private readonly labelNames: readonly string[]) {}

  get(labels: LabelValues<string>): E | undefined {
    const names = this.labelNames;
    if (names.length === 0) return this.root.get(undefined) as E | undefined;
    let m = this.root;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const next = m.get(labels[names[i]!]);
      if (next === undefined) return undefined;
      m = next as Map<unknown, unknown>;
    }
    return m.get(labels[names[last]!]) as E | undefined;
  }

  set(labels: LabelValues<string>, entry: E): void {
    const names = this.labelNames;
    if (names.length === 0) {
      this.root.set(undefined, entry);
      this.all.push(entry);
      return;
    }
    let m = this.root;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const k = labels[names[i]!];
      let next = m.get(k) as Map<unknown, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        m.set(k, next);
      }
      m = next;
    }
    m.set(labels[names[last]!], entry);
    this.all.push(entry);
  }

  values(): readonly E[] {
    return this.all;
  }
}

/** prom-client's per-series record inside a Histogram (prom-client 15: `hashMap` values). */
interface PromSeries {
  labels: Record<string, string | number>;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

interface HistogramBuffer {
  /** The prom-client series the counts land in, or null: observe through prom-client directly. */
  series: PromSeries | null;
  /** Per bucket (not cumulative); values above the last bound only count in `count`. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram whose observations are counted into plain per-bucket numbers and added to
 * prom-client's series only when the registry is read. prom-client validates and hashes the
 * label object and searches the bounds on every observe (issue 14's profile: ~1 % of a
 * validator's main thread, several observes per height plus one per API call). As with
 * BufferedCounter, the first observation of a label set goes through prom-client (validated; a bad
 * label or value throws where it happens, and the series exists from then on). The exposition is
 * byte-identical to prom-client's own (test/unit/metrics/metrics.test.ts compares them).
 */
class BufferedHistogram implements Histogram<string> {
  prom!: PromHistogram<string>;
  private readonly buffers: LabelIndex<HistogramBuffer>;
  private unlabeled: HistogramBuffer | undefined;

  constructor(
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    this.buffers = new LabelIndex(labelNames);
  }

  observe(labelsOrValue: LabelValues<string> | number, value?: number): void {
    const labels = typeof labelsOrValue === "number" ? undefined : labelsOrValue;
    const v = typeof labelsOrValue === "number" ? labelsOrValue : (value as number);
    const b = !Number.isFinite(v)
      ? undefined
      : labels === undefined
        ? this.unlabeled
        : this.buffers.get(labels);
    if (b === undefined) {
      this.firstSight(labels, v);
      return;
    }
    if (b.series === null) {
      if (labels === undefined) this.prom.observe(v);
      else this.prom.observe(labels, v);
      return;
    }
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    if (i < bounds.length) b.counts[i]! += 1;
    b.sum += v;
    b.count += 1;
  }

  startTimer(labels?: LabelValues<string>): (labels?: LabelValues<string>) => number {
    const t0 = process.hrtime.bigint();
    return (end) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      this.observe({ ...labels, ...end }, seconds);
      return seconds;
    };
  }

  flush(): void {
    const all =
      this.unlabeled === undefined ? this.buffers.values() : [this.unlabeled, ...this.buffers.values()];
    for (const b of all) {
      if (b.series === null || b.count === 0) continue;
      const s = b.series;
      s.sum += b.sum;
      s.count += b.count;
      for (let i = 0; i < this.bounds.length; i++) {
        const n = b.counts[i]!;
        if (n > 0) s.bucketValues[this.bounds[i]!] = (s.bucketValues[this.bounds[i]!] ?? 0) + n;
      }
      b.counts.fill(0);
      b.sum = 0;
      b.count = 0;
    }
  }

  private firstSight(labels: LabelValues<string> | undefined, v: number): void {
    // prom-client validates the label names and the value (throws on a bad one) and creates the series.
    const copy: Record<string, string | number> = {};
    if (labels !== undefined) for (const [k, x] of Object.entries(labels)) if (x !== undefined) copy[k] = x;
    this.prom.observe(copy, v);
    // Only a label set naming every label is buffered (as BufferedCounter), so its key is exact.
    const entry: HistogramBuffer = {
      series: this.findSeries(copy),
      counts: new Float64Array(this.bounds.length),
      sum: 0,
      count: 0,
    };
    // observe(value) on a histogram without labels, or with every label named.
    if (labels === undefined) {
      if (this.labelNames.length === 0) this.unlabeled = entry;
    } else if (Object.keys(copy).length === this.labelNames.length) this.buffers.set(labels, entry);
  }

  /** prom-client's record for `labels`, or null when its internals are not the expected shape. */
  private findSeries(labels: Record<string, string | number>): PromSeries | null {
    const map = (this.prom as unknown as { hashMap?: Record<string, PromSeries> }).hashMap;
    if (typeof map !== "object" || map === null) return null;
    const want = Object.keys(labels);
    for (const s of Object.values(map)) {
      if (typeof s?.bucketValues !== "object" || typeof s.sum !== "number" || typeof s.count !== "number")
        return null;
      const have = Object.keys(s.labels ?? {});
      if (have.length === want.length && want.every((k) => String(s.labels[k]) === String(labels[k])))
        return s;
    }
    return null;
  }
}
