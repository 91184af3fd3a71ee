// The chain's durable record (DESIGN §5, §7): what the node and the execution pipeline read and
// write. Two atomic batches per block: the commit batch (sync) when consensus delivers, and the
// execution batch (not synced: recovery re-executes from committed blocks) after execution.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { consumedNonce } from "../exec/programs.js";
import { outcomesOf, writeSetLogOf } from "../exec/result.js";
import type { ExecutionResult, StateWrite } from "../exec/types.js";
import { type CheckpointCertificate, CheckpointCertificateSchema } from "../gen/parabft/v1/consensus_pb.js";
import {
  type Block,
  BlockSchema,
  type CommitCertificate,
  CommitCertificateSchema,
  type Receipt,
  type SignedTx,
  SignedTxSchema,
} from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import { bytesEqual, compareBytes, concatBytes, toHex, u64be } from "../types/bytes.js";
import { blockTxBytesAt } from "../types/fastWire.js";
import { HASH_LENGTH, type Hash, sha256 } from "../types/hash.js";
import { Bucket } from "./buckets.js";
import { Db, type DbOp, type DbOpenOpts, prefixEnd } from "./db.js";
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
import { decodeJson, encodeJson } from "./json.js";
import { bucketKey, encodeTxLocation, fastTxHash, heightKey, metaKey, readU32, readU64 } from "./keys.js";
import { RESET_TESTNET_HINT } from "./signingState.js";

/** Bump on any incompatible change of a bucket's key or value layout. */
/** 2: commit certificates carry their view (protocol version 2); version-1 databases are refused. */
export const SCHEMA_VERSION = 2;
const EMPTY = new Uint8Array(0);

const META_SCHEMA = metaKey("schemaVersion");
const META_COMMITTED = metaKey("committedHeight");
const META_EXECUTED = metaKey("executedHeight");
const META_STATE_ROOT = metaKey("stateRoot");
const META_STABLE_CHECKPOINT = metaKey("stableCheckpointHeight");
const META_EXEC_LAYOUT = metaKey("execLayout");

/**
 * How execution results are laid out, versioned apart from SCHEMA_VERSION (the commit side).
 * 1 (no marker): per-tx receipt and tx-seen keys, every state write a key in the execution batch.
 * 2: one write-set log and one receipts value per block; the state bucket is brought up to date
 *    in the background (see writeExecutionBatch).
 * 3: as 2, but a sender's recent-transactions record lives inside its account value
 *    (src/exec/codec.ts), not under a key of its own: 2 state keys per transfer, not 3.
 * Older layouts are refused, not migrated: their state roots were computed under other rules
 * (layout 1: no fees, per-nonce tx-seen records; layout 2: the separate record key), so a node
 * re-executing from them would disagree with its peers.
 */
export const EXEC_LAYOUT = 3;

/** Pending write-set entries beyond which the logs are folded into the state bucket. */
export const DEFAULT_STATE_APPLY_ENTRIES = 2_000_000;
const APPLY_CHUNK = 8_192;

export type WriteKind = "commit" | "execution" | "checkpoint" | "evidence" | "state";

export interface ChainDbOpts extends DbOpenOpts {
  log?: Logger;
  /** Called after each batch with its wall time: feeds the RocksDB write latency metric. */
  onWrite?: (kind: WriteKind, ms: number, ops: number) => void;
  /** Fold the write-set logs into the state bucket once they hold this many entries. */
  stateApplyEntries?: number;
  /**
   * Heights whose write set (with the state root before it) is kept for good in the
   * epochWriteSet bucket, in the same atomic batch as the execution results (DPoS: the last
   * block of each epoch, for GetEpochSetProof). Unset: none.
   */
  keepWriteSetOf?: (height: bigint) => boolean;
}

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

export interface CommitBatchInput {
  height: bigint;
  digest: Hash;
  /** null for a null block. */
  block: Block | null;
  /** The block exactly as received, if at hand: stored as is instead of re-encoding `block`. */
  blockBytes?: Uint8Array;
  /** txHash of each tx of `block`, if already computed (the mempool has them). */
  txHashes?: readonly Hash[];
  certificate: CommitCertificate;
  chainHash: Hash;
  /** Block time after commit: max(previous block time, header timestamp). */
  blockTimeMs: bigint;
}

export interface StoredBlock {
  height: bigint;
  digest: Hash;
  /** null for a null block. */
  block: Block | null;
  chainHash: Hash;
  blockTimeMs: bigint;
}

export interface CommittedBlockRecord extends StoredBlock {
  certificate: CommitCertificate;
}

