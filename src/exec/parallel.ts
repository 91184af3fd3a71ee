// The production executor: same semantics as ReferenceExecutor, scheduled into conflict-free
// lanes run on worker threads when the cost model says it pays, inline otherwise. State lives
// in a StateCache in front of the store.

import { type EpochHook, runEpochHook } from "../staking/hook.js";
import { PUBLIC_KEY_LENGTH } from "../types/block.js";
import { ParabftError } from "../types/errors.js";
import type { Hash } from "../types/hash.js";
import { isAccountKeyBytes } from "./arena.js";
import { StateCache, type StateSource } from "./cache.js";
import { keyStr } from "./codec.js";
import { decodeResult, encodeJob, type JobTx } from "./laneWire.js";
import {
  creditFees,
  type DecodedTx,
  decodeTx,
  FEE_COLLECTOR_KEY,
  type FeeTotal,
  feeSum,
  MALFORMED_OUTCOME,
  newFeeTotal,
  type TxOutcome,
  touchedKeys,
} from "./programs.js";
import { hashBody, initEntries, outOfOrder } from "./reference.js";
import { buildResultFromKeys, buildResultFromStage, writeSetLogKeys, writeSetLogOf } from "./result.js";
import {
  type CostModel,
  DEFAULT_COST_MODEL,
  inlineByPrecheck,
  type Plan,
  plan,
  txCostUs,
} from "./schedule.js";
import { applyTxFast, transferArena } from "./transfer.js";
import type {
  ExecutableBlock,
  ExecutionResult,
  ExecutionStore,
  PreparingExecutor,
  StateReader,
  StateWrite,
} from "./types.js";
import { ExecWorkerPool } from "./workerPool.js";
import { WriteStage } from "./writeStage.js";

export interface ParallelExecutorOpts {
  /** Worker threads; 0 runs everything inline. */
  workers: number;
  /** auto: the cost model decides per block; always/never: force (tests, benchmarks). */
  mode?: "auto" | "always" | "never";
  /** Where cache misses are read; omit when the initial state given is the whole state. */
  source?: (StateSource & { getExecutedHeight?: () => Promise<bigint> }) | null;
  cacheMaxEntries?: number;
  costModel?: Partial<CostModel>;
  /** A pool shared between executors (tests); not closed by close(). Overrides `workers`. */
  pool?: ExecWorkerPool;
  /** DPoS epoch hook (issue 11): run after the last block of each epoch's transactions. */
  epochHook?: EpochHook;
  /**
   * With a source, fused blocks: "auto" (default) looks their keys up in prepare only while
   * look-ups find keys missing; "never" leaves every one to run's tx-by-tx check (tests).
   */
  lookAhead?: "auto" | "never";
}

export interface ParallelInit {
  height: bigint;
  stateRoot: Hash;
  /** State to seed the cache with (the whole state when there is no source). */
  state?: Iterable<StateWrite> | ReadonlyMap<string, Uint8Array | null>;
}

export interface PreparedBlock {
  block: ExecutableBlock;
  /** null until execution when there is no store to prefetch from (see prepare). */
  hashes: Hash[] | null;
  decoded: (DecodedTx | null)[] | null;
  /** Keys read from the store while preparing. */
  loaded: number;
  /** cache.evictions when the keys were loaded. */
  evictions: number;
  /**
   * Set (with a store) when prepare left the block to run fused, keeping nothing per tx and
   * looking none of its keys up: recent look-ups found every key cached. Run then decodes each
   * tx just before it runs and checks its keys first, and at a tx with one missing loads what
   * the rest of the block misses (round 13).
   */
  fused?: Plan;
}

/**
 * Every key the block may touch (the fee collector, then each tx's touchedKeys), repeats
 * included: what prepare loads, and what run reloads after an eviction.
 */
function* blockKeys(decoded: Iterable<DecodedTx | null>): Generator<string> {
  yield FEE_COLLECTOR_KEY;
  for (const tx of decoded) {
    if (tx === null) continue;
    yield tx.senderKey;
    yield* tx.writes;
    yield* tx.reads;
  }
}

/** A hash for decodeTx where only the keys are wanted (decodeTx keeps it, never reads it). */
const NO_HASH: Hash = new Uint8Array(32);

