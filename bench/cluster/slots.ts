// One open-loop run's transaction slots, shared by the fixed-rate runner (load.ts runOnce) and the
// overload runner (overload.ts): each slot's scheduled send time (latency counts from it, so a
// slow generator cannot hide latency), its commit and execution as the block watcher sees them,
// the finality and execution histograms, and the generator that sends each slot on time.
import { toHex } from "../../src/types/index.js";
import {
  buildTimeline,
  type Histogram,
  newHistogram,
  type RunContext,
  recordMs,
  renderProgress,
  sleep,
  summarize,
} from "./load.js";
import { round3 } from "./stages.js";
import type { RunReport, TimelinePoint } from "./types.js";

/** How many transactions an open-loop run of `rate` tx/s for `durationS` schedules. */
export function slotCount(rate: number, durationS: number): number {
  return Math.max(1, Math.round(rate * durationS));
}

export class Slots {
  readonly total: number;
  /** performance.now() of slot 0's send; slot i is due at t0 + i / rate. */
  readonly t0: number;
  readonly scheduled: Float64Array;
  readonly committedAt: Float64Array;
  readonly commitHeight: Float64Array;
  private readonly executedAt: Float64Array;
  readonly finality = newHistogram();
  readonly executed = newHistogram();
  committed = 0;
  firstCommitAt = Number.POSITIVE_INFINITY;
  /** Commits while the load lasted (up to t0 + durationS): the rate the cluster sustained. */
  committedInWindow = 0;
  executedCount = 0;
  lastCommitAt = 0;
  /** height -> slots committed there and not yet seen executed. */
  private readonly byHeight = new Map<number, number[]>();
  private readonly untrack: () => void;
  private readonly tEnd: number;

  constructor(
    private readonly ctx: RunContext,
    rate: number,
    durationS: number,
  ) {
    this.total = slotCount(rate, durationS);
    this.t0 = performance.now() + 20;
    this.tEnd = this.t0 + durationS * 1000;
    this.scheduled = new Float64Array(this.total);
    for (let i = 0; i < this.total; i++) this.scheduled[i] = this.t0 + (i * 1000) / rate;
    this.committedAt = new Float64Array(this.total).fill(Number.NaN);
    this.commitHeight = new Float64Array(this.total).fill(Number.NaN);
    this.executedAt = new Float64Array(this.total).fill(Number.NaN);
    this.untrack = ctx.watcher.trackExecuted(this.byHeight, (i, at) => this.markExecuted(i, at));
  }

  /** Watches for slot i's transaction (`hash`) in a committed block. */
  watch(i: number, hash: Uint8Array, hex: string = toHex(hash)): void {
    const w = this.ctx.watcher;
    w.pending.set(hex, (height, at) => {
      this.committedAt[i] = at;
      this.commitHeight[i] = height;
      this.committed++;
      if (at <= this.tEnd) this.committedInWindow++;
      this.firstCommitAt = Math.min(this.firstCommitAt, at);
      this.lastCommitAt = Math.max(this.lastCommitAt, at);
      recordMs(this.finality, at - this.scheduled[i]!);
      this.ctx.committedLog.push({ hash, height });
      if (w.executedHeight >= height) this.markExecuted(i, at);
      else {
        const list = this.byHeight.get(height);
        if (list) list.push(i);
        else this.byHeight.set(height, [i]);
      }
    });
  }

  isCommitted(i: number): boolean {
    return !Number.isNaN(this.committedAt[i]!);
  }

