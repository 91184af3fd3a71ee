// buildResultFromKeys given the value of each write position by position (the inline path since
// issue 13 round 4: no state lookup per key) builds the same result as given a lookup of final
// values: the last write of a repeated key wins. sortKeyIndex is a stable sort by key bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccountArena, SLOT_BYTES } from "../../../src/exec/arena.js";
import { encodeAccount, keyStr } from "../../../src/exec/codec.js";
import {
  buildResult,
  buildResultFromKeys,
  buildResultFromStage,
  sortKeyIndex,
  writeSetLogKeys,
  writeSetLogOf,
} from "../../../src/exec/result.js";
import { WriteStage } from "../../../src/exec/writeStage.js";
import { keyPool, pick, rng } from "./randomWrites.js";

/** Writes over a key pool with shared 4-char prefixes and repeats; values differ per write. */
function writes(seed: number, count: number): { keys: string[]; values: (Uint8Array | null)[] } {
  const r = rng(seed);
  const pool = keyPool(r, 40 + count / 4, 8, [0, 100, 200]).map(keyStr);
  const keys: string[] = [];
  const values: (Uint8Array | null)[] = [];
  for (let i = 0; i < count; i++) {
    keys.push(pick(pool, r));
    // Lengths on both sides of the stage's 32-byte copy threshold (a bare account 24, a record
    // up to 152) and past the log's 200-byte native copy.
    const len = [3, 24, 33, 152, 300][Math.floor(r() * 5)]!;
    const v = new Uint8Array(len);
    v[0] = i & 255;
    v[1] = i >> 8;
    v[2] = seed & 255;
    v[len - 1] = (i * 7) & 255;
    values.push(r() < 0.2 ? null : v);
  }
  return { keys, values };
}

