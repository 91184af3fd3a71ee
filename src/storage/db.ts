// The one module that imports the RocksDB binding: a small promise wrapper over its callback
// API. A missing key comes back from the binding as an error whose message starts with
// "NotFound"; it is translated to `undefined` here and nowhere else.
import RocksDB, { type RocksDB as RocksHandle } from "rocksdb";
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

/** Plain Uint8Array views (no copy): callers compare with deepStrictEqual and protobuf bytes. */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function isNotFound(err: Error): boolean {
  return err.message.startsWith("NotFound");
}

export class Db {
  private closed = false;

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
    return new Promise((resolve, reject) => {
      try {
        const b = this.rocks.batch();
        for (const op of ops) {
          if (op.type === "put") b.put(asBuffer(op.key), asBuffer(op.value));
          else b.del(asBuffer(op.key));
        }
        b.write({ sync: opts.sync === true }, (err) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err);
      }
    });
  }

  /**
   * An atomic batch filled op by op, without op objects (the state fold writes hundreds of
   * thousands of keys). Nothing is written before write().
   */
  chain(): DbChain {
    this.checkOpen();
    const b = this.rocks.batch();
    return {
      put: (key, value) => void b.put(asBuffer(key), asBuffer(value)),
      del: (key) => void b.del(asBuffer(key)),
      write: (opts = {}) =>
        new Promise<void>((resolve, reject) => {
          this.checkOpen();
          b.write({ sync: opts.sync === true }, (err) => (err ? reject(err) : resolve()));
        }),
    };
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