export interface TxLocation {
  height: bigint;
  index: number;
}

/** Equivocation evidence as the consensus core reports it (structurally its EvidenceRecord). */
export interface StoredEvidence {
  sender: number;
  epoch: bigint;
  phase: string;
  view: bigint;
  height: bigint;
  first: Uint8Array;
  second: Uint8Array;
}

// blockMeta value: digest ‖ chainHash ‖ u64 blockTimeMs ‖ u8 isNull
const BLOCK_META_LENGTH = 2 * HASH_LENGTH + 8 + 1;

export class ChainDb {
  // Single writer: heights are cached and each batch kind is serialised, so the order checks
  // below cannot race with a batch still in flight.
  private committed = 0n;
  private executed = 0n;
  private commitQueue: Promise<void> = Promise.resolve();
  private execQueue: Promise<void> = Promise.resolve();
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

  private constructor(
    readonly db: Db,
    private readonly opts: ChainDbOpts,
  ) {}

  static async open(dir: string, opts: ChainDbOpts = {}): Promise<ChainDb> {
    // A block's execution batch carries a few MB of logs: a 4 MiB memtable (the binding's
    // default) would flush and compact after every block.
    const db = await Db.open(dir, { writeBufferSize: 64 * 1024 * 1024, ...opts });
    try {
      const raw = await db.get(META_SCHEMA);
      if (raw === undefined) {
        await db.put(META_SCHEMA, u64be(SCHEMA_VERSION), { sync: true });
      } else {
        const found = Number(readU64(raw));
        if (found < SCHEMA_VERSION) {
          throw new StorageError(
            "SCHEMA_TOO_OLD",
            { dir, found, supported: SCHEMA_VERSION },
            `database at ${dir} has schema version ${found} (view-less commit certificates); ${RESET_TESTNET_HINT}`,
          );
        }
        if (found > SCHEMA_VERSION) {
          throw new StorageError(
            "SCHEMA_TOO_NEW",
            { dir, found, supported: SCHEMA_VERSION },
            `database at ${dir} has schema version ${found}; this build supports up to ${SCHEMA_VERSION}`,
          );
        }
      }
      await checkExecLayout(db, dir);
    } catch (err) {
      await db.close();
      throw err;
    }
    const chain = new ChainDb(db, opts);
    const [committed, executed] = await db.getMany([META_COMMITTED, META_EXECUTED]);
    chain.committed = committed === undefined ? 0n : readU64(committed);
    chain.executed = executed === undefined ? 0n : readU64(executed);
    await chain.loadPendingLogs();
    opts.log?.info(
      { dir, committed: await chain.getCommittedHeight(), executed: await chain.getExecutedHeight() },
      "chain database opened",
    );
    return chain;
  }

  async close(): Promise<void> {
    // Pending logs are durable: an apply cut short here is finished by the next one.
    this.closing = true;
    await this.applying;
    await this.db.close();
  }

  async getSchemaVersion(): Promise<number> {
    const raw = await this.db.get(META_SCHEMA);
    return raw === undefined ? 0 : Number(readU64(raw));
  }

  // ---- commit batch ---------------------------------------------------------------------------

  /**
   * One synced WriteBatch: block (by height), digest -> height, commit certificate, block meta
   * (digest, chain hash, block time), tx index, committed height. The tx index keeps a tx's FIRST
   * inclusion: a later duplicate (re-proposed after a view change) must not move it.
   *
   * Heights must arrive in order: committed + 1 is written; an already committed height with the
   * same digest is a no-op (replay after restart); a gap or a different digest is an error.
   */
  writeCommitBatch(input: CommitBatchInput): Promise<void> {
    const next = this.commitQueue.then(() => this.doWriteCommitBatch(input));
    this.commitQueue = next.catch(() => {});
    return next;
  }