describe("buildResultFromKeys with positional values, and the staged form", () => {
  it("sortKeyIndex: key order, equal keys by position", () => {
    for (const count of [10, 63, 64, 500, 3000]) {
      const { keys } = writes(count, count);
      const order = [...sortKeyIndex(keys)];
      const want = keys
        .map((_, i) => i)
        .sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));
      assert.deepEqual(order, want, `count ${count}`);
    }
  });

  it("= the lookup form and buildResult over the final values (last write wins)", () => {
    const stage = new WriteStage();
    // Growing blocks, then small ones again: the stage and its scratch buffers are reused.
    for (const seed of [...Array.from({ length: 40 }, (_, i) => i + 1), 2, 1]) {
      const { keys, values } = writes(seed, seed * 37);
      const final = new Map<string, Uint8Array | null>();
      for (let i = 0; i < keys.length; i++) final.set(keys[i]!, values[i]!);
      const prev = new Uint8Array(32).fill(seed);
      const outcomes = { height: 5n, hashes: [], outcomes: [] };
      const byArray = buildResultFromKeys(5n, prev, keys.slice(), values, outcomes);
      const byLookup = buildResultFromKeys(5n, prev, keys.slice(), (k) => final.get(k)!, outcomes);
      const plain = buildResult(5n, prev, final, []);
      // The staged form (the inline path since round 6), with one stage reused across blocks.
      stage.reset();
      for (let i = 0; i < keys.length; i++) stage.add(keys[i]!, values[i]!);
      assert.ok(stage.ok);
      const byStage = buildResultFromStage(5n, prev, stage, outcomes);
      assert.deepEqual(byStage.stateRoot, plain.stateRoot, `seed ${seed}`);
      assert.deepEqual(writeSetLogOf(byStage), writeSetLogOf(byArray), `seed ${seed}`);
      // The log's keys (an inline block's eviction pins, round 13): every key written, once, in
      // key order (binary-string order is byte order), with the absent ones among them.
      assert.deepEqual(writeSetLogKeys(writeSetLogOf(byStage)!), [...final.keys()].sort(), `seed ${seed}`);
      assert.deepEqual(byArray.stateRoot, plain.stateRoot, `seed ${seed}`);
      assert.deepEqual(byLookup.stateRoot, plain.stateRoot, `seed ${seed}`);
      assert.deepEqual(writeSetLogOf(byArray), writeSetLogOf(byLookup), `seed ${seed}`);
      assert.deepEqual(
        byArray.writeSet.map((w) => [
          Buffer.from(w.key).toString("hex"),
          w.value && Buffer.from(w.value).toString("hex"),
        ]),
        plain.writeSet.map((w) => [
          Buffer.from(w.key).toString("hex"),
          w.value && Buffer.from(w.value).toString("hex"),
        ]),
      );
    }
  });

  it("the stage copies each value when written (a later in-place rewrite is staged by its own write) and refuses what the log cannot hold", () => {
    const stage = new WriteStage();
    const v = Uint8Array.of(1, 2, 3);
    stage.add("\u0001a", v);
    v[0] = 9;
    stage.add("\u0001b", null);
    const r = buildResultFromStage(1n, new Uint8Array(32), stage, []);
    const plain = buildResult(
      1n,
      new Uint8Array(32),
      new Map([
        ["\u0001a", Uint8Array.of(1, 2, 3)],
        ["\u0001b", null],
      ]),
      [],
    );
    assert.deepEqual(r.stateRoot, plain.stateRoot);
    stage.reset();
    stage.add("\u0100", null);
    assert.equal(stage.ok, false, "a char above 255 is not a binary-string key");
    stage.reset();
    stage.add("x".repeat(0x10000), null);
    assert.equal(stage.ok, false, "a key longer than the log's u16 length");
    stage.reset();
    assert.equal(stage.ok, true);
  });

  it("addSlot stages an arena slot exactly as add() stages its key and value (mixed with add, repeats, every record length)", () => {
    const r = rng(11);
    const arena = new AccountArena(16);
    const keys: string[] = [];
    for (let i = 0; i < 200; i++) {
      const a = new Uint8Array(21);
      a[0] = 1;
      // Shared 4-byte prefixes, so the sort compares whole staged keys.
      a[1] = i % 3;
      for (let c = 5; c < 21; c++) a[c] = Math.floor(r() * 256);
      keys.push(keyStr(a));
    }
    const accountOf = (i: number, w: number) => {
      const held = (i + w) % 5; // 24, 56, 88, 120, 152 bytes
      const v = new Uint8Array(24 + 32 * held);
      v.set(encodeAccount({ nonce: BigInt(w), balance: BigInt(i * 1000 + w) }));
      for (let c = 24; c < v.length; c++) v[c] = (c * 31 + w) & 255;
      return v;
    };
    const bySlot = new WriteStage();
    const byAdd = new WriteStage();
    for (let w = 0; w < 600; w++) {
      const i = Math.floor(r() * keys.length);
      const k = keys[i]!;
      const v = accountOf(i, w);
      arena.put(k, v);
      byAdd.add(k, v);
      if (w % 4 === 0) bySlot.add(k, v);
      else {
        const s = arena.find(k);
        bySlot.addSlot(arena.bytes, arena.view, s * SLOT_BYTES, arena.lengthOf(s));
      }
    }
    const root = new Uint8Array(32);
    const a = buildResultFromStage(1n, root, bySlot, []);
    const b = buildResultFromStage(1n, root, byAdd, []);
    assert.deepEqual(writeSetLogOf(a), writeSetLogOf(b));
    assert.deepEqual(a.stateRoot, b.stateRoot);
  });

  it("gives back the keys staged before a refused write, in write order (the executor's fallback)", () => {
    const stage = new WriteStage();
    const keys = ["\u0001b", "\u0001a\u00ff", "\u0001b", `\u0002${"k".repeat(300)}`];
    for (const [i, k] of keys.entries()) stage.add(k, i % 2 === 0 ? Uint8Array.of(i) : null);
    assert.deepEqual(stage.stagedKeys(), keys);
    stage.add("\u0100", null);
    assert.equal(stage.ok, false);
    assert.deepEqual(stage.stagedKeys(), keys, "the refused write is not staged");
    stage.reset();
    assert.deepEqual(stage.stagedKeys(), []);
  });
});
