// The metrics registry and the /metrics endpoint.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Gauge as PromGauge, Histogram as PromHistogram, Registry } from "prom-client";
import type { Counter, Gauge, Histogram, MetricsFactory } from "../../../src/metrics/index.js";
import { MetricsError, MetricsRegistry, MetricsServer, noopMetrics } from "../../../src/metrics/index.js";
import { LATENCY_BUCKETS_SECONDS } from "../../../src/metrics/registry.js";

type LabelValuesLike = Record<string, string | number>;

// The pattern components follow: a small interface and a constructor over any factory.
interface StageMetrics {
  queueDepth: Gauge<"stage">;
  processed: Counter<"stage">;
  latency: Histogram;
}

function stageMetrics(f: MetricsFactory): StageMetrics {
  return {
    queueDepth: f.gauge({
      name: "stage_queue_depth",
      help: "Items waiting per stage",
      labelNames: ["stage"],
    }),
    processed: f.counter({ name: "stage_processed_total", help: "Items processed", labelNames: ["stage"] }),
    latency: f.histogram({ name: "stage_latency_seconds", help: "Time per item" }),
  };
}

describe("metrics", () => {
  it("serves registered metrics as Prometheus text on /metrics", async () => {
    const registry = new MetricsRegistry({ defaultLabels: { validator: "2" } });
    const m = stageMetrics(registry);
    m.queueDepth.set({ stage: "execute" }, 7);
    m.processed.inc({ stage: "execute" }, 3);
    m.processed.inc({ stage: "persist" });
    m.latency.observe(0.003);
    const server = new MetricsServer({ listen: "127.0.0.1:0" }, { registry });
    await server.start();
    try {
      const res = await fetch(`http://${server.address}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const body = await res.text();
      assert.match(body, /# TYPE parabft_stage_queue_depth gauge/);
      assert.match(body, /parabft_stage_queue_depth\{stage="execute",validator="2"\} 7/);
      assert.match(body, /parabft_stage_processed_total\{stage="execute",validator="2"\} 3/);
      assert.match(body, /parabft_stage_processed_total\{stage="persist",validator="2"\} 1/);
      assert.match(body, /parabft_stage_latency_seconds_bucket\{le="0\.005",validator="2"\} 1/);
      assert.match(body, /parabft_stage_latency_seconds_count\{validator="2"\} 1/);

      assert.equal((await fetch(`http://${server.address}/nope`)).status, 404);
      assert.equal((await fetch(`http://${server.address}/metrics`, { method: "POST" })).status, 405);
      assert.equal((await fetch(`http://${server.address}/healthz`)).status, 200);
    } finally {
      await server.stop();
    }
    await assert.rejects(fetch(`http://${server.address}/metrics`), "the port is closed after stop()");
  });

  it("exports process metrics when asked", async () => {
    const registry = new MetricsRegistry({ processMetrics: true });
    const body = await registry.metrics();
    assert.match(body, /parabft_process_cpu_seconds_total/);
    assert.match(body, /parabft_nodejs_eventloop_lag_seconds/);
  });

  it("enforces the naming rules and rejects a conflicting re-registration", () => {
    const r = new MetricsRegistry();
    assert.throws(() => r.counter({ name: "blocks_committed", help: "x" }), MetricsError);
    assert.throws(() => r.histogram({ name: "commit_latency_ms", help: "x" }), /base unit/);
    assert.throws(() => r.gauge({ name: "Bad-Name", help: "x" }), MetricsError);
    const a = r.gauge({ name: "height", help: "x" });
    assert.equal(r.gauge({ name: "height", help: "x" }), a, "the same shape returns the same metric");
    assert.throws(() => r.counter({ name: "height", help: "x" }), /must end in _total/);
    assert.throws(() => r.gauge({ name: "height", help: "x", labelNames: ["peer"] }), /already registered/);
  });

  it("counters add up in bulk and land before every read; bad labels and values still throw at once", async () => {
    const r = new MetricsRegistry();
    const c = r.counter<"peer" | "direction">({
      name: "msgs_total",
      help: "x",
      labelNames: ["peer", "direction"],
    });
    for (let i = 0; i < 1000; i++) c.inc({ peer: i % 3, direction: "in" });
    c.inc({ peer: "1", direction: "in" }, 5);
    c.inc({ direction: "out", peer: 2 }, 2);
    const plain = r.counter({ name: "plain_total", help: "x" });
    plain.inc();
    plain.inc(4);
    const body = await r.metrics();
    assert.match(body, /parabft_msgs_total\{peer="0",direction="in"\} 334/);
    assert.match(body, /parabft_msgs_total\{peer="1",direction="in"\} 338/);
    assert.match(body, /parabft_msgs_total\{peer="2",direction="in"\} 333/);
    assert.match(body, /parabft_msgs_total\{direction="out",peer="2"\} 2/);
    assert.match(body, /parabft_plain_total 5/);
    // Flushed once: a second read shows the same totals, later increments add to them.
    c.inc({ peer: 0, direction: "in" });
    assert.match(await r.metrics(), /parabft_msgs_total\{peer="0",direction="in"\} 335/);
    assert.match(await r.metrics(), /parabft_plain_total 5/);
    // The same counter from a second registration (a restarted component) shares the buffer.
    r.counter({ name: "plain_total", help: "x" }).inc();
    assert.match(await r.metrics(), /parabft_plain_total 6/);
    assert.throws(() => c.inc({ peer: 0, nope: "x" } as never));
    assert.throws(() => c.inc({ peer: 0, direction: "in" }, -1));
    assert.throws(() => plain.inc(-1));
  });

  it("histograms count in bulk: the exposition equals prom-client's own for the same observations", async () => {
    const ours = new MetricsRegistry();
    const raw = new Registry();
    const h = ours.histogram<"kind">({ name: "lat_seconds", help: "x", labelNames: ["kind"] });
    const ref = new PromHistogram({
      name: "parabft_lat_seconds",
      help: "x",
      labelNames: ["kind"],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers: [raw],
    });
    const u = ours.histogram({ name: "plain_seconds", help: "y", buckets: [0.1, 1] });
    const refU = new PromHistogram({
      name: "parabft_plain_seconds",
      help: "y",
      buckets: [0.1, 1],
      registers: [raw],
    });
    const values = [0, 0.0005, 0.0007, 0.003, 0.1, 0.1000001, 2.5, 29, 31, 1e9, -1];
    const check = async () => {
      for (let i = 0; i < 300; i++) {
        const v = values[i % values.length]!;
        const kind = ["commit", "execution", "checkpoint"][i % 3]!;
        h.observe({ kind }, v);
        ref.observe({ kind }, v);
        u.observe(v);
        refU.observe(v);
      }
      // Identical but for the sums' last bits (floating-point addition in another order).
      const [a, b] = [(await ours.metrics()).split("\n"), (await raw.metrics()).split("\n")];
      assert.equal(a.length, b.length);
      for (let i = 0; i < a.length; i++) {
        if (!a[i]!.includes("_sum")) assert.equal(a[i], b[i]);
        else {
          const [x, y] = [Number(a[i]!.split(" ")[1]), Number(b[i]!.split(" ")[1])];
          assert.equal(a[i]!.split(" ")[0], b[i]!.split(" ")[0]);
          assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)), `${a[i]} vs ${b[i]}`);
        }
      }
    };
    await check();
    // Flushed once: later observations add to the same series.
    await check();
    const stop = h.startTimer({ kind: "timer" });
    const seconds = stop();
    assert.ok(seconds >= 0);
    assert.match(await ours.metrics(), /parabft_lat_seconds_count\{kind="timer"\} 1/);
    assert.throws(() => h.observe({ nope: "x" } as never, 1));
    assert.throws(() => h.observe({ kind: "commit" }, Number.NaN));
  });

  it("gauges keep the last value and land before every read: the exposition equals prom-client's own", async () => {
    const ours = new MetricsRegistry();
    const raw = new Registry();
    const g = ours.gauge<"timer" | "kind">({
      name: "armed_seconds",
      help: "x",
      labelNames: ["timer", "kind"],
    });
    const ref = new PromGauge({
      name: "parabft_armed_seconds",
      help: "x",
      labelNames: ["timer", "kind"],
      registers: [raw],
    });
    const u = ours.gauge({ name: "height", help: "y" });
    const refU = new PromGauge({ name: "parabft_height", help: "y", registers: [raw] });
    // Sets, incs and decs in one order on both; the same series named by 1 and by "1".
    const steps: [string, LabelValuesLike | undefined, number][] = [];
    for (let i = 0; i < 200; i++) {
      const labels = { timer: ["request", "view_change"][i % 2]!, kind: i % 3 === 0 ? 1 : "1" };
      steps.push([i % 7 === 3 ? "inc" : i % 11 === 5 ? "dec" : "set", labels, i * 0.5 - 17]);
      steps.push([i % 5 === 0 ? "inc" : "set", undefined, i]);
    }
    const apply = (
      gauge: typeof g | PromGauge<"timer" | "kind">,
      plain: typeof u | PromGauge,
      [op, l, v]: (typeof steps)[0],
    ) => {
      const target = l === undefined ? plain : gauge;
      const call = (target as unknown as Record<string, (...a: unknown[]) => void>)[op]!.bind(target);
      if (l === undefined) call(v);
      else call(l, v);
    };
    for (let k = 0; k < steps.length; k++) {
      apply(g, u, steps[k]!);
      apply(ref, refU, steps[k]!);
      // Read in the middle too: landed values stay, later sets replace them.
      if (k % 97 === 0) assert.equal(await ours.metrics(), await raw.metrics());
    }
    assert.equal(await ours.metrics(), await raw.metrics());
    assert.match(await ours.metrics(), /parabft_height 199/);
    assert.throws(() => g.set({ nope: "x" } as never, 1));
    assert.throws(() => u.set("x" as never));
    // A known label set with a bad value still throws at once.
    assert.throws(() => g.set({ timer: "request", kind: 1 }, "x" as never));
  });

  it("keeps two registries apart (two nodes in one process)", async () => {
    const a = new MetricsRegistry({ defaultLabels: { validator: "0" } });
    const b = new MetricsRegistry({ defaultLabels: { validator: "1" } });
    a.counter({ name: "x_total", help: "x" }).inc(5);
    b.counter({ name: "x_total", help: "x" }).inc(1);
    assert.match(await a.metrics(), /parabft_x_total\{validator="0"\} 5/);
    assert.match(await b.metrics(), /parabft_x_total\{validator="1"\} 1/);
  });

  it("provides no-op metrics with the same shape", () => {
    const m = stageMetrics(noopMetrics);
    m.queueDepth.set({ stage: "a" }, 1);
    m.queueDepth.inc();
    m.processed.inc({ stage: "a" }, 2);
    const end = m.latency.startTimer();
    assert.equal(typeof end(), "number");
  });

  it("fails start() when the port is taken", async () => {
    const registry = new MetricsRegistry();
    const first = new MetricsServer({ listen: "127.0.0.1:0" }, { registry });
    await first.start();
    try {
      const second = new MetricsServer({ listen: first.address }, { registry });
      await assert.rejects(second.start(), /EADDRINUSE/);
    } finally {
      await first.stop();
    }
  });
});
