// The execution pipeline (DESIGN §1, §5): prepare (decode + state prefetch) -> execute ->
// persist, each stage a loop working on a different block, joined by bounded queues. A full
// queue stalls the stage before it, and finally submit(): that is the backpressure the node
// driver sees, while consensus sees lag through executed(height, stateRoot).
import type { Logger } from "../logger/index.js";
import { ParabftError } from "../types/errors.js";
import type { Hash } from "../types/hash.js";
import { BoundedQueue } from "./queue.js";
import type {
  ExecutableBlock,
  ExecutionResult,
  ExecutionStore,
  Executor,
  PreparingExecutor,
} from "./types.js";

export type StageName = "prepare" | "execute" | "persist";
export const STAGES: readonly StageName[] = ["prepare", "execute", "persist"];

/** Hooks for src/metrics (prom-client); noopPipelineMetrics in tests. */
export interface PipelineMetrics {
  queueDepth(stage: StageName, depth: number): void;
  stageBusy(stage: StageName, ms: number): void;
  stageDone(stage: StageName, txs: number): void;
  backpressure(): void;
}

export const noopPipelineMetrics: PipelineMetrics = {
  queueDepth() {},
  stageBusy() {},
  stageDone() {},
  backpressure() {},
};

export interface ExecutionPipelineOpts {
  /** Bound of each stage's input queue, in blocks. */
  queueCapacity: number;
}

export interface ExecutionPipelineModules {
  executor: Executor | PreparingExecutor;
  /** null: results are not persisted (tests, benchmarks of execution alone). */
  store: ExecutionStore | null;
  metrics?: PipelineMetrics | null;
  log: Logger;
  /** After a block's execution batch is durable: the driver forwards this to consensus. */
  onExecuted: (height: bigint, stateRoot: Hash, result: ExecutionResult) => void;
  /** A stage failed: the pipeline stopped. Execution errors are fatal (state would diverge). */
  onError?: (err: Error) => void;
}

export interface StageStats {
  stage: StageName;
  depth: number;
  maxDepth: number;
  capacity: number;
  busyMs: number;
  blocks: number;
  txs: number;
}

export interface PipelineStats {
  stages: StageStats[];
  submittedHeight: bigint;
  executedHeight: bigint;
  /** Times submit() had to wait for room. */
  backpressureWaits: number;
}

interface Item {
  block: ExecutableBlock;
  prepared?: unknown;
  result?: ExecutionResult;
}

type PipelineErrorCode = "PIPELINE_OUT_OF_ORDER" | "PIPELINE_STOPPED" | "PIPELINE_FAILED";

const isPreparing = (e: Executor | PreparingExecutor): e is PreparingExecutor =>
  typeof (e as PreparingExecutor).prepare === "function";