  private async doWriteCommitBatch(input: CommitBatchInput): Promise<void> {
    const t0 = performance.now();
    const { height } = input;
    if (height > this.committed + 1n) {
      throw new StorageError(
        "COMMIT_GAP",
        { height, committed: this.committed },
        `commit batch for height ${height} but committed height is ${this.committed}`,
      );
    }
    if (height <= this.committed) {
      const stored = await this.db.get(heightKey(Bucket.blockMeta, height));
      if (stored !== undefined && bytesEqual(stored.subarray(0, HASH_LENGTH), input.digest)) return;
      throw new StorageError(
        "CONFLICTING_COMMIT",
        { height, stored: stored && toHex(stored.subarray(0, HASH_LENGTH)), offered: toHex(input.digest) },
        `height ${height} is already committed with a different block`,
      );
    }
    const ops: DbOp[] = [];
    const meta = new Uint8Array(BLOCK_META_LENGTH);
    meta.set(input.digest, 0);
    meta.set(input.chainHash, HASH_LENGTH);
    meta.set(u64be(input.blockTimeMs), 2 * HASH_LENGTH);
    meta[BLOCK_META_LENGTH - 1] = input.block === null ? 1 : 0;
    ops.push({ type: "put", key: heightKey(Bucket.blockMeta, height), value: meta });
    ops.push({ type: "put", key: bucketKey(Bucket.blockByDigest, input.digest), value: u64be(height) });
    ops.push({
      type: "put",
      key: heightKey(Bucket.commitCert, height),
      value: toBinary(CommitCertificateSchema, input.certificate),
    });
    if (input.block !== null) {
      const bytes = input.blockBytes ?? toBinary(BlockSchema, input.block);
      ops.push({ type: "put", key: heightKey(Bucket.block, height), value: bytes });
      const hashes = input.txHashes;
      const keys = input.block.txs.map((tx, i) =>
        bucketKey(Bucket.txIndex, hashes?.[i] ?? fastTxHash(tx.body)),
      );
      const existing = await this.db.getMany(keys);
      const seen = new Set<string>();
      for (let index = 0; index < keys.length; index++) {
        const key = keys[index]!;
        const id = key.toString("latin1");
        const prior = existing[index];
        if (seen.has(id) || (prior !== undefined && readU64(prior) !== height)) {
          // A later inclusion of a tx: the first may have failed BAD_NONCE and this one succeed.
          const reinclusion = concatBytes(key.subarray(1), encodeTxLocation(height, index));
          ops.push({ type: "put", key: bucketKey(Bucket.txReinclusion, reinclusion), value: EMPTY });
          continue;
        }
        seen.add(id);
        ops.push({ type: "put", key, value: encodeTxLocation(height, index) });
      }
    }
    ops.push({ type: "put", key: META_COMMITTED, value: u64be(height) });
    await this.db.batch(ops, { sync: true });
    this.committed = height;
    this.opts.onWrite?.("commit", performance.now() - t0, ops.length);
  }

  /** 0 when nothing is committed yet (genesis). */
  async getCommittedHeight(): Promise<bigint> {
    return this.committed;
  }

  async getBlock(height: bigint): Promise<StoredBlock | undefined> {
    const [meta, body] = await this.db.getMany([
      heightKey(Bucket.blockMeta, height),
      heightKey(Bucket.block, height),
    ]);
    if (meta === undefined) return undefined;
    return this.decodeStored(height, meta, body);
  }

  async getBlockByDigest(digest: Hash): Promise<StoredBlock | undefined> {
    const raw = await this.db.get(bucketKey(Bucket.blockByDigest, digest));
    return raw === undefined ? undefined : this.getBlock(readU64(raw));
  }

  async getCertificate(height: bigint): Promise<CommitCertificate | undefined> {
    const raw = await this.db.get(heightKey(Bucket.commitCert, height));
    return raw === undefined ? undefined : fromBinary(CommitCertificateSchema, raw);
  }

  /** The raw stored block bytes (for serving peers without a decode/encode round trip). */
  async getBlockBytes(height: bigint): Promise<Uint8Array | undefined> {
    return this.db.get(heightKey(Bucket.block, height));
  }

  /**
   * The committed transaction `hash` and where it is, decoding only that transaction of its
   * block (fastWire's blockTxBytesAt), not the whole block as getBlock does.
   */
  async getTx(hash: Hash): Promise<(TxLocation & { tx: SignedTx }) | undefined> {
    const loc = await this.getTxLocation(hash);
    if (loc === undefined) return undefined;
    const body = await this.getBlockBytes(loc.height);
    const bytes = body === undefined ? undefined : blockTxBytesAt(body, loc.index);
    if (bytes === undefined) {
      throw new StorageError(
        "CORRUPT_RECORD",
        { bucket: "block", height: loc.height },
        `block ${loc.height} has no transaction ${loc.index}, which the tx index names`,
      );
    }
    return { ...loc, tx: fromBinary(SignedTxSchema, bytes) };
  }

  async getTxLocation(hash: Hash): Promise<TxLocation | undefined> {
    const raw = await this.db.get(bucketKey(Bucket.txIndex, hash));
    return raw === undefined ? undefined : { height: readU64(raw), index: readU32(raw, 8) };
  }