/**
 * The txs of a block whose txs all come pre-decoded, from tx `from` on, decoded one at a time
 * (decodeTx, so their keys are exactly those execution will read): blockKeys over it keeps no
 * decoded tx.
 */
function* decodedFrom(block: ExecutableBlock, from: number): Generator<DecodedTx | null> {
  const pre = block.decoded!;
  const n = block.txs.length;
  for (let i = from; i < n; i++) yield decodeTx(block.txs[i]!.body, NO_HASH, pre[i]);
}

/**
 * The keys a block wrote, as the cache's eviction pins (`has`): the Set is built on first use.
 * The cache asks only when eviction is due (rarely), and a Set of a 10k-transfer block's 20k
 * keys cost ~0.4 µs per transaction for every block (issue 13, round 10).
 */
class WrittenKeys {
  private set: Set<string> | null = null;
  /** The keys, or the block's write-set log holding them (every key it wrote: round 13). */
  constructor(private readonly keys: readonly string[] | Uint8Array) {}
  has(k: string): boolean {
    const keys = this.keys;
    this.set ??= new Set(keys instanceof Uint8Array ? writeSetLogKeys(keys) : keys);
    return this.set.has(k);
  }
}

function decodeBlock(block: ExecutableBlock): { hashes: Hash[]; decoded: (DecodedTx | null)[] } {
  const n = block.txs.length;
  const hashes: Hash[] = new Array(n);
  const decoded: (DecodedTx | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const body = block.txs[i]!.body;
    const h = block.txHashes?.[i] ?? hashBody(body);
    hashes[i] = h;
    decoded[i] = decodeTx(body, h, block.decoded?.[i]);
  }
  return { hashes, decoded };
}

/** The inline path's view over the cache, the keys it wrote (where kept) and its fee total. */
interface InlineContext {
  view: { get(k: string): Uint8Array | null; set(k: string, v: Uint8Array | null): void };
  /** The block's staged writes (transferArena stages into it directly). */
  stage: WriteStage;
  written: string[] | null;
  fees: FeeTotal;
}

/** What the last block did: for metrics, tests and the benchmark. */
export interface BlockExecStats {
  height: bigint;
  mode: "inline" | "parallel";
  lanes: number;
  bins: number;
  txs: number;
  loadedFromStore: number;
  predictedSequentialUs: number;
  predictedParallelUs: number;
  /** Wall time running transactions (inline or on workers, with shipping). */
  applyMs: number;
  /** Wall time building receipts, sorting the write set and hashing the state root. */
  resultMs: number;
  /** Process CPU time (all threads, workers included) while applying: calibrates the cost model. */
  applyCpuMs: number;
}

/** Txs a fused block decodes and touches the state of before running them (runFused). */
const FUSED_GROUP = 16;

/** Unpersisted blocks beyond which the store is asked how far it has persisted. */
const UNPERSISTED_CHECK = 8;

export class ParallelExecutor implements PreparingExecutor<PreparedBlock>, StateReader {
  private readonly cache: StateCache;
  private readonly pool: ExecWorkerPool | null;
  private readonly ownsPool: boolean;
  private readonly cost: CostModel;
  private readonly mode: "auto" | "always" | "never";
  /** Writes of executed blocks the store may not hold yet (only kept when there is a store). */
  private readonly unpersisted: { height: bigint; writes: { has(k: string): boolean } }[] = [];
  /** The inline path's staged writes (one per executor, reset per block: results copy out of it). */
  private readonly stage = new WriteStage();
  private readonly hasSource: boolean;
  private readonly source: ParallelExecutorOpts["source"];
  private height: bigint;
  private root: Hash;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly epochHook: EpochHook | undefined;
  /**
   * Keys the latest look-up found missing (prepare's, or run's checks of a block prepare did not
   * look up): while it is 0, prepare leaves a fused block's keys to run (round 13: with every key
   * cached, prepare's pass was a second cold lookup of each key, ~1 µs per transfer).
   */
  private recentMisses = 1;
  private readonly lookAhead: "auto" | "never";
  lastStats: BlockExecStats | null = null;
  /** runFused's decoded txs of the current group (emptied as they run). */
  private readonly group: (DecodedTx | null)[] = new Array(FUSED_GROUP).fill(null);
  /** What prefetch's touches of the Map read, kept so the reads are not dead code. */
  sink = 0;
  /** prefetch's table positions for the current group (room for 4 accounts per tx). */
  private readonly probes = new Int32Array(4 * FUSED_GROUP);

