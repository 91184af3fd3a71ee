import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
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
const opts = (compactEvery = 512) => ({
  fold: (s: State, r: Rec): State => ({ views: [...s.views, r.view], last: r.digest }),
  initial: (): State => ({ views: [], last: null }),
  compactEvery,
});
const rec = (v: number): Rec => ({ view: BigInt(v), digest: new Uint8Array(32).fill(v) });
const corrupt = (e: unknown) => e instanceof StorageError && e.code === "SIGNING_STATE_CORRUPT";

async function reopen(dir: string, compactEvery?: number) {
  const log = new SigningStateLog<State, Rec>(dir, opts(compactEvery));
  const loaded = await log.open();
  await log.close();
  return loaded;
}

describe("SigningStateLog", () => {
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
      assert.deepEqual(log.state.views, [1n, 2n, 3n]);
    } finally {
      await log.close();
    }
    const loaded = await reopen(dir);
    assert.deepEqual(loaded, { views: [1n, 2n, 3n], last: new Uint8Array(32).fill(3) });
    assert.equal((await fs.stat(path.join(dir, SIGNING_LOG_FILE))).mode & 0o777, 0o600);
  });

  it("compacts into a snapshot every N records and still restores every record", async () => {
    const dir = path.join(root, "compact");
    const log = new SigningStateLog<State, Rec>(dir, opts(5));
    try {
      await log.open();
      for (let i = 1; i <= 12; i++) await log.append(rec(i));
    } finally {
      await log.close();
    }
    const lines = (await fs.readFile(path.join(dir, SIGNING_LOG_FILE), "utf8")).trim().split("\n");
    assert.equal(lines.length, 2);
    assert.equal((await fs.stat(path.join(dir, SIGNING_STATE_FILE))).mode & 0o777, 0o600);
    // The snapshot is readable by the whole-file store too (same format).
    const snap = await new SigningStateStore(path.join(dir, SIGNING_STATE_FILE)).load<State>();
    assert.equal(snap?.views.length, 10);
    const loaded = await reopen(dir, 5);
    assert.deepEqual(
      loaded?.views,
      Array.from({ length: 12 }, (_, i) => BigInt(i + 1)),
    );
  });

  it("drops a torn last line (an append that never resolved) and keeps appending after it", async () => {
    const dir = path.join(root, "torn");
    const log = new SigningStateLog<State, Rec>(dir, opts());
    await log.open();
    await log.append(rec(1), rec(2));
    await log.close();
    await fs.appendFile(path.join(dir, SIGNING_LOG_FILE), '{"seq":3,"r":{"view":{"$big');
    const again = new SigningStateLog<State, Rec>(dir, opts());
    try {
      assert.deepEqual((await again.open())?.views, [1n, 2n]);
      await again.append(rec(9));
    } finally {
      await again.close();
    }
    assert.deepEqual((await reopen(dir))?.views, [1n, 2n, 9n]);
  });

  it("never folds a record twice after a crash between snapshot and log truncation", async () => {
    const dir = path.join(root, "snapcrash");
    const log = new SigningStateLog<State, Rec>(dir, opts());
    await log.open();
    await log.append(rec(1), rec(2), rec(3));
    const before = await fs.readFile(path.join(dir, SIGNING_LOG_FILE));
    await log.compact();
    await log.close();
    // As if the process died after the snapshot rename but before the truncate.
    await fs.writeFile(path.join(dir, SIGNING_LOG_FILE), before);
    assert.deepEqual((await reopen(dir))?.views, [1n, 2n, 3n]);
  });

  it("refuses a log damaged in the middle or with a missing record", async () => {
    const dir = path.join(root, "bad");
    const log = new SigningStateLog<State, Rec>(dir, opts());
    await log.open();
    await log.append(rec(1), rec(2), rec(3));
    await log.close();
    const file = path.join(dir, SIGNING_LOG_FILE);
    const lines = (await fs.readFile(file, "utf8")).split("\n");
    await fs.writeFile(file, [lines[0], "garbage", lines[2], ""].join("\n"));
    await assert.rejects(reopen(dir), corrupt);
    await fs.writeFile(file, [lines[0], lines[2], ""].join("\n"));
    await assert.rejects(reopen(dir), corrupt);
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
      path.join(logDir, SIGNING_LOG_FILE),
      '{"seq":1,"r":{"view":{"$bigint":"1"},"digest":{"$bytes":"00"}}}\n',
    );
    await assert.rejects(reopen(logDir), oldFormat);
    // A version-1 snapshot.
    const snapDir = path.join(root, "v1snap");
    await fs.mkdir(snapDir, { recursive: true });
    await fs.writeFile(path.join(snapDir, SIGNING_STATE_FILE), '{"version":1,"seq":0,"record":{}}');
    await assert.rejects(reopen(snapDir), oldFormat);
    // The files are left alone for the operator.
    assert.ok((await fs.readFile(path.join(logDir, SIGNING_LOG_FILE), "utf8")).startsWith('{"seq":1'));
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
      views: [1n, 2n, 3n, 4n, 5n, 6n],
      last: new Uint8Array(32).fill(6),
    });
  });
});