  /**
   * Committed blocks with their certificates for heights in [from, to], ascending, stopping at
   * the first missing height (state transfer serves a contiguous run). `limit` caps the count.
   */
  async getCommittedRange(from: bigint, to: bigint, limit = 1024): Promise<CommittedBlockRecord[]> {
    if (to < from) return [];
    const last = from + BigInt(limit) - 1n < to ? from + BigInt(limit) - 1n : to;
    const range = async (bucket: Bucket) => {
      const out = new Map<bigint, Uint8Array>();
      for await (const [k, v] of this.db.iterate({
        gte: heightKey(bucket, from),
        lt: heightKey(bucket, last + 1n),
      })) {
        out.set(readU64(k, 1), v);
      }
      return out;
    };
    const [metas, bodies, certs] = await Promise.all([
      range(Bucket.blockMeta),
      range(Bucket.block),
      range(Bucket.commitCert),
    ]);
    const out: CommittedBlockRecord[] = [];
    for (let h = from; h <= last; h++) {
      const meta = metas.get(h);
      const cert = certs.get(h);
      if (meta === undefined || cert === undefined) break;
      out.push({
        ...this.decodeStored(h, meta, bodies.get(h)),
        certificate: fromBinary(CommitCertificateSchema, cert),
      });
    }
    return out;
  }

  private decodeStored(height: bigint, meta: Uint8Array, body: Uint8Array | undefined): StoredBlock {
    if (meta.length !== BLOCK_META_LENGTH) {
      throw new StorageError(
        "CORRUPT_RECORD",
        { bucket: "blockMeta", height },
        `corrupt block meta at ${height}`,
      );
    }
    const isNull = meta[BLOCK_META_LENGTH - 1] === 1;
    if (!isNull && body === undefined) {
      throw new StorageError(
        "CORRUPT_RECORD",
        { bucket: "block", height },
        `block ${height} missing its body`,
      );
    }
    return {
      height,
      digest: meta.slice(0, HASH_LENGTH),
      chainHash: meta.slice(HASH_LENGTH, 2 * HASH_LENGTH),
      blockTimeMs: readU64(meta, 2 * HASH_LENGTH),
      block: isNull ? null : fromBinary(BlockSchema, body!),
    };
  }

  // ---- execution batch (execution layout 2) ---------------------------------------------------

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
    const next = this.execQueue.then(() => this.doWriteExecutionBatch(result));
    this.execQueue = next.catch(() => {});
    return next;
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
      const previous = result.height > this.executed ? await this.db.get(META_STATE_ROOT) : undefined;
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
    await this.db.batch(ops);
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
    await this.execQueue;
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
    let batch = this.db.chain();
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
      batch = this.db.chain();
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

