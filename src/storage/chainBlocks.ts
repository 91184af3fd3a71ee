// The chain side of ChainDb (DESIGN §5): the commit batch written when consensus delivers a
// block (synced), and the reads of what it stored: blocks, certificates, tx locations, ranges.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Block,
  BlockSchema,
  type CommitCertificate,
  CommitCertificateSchema,
  type SignedTx,
  SignedTxSchema,
} from "../gen/parabft/v1/types_pb.js";
import { bytesEqual, concatBytes, toHex, u64be } from "../types/bytes.js";
import { blockTxBytesAt } from "../types/fastWire.js";
import { HASH_LENGTH, type Hash } from "../types/hash.js";
import { Bucket } from "./buckets.js";
import type { ChainDbOpts } from "./chainDb.js";
import type { Db, DbOp } from "./db.js";
import { StorageError } from "./errors.js";
import { bucketKey, encodeTxLocation, fastTxHash, heightKey, metaKey, readU32, readU64 } from "./keys.js";
import { SerialWrites } from "./serialWrites.js";

const EMPTY = new Uint8Array(0);

export const META_COMMITTED = metaKey("committedHeight");

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

// blockMeta value: digest ‖ chainHash ‖ u64 blockTimeMs ‖ u8 isNull
const BLOCK_META_LENGTH = 2 * HASH_LENGTH + 8 + 1;

/** ChainDb's commit batches and chain reads (ChainDb.open reads the committed height). */
export class ChainBlocks {
  // Single writer: the height is cached and batches are serialised, so the order checks
  // below cannot race with a batch still in flight.
  private readonly commitQueue = new SerialWrites();

  constructor(
    private readonly opts: ChainDbOpts,
    private readonly modules: { db: Db },
    private committed: bigint,
  ) {}

  /**
   * One synced WriteBatch: block (by height), digest -> height, commit certificate, block meta
   * (digest, chain hash, block time), tx index, committed height. The tx index keeps a tx's FIRST
   * inclusion: a later duplicate (re-proposed after a view change) must not move it.
   *
   * Heights must arrive in order: committed + 1 is written; an already committed height with the
   * same digest is a no-op (replay after restart); a gap or a different digest is an error.
   */
  writeCommitBatch(input: CommitBatchInput): Promise<void> {
    return this.commitQueue.run(() => this.doWriteCommitBatch(input));
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
      const stored = await this.modules.db.get(heightKey(Bucket.blockMeta, height));
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
      const existing = await this.modules.db.getMany(keys);
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
    await this.modules.db.batch(ops, { sync: true });
    this.committed = height;
    this.opts.onWrite?.("commit", performance.now() - t0, ops.length);
  }

  /** 0 when nothing is committed yet (genesis). */
  async getCommittedHeight(): Promise<bigint> {
    return this.committed;
  }

  async getBlock(height: bigint): Promise<StoredBlock | undefined> {
    const [meta, body] = await this.modules.db.getMany([
      heightKey(Bucket.blockMeta, height),
      heightKey(Bucket.block, height),
    ]);
    if (meta === undefined) return undefined;
    return this.decodeStored(height, meta, body);
  }

  async getBlockByDigest(digest: Hash): Promise<StoredBlock | undefined> {
    const raw = await this.modules.db.get(bucketKey(Bucket.blockByDigest, digest));
    return raw === undefined ? undefined : this.getBlock(readU64(raw));
  }

  async getCertificate(height: bigint): Promise<CommitCertificate | undefined> {
    const raw = await this.modules.db.get(heightKey(Bucket.commitCert, height));
    return raw === undefined ? undefined : fromBinary(CommitCertificateSchema, raw);
  }

  /** The raw stored block bytes (for serving peers without a decode/encode round trip). */
  async getBlockBytes(height: bigint): Promise<Uint8Array | undefined> {
    return this.modules.db.get(heightKey(Bucket.block, height));
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
    const raw = await this.modules.db.get(bucketKey(Bucket.txIndex, hash));
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
      for await (const [k, v] of this.modules.db.iterate({
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
}

/** Builds a certificate record for tests and genesis tooling. */
export function emptyCommitCertificate(height: bigint, epoch: bigint, digest: Hash): CommitCertificate {
  return create(CommitCertificateSchema, { height, epoch, blockDigest: digest, signatures: [] });
}
