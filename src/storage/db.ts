// The one module that imports the RocksDB binding: a small promise wrapper over its callback
// API. A missing key comes back from the binding as an error whose message starts with
// "NotFound"; it is translated to `undefined` here and nowhere else.
import RocksDB, { type ChainedBatch, type RocksDB as RocksHandle } from "rocksdb";
import { StorageError } from "./errors.js";

export type DbOp = { type: "put"; key: Uint8Array; value: Uint8Array } | { type: "del"; key: Uint8Array };

export interface DbChain {
  put(key: Uint8Array, value: Uint8Array): void;
  del(key: Uint8Array): void;
  write(opts?: WriteOpts): Promise<void>;
}

export interface WriteOpts {
  /** fsync the WAL before resolving: for writes that protect safety. */
  sync?: boolean;
}

export interface IterateOpts {
  gte?: Uint8Array;
  lt?: Uint8Array;
  reverse?: boolean;
  limit?: number;
}

export interface DbOpenOpts {
  /** Block cache bytes. Default: binding default (8 MiB). */
  cacheSize?: number;
  writeBufferSize?: number;
}

const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * A batch key as the binding's checked `put`/`del` take it: an empty key is refused (as
 * abstract-leveldown's check does; the batch hooks db.ts calls skip that check).
 */
function batchKey(k: Uint8Array): Buffer {
  if (k.byteLength === 0) throw new Error("key cannot be an empty Buffer");
  return asBuffer(k);
}

/** Plain Uint8Array views (no copy): callers compare with deepStrictEqual and protobuf bytes. */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function isNotFound(err: Error): boolean {
  return err.message.startsWith("NotFound");
}

/** Cleared native batches kept for reuse per database (see Db.takeBatch). */
const SPARE_BATCHES = 4;
const SPARE_BYTES_MAX = 64 << 20;

export class Db {
  private closed = false;
  private readonly spare: ChainedBatch[] = [];

  private constructor(
    private readonly rocks: RocksHandle,
    readonly dir: string,
  ) {}

  static async open(dir: string, opts: DbOpenOpts = {}): Promise<Db> {
    const rocks = RocksDB(dir);
    await new Promise<void>((resolve, reject) =>
      rocks.open({ createIfMissing: true, ...opts }, (err) =>
        err
          ? reject(
              new StorageError("DB_OPEN_FAILED", { dir }, `cannot open database at ${dir}: ${err.message}`),
            )
          : resolve(),
      ),
    );
    return new Db(rocks, dir);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.checkOpen();
    return new Promise((resolve, reject) =>
      this.rocks.get(asBuffer(key), { asBuffer: true }, (err, value) => {
        if (err) {
          if (isNotFound(err)) resolve(undefined);
          else reject(err);
        } else resolve(value === undefined ? undefined : plain(value));
      }),
    );
  }

