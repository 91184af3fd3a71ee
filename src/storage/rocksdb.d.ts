// Just enough of the `rocksdb` 5.2.1 binding (abstract-leveldown 7 callback API) for db.ts,
// the only module that imports it.
declare module "rocksdb" {
  export type Callback<T = void> = (err: Error | undefined | null, value?: T) => void;

  export interface OpenOptions {
    createIfMissing?: boolean;
    errorIfExists?: boolean;
    compression?: boolean;
    cacheSize?: number;
    writeBufferSize?: number;
    maxOpenFiles?: number;
  }

  export interface BatchOp {
    type: "put" | "del";
    key: Buffer;
    value?: Buffer;
  }

  export interface IteratorOptions {
    gt?: Buffer;
    gte?: Buffer;
    lt?: Buffer;
    lte?: Buffer;
    reverse?: boolean;
    limit?: number;
    keys?: boolean;
    values?: boolean;
    keyAsBuffer?: boolean;
    valueAsBuffer?: boolean;
  }

  export interface RocksIterator {
    next(cb: (err: Error | undefined | null, key?: Buffer, value?: Buffer) => void): void;
    end(cb: Callback): void;
  }

  export interface ChainedBatch {
    put(key: Buffer, value: Buffer): ChainedBatch;
    del(key: Buffer): ChainedBatch;
    write(options: { sync?: boolean }, cb: Callback): void;
    // The binding's own implementation of abstract-leveldown's hooks (rocksdb/chained-batch.js):
    // straight to the native batch, without the wrapper's once-only write() check, so a batch
    // can be cleared and filled again after its write completed (db.ts reuses them).
    _put(key: Buffer, value: Buffer): void;
    _del(key: Buffer): void;
    /** Empties the native WriteBatch; its buffer keeps its capacity. */
    _clear(): void;
    _write(options: { sync?: boolean }, cb: Callback): void;
  }

  export interface RocksDB {
    open(options: OpenOptions, cb: Callback): void;
    close(cb: Callback): void;
    get(key: Buffer, options: { asBuffer?: boolean; fillCache?: boolean }, cb: Callback<Buffer>): void;
    getMany(keys: Buffer[], options: { asBuffer?: boolean }, cb: Callback<(Buffer | undefined)[]>): void;
    put(key: Buffer, value: Buffer, options: { sync?: boolean }, cb: Callback): void;
    del(key: Buffer, options: { sync?: boolean }, cb: Callback): void;
    batch(ops: BatchOp[], options: { sync?: boolean }, cb: Callback): void;
    /** A chained batch: one native call per op, no per-op object copies (cheaper per key). */
    batch(): ChainedBatch;
    iterator(options: IteratorOptions): RocksIterator;
  }

  function RocksDB(location: string): RocksDB;
  export default RocksDB;
}
