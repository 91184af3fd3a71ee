import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  decodeJson,
  encodeJson,
  SIGNING_STATE_FILE,
  SigningStateStore,
  StorageError,
} from "../../../src/storage/index.js";
import { removeDir, runUntilKilled, tempDir } from "./helpers.js";

const sample = () => ({
  view: 3n,
  viewChangeSent: 0n,
  prepares: [{ epoch: 0n, view: 3n, height: 18446744073709551615n, digest: new Uint8Array(32).fill(0xab) }],
  commits: [],
  note: "plain",
  nested: { empty: new Uint8Array(0), list: [1, 2, { deep: -5n }] },
});

describe("encodeJson / decodeJson", () => {
  it("round-trips bigint (including beyond 2^64 and negative) and byte arrays, Buffers too", () => {
    const v = { a: 2n ** 80n, b: -1n, c: Uint8Array.of(1, 2), d: [Uint8Array.of(255)], e: null, f: "x" };
    const back = decodeJson<typeof v>(encodeJson(v));
    assert.equal(back.a, 2n ** 80n);
    assert.equal(back.b, -1n);
    assert.deepEqual(back.c, Uint8Array.of(1, 2));
    assert.deepEqual(back.d, [Uint8Array.of(255)]);
    assert.equal(back.e, null);
    assert.equal(back.f, "x");
  });
});

describe("SigningStateStore", () => {
  let root: string;
  before(async () => {
    root = await tempDir("signing");
  });
  after(async () => {
    await removeDir(root);
  });

  it("lives beside the key file and loads null when nothing was saved", async () => {
    const store = SigningStateStore.besideKey(path.join(root, "keys", "validator_key.json"));
    assert.equal(store.file, path.join(root, "keys", SIGNING_STATE_FILE));
    assert.equal(await store.load(), null);
  });

  it("saves atomically with mode 0600, leaves no temp files, and round-trips the record", async () => {
    const dir = path.join(root, "rt");
    const store = new SigningStateStore(path.join(dir, SIGNING_STATE_FILE));
    await store.save(sample());
    assert.equal((await fs.stat(store.file)).mode & 0o777, 0o600);
    assert.deepEqual(await fs.readdir(dir), [SIGNING_STATE_FILE]);
    assert.deepEqual(await new SigningStateStore(store.file).load(), sample());
    assert.ok(store.lastSaveMs > 0);
  });

  it("serialises overlapping saves so the last call wins", async () => {
    const store = new SigningStateStore(path.join(root, "order", SIGNING_STATE_FILE));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.save({ view: BigInt(i) })));
    assert.deepEqual(await store.load(), { view: 19n });
  });

  it("ignores a temp file left by a crash before rename and keeps the previous record", async () => {
    const dir = path.join(root, "torn");
    const store = new SigningStateStore(path.join(dir, SIGNING_STATE_FILE));
    await store.save({ view: 1n });
    await fs.writeFile(path.join(dir, `${SIGNING_STATE_FILE}.tmp-1-deadbeef`), '{"version":2,"rec');
    assert.deepEqual(await store.load(), { view: 1n });
  });

  it("reports a damaged file as SIGNING_STATE_CORRUPT, never as missing state", async () => {
    const dir = path.join(root, "corrupt");
    await fs.mkdir(dir);
    const store = new SigningStateStore(path.join(dir, SIGNING_STATE_FILE));
    const isCorrupt = (e: unknown) => e instanceof StorageError && e.code === "SIGNING_STATE_CORRUPT";
    await fs.writeFile(store.file, "{trunc");
    await assert.rejects(store.load(), isCorrupt);
    await fs.writeFile(store.file, JSON.stringify({ version: 99, record: {} }));
    await assert.rejects(store.load(), isCorrupt);
  });

  it("survives a process killed (SIGKILL) right after save resolved", async () => {
    const file = path.join(root, "crash", SIGNING_STATE_FILE);
    const script = `
      const { SigningStateStore } = await import(process.env.SS_MODULE);
      const store = new SigningStateStore(process.env.SS_FILE);
      await store.save({ view: 41n, digest: new Uint8Array([1, 2, 3]) });
      await store.save({ view: 42n, digest: new Uint8Array([4, 5, 6]) });
      process.kill(process.pid, "SIGKILL");
    `;
    await runUntilKilled(script, { SS_FILE: file });
    assert.deepEqual(await new SigningStateStore(file).load(), { view: 42n, digest: Uint8Array.of(4, 5, 6) });
  });
});
