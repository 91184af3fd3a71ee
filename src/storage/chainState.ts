// The execution side of ChainDb (DESIGN §7): the execution batch written after a block is
// executed (not synced: recovery re-executes from committed blocks), the write-set logs folded
// into the state bucket in the background, and the reads of state, receipts and kept write sets.
import { consumedNonce } from "../exec/programs.js";
import { outcomesOf, writeSetLogOf } from "../exec/result.js";
import type { ExecutionResult, StateWrite } from "../exec/types.js";
import type { Receipt } from "../gen/parabft/v1/types_pb.js";
import { bytesEqual, compareBytes, u64be } from "../types/bytes.js";
import { HASH_LENGTH, type Hash } from "../types/hash.js";
import { Bucket } from "./buckets.js";
import type { ChainBlocks, TxLocation } from "./chainBlocks.js";
import type { ChainDbOpts } from "./chainDb.js";
import type { Db, DbOp } from "./db.js";
import { StorageError } from "./errors.js";
import {
  decodeReceiptAt,
  decodeWriteSetLog,
  encodeBlockReceipts,
  encodeReceipts,
  encodeWriteSetLog,
  foldOrder,
  logKeyHash,
  logLookup,
  logOffsets,
  type ReceiptsScratch,
} from "./execLog.js";
import { bucketKey, heightKey, metaKey, readU32, readU64 } from "./keys.js";
import { SerialWrites } from "./serialWrites.js";

export const META_EXECUTED = metaKey("executedHeight");
export const META_STATE_ROOT = metaKey("stateRoot");

/** Pending write-set entries beyond which the logs are folded into the state bucket. */
export const DEFAULT_STATE_APPLY_ENTRIES = 2_000_000;
const APPLY_CHUNK = 8_192;

/** A kept write set (see ChainDbOpts.keepWriteSetOf). */
export interface KeptWriteSet {
  height: bigint;
  /** The state root after height − 1 (the one the executor chained from). */
  previousRoot: Hash;
  writeSet: StateWrite[];
}

/**
 * A write-set log not yet folded, kept as its encoded value (off the JS heap: hundreds of
 * thousands of small objects held across blocks would make every GC expensive) plus the offset
 * of each entry, for binary search.
 */
interface PendingLog {
  height: bigint;
  log: Buffer;
  /** Entry offsets in `log`, in key order (the executor sorts write sets). */
  offsets: Uint32Array;
}

/** What ChainState reads besides the database: the tx index (getReceipt). */
export interface ChainStateModules {
  db: Db;
  blocks: Pick<ChainBlocks, "getTxLocation">;
}

/** ChainDb's execution batches, state fold and state reads (ChainDb.open reads the executed height). */
export class ChainState {
  // Single writer: the height is cached and batches are serialised, so the order checks
  // below cannot race with a batch still in flight.
  private readonly execQueue = new SerialWrites();
  /** Write-set logs not yet folded into the state bucket, ascending by height. */
  private pending: PendingLog[] = [];
  /** The receipts value of the execution batch being written (they are written one at a time). */
  private readonly receiptsScratch: ReceiptsScratch = { buf: null };
  private pendingEntries = 0;
  private applying: Promise<void> | null = null;
  /** Bumped when a fold starts: a state read that overlapped one is repeated (getStateSnapshot). */
  private foldGeneration = 0;
  /**
   * State keys the bucket lacked when last read, since the bucket last changed (a fold, genesis):
   * with no pending log holding such a key, getState answers without a RocksDB read. Unknown
   * accounts' spam (issue 10) reads the same few absent keys over and over. Bounded.
   */
  private readonly bucketMisses = new Set<string>();
  /** Bumped when the bucket starts to change: a miss read across it is not remembered. */
  private bucketWrites = 0;
  private closing = false;

  constructor(
    private readonly opts: ChainDbOpts,
    private readonly modules: ChainStateModules,
    private executed: bigint,
  ) {}

  /** Stops folding (ChainDb.close): a fold in flight ends before its next chunk is written. */
  stopFolding(): Promise<void> | null {
    this.closing = true;
    return this.applying;
  }

  /**
   * One WriteBatch, not synced (recovery re-executes): the block's write-set log (ONE value),
   * its receipts (ONE value), executed height and state root: 4 keys per block whatever its
   * size. The state bucket is brought up to date in the background: once the logs hold
   * `stateApplyEntries` entries, the latest value of each key they changed is written in chunks,
   * then the folded logs are deleted in one batch. Until then, and after a crash in between,
   * reads overlay the logs on the bucket (a key in a log always masks the bucket), so getState
   * and iterateState are exact at the executed height at every moment.
   * Receipts are found through the commit batch's tx index (see getReceipt).
   */
  writeExecutionBatch(result: ExecutionResult): Promise<void> {
    return this.execQueue.run(() => this.doWriteExecutionBatch(result));
  }

