import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { BinReader, BinWriter } from "../../../src/storage/binValue.js";
import {
  encodeJson,
  LEGACY_SIGNING_LOG_FILE,
  readSigningLogRecords,
  SIGNING_LOG_FILE,
  SIGNING_STATE_FILE,
  SigningStateLog,
  SigningStateStore,
  StorageError,
} from "../../../src/storage/index.js";
import { removeDir, runUntilKilled, tempDir } from "./helpers.js";

interface Rec {
  view: bigint;
  digest: Uint8Array;
}
interface State {
  views: bigint[];
  last: Uint8Array | null;
}
const opts = (compactEvery?: number, capacity?: number) => ({
  fold: (s: State, r: Rec): State => ({ views: [...s.views, r.view], last: r.digest }),
  initial: (): State => ({ views: [], last: null }),
  ...(compactEvery !== undefined ? { compactEvery } : {}),
  ...(capacity !== undefined ? { capacity } : {}),
});
const rec = (v: number): Rec => ({ view: BigInt(v), digest: new Uint8Array(32).fill(v) });
const views = (...v: number[]) => v.map(BigInt);
const corrupt = (e: unknown) => e instanceof StorageError && e.code === "SIGNING_STATE_CORRUPT";

async function reopen(dir: string, compactEvery?: number, capacity?: number) {
  const log = new SigningStateLog<State, Rec>(dir, opts(compactEvery, capacity));
  const loaded = await log.open();
  await log.close();
  return loaded;
}

/** Appends each group of records as its own frame; returns the [start, end) byte range of each frame. */
async function framesOf(dir: string, groups: number[][]): Promise<[number, number][]> {
  const file = path.join(dir, SIGNING_LOG_FILE);
  const ranges: [number, number][] = [];
  for (const g of groups) {
    const log = new SigningStateLog<State, Rec>(dir, opts());
    await log.open();
    const before = await fs.readFile(file);
    await log.append(...g.map(rec));
    await log.close();
    const after = await fs.readFile(file);
    let start = 0;
    while (before[start] === after[start]) start++;
    let end = after.length;
    while (before[end - 1] === after[end - 1]) end--;
    ranges.push([start, end]);
  }
  return ranges;
}

