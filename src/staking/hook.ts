// The executor's side of the epoch hook (issue 11): both executors call runEpochHook after a
// block's transactions and fee credit, and its writes join that block's write set. It runs
// `endEpoch` when the block is the last of its epoch (isLastHeightOfEpoch) and does nothing
// otherwise. The signing tally comes from the chain (the blocks' last_commit fields), supplied
// by the node through `signing`; without it no downtime judgement is made.
import {
  type EpochEndResult,
  endEpoch,
  epochOfHeight,
  isLastHeightOfEpoch,
  type SigningTally,
} from "./epoch.js";
import { bin, stakingKeys } from "./keys.js";
import type { KeyValue } from "./state.js";
import { StakingStore } from "./state.js";

export interface EpochHook {
  epochLength: number;
  /** The signing tally of epoch e, judged from the chain; undefined: no downtime judgement. */
  signing?: (epoch: bigint) => Promise<SigningTally | undefined>;
}

/** The executor's block view: binary-string keys, null = absent (reads see the block's writes). */
export interface HookView {
  get(key: string): Uint8Array | null;
  set(key: string, value: Uint8Array | null): void;
}

/** Keys the hook reads before it knows the registry. */
export function epochHookFixedKeys(endingEpoch: bigint): string[] {
  return [
    bin(stakingKeys.meta()),
    bin(stakingKeys.registry()),
    bin(stakingKeys.slashed()),
    bin(stakingKeys.epochSet(endingEpoch)),
    bin(stakingKeys.epochSet(endingEpoch + 1n)),
    bin(stakingKeys.epochSet(endingEpoch + 2n)),
  ];
}

/**
 * Runs the epoch hook for the block at `height` over `view`. `load` (executors backed by a
 * store) brings keys into the view's cache before they are read. Returns null when the block
 * does not end an epoch.
 */
export async function runEpochHook(
  hook: EpochHook,
  height: bigint,
  view: HookView,
  load?: (keys: string[]) => Promise<unknown>,
): Promise<EpochEndResult | null> {
  const endingEpoch = endingEpochAt(height, hook.epochLength);
  if (endingEpoch === null) return null;
  const kv = hookKeyValue(view);
  if (load) {
    await load(epochHookFixedKeys(endingEpoch));
    await load(new StakingStore(kv).registry().map((op) => bin(stakingKeys.validator(op))));
  }
  const signing = hook.signing ? await hook.signing(endingEpoch) : undefined;
  return endEpoch(kv, signing === undefined ? { endingEpoch } : { endingEpoch, signing });
}

/** The epoch the block at `height` ends, or null when it ends none. */
export function endingEpochAt(height: bigint, epochLength: number): bigint | null {
  if (height === 0n || !isLastHeightOfEpoch(height, epochLength)) return null;
  return epochOfHeight(height, epochLength);
}

function hookKeyValue(view: HookView): KeyValue {
  return { read: (k) => view.get(k), write: (k, v) => view.set(k, v) };
}

/**
 * The same hook, synchronous, for a view that holds every key in memory and without a signing
 * tally (no downtime judgement): the simulator's stand-in executor (src/sim/staking.ts).
 */
export function runEpochHookInMemory(
  epochLength: number,
  height: bigint,
  view: HookView,
): EpochEndResult | null {
  const endingEpoch = endingEpochAt(height, epochLength);
  return endingEpoch === null ? null : endEpoch(hookKeyValue(view), { endingEpoch });
}