export class ExecutionPipeline {
  private readonly queues: Record<StageName, BoundedQueue<Item>>;
  private readonly counters: Record<StageName, { busyMs: number; blocks: number; txs: number }>;
  private readonly metrics: PipelineMetrics;
  private loops: Promise<void>[] = [];
  private submitted: bigint;
  private executed: bigint;
  private backpressureWaits = 0;
  private state: "new" | "running" | "stopping" | "stopped" | "failed" = "new";
  private failure: Error | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly opts: ExecutionPipelineOpts,
    private readonly mod: ExecutionPipelineModules,
  ) {
    const q = () => new BoundedQueue<Item>(opts.queueCapacity);
    this.queues = { prepare: q(), execute: q(), persist: q() };
    const c = () => ({ busyMs: 0, blocks: 0, txs: 0 });
    this.counters = { prepare: c(), execute: c(), persist: c() };
    this.metrics = mod.metrics ?? noopPipelineMetrics;
    this.submitted = mod.executor.executedHeight;
    this.executed = mod.executor.executedHeight;
  }

  get executedHeight(): bigint {
    return this.executed;
  }

  get submittedHeight(): bigint {
    return this.submitted;
  }

  /** Blocks accepted but not yet reported executed. */
  get lag(): number {
    return Number(this.submitted - this.executed);
  }

  async start(): Promise<void> {
    if (this.state !== "new") return;
    this.state = "running";
    this.loops = [
      this.loop("prepare", async (it) => {
        const ex = this.mod.executor;
        if (isPreparing(ex)) it.prepared = await ex.prepare(it.block);
        return this.queues.execute;
      }),
      this.loop("execute", async (it) => {
        const ex = this.mod.executor;
        it.result =
          isPreparing(ex) && it.prepared !== undefined
            ? await ex.executePrepared(it.prepared)
            : await ex.executeBlock(it.block);
        it.prepared = undefined;
        return this.queues.persist;
      }),
      this.loop("persist", async (it) => {
        const r = it.result!;
        if (this.mod.store) await this.mod.store.writeExecutionBatch(r);
        (this.mod.executor as { markPersisted?: (h: bigint) => void }).markPersisted?.(r.height);
        this.executed = r.height;
        this.mod.onExecuted(r.height, r.stateRoot, r);
        if (this.executed === this.submitted) for (const w of this.idleWaiters.splice(0)) w();
        return null;
      }),
    ];
  }

  /**
   * Accepts the next committed block (heights strictly consecutive). Resolves once queued;
   * waits while the first queue is full.
   */
  async submit(block: ExecutableBlock): Promise<void> {
    this.checkAccepting();
    if (block.height !== this.submitted + 1n) {
      throw new ParabftError<PipelineErrorCode>(
        "PIPELINE_OUT_OF_ORDER",
        { expected: this.submitted + 1n, got: block.height },
        `pipeline expects height ${this.submitted + 1n}, got ${block.height}`,
      );
    }
    this.submitted = block.height;
    const { waited } = await this.queues.prepare.push({ block });
    this.metrics.queueDepth("prepare", this.queues.prepare.depth);
    if (waited) {
      this.backpressureWaits++;
      this.metrics.backpressure();
    }
  }

  /** True when submit() would have to wait. */
  get isBackpressured(): boolean {
    return this.queues.prepare.isFull;
  }

  /** Resolves when every submitted block has been executed and persisted. */
  idle(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.executed === this.submitted) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.idleWaiters.push(() => (this.failure ? reject(this.failure) : resolve()));
    });
  }

  stats(): PipelineStats {
    return {
      stages: STAGES.map((s) => ({
        stage: s,
        depth: this.queues[s].depth,
        maxDepth: this.queues[s].maxDepth,
        capacity: this.queues[s].capacity,
        ...this.counters[s],
      })),
      submittedHeight: this.submitted,
      executedHeight: this.executed,
      backpressureWaits: this.backpressureWaits,
    };
  }

  /** Drains what was accepted (at most 3 × capacity blocks), then stops. */
  async stop(): Promise<void> {
    if (this.state === "stopped" || this.state === "new") {
      this.state = "stopped";
      return;
    }
    if (this.state === "running") this.state = "stopping";
    this.queues.prepare.close();
    await Promise.all(this.loops);
    if (this.state !== "failed") this.state = "stopped";
  }

  private checkAccepting(): void {
    if (this.state === "failed") {
      throw new ParabftError<PipelineErrorCode>(
        "PIPELINE_FAILED",
        {},
        `pipeline failed: ${this.failure?.message}`,
      );
    }
    if (this.state !== "running")
      throw new ParabftError<PipelineErrorCode>("PIPELINE_STOPPED", {}, "pipeline not running");
  }

  private loop(stage: StageName, work: (it: Item) => Promise<BoundedQueue<Item> | null>): Promise<void> {
    const input = this.queues[stage];
    const run = async () => {
      for (;;) {
        const it = await input.pop();
        this.metrics.queueDepth(stage, input.depth);
        if (it === undefined) break;
        const t0 = performance.now();
        const next = await work(it);
        const ms = performance.now() - t0;
        const c = this.counters[stage];
        c.busyMs += ms;
        c.blocks++;
        c.txs += it.block.txs.length;
        this.metrics.stageBusy(stage, ms);
        this.metrics.stageDone(stage, it.block.txs.length);
        if (next) {
          await next.push(it);
          this.metrics.queueDepth(stage === "prepare" ? "execute" : "persist", next.depth);
        }
      }
      // Closing downstream only after this stage drained keeps stop() lossless.
      if (stage === "prepare") this.queues.execute.close();
      if (stage === "execute") this.queues.persist.close();
    };
    return run().catch((err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.state = "failed";
    this.mod.log.error({ err }, "execution pipeline failed: execution stopped");
    for (const q of Object.values(this.queues)) q.close();
    for (const w of this.idleWaiters.splice(0)) w();
    this.mod.onError?.(err);
  }
}