describe("SigningStateLog (binary, preallocated)", () => {
  let root: string;
  before(async () => {
    root = await tempDir("signlog");
  });
  after(async () => {
    await removeDir(root);
  });

  it("opens as null when there is no signing state, then replays appended records after reopen", async () => {
    const dir = path.join(root, "basic");
    const log = SigningStateLog.besideKey<State, Rec>(path.join(dir, "validator_key.json"), opts());
    try {
      assert.equal(await log.open(), null);
      await log.append(rec(1));
      await log.append(rec(2), rec(3));
      assert.deepEqual(log.state.views, views(1, 2, 3));
    } finally {
      await log.close();
    }
    const loaded = await reopen(dir);
    assert.deepEqual(loaded, { views: views(1, 2, 3), last: new Uint8Array(32).fill(3) });
    assert.equal((await fs.stat(path.join(dir, SIGNING_LOG_FILE))).mode & 0o777, 0o600);
  });

  it("is preallocated: appends never change the file's size, and it restarts at offset 0 when full", async () => {
    const dir = path.join(root, "prealloc");
    const capacity = 1024;
    const file = path.join(dir, SIGNING_LOG_FILE);
    const log = new SigningStateLog<State, Rec>(dir, opts(undefined, capacity));
    try {
      await log.open();
      assert.equal((await fs.stat(file)).size, capacity);
      // ~100 bytes per frame: the 1 KiB log fills and starts new generations several times.
      for (let i = 1; i <= 40; i++) {
        await log.append(rec(i));
        assert.equal((await fs.stat(file)).size, capacity);
      }
    } finally {
      await log.close();
    }
    // A snapshot was taken when the log filled; snapshot + current generation = every record.
    assert.ok((await new SigningStateStore(path.join(dir, SIGNING_STATE_FILE)).load<State>()) !== null);
    const all = Array.from({ length: 40 }, (_, i) => i + 1);
    assert.deepEqual((await reopen(dir, undefined, capacity))?.views, views(...all));
    // And it keeps going after the reopen.
    const again = new SigningStateLog<State, Rec>(dir, opts(undefined, capacity));
    try {
      await again.open();
      for (let i = 41; i <= 60; i++) await again.append(rec(i));
    } finally {
      await again.close();
    }
    const all60 = Array.from({ length: 60 }, (_, i) => i + 1);
    assert.deepEqual((await reopen(dir, undefined, capacity))?.views, views(...all60));
  });

  it("grows the file once for a single batch larger than the whole log", async () => {
    const dir = path.join(root, "huge");
    const log = new SigningStateLog<State, Rec>(dir, opts(undefined, 256));
    try {
      await log.open();
      await log.append(...Array.from({ length: 20 }, (_, i) => rec(i + 1)));
      await log.append(rec(21));
    } finally {
      await log.close();
    }
    const all = Array.from({ length: 21 }, (_, i) => i + 1);
    assert.deepEqual((await reopen(dir, undefined, 256))?.views, views(...all));
  });

  it("compacts into a snapshot every N records when asked and still restores every record", async () => {
    const dir = path.join(root, "compact");
    const log = new SigningStateLog<State, Rec>(dir, opts(5));
    try {
      await log.open();
      for (let i = 1; i <= 12; i++) await log.append(rec(i));
    } finally {
      await log.close();
    }
    assert.equal((await fs.stat(path.join(dir, SIGNING_STATE_FILE))).mode & 0o777, 0o600);
    // The snapshot is readable by the whole-file store too (same format).
    const snap = await new SigningStateStore(path.join(dir, SIGNING_STATE_FILE)).load<State>();
    assert.equal(snap?.views.length, 10);
    const all = Array.from({ length: 12 }, (_, i) => i + 1);
    assert.deepEqual((await reopen(dir, 5))?.views, views(...all));
  });

  it("drops a torn last frame (an append whose sync never completed) and keeps appending over it", async () => {
    const dir = path.join(root, "torn");
    const [, third] = await framesOf(dir, [
      [1, 2],
      [3, 4],
    ]);
    const file = path.join(dir, SIGNING_LOG_FILE);
    const bytes = await fs.readFile(file);
    // Half of the last frame reached the disk.
    const [start, end] = third!;
    bytes.fill(0, start + Math.floor((end - start) / 2), end);
    await fs.writeFile(file, bytes);
    const again = new SigningStateLog<State, Rec>(dir, opts());
    try {
      assert.deepEqual((await again.open())?.views, views(1, 2));
      await again.append(rec(9));
    } finally {
      await again.close();
    }
    assert.deepEqual((await reopen(dir))?.views, views(1, 2, 9));
  });

  it("drops a last frame with a flipped byte (CRC) as a torn tail", async () => {
    const dir = path.join(root, "tornbit");
    const [, second] = await framesOf(dir, [[1], [2]]);
    const file = path.join(dir, SIGNING_LOG_FILE);
    const bytes = await fs.readFile(file);
    bytes[second![1] - 3]! ^= 0xff;
    await fs.writeFile(file, bytes);
    assert.deepEqual((await reopen(dir))?.views, views(1));
  });

  it("refuses a log damaged in the middle or with a missing frame", async () => {
    const dir = path.join(root, "bad");
    const [, second, third] = await framesOf(dir, [[1], [2], [3]]);
    const file = path.join(dir, SIGNING_LOG_FILE);
    const good = await fs.readFile(file);
    // A flipped byte in frame 2, frame 3 whole after it.
    const flipped = Buffer.from(good);
    flipped[second![1] - 3]! ^= 0xff;
    await fs.writeFile(file, flipped);
    await assert.rejects(reopen(dir), corrupt);
    // Frame 2 cut out: frame 3 follows frame 1.
    const cut = Buffer.alloc(good.length);
    good.copy(cut, 0, 0, second![0]);
    good.copy(cut, second![0], third![0], third![1]);
    await fs.writeFile(file, cut);
    await assert.rejects(reopen(dir), corrupt);
  });

  it("never folds a record twice after a crash between snapshot and the new generation", async () => {
    const dir = path.join(root, "snapcrash");
    const log = new SigningStateLog<State, Rec>(dir, opts());
    await log.open();
    await log.append(rec(1), rec(2), rec(3));
    // The snapshot covers 1-3; their frame is still at offset 0 of the log.
    await log.compact();
    await log.close();
    assert.deepEqual((await reopen(dir))?.views, views(1, 2, 3));
    const again = new SigningStateLog<State, Rec>(dir, opts());
    try {
      await again.open();
      await again.append(rec(4));
    } finally {
      await again.close();
    }
    // The new generation's frame (4) is followed by nothing of the old one that is read.
    assert.deepEqual((await reopen(dir))?.views, views(1, 2, 3, 4));
  });

  it("migrates an earlier build's JSON-lines log once (folds it into the snapshot, removes it)", async () => {
    const dir = path.join(root, "legacy");
    await fs.mkdir(dir, { recursive: true });
    const line = (seq: number) => `${encodeJson({ v: 2, seq, r: rec(seq) })}\n`;
    await fs.writeFile(
      path.join(dir, SIGNING_STATE_FILE),
      encodeJson({ version: 2, seq: 1, record: { views: [1n], last: rec(1).digest } }),
    );
    // Line 1 is covered by the snapshot; a torn line ends it.
    await fs.writeFile(path.join(dir, LEGACY_SIGNING_LOG_FILE), `${line(1)}${line(2)}${line(3)}{"v":2,"se`);
    const log = new SigningStateLog<State, Rec>(dir, opts());
    try {
      assert.deepEqual((await log.open())?.views, views(1, 2, 3));
      await log.append(rec(4));
    } finally {
      await log.close();
    }
    await assert.rejects(fs.stat(path.join(dir, LEGACY_SIGNING_LOG_FILE)), { code: "ENOENT" });
    assert.deepEqual((await reopen(dir))?.views, views(1, 2, 3, 4));
  });

  it("refuses a version-1 signing state (commit lock, view-less COMMITs), naming the reset command", async () => {
    const oldFormat = (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.code, "SIGNING_STATE_OLD_FORMAT");
      assert.match(e.message, /parabft testnet --validators N --out DIR/);
      return true;
    };
    // A version-1 log: lines without a format field.
    const logDir = path.join(root, "v1log");
    await fs.mkdir(logDir, { recursive: true });
    await fs.writeFile(
      path.join(logDir, LEGACY_SIGNING_LOG_FILE),
      '{"seq":1,"r":{"view":{"$bigint":"1"},"digest":{"$bytes":"00"}}}\n',
    );
    await assert.rejects(reopen(logDir), oldFormat);
    // A version-1 snapshot.
    const snapDir = path.join(root, "v1snap");
    await fs.mkdir(snapDir, { recursive: true });
    await fs.writeFile(path.join(snapDir, SIGNING_STATE_FILE), '{"version":1,"seq":0,"record":{}}');
    await assert.rejects(reopen(snapDir), oldFormat);
    // The files are left alone for the operator.
    assert.ok((await fs.readFile(path.join(logDir, LEGACY_SIGNING_LOG_FILE), "utf8")).startsWith('{"seq":1'));
  });

  it("survives SIGKILL right after append resolved", async () => {
    const dir = path.join(root, "kill");
    const script = `
      const { SigningStateLog } = await import(process.env.SS_MODULE);
      const log = new SigningStateLog(process.env.SS_DIR, {
        fold: (s, r) => ({ views: [...s.views, r.view], last: r.digest }),
        initial: () => ({ views: [], last: null }),
        compactEvery: 4,
      });
      await log.open();
      for (let i = 1; i <= 6; i++) await log.append({ view: BigInt(i), digest: new Uint8Array(32).fill(i) });
      process.kill(process.pid, "SIGKILL");
    `;
    await runUntilKilled(script, { SS_DIR: dir });
    assert.deepEqual(await reopen(dir, 4), {
      views: views(1, 2, 3, 4, 5, 6),
      last: new Uint8Array(32).fill(6),
    });
  });
});