  /**
   * The open loop: sends each slot when it is due, whatever became of earlier sends, until all
   * are sent or the run is aborted; `stats(sent)` feeds the progress line. Returns the generator's
   * largest lag behind its schedule (ms). `burst`: at most this many sends per turn of the event
   * loop; a generator that fell behind then catches up in slices with I/O between them (answers
   * that already arrived are handled) instead of one synchronous burst.
   */
  async run(
    label: string,
    durationS: number,
    send: (i: number) => void,
    stats: (sent: number) => string,
    burst = Number.POSITIVE_INFINITY,
  ) {
    let next = 0;
    let lastDraw = 0;
    let maxLag = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        let budget = burst;
        while (next < this.total && this.scheduled[next]! <= now && budget-- > 0) {
          maxLag = Math.max(maxLag, now - this.scheduled[next]!);
          send(next++);
        }
        if (now - lastDraw > 250) {
          lastDraw = now;
          renderProgress(this.ctx, label, Math.max(0, (now - this.t0) / 1000), durationS, stats(next));
        }
        if (next >= this.total || this.ctx.signal?.aborted) resolve();
        else if (this.scheduled[next]! <= now) setImmediate(tick);
        else setTimeout(tick, 1);
      };
      setTimeout(tick, Math.max(0, this.t0 - performance.now()));
    });
    return maxLag;
  }

  /**
   * After the load: waits, at most the run's drain timeout, until `settled()` (what was admitted
   * has committed and executed), showing `progress()`; then ends the progress line.
   */
  async drain(
    label: string,
    durationS: number,
    settled: () => boolean,
    progress: () => string,
  ): Promise<void> {
    const drainUntil = performance.now() + this.ctx.drainTimeoutS * 1000;
    while (performance.now() < drainUntil && !this.ctx.signal?.aborted) {
      if (settled()) break;
      renderProgress(this.ctx, label, durationS, durationS, progress());
      await sleep(50);
    }
    if (this.ctx.progress && process.stderr.isTTY) process.stderr.write("\n");
  }

  /** Stops following execution (the run is over). */
  close(): void {
    this.untrack();
  }

  /** Distinct heights the run's transactions committed at. */
  heights(): number {
    const heights = new Set<number>();
    for (let i = 0; i < this.total; i++) if (this.isCommitted(i)) heights.add(this.commitHeight[i]!);
    return heights.size;
  }

  timeline(durationS: number): TimelinePoint[] {
    return buildTimeline(
      this.t0,
      Math.ceil(durationS + this.ctx.drainTimeoutS),
      durationS,
      this.scheduled,
      this.committedAt,
      (i) => this.committedAt[i]! - this.scheduled[i]!,
    );
  }

  /**
   * The report fields every open-loop run fills alike: counts, latency summaries, throughput
   * against the verify ceiling, generator figures, blocks and the timeline. `cpu0` and the wall
   * time start with the run.
   */
  report(
    achievedTps: number,
    durationS: number,
    submitAck: Histogram,
    maxLag: number,
    cpu0: NodeJS.CpuUsage,
  ): Pick<
    RunReport,
    | "committed"
    | "committedInWindow"
    | "sustainedTps"
    | "executed"
    | "achievedTps"
    | "ratioToClusterCeiling"
    | "ratioToMachineCeiling"
    | "finalityMs"
    | "executedMs"
    | "submitAckMs"
    | "generatorMaxLagMs"
    | "generatorCpuPercent"
    | "blocks"
    | "timeline"
  > {
    const cpu = process.cpuUsage(cpu0);
    const wallMs = Math.max(1, performance.now() - this.t0);
    const ceiling = this.ctx.ceiling;
    return {
      committed: this.committed,
      committedInWindow: this.committedInWindow,
      sustainedTps:
        this.committed > 1 && this.lastCommitAt > this.firstCommitAt
          ? Math.round(((this.committed - 1) * 10_000) / (this.lastCommitAt - this.firstCommitAt)) / 10
          : 0,
      executed: this.executedCount,
      achievedTps: Math.round(achievedTps * 10) / 10,
      ratioToClusterCeiling: round3(achievedTps / Math.max(1, ceiling.clusterCeilingPerSec)),
      ratioToMachineCeiling: round3(achievedTps / Math.max(1, ceiling.allCoresPerSec)),
      finalityMs: summarize(this.finality),
      executedMs: summarize(this.executed),
      submitAckMs: summarize(submitAck),
      generatorMaxLagMs: Math.round(maxLag * 100) / 100,
      generatorCpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
      blocks: this.heights(),
      timeline: this.timeline(durationS),
    };
  }

  private markExecuted(i: number, at: number): void {
    if (!Number.isNaN(this.executedAt[i]!)) return;
    this.executedAt[i] = at;
    this.executedCount++;
    recordMs(this.executed, at - this.scheduled[i]!);
  }
}