  /** Point reads in one native call; missing keys are `undefined`. */
  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.checkOpen();
    if (keys.length === 0) return [];
    return new Promise((resolve, reject) =>
      this.rocks.getMany(keys.map(asBuffer), { asBuffer: true }, (err, values) =>
        err ? reject(err) : resolve((values ?? []).map((v) => (v === undefined ? undefined : plain(v)))),
      ),
    );
  }

  async put(key: Uint8Array, value: Uint8Array, opts: WriteOpts = {}): Promise<void> {
    this.checkOpen();
    return new Promise((resolve, reject) =>
      this.rocks.put(asBuffer(key), asBuffer(value), { sync: opts.sync === true }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  async del(key: Uint8Array, opts: WriteOpts = {}): Promise<void> {
    this.checkOpen();
    return new Promise((resolve, reject) =>
      this.rocks.del(asBuffer(key), { sync: opts.sync === true }, (err) => (err ? reject(err) : resolve())),
    );
  }

  /**
   * One atomic WriteBatch: every op lands or none does. Built as a chained batch (one native
   * call per op): the array form copies and re-checks every op object in JS first, which costs
   * about a third more CPU per key (issue 13: the state fold writes hundreds of thousands).
   */
  async batch(ops: readonly DbOp[], opts: WriteOpts = {}): Promise<void> {
    this.checkOpen();
    const b = this.takeBatch();
    let bytes = 0;
    try {
      for (const op of ops) {
        bytes += op.key.byteLength;
        if (op.type === "put") {
          bytes += op.value.byteLength;
          b._put(batchKey(op.key), asBuffer(op.value));
        } else b._del(batchKey(op.key));
      }
    } catch (err) {
      this.releaseBatch(b, bytes);
      throw err;
    }
    return this.writeBatch(b, bytes, opts);
  }

  /**
   * An atomic batch filled op by op, without op objects (the state fold writes hundreds of
   * thousands of keys). Nothing is written before write(); nothing may be added after it.
   */
  chain(): DbChain {
    this.checkOpen();
    const b = this.takeBatch();
    let bytes = 0;
    let written = false;
    const open = () => {
      if (written)
        throw new StorageError("DB_BATCH_WRITTEN", { dir: this.dir }, "write() already called on this batch");
    };
    return {
      put: (key, value) => {
        open();
        bytes += key.byteLength + value.byteLength;
        b._put(batchKey(key), asBuffer(value));
      },
      del: (key) => {
        open();
        bytes += key.byteLength;
        b._del(batchKey(key));
      },
      write: (opts = {}) => {
        try {
          open();
          written = true;
          this.checkOpen();
        } catch (err) {
          return Promise.reject(err);
        }
        return this.writeBatch(b, bytes, opts);
      },
    };
  }

  /**
   * A native batch: a spare one, cleared, or a new one. Reusing them matters (issue 13): a new
   * WriteBatch grows its buffer by doubling into fresh memory for every block's multi-MB
   * execution batch, and on this VM a first touch of a page costs ~12 µs (~3 µs per KB written,
   * against ~0.03 µs per KB copied into memory already touched): the execution batch's puts took
   * ~2 µs per persisted transfer. A cleared batch keeps its capacity.
   */
  private takeBatch(): ChainedBatch {
    return this.spare.pop() ?? this.rocks.batch();
  }

  /** Writes `b` and returns it to the spares once RocksDB is done with it (success or not). */
  private writeBatch(b: ChainedBatch, bytes: number, opts: WriteOpts): Promise<void> {
    return new Promise((resolve, reject) =>
      b._write({ sync: opts.sync === true }, (err) => {
        this.releaseBatch(b, bytes);
        if (err) reject(err);
        else resolve();
      }),
    );
  }

  /** Keeps a few cleared batches (not one that held over SPARE_BYTES_MAX: it keeps that capacity). */
  private releaseBatch(b: ChainedBatch, bytes: number): void {
    if (this.closed || bytes > SPARE_BYTES_MAX || this.spare.length >= SPARE_BATCHES) return;
    b._clear();
    this.spare.push(b);
  }

  /** Keys in [gte, lt) in byte order (or reverse). Break out early freely: the iterator is ended. */
  async *iterate(opts: IterateOpts = {}): AsyncGenerator<[Uint8Array, Uint8Array]> {
    this.checkOpen();
    const it = this.rocks.iterator({
      ...(opts.gte ? { gte: asBuffer(opts.gte) } : {}),
      ...(opts.lt ? { lt: asBuffer(opts.lt) } : {}),
      reverse: opts.reverse === true,
      limit: opts.limit ?? -1,
      keyAsBuffer: true,
      valueAsBuffer: true,
    });
    try {
      for (;;) {
        const entry = await new Promise<[Uint8Array, Uint8Array] | undefined>((resolve, reject) =>
          it.next((err, key, value) => {
            if (err) reject(err);
            else if (key === undefined || value === undefined) resolve(undefined);
            else resolve([plain(key), plain(value)]);
          }),
        );
        if (entry === undefined) return;
        yield entry;
      }
    } finally {
      await new Promise<void>((resolve) => it.end(() => resolve()));
    }
  }

  /** Every key starting with `prefix`. */
  iteratePrefix(prefix: Uint8Array, opts: { reverse?: boolean; limit?: number } = {}) {
    return this.iterate({ gte: prefix, lt: prefixEnd(prefix), ...opts });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.spare.length = 0;
    await new Promise<void>((resolve, reject) => this.rocks.close((err) => (err ? reject(err) : resolve())));
  }

  private checkOpen(): void {
    if (this.closed)
      throw new StorageError("DB_CLOSED", { dir: this.dir }, `database at ${this.dir} is closed`);
  }
}

/** The smallest key greater than every key with this prefix (undefined: no upper bound). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.slice(0, i + 1);
    }
  }
  return undefined;
}
