// Waiters with a storage lookup: a deadline that fires while the lookup is in flight must settle the
// one promise the caller awaits, and leave no unhandled rejection behind (one used to kill the node).
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Waiters } from "../../../src/node/waiters.js";
import { ParabftError } from "../../../src/types/errors.js";

describe("Waiters.wait with a lookup", () => {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  beforeEach(() => {
    escaped.length = 0;
    process.on("unhandledRejection", onEscape);
  });
  afterEach(() => {
    process.off("unhandledRejection", onEscape);
  });

  const code = (err: unknown) => (err instanceof ParabftError ? err.code : String(err));

  /** A lookup that answers only when the test says so: after the deadline has fired. */
  function heldLookup<T>() {
    let answer!: (v: T) => void;
    let fail!: (err: Error) => void;
    const held = new Promise<T>((resolve, reject) => {
      answer = resolve;
      fail = reject;
    });
    return { find: () => held, answer, fail };
  }

  it("times out while a slow lookup is in flight, and the late lookup changes nothing", async () => {
    const w = new Waiters<number>();
    for (let i = 0; i < 50; i++) {
      const lookup = heldLookup<number>();
      const got = w.wait("k", 1, undefined, lookup.find);
      await assert.rejects(got, (err) => code(err) === "TIMEOUT");
      lookup.answer(7);
    }
    await sleep(20);
    assert.deepEqual(escaped, []);
    assert.equal(w.size, 0, "timed-out waiters are removed");
  });

  it("a lookup that fails after the deadline leaves no unhandled rejection", async () => {
    const w = new Waiters<number>();
    const lookup = heldLookup<number>();
    const got = w.wait("k", 1, undefined, lookup.find);
    await assert.rejects(got, (err) => code(err) === "TIMEOUT");
    lookup.fail(new Error("disk read failed"));
    await sleep(20);
    assert.deepEqual(escaped, []);
  });

  it("a lookup that fails in time rejects the wait with its error", async () => {
    const w = new Waiters<number>();
    const got = w.wait("k", 1000, undefined, async () => {
      throw new Error("disk read failed");
    });
    await assert.rejects(got, /disk read failed/);
    assert.equal(w.size, 0);
  });

  it("resolves from the lookup, or from an event that lands during it", async () => {
    const w = new Waiters<number>();
    assert.equal(await w.wait("a", 1000, undefined, async () => 3), 3);
    const pending = w.wait("b", 1000, undefined, async () => {
      await sleep(10);
      return null;
    });
    w.resolve("b", 9);
    assert.equal(await pending, 9);
    assert.equal(w.size, 0);
  });

  it("an aborted signal rejects at once as CANCELLED without running the lookup", async () => {
    const w = new Waiters<number>();
    let looked = false;
    const got = w.wait("k", 1000, AbortSignal.abort(), async () => {
      looked = true;
      return 1;
    });
    await assert.rejects(got, (err) => code(err) === "CANCELLED");
    assert.equal(looked, false);
  });
});
