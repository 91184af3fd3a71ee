import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Db, StorageError } from "../../../src/storage/index.js";
import { removeDir, tempDir } from "./helpers.js";

const b = (...xs: number[]) => Uint8Array.from(xs);

describe("Db (RocksDB wrapper)", () => {
  let root: string;
  before(async () => {
    root = await tempDir("db");
  });
  after(async () => {
    await removeDir(root);
  });

  it("translates NotFound into undefined for get and getMany", async () => {
    const db = await Db.open(path.join(root, "notfound"));
    try {
      assert.equal(await db.get(b(1, 2, 3)), undefined);
      await db.put(b(1), b(42));
      assert.deepEqual(await db.getMany([b(1), b(2)]), [Uint8Array.of(42), undefined]);
      await db.del(b(1));
      assert.equal(await db.get(b(1)), undefined);
    } finally {
      await db.close();
    }
  });

  it("a failing batch writes nothing, not even the ops before the bad one", async () => {
    const db = await Db.open(path.join(root, "atomic"));
    try {
      await db.put(b(9), b(1));
      const bad = [
        { type: "put", key: b(1), value: b(1) },
        { type: "del", key: b(9) },
        // The binding refuses an empty key: the whole batch fails after two valid ops.
        { type: "put", key: b(), value: b(2) },
      ] as const;
      await assert.rejects(db.batch(bad, { sync: true }));
      assert.equal(await db.get(b(1)), undefined);
      assert.deepEqual(await db.get(b(9)), Uint8Array.of(1));
      await db.batch([
        { type: "put", key: b(1), value: b(1) },
        { type: "del", key: b(9) },
      ]);
      assert.deepEqual(await db.get(b(1)), Uint8Array.of(1));
      assert.equal(await db.get(b(9)), undefined);
    } finally {
      await db.close();
    }
  });

  it("reuses native batches without replaying an earlier batch's ops (written, failed, or a chain)", async () => {
    const db = await Db.open(path.join(root, "reuse"));
    try {
      // A written batch; its key is then deleted outside any batch.
      await db.batch([{ type: "put", key: b(1), value: b(1) }]);
      await db.del(b(1));
      // A batch refused while it was filled (empty key): nothing of it may land later either.
      await assert.rejects(
        db.batch([
          { type: "put", key: b(2), value: b(2) },
          { type: "put", key: b(), value: b(2) },
        ]),
      );
      // A chain, written, then its key deleted.
      const c = db.chain();
      c.put(b(3), b(3));
      await c.write();
      await db.del(b(3));
      // Every later batch takes a spare one: each must hold only its own ops.
      for (let i = 0; i < 6; i++) await db.batch([{ type: "put", key: b(10 + i), value: b(i) }]);
      const c2 = db.chain();
      c2.put(b(20), b(20));
      await c2.write();
      assert.equal(await db.get(b(1)), undefined);
      assert.equal(await db.get(b(2)), undefined);
      assert.equal(await db.get(b(3)), undefined);
      for (let i = 0; i < 6; i++) assert.deepEqual(await db.get(b(10 + i)), Uint8Array.of(i));
      assert.deepEqual(await db.get(b(20)), Uint8Array.of(20));
    } finally {
      await db.close();
    }
  });

  it("runs batches filled at the same time on separate native batches; a chain refuses ops after write()", async () => {
    const db = await Db.open(path.join(root, "concurrent"));
    try {
      const x = db.chain();
      const y = db.chain();
      x.put(b(1), b(1));
      y.put(b(2), b(2));
      const both = [x.write(), y.write(), db.batch([{ type: "put", key: b(3), value: b(3) }])];
      await Promise.all(both);
      assert.throws(
        () => x.put(b(4), b(4)),
        (e: unknown) => e instanceof StorageError && e.code === "DB_BATCH_WRITTEN",
      );
      await assert.rejects(
        x.write(),
        (e: unknown) => e instanceof StorageError && e.code === "DB_BATCH_WRITTEN",
      );
      await db.batch([{ type: "put", key: b(5), value: b(5) }]);
      assert.deepEqual(await db.getMany([b(1), b(2), b(3), b(4), b(5)]), [
        Uint8Array.of(1),
        Uint8Array.of(2),
        Uint8Array.of(3),
        undefined,
        Uint8Array.of(5),
      ]);
    } finally {
      await db.close();
    }
  });

  it("iterates a prefix in byte order, also in reverse and with a limit, and can stop early", async () => {
    const db = await Db.open(path.join(root, "iter"));
    try {
      await db.batch([
        { type: "put", key: b(1, 0xff), value: b(3) },
        { type: "put", key: b(1, 0), value: b(1) },
        { type: "put", key: b(1, 5), value: b(2) },
        { type: "put", key: b(2, 0), value: b(9) },
        { type: "put", key: b(0, 9), value: b(9) },
      ]);
      const all = [];
      for await (const [k, v] of db.iteratePrefix(b(1))) all.push([[...k], [...v]]);
      assert.deepEqual(all, [
        [[1, 0], [1]],
        [[1, 5], [2]],
        [[1, 0xff], [3]],
      ]);
      const rev = [];
      for await (const [k] of db.iteratePrefix(b(1), { reverse: true, limit: 2 })) rev.push(k[1]);
      assert.deepEqual(rev, [0xff, 5]);
      let seen = 0;
      for await (const _ of db.iteratePrefix(b(1))) {
        seen++;
        break;
      }
      assert.equal(seen, 1);
      const tail = [];
      for await (const [k] of db.iteratePrefix(b(0xff))) tail.push(k);
      assert.equal(tail.length, 0);
    } finally {
      await db.close();
    }
  });

  it("keeps data across close and reopen", async () => {
    const dir = path.join(root, "reopen");
    const db = await Db.open(dir);
    await db.put(b(7), b(7, 7), { sync: true });
    await db.close();
    const again = await Db.open(dir);
    try {
      assert.deepEqual(await again.get(b(7)), Uint8Array.of(7, 7));
    } finally {
      await again.close();
    }
  });

  it("rejects use after close with DB_CLOSED", async () => {
    const db = await Db.open(path.join(root, "closed"));
    await db.close();
    await db.close();
    await assert.rejects(db.get(b(1)), (e: unknown) => e instanceof StorageError && e.code === "DB_CLOSED");
  });
});
