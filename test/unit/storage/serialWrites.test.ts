import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SerialWrites } from "../../../src/storage/serialWrites.js";

describe("SerialWrites", () => {
  it("runs one task at a time, in call order, even when a later task would finish first", async () => {
    const q = new SerialWrites();
    const log: string[] = [];
    let running = 0;
    const task = (name: string, ms: number) => async () => {
      running++;
      assert.equal(running, 1, `${name} overlapped another task`);
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`end ${name}`);
      running--;
      return name;
    };
    const results = await Promise.all([q.run(task("a", 30)), q.run(task("b", 1)), q.run(task("c", 10))]);
    assert.deepEqual(results, ["a", "b", "c"]);
    assert.deepEqual(log, ["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("a failed task rejects its own caller only; the next one still runs", async () => {
    const q = new SerialWrites();
    const failed = q.run(async () => {
      throw new Error("disk full");
    });
    const next = q.run(async () => 7);
    await assert.rejects(failed, /disk full/);
    assert.equal(await next, 7);
  });

  it("idle() waits for every queued task and never rejects", async () => {
    const q = new SerialWrites();
    let done = false;
    void q.run(async () => {
      await new Promise((r) => setTimeout(r, 20));
      done = true;
    });
    q.run(async () => {
      throw new Error("x");
    }).catch(() => {});
    await q.idle();
    assert.equal(done, true);
  });
});