  constructor(init: ParallelInit, opts: ParallelExecutorOpts) {
    this.hasSource = opts.source != null;
    this.source = opts.source;
    this.cache = new StateCache(opts.source ?? null, opts.cacheMaxEntries);
    if (init.state) for (const [k, v] of initEntries(init.state)) this.cache.seed(k, v);
    this.height = init.height;
    this.root = init.stateRoot;
    this.cost = { ...DEFAULT_COST_MODEL, ...opts.costModel };
    this.mode = opts.mode ?? "auto";
    this.epochHook = opts.epochHook;
    this.lookAhead = opts.lookAhead ?? "auto";
    this.ownsPool = opts.pool === undefined;
    this.pool =
      opts.pool ?? (opts.workers > 0 && this.mode !== "never" ? new ExecWorkerPool(opts.workers) : null);
  }

  /** An executor over a persisted store, resuming at its executed height and root. */
  static async open(
    store: ExecutionStore,
    opts: Omit<ParallelExecutorOpts, "source">,
  ): Promise<ParallelExecutor> {
    const [height, root] = await Promise.all([store.getExecutedHeight(), store.getStateRoot()]);
    if (root === undefined) {
      throw new ParabftError("EXEC_NO_GENESIS", {}, "store has no state root: write the genesis batch first");
    }
    return new ParallelExecutor({ height, stateRoot: root }, { ...opts, source: store });
  }

  get executedHeight(): bigint {
    return this.height;
  }

  get stateRoot(): Hash {
    return this.root;
  }

  /**
   * Cached state only (undefined also when not cached): for tests and diagnostics. A copy: the
   * hot path rewrites the values it owns in place (codec.StateValue).
   */
  get(key: Uint8Array): Uint8Array | undefined {
    const v = this.cache.peek(keyStr(key));
    return v == null ? undefined : new Uint8Array(v);
  }

  /** Decodes the block and loads the state it declares. Safe to run ahead of execution. */
  async prepare(block: ExecutableBlock): Promise<PreparedBlock> {
    // Without a source the cache is the whole state (a miss reads as absent): nothing to load,
    // so decoding waits for execution. Decoded blocks queued ahead of execution would outlive
    // several young-generation collections and be copied and promoted for nothing (issue 13: GC).
    if (!this.hasSource) return { block, hashes: null, decoded: null, loaded: 0, evictions: 0 };
    // Only keys not cached are collected (deduped); cached ones cost one lookup each, no Set
    // entry or per-tx key list (round 10). The fee collector is credited after the last tx.
    const cache = this.cache;
    const missing = new Set<string>();
    // A block that will run fused (inline, every tx pre-decoded: the node's committed blocks)
    // keeps nothing per tx until it runs while recent look-ups found every key cached: run then
    // decodes each tx just before it runs and checks its keys (round 13). Otherwise its txs are
    // decoded here and kept, and it runs from them (round 13 also tried decoding here for the keys
    // only and again in run: with keys missing it was no better, bench/results/x21-notes.md).
    // (fusedPlan reads every body: only asked when its answer is used.)
    if (this.recentMisses === 0 || this.lookAhead === "never") {
      const fused = this.fusedPlan(block);
      if (fused !== null)
        return { block, hashes: null, decoded: null, loaded: 0, evictions: cache.evictions, fused };
    }
    const { hashes, decoded } = decodeBlock(block);
    for (const k of blockKeys(decoded)) if (!cache.has(k)) missing.add(k);
    this.recentMisses = missing.size;
    // Snapshot before loading: an eviction during the awaited reads must force a reload too.
    const evictions = cache.evictions;
    const loaded = missing.size > 0 ? await cache.load(missing) : 0;
    return { block, hashes, decoded, loaded, evictions };
  }

  executeBlock(block: ExecutableBlock): Promise<ExecutionResult> {
    return this.serial(async () => this.run(await this.prepare(block)));
  }

  executePrepared(p: PreparedBlock): Promise<ExecutionResult> {
    return this.serial(() => this.run(p));
  }