describe("SigningStateLog, more crash and audit cases", () => {
  let root: string;
  before(async () => {
    root = await tempDir("signlog2");
  });
  after(async () => {
    await removeDir(root);
  });

  it("survives SIGKILL right after an append that wrapped a small log (snapshot + new generation)", async () => {
    const dir = path.join(root, "killwrap");
    const script = `
      const { SigningStateLog } = await import(process.env.SS_MODULE);
      const log = new SigningStateLog(process.env.SS_DIR, {
        fold: (s, r) => ({ views: [...s.views, r.view], last: r.digest }),
        initial: () => ({ views: [], last: null }),
        capacity: 512,
      });
      await log.open();
      for (let i = 1; i <= 30; i++) await log.append({ view: BigInt(i), digest: new Uint8Array(32).fill(i) });
      process.kill(process.pid, "SIGKILL");
    `;
    await runUntilKilled(script, { SS_DIR: dir });
    const all = Array.from({ length: 30 }, (_, i) => i + 1);
    assert.deepEqual((await reopen(dir, undefined, 512))?.views, views(...all));
  });

  it("extends a log preallocated smaller by another build, keeping its records", async () => {
    const dir = path.join(root, "extend");
    const small = new SigningStateLog<State, Rec>(dir, opts(undefined, 256));
    await small.open();
    await small.append(rec(1), rec(2));
    await small.close();
    const big = new SigningStateLog<State, Rec>(dir, opts(undefined, 4096));
    try {
      assert.deepEqual((await big.open())?.views, views(1, 2));
      assert.equal((await fs.stat(path.join(dir, SIGNING_LOG_FILE))).size, 4096);
      await big.append(rec(3));
    } finally {
      await big.close();
    }
    assert.deepEqual((await reopen(dir, undefined, 4096))?.views, views(1, 2, 3));
  });

  it("readSigningLogRecords lists the records past the snapshot without opening the log for writing", async () => {
    const dir = path.join(root, "audit");
    const log = new SigningStateLog<State, Rec>(dir, opts());
    await log.open();
    await log.append(rec(1), rec(2));
    await log.compact();
    await log.append(rec(3));
    await log.append(rec(4));
    await log.close();
    const before = await fs.readFile(path.join(dir, SIGNING_LOG_FILE));
    const records = await readSigningLogRecords<Rec>(dir);
    assert.deepEqual(
      records.map((r) => r.view),
      views(3, 4),
    );
    assert.deepEqual(await fs.readFile(path.join(dir, SIGNING_LOG_FILE)), before);
  });
});

