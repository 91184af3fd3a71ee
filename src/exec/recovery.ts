// Opening execution on a store, and recovery (DESIGN §5): blocks between the persisted
// executed height and the committed height are re-executed from the stored blocks. Each
// execution batch is atomic, so the store is always at some block boundary.
import type { Logger } from "../logger/index.js";
import { ParabftError } from "../types/errors.js";
import { ParallelExecutor, type ParallelExecutorOpts } from "./parallel.js";
import type { CommittedBlockSource, ExecutableBlock, ExecutionResult, ExecutionStore } from "./types.js";

/** A stored committed block as the executor takes it. */
export async function loadExecutableBlock(
  blocks: CommittedBlockSource,
  height: bigint,
): Promise<ExecutableBlock> {
  const stored = await blocks.getBlock(height);
  if (stored === undefined) {
    throw new ParabftError(
      "EXEC_BLOCK_MISSING",
      { height },
      `committed block ${height} is missing from the store`,
    );
  }
  return { height, timestampMs: stored.blockTimeMs, txs: stored.block?.txs ?? [] };
}

export interface RecoveryReport {
  from: bigint;
  to: bigint;
  blocks: number;
}

/** Re-executes and persists every committed block above the executor's height. */
export async function recoverExecution(
  executor: ParallelExecutor,
  store: ExecutionStore,
  blocks: CommittedBlockSource,
  log?: Logger,
): Promise<RecoveryReport> {
  const from = executor.executedHeight + 1n;
  const to = await blocks.getCommittedHeight();
  for (let h = from; h <= to; h++) {
    const result = await executor.executeBlock(await loadExecutableBlock(blocks, h));
    await store.writeExecutionBatch(result);
    executor.markPersisted(h);
  }
  const report = { from, to, blocks: to >= from ? Number(to - from + 1n) : 0 };
  if (report.blocks > 0) log?.info(report, "re-executed committed blocks after restart");
  return report;
}

/**
 * The node's entry point: writes genesis when the store has none, opens a ParallelExecutor at
 * the persisted executed height and catches it up to the committed height.
 */
export async function openExecution(
  store: ExecutionStore,
  blocks: CommittedBlockSource,
  genesis: ExecutionResult,
  opts: Omit<ParallelExecutorOpts, "source">,
  log?: Logger,
): Promise<{ executor: ParallelExecutor; recovered: RecoveryReport }> {
  if ((await store.getStateRoot()) === undefined) await store.writeExecutionBatch(genesis);
  const executor = await ParallelExecutor.open(store, opts);
  try {
    const recovered = await recoverExecution(executor, store, blocks, log);
    return { executor, recovered };
  } catch (err) {
    await executor.close();
    throw err;
  }
}