  /**
   * Warms the cache from persisted state (ChainDb.iterateState) up to `max` entries, so the
   * first blocks after a restart do not pay a store read per key. Never overwrites a cached value.
   */
  async warm(
    entries: AsyncIterable<[Uint8Array, Uint8Array]>,
    max = Number.POSITIVE_INFINITY,
  ): Promise<number> {
    let n = 0;
    for await (const [k, v] of entries) {
      if (n >= max) break;
      const ks = keyStr(k);
      if (!this.cache.has(ks)) this.cache.seed(ks, v.slice());
      n++;
    }
    return n;
  }

  /** Resolves once the worker threads (if any) are up: for benchmarks, not needed to execute. */
  async ready(): Promise<void> {
    await this.pool?.ready();
  }

  /** Releases the cache pins of blocks up to `height` once the store holds them. */
  markPersisted(height: bigint): void {
    while (this.unpersisted.length > 0 && this.unpersisted[0]!.height <= height) this.unpersisted.shift();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ownsPool) await this.pool?.close();
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.chain.then(f, f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async run(p: PreparedBlock): Promise<ExecutionResult> {
    if (this.closed) throw new ParabftError("EXEC_STOPPED", {}, "executor closed");
    const { block } = p;
    if (block.height !== this.height + 1n) throw outOfOrder(this.height + 1n, block.height);
    // Nothing prepared (no store to prefetch from) and a block the cost model's pre-check runs
    // inline from its pre-decoded bodies alone: each tx is decoded just before it runs (round 11),
    // so no block-long array of decoded txs outlives young-generation collections.
    // With a store, prepare made that choice (p.fused: its keys not looked up, see checkEach).
    const fused = p.decoded !== null ? null : (p.fused ?? (this.hasSource ? null : this.fusedPlan(block)));
    if (fused === null && (p.decoded === null || p.hashes === null)) Object.assign(p, decodeBlock(block));
    const decoded = p.decoded;
    const hashes: Hash[] = p.hashes ?? new Array(block.txs.length);
    // Loaded in prepare; if anything was evicted since, reload (keys still cached cost nothing).
    let loaded = p.loaded;
    // A fused block over a store, whose keys prepare did not look up: each tx's keys are checked
    // just before it runs (runInline stops at a tx with one missing; nothing of it has run).
    const checkEach = this.hasSource && p.fused !== undefined;
    if (decoded !== null && p.evictions !== this.cache.evictions)
      loaded += await this.cache.load(new Set(blockKeys(decoded)));
    const pl = fused ?? plan(decoded!, this.pool?.size ?? 0, this.mode, this.cost);
    const outcomes: TxOutcome[] = new Array(block.txs.length);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let written: string[];
    let value: ((k: string) => Uint8Array | null) | (Uint8Array | null)[] | WriteStage;
    let pins: { has(k: string): boolean } | null = null;
    if (pl.mode === "parallel") {
      const writes = await this.runParallel(p, pl, outcomes);
      // Merged worker writes land in the cache here (the inline path wrote through already).
      this.cache.apply(writes);
      written = [...writes.keys()];
      value = (k) => writes.get(k)!;
      pins = writes;
    } else {
      // Each write staged as a log entry when made (round 6): the result reads one buffer.
      const stage = this.stage;
      stage.reset();
      const ctx = this.inlineContext(stage);
      const n = block.txs.length;
      let misses = 0;
      // The fee collector is credited after the last tx: loaded before the first runs.
      if (checkEach && !this.cache.has(FEE_COLLECTOR_KEY))
        misses += await this.cache.load([FEE_COLLECTOR_KEY]);
      for (let from = 0; ; ) {
        from = this.runInline(decoded, block, hashes, outcomes, ctx, from, checkEach);
        if (from === n) break;
        // Tx `from` has a key not cached and has not run: load what it and the txs after it
        // miss, then go on from it. The executor is serial and loads never replace a cached
        // value, so the state it then sees is the state it would have seen.
        const missing = new Set<string>();
        for (const k of blockKeys(decodedFrom(block, from))) if (!this.cache.has(k)) missing.add(k);
        misses += await this.cache.load(missing);
      }
      if (checkEach) this.recentMisses = misses;
      loaded += misses;
      creditFees(ctx.view, feeSum(ctx.fees));
      written = ctx.written ?? [];
      const cache = this.cache;
      value = stage.ok ? stage : (k) => cache.peek(k) ?? null;
    }
    // DPoS epoch hook (issue 11, src/staking/hook.ts): at an epoch's last block, its writes join
    // the block's. It reads the state after the block's transactions (the cache holds them in
    // both modes by now) and writes through to the cache like the inline path.
    if (this.epochHook) {
      const extra = new Map<string, Uint8Array | null>();
      const hookView = {
        get: (k: string) => (extra.has(k) ? extra.get(k)! : this.cached(k)),
        set: (k: string, v: Uint8Array | null) => {
          extra.set(k, v);
        },
      };
      const load = this.hasSource ? (keys: string[]) => this.cache.load(keys) : undefined;
      await runEpochHook(this.epochHook, block.height, hookView, load);
      if (extra.size > 0) {
        this.cache.apply(extra);
        // The write set dedupes repeated keys; pins then cover every key written (see below).
        written.push(...extra.keys());
        const cache = this.cache;
        value = (k) => cache.peek(k) ?? null;
        pins = null;
      }
    }
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    // Receipts are encoded by the store straight from the outcomes (result.outcomesOf); Receipt
    // messages are built only if someone reads result.receipts.
    const blockOutcomes = { height: block.height, hashes, outcomes };
    const result =
      value instanceof WriteStage
        ? buildResultFromStage(block.height, this.root, value, blockOutcomes)
        : buildResultFromKeys(block.height, this.root, written, value, blockOutcomes);
    // Keys this block wrote stay pinned in the cache until the store holds the block. An inline
    // block's pins are read from its write-set log (every key it wrote) if eviction ever asks.
    if (this.hasSource)
      this.unpersisted.push({
        height: block.height,
        writes: pins ?? new WrittenKeys(writeSetLogOf(result) ?? written),
      });
    const t2 = performance.now();
    this.height = block.height;
    this.root = result.stateRoot;
    // Callers should markPersisted(h) after each execution batch; a store that reports its
    // executed height keeps this list short even when they do not.
    if (this.unpersisted.length > UNPERSISTED_CHECK && this.source?.getExecutedHeight) {
      this.markPersisted(await this.source.getExecutedHeight());
    }
    this.cache.evict(this.unpersisted.map((u) => u.writes));
    this.lastStats = {
      height: block.height,
      mode: pl.mode,
      lanes: pl.lanes,
      bins: pl.bins.length,
      txs: block.txs.length,
      loadedFromStore: loaded,
      predictedSequentialUs: pl.sequentialUs,
      predictedParallelUs: pl.parallelUs,
      applyMs: t1 - t0,
      resultMs: t2 - t1,
      applyCpuMs: (cpu.user + cpu.system) / 1000,
    };
    return result;
  }

  /**
   * The plan `plan()` would make for the block, when its pre-check alone sends it inline and every
   * tx comes pre-decoded (so each tx's cost is known without decoding it here); else null. Mode
   * auto only: "never" still builds lanes for its stats, "always" ships. Txs decodeTx will
   * refuse (a sender that is not a public key) are left out of the count, as plan leaves them out.
   * With a store, prepare calls it (and loads the block's keys without keeping its decoded txs).
   */
  private fusedPlan(block: ExecutableBlock): Plan | null {
    if (this.mode !== "auto") return null;
    const pre = block.decoded;
    const n = block.txs.length;
    if (pre === undefined || pre.length < n) return null;
    const m = this.cost;
    let seq = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const d = pre[i];
      if (d === undefined) return null;
      if (d.body.sender.length !== PUBLIC_KEY_LENGTH) continue;
      seq += txCostUs(d, m);
      count++;
    }
    if (!inlineByPrecheck(count, seq, this.pool?.size ?? 0, m)) return null;
    return { mode: "inline", bins: [], lanes: 0, sequentialUs: seq, parallelUs: Number.POSITIVE_INFINITY };
  }