  private async doWriteExecutionBatch(result: ExecutionResult): Promise<void> {
    const t0 = performance.now();
    // Equal is allowed: genesis (height 0) and a deterministic re-execution of the last height.
    if (result.height < this.executed) {
      throw new StorageError(
        "EXEC_REWIND",
        { height: result.height, executed: this.executed },
        `execution batch for height ${result.height} but executed height is ${this.executed}`,
      );
    }
    // The executor may have encoded the log while building the write set (same bytes).
    const pre = writeSetLogOf(result);
    const log = pre
      ? Buffer.from(pre.buffer, pre.byteOffset, pre.byteLength)
      : encodeWriteSetLog(result.writeSet);
    const ops: DbOp[] = [];
    if (this.opts.keepWriteSetOf?.(result.height) === true) {
      // The root before this height is the stored one unless this is a re-execution of the
      // executed height (then the kept record, written with its first execution, stays).
      const previous = result.height > this.executed ? await this.modules.db.get(META_STATE_ROOT) : undefined;
      if (previous !== undefined && previous.length === HASH_LENGTH) {
        ops.push({
          type: "put",
          key: heightKey(Bucket.epochWriteSet, result.height),
          value: Buffer.concat([previous, log]),
        });
      }
    }
    ops.push(
      { type: "put", key: heightKey(Bucket.execLog, result.height), value: log },
      {
        type: "put",
        key: heightKey(Bucket.blockReceipts, result.height),
        // A view of this.receiptsScratch: the batch copies it before the next block encodes.
        value: receiptsValue(result, this.receiptsScratch),
      },
      { type: "put", key: META_EXECUTED, value: u64be(result.height) },
      { type: "put", key: META_STATE_ROOT, value: result.stateRoot },
    );
    await this.modules.db.batch(ops);
    const entry: PendingLog = { height: result.height, log, offsets: logOffsets(log, result.height) };
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && last.height === result.height) {
      this.pendingEntries += entry.offsets.length - last.offsets.length;
      this.pending[this.pending.length - 1] = entry;
    } else {
      this.pending.push(entry);
      this.pendingEntries += entry.offsets.length;
    }
    this.executed = result.height;
    this.opts.onWrite?.("execution", performance.now() - t0, ops.length);
    if (this.pendingEntries >= (this.opts.stateApplyEntries ?? DEFAULT_STATE_APPLY_ENTRIES)) {
      this.startApply();
    }
  }

  /** Folds every pending write-set log into the state bucket now (tests, benchmarks, tools). */
  async flushState(): Promise<void> {
    await this.execQueue.idle();
    while (this.applying) await this.applying;
    if (this.pending.length > 0) {
      this.startApply();
      await this.applying;
    }
  }

  /** Write-set log entries not yet in the state bucket (metrics, tests). */
  get pendingStateEntries(): number {
    return this.pendingEntries;
  }

  private startApply(): void {
    if (this.applying || this.closing) return;
    // Readers that paired the bucket with the logs before this fold must read again.
    this.foldGeneration++;
    this.bucketWrites++;
    this.bucketMisses.clear();
    this.applying = this.applyPending()
      .catch((err: unknown) => {
        // The logs stay; the next apply (or the next open) folds them. Reads stay exact.
        this.opts.log?.error({ err }, "folding write-set logs into the state bucket failed");
      })
      .finally(() => {
        this.applying = null;
      });
  }

  private async applyPending(): Promise<void> {
    const t0 = performance.now();
    const blocks = this.pending.slice();
    // The newest value of each key, in key order: a merge of the sorted logs (foldOrder), or,
    // should a log not be sorted, logs newest first with a Set of the keys taken.
    const order = blocks.length > 1 ? foldOrder(blocks) : null;
    let batch = this.modules.db.chain();
    let inBatch = 0;
    let written = 0;
    // RocksDB copies a put's key into its batch at once: one key buffer per length is reused.
    const keyBufs: Buffer[] = [];
    const put = (log: Buffer, off: number): void => {
      const kl = (log[off]! << 8) | log[off + 1]!;
      const ks = off + 2;
      let key = keyBufs[kl];
      if (key === undefined) {
        key = Buffer.allocUnsafeSlow(1 + kl);
        key[0] = Bucket.state;
        keyBufs[kl] = key;
      }
      // State keys are ~21 bytes: a loop beats Buffer#copy's native call.
      for (let c = 0; c < kl; c++) key[1 + c] = log[ks + c]!;
      const at = ks + kl;
      if (log[at] === 0) batch.del(key);
      else batch.put(key, log.subarray(at + 5, at + 5 + log.readUInt32BE(at + 1)));
    };
    // A full chunk goes out as its own batch; false once the store is closing (stop folding).
    const flush = async (): Promise<boolean> => {
      if (this.closing) return false;
      await batch.write();
      written += inBatch;
      inBatch = 0;
      batch = this.modules.db.chain();
      return true;
    };
    if (order !== null) {
      for (let i = 0; i < order.n; i++) {
        const b = blocks[order.block[i]!]!;
        put(b.log, b.offsets[order.entry[i]!]!);
        if (++inBatch >= APPLY_CHUNK && !(await flush())) return;
      }
    } else {
      const seen = blocks.length > 1 ? new Set<string>() : null;
      for (let bi = blocks.length - 1; bi >= 0; bi--) {
        const { log, offsets } = blocks[bi]!;
        for (let i = 0; i < offsets.length; i++) {
          const off = offsets[i]!;
          if (seen !== null) {
            const ks = off + 2;
            const id = log.toString("latin1", ks, ks + ((log[off]! << 8) | log[off + 1]!));
            if (seen.has(id)) continue;
            seen.add(id);
          }
          put(log, off);
          if (++inBatch >= APPLY_CHUNK && !(await flush())) return;
        }
      }
    }
    if (this.closing) return;
    for (const b of blocks) batch.del(heightKey(Bucket.execLog, b.height));
    inBatch += blocks.length;
    await batch.write();
    written += inBatch;
    // Only these blocks were folded; a redo of the last one replaced it with identical writes.
    this.pending.splice(0, blocks.length);
    this.pendingEntries = 0;
    for (const b of this.pending) this.pendingEntries += b.offsets.length;
    this.opts.onWrite?.("state", performance.now() - t0, written);
  }

  async loadPendingLogs(): Promise<void> {
    for await (const [k, v] of this.modules.db.iteratePrefix(Uint8Array.of(Bucket.execLog))) {
      const height = readU64(k, 1);
      const log = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      const offsets = logOffsets(log, height);
      this.pending.push({ height, log, offsets });
      this.pendingEntries += offsets.length;
    }
  }

  async getExecutedHeight(): Promise<bigint> {
    return this.executed;
  }

  /** The state root after the executed height; undefined before any execution (genesis). */
  async getStateRoot(): Promise<Hash | undefined> {
    return this.modules.db.get(META_STATE_ROOT);
  }

  /** The value at the executed height: the newest pending log holding the key, else the bucket. */
  async getState(key: Uint8Array): Promise<Uint8Array | undefined> {
    const h = logKeyHash(key);
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const found = logLookup(this.pending[i]!, key, h);
      if (found !== undefined) return found ?? undefined;
    }
    const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
    if (this.bucketMisses.has(k)) return undefined;
    const writes = this.bucketWrites;
    const stable = this.applying === null;
    const value = await this.modules.db.get(bucketKey(Bucket.state, key));
    if (value === undefined && stable && this.applying === null && writes === this.bucketWrites) {
      if (this.bucketMisses.size >= 65_536) this.bucketMisses.clear();
      this.bucketMisses.add(k);
    }
    return value;
  }

  /**
   * State values and the executed height they belong to, consistent with each other (reading the
   * height and a value separately could pair a value from h+1 with height h). The executed height
   * and the unfolded write-set logs change together, synchronously, once a block's batch is
   * written, so a key found in a log is read at exactly that height. A key in no log has not
   * changed since the last fold, so the bucket holds its value at that height, unless a fold
   * wrote newer values while it was being read: such a read is retried.
   */
  async getStateSnapshot(
    keys: readonly Uint8Array[],
  ): Promise<{ height: bigint; values: (Uint8Array | undefined)[] }> {
    for (;;) {
      const height = this.executed;
      const generation = this.foldGeneration;
      const values: (Uint8Array | undefined)[] = new Array(keys.length).fill(undefined);
      const fromBucket: number[] = [];
      keys.forEach((key, i) => {
        const h = logKeyHash(key);
        for (let b = this.pending.length - 1; b >= 0; b--) {
          const found = logLookup(this.pending[b]!, key, h);
          if (found !== undefined) {
            values[i] = found ?? undefined;
            return;
          }
        }
        fromBucket.push(i);
      });
      if (fromBucket.length === 0) return { height, values };
      if (this.applying) {
        await this.applying;
        continue;
      }
      const got = await this.modules.db.getMany(fromBucket.map((i) => bucketKey(Bucket.state, keys[i]!)));
      if (this.foldGeneration !== generation) continue;
      fromBucket.forEach((i, j) => {
        values[i] = got[j];
      });
      return { height, values };
    }
  }

  /**
   * The receipt of the inclusion that counted: the first whose execution consumed the tx's nonce
   * (a tx can be included again after an inclusion that failed BAD_NONCE or was a DUPLICATE).
   * When no executed inclusion consumed it, the first inclusion's receipt; undefined until the
   * first inclusion is executed.
   */
  async getReceipt(hash: Hash): Promise<Receipt | undefined> {
    const loc = await this.modules.blocks.getTxLocation(hash);
    if (loc === undefined) return undefined;
    const first = await this.receiptAt(hash, loc);
    if (first === undefined || consumedNonce(first)) return first;
    for await (const [key] of this.modules.db.iteratePrefix(bucketKey(Bucket.txReinclusion, hash))) {
      const at = key.subarray(1 + hash.length);
      const later = await this.receiptAt(hash, { height: readU64(at), index: readU32(at, 8) });
      if (later !== undefined && consumedNonce(later)) return later;
    }
    return first;
  }

  private async receiptAt(hash: Hash, loc: TxLocation): Promise<Receipt | undefined> {
    const raw = await this.modules.db.get(heightKey(Bucket.blockReceipts, loc.height));
    if (raw === undefined) return undefined;
    const r = decodeReceiptAt(raw, loc.height, loc.index);
    return r !== undefined && bytesEqual(r.txHash, hash) ? r : undefined;
  }

  /**
   * Every state entry at the executed height in key order (state keys without the bucket
   * prefix): the bucket merged with the pending logs. Warms the executor.
   */
  async *iterateState(): AsyncGenerator<[key: Uint8Array, value: Uint8Array]> {
    const overlay = new Map<string, StateWrite>();
    for (const b of this.pending) {
      for (const w of decodeWriteSetLog(b.log, b.height))
        overlay.set(Buffer.from(w.key).toString("latin1"), w);
    }
    const pend = [...overlay.values()].sort((a, b) => compareBytes(a.key, b.key));
    let j = 0;
    for await (const [k, v] of this.modules.db.iteratePrefix(Uint8Array.of(Bucket.state))) {
      const key = k.subarray(1);
      while (j < pend.length && compareBytes(pend[j]!.key, key) < 0) {
        const w = pend[j++]!;
        if (w.value !== null) yield [w.key, w.value];
      }
      if (j < pend.length && compareBytes(pend[j]!.key, key) === 0) {
        const w = pend[j++]!;
        if (w.value !== null) yield [w.key, w.value];
        continue;
      }
      yield [key, v];
    }
    while (j < pend.length) {
      const w = pend[j++]!;
      if (w.value !== null) yield [w.key, w.value];
    }
  }

  /**
   * Writes genesis state (or any out-of-band state) without touching heights. Synced, atomic.
   * Only for init: normal execution goes through writeExecutionBatch.
   */
  async writeGenesisState(entries: Iterable<{ key: Uint8Array; value: Uint8Array }>, stateRoot?: Hash) {
    this.bucketWrites++;
    this.bucketMisses.clear();
    const ops: DbOp[] = [];
    for (const e of entries) ops.push({ type: "put", key: bucketKey(Bucket.state, e.key), value: e.value });
    if (stateRoot) ops.push({ type: "put", key: META_STATE_ROOT, value: stateRoot });
    await this.modules.db.batch(ops, { sync: true });
    this.bucketWrites++;
    this.bucketMisses.clear();
  }

  /** The write set kept for `height` (ChainDbOpts.keepWriteSetOf), if any. */
  async getKeptWriteSet(height: bigint): Promise<KeptWriteSet | undefined> {
    const raw = await this.modules.db.get(heightKey(Bucket.epochWriteSet, height));
    if (raw === undefined) return undefined;
    if (raw.length < HASH_LENGTH + 4) {
      throw new StorageError(
        "CORRUPT_RECORD",
        { bucket: "epochWriteSet", height },
        `corrupt kept write set at ${height}`,
      );
    }
    return {
      height,
      previousRoot: raw.slice(0, HASH_LENGTH),
      writeSet: decodeWriteSetLog(raw.subarray(HASH_LENGTH), height),
    };
  }
}

/** A block's receipts value: straight from the executor's outcomes when it kept them (same bytes). */
function receiptsValue(result: ExecutionResult, scratch: ReceiptsScratch): Buffer {
  const src = outcomesOf(result);
  return src !== undefined ? encodeBlockReceipts(src, scratch) : encodeReceipts(result.receipts);
}
