// The sequential reference executor: applies transactions in block order over an in-memory
// map. It DEFINES the semantics; the parallel executor must match it byte for byte. Keep it
// small and obviously correct rather than fast.
import { nativeSha256 } from "../crypto/hash.js";
import { type EpochHook, runEpochHook } from "../staking/hook.js";
import { ParabftError } from "../types/errors.js";
import type { Hash } from "../types/hash.js";
import { keyStr, strKey } from "./codec.js";
import {
  applyTx,
  creditFees,
  decodeTx,
  type FeeTotal,
  feeSum,
  MALFORMED_OUTCOME,
  newFeeTotal,
} from "./programs.js";
import { buildResult, toReceipt } from "./result.js";
import type { ExecutableBlock, ExecutionResult, Executor, StateReader, StateWrite } from "./types.js";

export type ExecErrorCode =
  | "EXEC_OUT_OF_ORDER"
  | "EXEC_STATE_NOT_LOADED"
  | "EXEC_WORKER_FAILED"
  | "EXEC_STOPPED";

export function outOfOrder(expected: bigint, got: bigint): ParabftError<ExecErrorCode> {
  return new ParabftError<ExecErrorCode, { expected: bigint; got: bigint }>(
    "EXEC_OUT_OF_ORDER",
    { expected, got },
    `execution out of order: expected height ${expected}, got ${got}`,
  );
}

/** Tx hash = SHA-256 of the signed body bytes (src/types txHash), via node:crypto for speed. */
export function hashBody(body: Uint8Array): Hash {
  return nativeSha256(body);
}

export interface ExecutorInit {
  height: bigint;
  stateRoot: Hash;
  /** The full state at `height`: entries, or a map keyed by binary-string keys (copied). */
  state: Iterable<StateWrite> | ReadonlyMap<string, Uint8Array | null>;
}

/** Normalises ExecutorInit.state into (binary-string key, value) pairs. */
export function* initEntries(
  state: Iterable<StateWrite> | ReadonlyMap<string, Uint8Array | null>,
): Iterable<[string, Uint8Array | null]> {
  if (state instanceof Map) yield* (state as ReadonlyMap<string, Uint8Array | null>).entries();
  else for (const w of state as Iterable<StateWrite>) yield [keyStr(w.key), w.value];
}

/** A reusable map form of a full state, for building many executors over the same state. */
export function stateMap(state: Iterable<StateWrite>): Map<string, Uint8Array | null> {
  const m = new Map<string, Uint8Array | null>();
  for (const w of state) m.set(keyStr(w.key), w.value);
  return m;
}

/** Initial state from a genesis (or any) execution result whose write set is the whole state. */
export function initFromResult(r: ExecutionResult): ExecutorInit {
  return { height: r.height, stateRoot: r.stateRoot, state: r.writeSet };
}

export class ReferenceExecutor implements Executor, StateReader {
  private readonly state = new Map<string, Uint8Array>();
  private height: bigint;
  private root: Hash;

  constructor(
    init: ExecutorInit,
    private readonly opts: { epochHook?: EpochHook } = {},
  ) {
    this.height = init.height;
    this.root = init.stateRoot;
    for (const [k, v] of initEntries(init.state)) if (v !== null) this.state.set(k, v);
  }

  get executedHeight(): bigint {
    return this.height;
  }

  get stateRoot(): Hash {
    return this.root;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.state.get(keyStr(key));
  }

  /** The whole state, sorted by key. */
  entries(): StateWrite[] {
    return [...this.state.keys()].sort().map((k) => ({ key: strKey(k), value: this.state.get(k)! }));
  }

  async executeBlock(block: ExecutableBlock): Promise<ExecutionResult> {
    if (block.height !== this.height + 1n) throw outOfOrder(this.height + 1n, block.height);
    const writes = new Map<string, Uint8Array | null>();
    const view = {
      get: (k: string) => {
        const w = writes.get(k);
        return w !== undefined ? w : (this.state.get(k) ?? null);
      },
      set: (k: string, v: Uint8Array | null) => {
        writes.set(k, v);
      },
    };
    const fees: FeeTotal = newFeeTotal();
    const receipts = block.txs.map((signed, i) => {
      const hash = block.txHashes?.[i] ?? hashBody(signed.body);
      const tx = decodeTx(signed.body, hash);
      const outcome = tx === null ? MALFORMED_OUTCOME : applyTx(view, tx, fees);
      return toReceipt(hash, block.height, i, outcome);
    });
    creditFees(view, feeSum(fees));
    // DPoS epoch hook (issue 11, src/staking/hook.ts): at an epoch's last block, its writes join the block's.
    if (this.opts.epochHook) await runEpochHook(this.opts.epochHook, block.height, view);
    for (const [k, v] of writes) {
      if (v === null) this.state.delete(k);
      else this.state.set(k, v);
    }
    const result = buildResult(block.height, this.root, writes, receipts);
    this.height = block.height;
    this.root = result.stateRoot;
    return result;
  }
}