  private cached(k: string): Uint8Array | null {
    const v = this.cache.peek(k);
    if (v !== undefined) return v;
    if (!this.hasSource) return null;
    throw new ParabftError("EXEC_STATE_NOT_LOADED", { key: k }, "executor bug: key not loaded");
  }

  /** Reads the block's writes so far, then the cache (every key was loaded in prepare). */
  private overView(writes: Map<string, Uint8Array | null>) {
    return {
      get: (k: string) => {
        const w = writes.get(k);
        return w !== undefined ? w : this.cached(k);
      },
      set: (k: string, v: Uint8Array | null) => {
        writes.set(k, v);
      },
    };
  }

  /**
   * The inline path's state view, straight on the cache (one lookup per read and per write),
   * staging each write and recording the keys written where they are read (`written`: repeats
   * included; the write set dedupes them), and the block's fee total.
   */
  private inlineContext(stage: WriteStage): InlineContext {
    // The written keys are kept only where they are read: the epoch hook's write set, or a write
    // the stage cannot hold (its keys so far are then read back from the stage). Otherwise a
    // block-long array of 20k key strings would outlive young-generation collections for nothing
    // (round 11); eviction pins read the result's log instead (round 13).
    const cache = this.cache;
    const ctx: InlineContext = {
      written: this.epochHook !== undefined ? [] : null,
      stage,
      fees: newFeeTotal(),
      view: {
        get: (k: string) => {
          const v = cache.peek(k);
          if (v === undefined) return this.cached(k);
          return v;
        },
        set: (k: string, v: Uint8Array | null) => {
          const written = ctx.written;
          if (written !== null) {
            written.push(k);
            stage.add(k, v);
          } else {
            stage.add(k, v);
            if (!stage.ok) {
              const keys = stage.stagedKeys();
              keys.push(k);
              ctx.written = keys;
            }
          }
          cache.seed(k, v);
        },
      },
    };
    return ctx;
  }