  private async loadPendingLogs(): Promise<void> {
    for await (const [k, v] of this.db.iteratePrefix(Uint8Array.of(Bucket.execLog))) {
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
    return this.db.get(META_STATE_ROOT);
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
    const value = await this.db.get(bucketKey(Bucket.state, key));
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
      const got = await this.db.getMany(fromBucket.map((i) => bucketKey(Bucket.state, keys[i]!)));
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
    const loc = await this.getTxLocation(hash);
    if (loc === undefined) return undefined;
    const first = await this.receiptAt(hash, loc);
    if (first === undefined || consumedNonce(first)) return first;
    for await (const [key] of this.db.iteratePrefix(bucketKey(Bucket.txReinclusion, hash))) {
      const at = key.subarray(1 + hash.length);
      const later = await this.receiptAt(hash, { height: readU64(at), index: readU32(at, 8) });
      if (later !== undefined && consumedNonce(later)) return later;
    }
    return first;
  }

  private async receiptAt(hash: Hash, loc: TxLocation): Promise<Receipt | undefined> {
    const raw = await this.db.get(heightKey(Bucket.blockReceipts, loc.height));
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
    for await (const [k, v] of this.db.iteratePrefix(Uint8Array.of(Bucket.state))) {
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
    await this.db.batch(ops, { sync: true });
    this.bucketWrites++;
    this.bucketMisses.clear();
  }

  /** The write set kept for `height` (ChainDbOpts.keepWriteSetOf), if any. */
  async getKeptWriteSet(height: bigint): Promise<KeptWriteSet | undefined> {
    const raw = await this.db.get(heightKey(Bucket.epochWriteSet, height));
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

  // ---- checkpoints and evidence ---------------------------------------------------------------

  /** Synced: the stable checkpoint is the low watermark the node restarts from. */
  async putStableCheckpoint(cert: CheckpointCertificate): Promise<void> {
    const t0 = performance.now();
    const ops: DbOp[] = [
      {
        type: "put",
        key: heightKey(Bucket.checkpoint, cert.height),
        value: toBinary(CheckpointCertificateSchema, cert),
      },
    ];
    const current = await this.db.get(META_STABLE_CHECKPOINT);
    if (current === undefined || readU64(current) < cert.height) {
      ops.push({ type: "put", key: META_STABLE_CHECKPOINT, value: u64be(cert.height) });
    }
    await this.db.batch(ops, { sync: true });
    this.opts.onWrite?.("checkpoint", performance.now() - t0, ops.length);
  }

  /** The highest stable checkpoint certificate stored, if any. */
  async getStableCheckpoint(): Promise<CheckpointCertificate | undefined> {
    const h = await this.db.get(META_STABLE_CHECKPOINT);
    return h === undefined ? undefined : this.getCheckpoint(readU64(h));
  }

  async getCheckpoint(height: bigint): Promise<CheckpointCertificate | undefined> {
    const raw = await this.db.get(heightKey(Bucket.checkpoint, height));
    return raw === undefined ? undefined : fromBinary(CheckpointCertificateSchema, raw);
  }

  /** Keyed by (height, H(first ‖ second)): storing the same evidence twice keeps one copy. */
  async putEvidence(e: StoredEvidence): Promise<void> {
    const t0 = performance.now();
    const id = sha256(concatBytes(e.first, e.second));
    const key = bucketKey(Bucket.evidence, concatBytes(u64be(e.height), id));
    await this.db.put(key, new TextEncoder().encode(encodeJson(e)), { sync: true });
    this.opts.onWrite?.("evidence", performance.now() - t0, 1);
  }

  /** Evidence with height in [from, to), ascending. */
  async listEvidence(from = 0n, to?: bigint): Promise<StoredEvidence[]> {
    const out: StoredEvidence[] = [];
    const lt = to === undefined ? prefixEnd(Uint8Array.of(Bucket.evidence)) : heightKey(Bucket.evidence, to);
    for await (const [, v] of this.db.iterate({ gte: heightKey(Bucket.evidence, from), lt })) {
      out.push(decodeJson<StoredEvidence>(new TextDecoder().decode(v)));
    }
    return out;
  }
}

/** What each refused layout was, for the EXEC_LAYOUT_OLD message. */
const OLD_LAYOUTS: Record<number, string> = {
  1: "per-transaction keys, no fees",
  2: "the recent-transactions record under a key of its own",
};

/**
 * Refuses a database whose execution results use an older layout (1: a state root but no
 * marker; 2: its marker), naming how to rebuild it; marks a database with no execution results
 * yet as the current layout.
 */
async function checkExecLayout(db: Db, dir: string): Promise<void> {
  const raw = await db.get(META_EXEC_LAYOUT);
  if (raw === undefined) {
    if ((await db.get(META_STATE_ROOT)) !== undefined) throw layoutOld(dir, 1);
    await db.put(META_EXEC_LAYOUT, u64be(EXEC_LAYOUT), { sync: true });
    return;
  }
  const found = Number(readU64(raw));
  if (found > EXEC_LAYOUT) {
    throw new StorageError(
      "SCHEMA_TOO_NEW",
      { dir, found, supported: EXEC_LAYOUT },
      `database at ${dir} has execution layout ${found}; this build reads layout ${EXEC_LAYOUT} only`,
    );
  }
  if (found !== EXEC_LAYOUT) throw layoutOld(dir, found);
}

function layoutOld(dir: string, found: number): StorageError {
  const what = OLD_LAYOUTS[found] ?? "an unknown older layout";
  return new StorageError(
    "EXEC_LAYOUT_OLD",
    { dir, found, supported: EXEC_LAYOUT },
    `database at ${dir} holds execution state in layout ${found} (${what}); ` +
      `this build reads layout ${EXEC_LAYOUT} only and never reinterprets old state. Rebuild it: ` +
      `stop the node, delete ${dir}, and run \`parabft start --home <home>\`: it re-creates ` +
      `genesis and catches the chain up from its peers (re-executing every block)`,
  );
}

/** Builds a certificate record for tests and genesis tooling. */
export function emptyCommitCertificate(height: bigint, epoch: bigint, digest: Hash): CommitCertificate {
  return create(CommitCertificateSchema, { height, epoch, blockDigest: digest, signatures: [] });
}

/** A block's receipts value: straight from the executor's outcomes when it kept them (same bytes). */
function receiptsValue(result: ExecutionResult, scratch: ReceiptsScratch): Buffer {
  const src = outcomesOf(result);
  return src !== undefined ? encodeBlockReceipts(src, scratch) : encodeReceipts(result.receipts);
}
