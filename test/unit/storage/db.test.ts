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