  /**
   * Runs txs `from`.. in block order on the inline context's view. Returns the block's length, or
   * (checkEach) the index of the first tx with a key not cached, before anything of it ran. An
   * error here is an executor bug and stops the pipeline.
   */
  private runInline(
    decoded: (DecodedTx | null)[] | null,
    block: ExecutableBlock,
    hashes: Hash[],
    outcomes: TxOutcome[],
    ctx: InlineContext,
    from: number,
    checkEach: boolean,
  ): number {
    const n = block.txs.length;
    if (decoded === null) return this.runFused(block, hashes, outcomes, ctx, from, checkEach);
    for (let i = from; i < n; i++) {
      const tx = decoded[i]!;
      outcomes[i] = tx ? this.applyInline(tx, ctx) : MALFORMED_OUTCOME;
    }
    return n;
  }

  /**
   * One tx on the inline path: a transfer between two accounts the arena holds is run on the
   * arena's bytes in place (transferArena) while only the stage records writes; anything else,
   * or anything it refuses before writing, goes through the view (applyTxFast).
   */
  private applyInline(tx: DecodedTx, ctx: InlineContext): TxOutcome {
    if (ctx.written === null && ctx.stage.room(2)) {
      const o = transferArena(this.cache.arena, tx, ctx.fees, ctx.stage);
      if (o !== null) return o;
    }
    return applyTxFast(ctx.view, tx, ctx.fees);
  }

  /**
   * Fused (see run): decodeBlock's work tx by tx, in groups of FUSED_GROUP txs. A group's txs are
   * decoded, then their state is touched in tight passes of independent reads (`prefetch`), so
   * the CPU overlaps the cold misses of several txs instead of paying them one after another
   * inside each tx; the txs then run on warm lines. The touches only read, so results are the
   * same as running tx by tx.
   */
  private runFused(
    block: ExecutableBlock,
    hashes: Hash[],
    outcomes: TxOutcome[],
    ctx: InlineContext,
    from: number,
    checkEach: boolean,
  ): number {
    const n = block.txs.length;
    const group = this.group;
    const pre = block.decoded;
    const txHashes = block.txHashes;
    for (let g = from; g < n; g += FUSED_GROUP) {
      const end = Math.min(n, g + FUSED_GROUP);
      for (let i = g; i < end; i++) {
        const body = block.txs[i]!.body;
        const h = txHashes?.[i] ?? hashBody(body);
        hashes[i] = h;
        group[i - g] = decodeTx(body, h, pre?.[i]);
      }
      this.prefetch(end - g);
      // The group's txs only write keys they declare, all cached once checked: a tx that ran
      // cannot make a later one's check differ, so checking the group first is exact.
      let stop = end;
      if (checkEach) {
        for (let i = g; i < end; i++) {
          const tx = group[i - g];
          if (tx != null && !this.allCached(tx)) {
            stop = i;
            break;
          }
        }
      }
      const m = stop - g;
      for (let j = 0; j < m; j++) {
        const tx = group[j]!;
        group[j] = null;
        outcomes[g + j] = tx ? this.applyInline(tx, ctx) : MALFORMED_OUTCOME;
      }
      if (stop < end) {
        for (let j = m; j < end - g; j++) group[j] = null;
        return stop;
      }
    }
    return n;
  }

