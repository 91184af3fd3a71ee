// The cluster benchmark's per-stage breakdown from two scrapes of the validators' metrics:
// deltas averaged over validators, and each execution stage's busy share of the run's wall time.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatStages, type MetricSample, stageBreakdown } from "../../../bench/cluster/stages.js";
import type { RunReport } from "../../../bench/cluster/types.js";

function sample(entries: Record<string, number>): MetricSample {
  return new Map(Object.entries(entries));
}

describe("bench cluster stage breakdown", () => {
  it("reports heights, CPU and the execution stages' busy shares from metric deltas", () => {
    const busy = (v: string, prep: number, exec: number, persist: number) => ({
      [`parabft_exec_stage_busy_seconds_total{validator="${v}",stage="prepare"}`]: prep,
      [`parabft_exec_stage_busy_seconds_total{validator="${v}",stage="execute"}`]: exec,
      [`parabft_exec_stage_busy_seconds_total{validator="${v}",stage="persist"}`]: persist,
    });
    const before = [
      sample({
        'parabft_consensus_committed_height{validator="0"}': 10,
        'parabft_process_cpu_seconds_total{validator="0"}': 5,
        ...busy("0", 1, 2, 3),
      }),
      sample({
        'parabft_consensus_committed_height{validator="1"}': 10,
        'parabft_process_cpu_seconds_total{validator="1"}': 5,
        ...busy("1", 1, 2, 3),
      }),
    ];
    // Over 10 s: 20 heights; validator 0 busy 1 / 4 / 2 s more, validator 1 busy 3 / 2 / 0 s more.
    const after = [
      sample({
        'parabft_consensus_committed_height{validator="0"}': 30,
        'parabft_process_cpu_seconds_total{validator="0"}': 6,
        ...busy("0", 2, 6, 5),
      }),
      sample({
        'parabft_consensus_committed_height{validator="1"}': 30,
        'parabft_process_cpu_seconds_total{validator="1"}': 7,
        ...busy("1", 4, 4, 3),
      }),
    ];
    const s = stageBreakdown(before, after, 100, 10);
    assert.ok(s);
    assert.equal(s.heights, 20);
    assert.equal(s.cpuPerHeightMsPerValidator, 75); // 3 s over 2 validators and 20 heights
    assert.equal(s.cpuPerTxMs, 30);
    assert.deepEqual(s.execBusy, { prepare: 0.2, execute: 0.3, persist: 0.1 });
  });

  it("reads the share of block txs verified at the check and the gossip shed", () => {
    const node = (v: string, block: number, verified: number, shed: number) =>
      sample({
        [`parabft_consensus_block_check_txs_total{validator="${v}",source="block"}`]: block,
        [`parabft_consensus_block_check_txs_total{validator="${v}",source="verified"}`]: verified,
        [`parabft_consensus_messages_total{validator="${v}",verdict="ignore",reason="GOSSIP_BACKLOG"}`]: shed,
        [`parabft_consensus_messages_total{validator="${v}",verdict="accept",reason=""}`]: 1_000 + shed,
      });
    const s = stageBreakdown(
      [node("0", 100, 10, 1), node("1", 100, 0, 0)],
      [node("0", 1_100, 310, 4), node("1", 1_100, 100, 2)],
      1_000,
      10,
    );
    assert.equal(s?.blockTxsVerifiedShare, 0.2, "400 of 2,000 checked");
    assert.equal(s?.gossipShed, 5);
    const older = stageBreakdown([sample({})], [sample({})], 1, 10);
    assert.equal(older?.blockTxsVerifiedShare, undefined, "a build without the counter: absent");
  });

  it("labels each run's row by its kind: closed loop, warm-up, open loop or overload", () => {
    const s = stageBreakdown([sample({})], [sample({})], 1, 10)!;
    const run = (r: Partial<RunReport>) => ({ offeredRate: 800, stages: s, ...r }) as RunReport;
    const labels = formatStages([
      run({ mode: "closed", clients: 1 }),
      run({ mode: "open", warmup: true }),
      run({ mode: "open" }),
      run({ mode: "overload", offeredRate: 3400 }),
    ])
      .split("\n")
      .slice(2)
      .map((line) => line.split("  ")[0]!.trim());
    assert.deepEqual(labels, ["closed ×1", "warm-up 800 tx/s", "800 tx/s", "overload 3400 tx/s"]);
  });

  it("is undefined without a pair of scrapes", () => {
    assert.equal(stageBreakdown([null], [sample({})], 0, 10), undefined);
  });
});