describe("binValue", () => {
  it("round-trips the values signing records hold, leaving out undefined object keys as JSON does", () => {
    const value = {
      kind: "commit",
      epoch: 0n,
      view: 123456789012345678901234567890n,
      neg: -5n,
      height: 7n,
      digest: new Uint8Array([1, 2, 3]),
      absent: undefined,
      prepared: { votes: [{ sig: new Uint8Array(64).fill(9), who: 2 }, null, true, false], n: 1.5, s: "é✓" },
      empty: [],
    };
    const w = new BinWriter(8);
    w.value(value);
    const out = new BinReader(w.buf, 0, w.pos).value();
    const { absent: _absent, ...expected } = value;
    assert.deepEqual(out, expected);
    assert.equal(Object.hasOwn(out as object, "absent"), false);
  });

  it("answers malformed bytes with SIGNING_STATE_CORRUPT, never a crash", () => {
    const w = new BinWriter(8);
    w.value({ a: [1n, new Uint8Array(10)] });
    const bytes = w.buf.subarray(0, w.pos);
    for (let cut = 0; cut < bytes.length; cut++) {
      assert.throws(() => new BinReader(Buffer.from(bytes.subarray(0, cut))).value(), corrupt);
    }
    assert.throws(() => new BinReader(Buffer.from([99])).value(), corrupt);
  });
});