  /**
   * Warms the state of the group's first `m` txs before any of them runs or is checked (round
   * 17). Accounts, in two passes of independent reads: every account's table entry (the
   * sender's, each declared account key's: probeStart), then every slot those entries point at
   * (touchProbe). Each pass has all its misses in flight together, where a whole lookup per
   * account (round 16's touch passes: findAddress) chained each slot read behind its table read
   * and behind a 20-byte compare, so only a few lookups overlapped. Other declared keys are
   * touched in the cache's Map. Only reads: results are the same as running tx by tx.
   */
  private prefetch(m: number): void {
    const cache = this.cache;
    const arena = cache.arena;
    const group = this.group;
    const probes = this.probes;
    const room = probes.length;
    let t = 0;
    let sink = 0;
    for (let j = 0; j < m; j++) {
      const tx = group[j];
      if (tx == null) continue;
      if (t < room) probes[t++] = arena.probeStart(tx.sender, 0);
      const aw = tx.body.access?.writes;
      if (aw === undefined) continue;
      for (let k = 0; k < aw.length; k++) {
        const key = aw[k]!;
        if (!isAccountKeyBytes(key)) sink ^= cache.touch(tx.writes[k]!);
        else if (t < room) probes[t++] = arena.probeStart(key, 1);
      }
    }
    for (let p = 0; p < t; p++) arena.touchProbe(probes[p]!);
    this.sink ^= sink;
  }

  /**
   * True when every key the tx may touch is cached (its first, cold lookups: the tx's are warm).
   * Accounts the arena holds are found by their address bytes (round 16), so a transfer builds
   * no key string here.
   */
  private allCached(tx: DecodedTx): boolean {
    const cache = this.cache;
    const arena = cache.arena;
    if (arena.findAddress(tx.sender, 0) < 0 && !cache.has(tx.senderKey)) return false;
    const access = tx.body.access;
    if (access === undefined) return true;
    const aw = access.writes;
    for (let i = 0; i < aw.length; i++) {
      const k = aw[i]!;
      if (isAccountKeyBytes(k) && arena.findAddress(k, 1) >= 0) continue;
      if (!cache.has(tx.writes[i]!)) return false;
    }
    const ar = access.reads;
    for (let i = 0; i < ar.length; i++) {
      const k = ar[i]!;
      if (isAccountKeyBytes(k) && arena.findAddress(k, 1) >= 0) continue;
      if (!cache.has(tx.reads[i]!)) return false;
    }
    return true;
  }

  private async runParallel(
    p: PreparedBlock,
    pl: Plan,
    outcomes: TxOutcome[],
  ): Promise<Map<string, Uint8Array | null>> {
    const pool = this.pool!;
    const { block } = p;
    const decoded = p.decoded!;
    const hashes = p.hashes!;
    for (let i = 0; i < decoded.length; i++) if (!decoded[i]) outcomes[i] = MALFORMED_OUTCOME;
    const jobs = pl.bins.map((bin) => {
      const txs: JobTx[] = new Array(bin.length);
      const state = new Map<string, Uint8Array | null>();
      bin.forEach((i, j) => {
        const tx = decoded[i]!;
        txs[j] = { index: i, hash: hashes[i]!, body: block.txs[i]!.body };
        for (const k of touchedKeys(tx).keys) if (!state.has(k)) state.set(k, this.cached(k));
      });
      return encodeJob(txs, state);
    });
    const results = await Promise.all(jobs.map((job, w) => pool.run(w, job)));
    // Lanes touch disjoint keys, so the bins' writes never collide: merge order is irrelevant,
    // and the write set is sorted afterwards anyway.
    const writes = new Map<string, Uint8Array | null>();
    let fees = 0n;
    for (const buf of results) {
      const r = decodeResult(buf);
      for (const o of r.outcomes) outcomes[o.index] = o.outcome;
      for (const [k, v] of r.writes) writes.set(k, v);
      fees += r.fees;
    }
    // Sums are order-free, and the credit comes after every lane, as in the reference.
    creditFees(this.overView(writes), fees);
    return writes;
  }
}
