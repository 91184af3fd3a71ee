// Recovery on start, before consensus resumes: genesis state on an empty store, and the executor
// opened on the executed state (node.ts then re-executes what was committed but not executed).
import { ParallelExecutor } from "../exec/parallel.js";
import type { StateWrite } from "../exec/types.js";
import type { ChainParams } from "../params/index.js";
import type { ChainDb } from "../storage/index.js";
import { ParabftError } from "../types/errors.js";
import { buildChainGenesis, type EpochTallies, type LiveEpochSets, nodeEpochHook } from "./dpos.js";
import type { Genesis } from "./genesis.js";

const IN_MEMORY_STATE_LIMIT = 2_000_000;

/** Writes the chain's genesis state when the store has none (the first start). */
export async function ensureGenesis(db: ChainDb, genesis: Genesis): Promise<void> {
  if ((await db.getStateRoot()) !== undefined) return;
  // Accounts, pools and staking genesis (the genesis validators registered with their self stake).
  const result = buildChainGenesis(genesis);
  await db.writeGenesisState(
    result.writeSet.filter((w) => w.value !== null).map((w) => ({ key: w.key, value: w.value! })),
    result.stateRoot,
  );
}

/**
 * The executor holds the whole state in memory, loaded once from RocksDB: a miss then means
 * "absent", with no awaited store read (~67 µs) per new key. The store stays the durable copy.
 * Past IN_MEMORY_STATE_LIMIT entries it falls back to a cache in front of the store.
 */
export async function openExecutor(
  opts: { workers: number; params: ChainParams },
  mod: { db: ChainDb; sets: LiveEpochSets; tallies: EpochTallies },
): Promise<ParallelExecutor> {
  const { workers } = opts;
  const { db } = mod;
  const height = await db.getExecutedHeight();
  const stateRoot = await db.getStateRoot();
  if (stateRoot === undefined) throw new ParabftError("HALTED", {}, "no state root in storage");
  const state: StateWrite[] = [];
  const epochHook = nodeEpochHook(opts.params, db, mod.sets, mod.tallies);
  for await (const [key, value] of db.iterateState()) {
    if (state.length >= IN_MEMORY_STATE_LIMIT) {
      const executor = new ParallelExecutor({ height, stateRoot }, { workers, source: db, epochHook });
      await executor.warm(db.iterateState(), IN_MEMORY_STATE_LIMIT);
      return executor;
    }
    state.push({ key, value });
  }
  return new ParallelExecutor({ height, stateRoot, state }, { workers, epochHook });
}
