// The inline path's view on the state cache (issue 13, round 12) skips the cache's Map when a
// write stores the value the cache already holds under a key it read last. Whatever the order
// of reads and writes (the same key read twice, a key written back to an earlier value object,
// absent values), the cache must end up holding exactly what was written last, and every write
// must reach the write hook.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StateCache, WriteThroughView } from "../../../src/exec/cache.js";
import { rng } from "./randomWrites.js";

const KEYS = ["a", "b", "c"];

function setup() {
  const cache = new StateCache(null);
  const model = new Map<string, Uint8Array | null>();
  for (const k of KEYS) {
    const v = new Uint8Array([k.charCodeAt(0)]);
    cache.seed(k, v);
    model.set(k, v);
  }
  const hooked: [string, Uint8Array | null][] = [];
  const view = new WriteThroughView(
    cache,
    () => {
      throw new Error("every key is cached");
    },
    (k, v) => hooked.push([k, v]),
  );
  return { cache, model, hooked, view };
}

function assertSame(cache: StateCache, model: Map<string, Uint8Array | null>, step: string): void {
  // Identity, not bytes: the hot path rewrites the values it owns in place.
  for (const [k, v] of model) assert.equal(cache.peek(k), v, `${step}: key ${k}`);
}

describe("WriteThroughView", () => {
  it("writes back an earlier value of a key read twice (both remembered slots follow a write)", () => {
    const { cache, model, view } = setup();
    const a1 = cache.peek("a")!;
    const a2 = new Uint8Array([9]);
    view.get("a");
    view.get("a");
    view.set("a", a2);
    view.get("b");
    view.set("a", a1);
    model.set("a", a1);
    assertSame(cache, model, "after writing a1 back");
  });

  it("keeps the cache equal to a model under random reads and writes", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const { cache, model, hooked, view } = setup();
      // Values written may be fresh, null, or any value a key held before (object identity).
      const seen: (Uint8Array | null)[] = [null, ...model.values()];
      let writes = 0;
      for (let step = 0; step < 60; step++) {
        const k = KEYS[Math.floor(r() * KEYS.length)]!;
        if (r() < 0.5) {
          assert.equal(view.get(k), model.get(k), `seed ${seed} step ${step}: read ${k}`);
        } else {
          const x = r();
          const v =
            x < 0.4
              ? (model.get(k) ?? null)
              : x < 0.7
                ? seen[Math.floor(r() * seen.length)]!
                : new Uint8Array([step]);
          seen.push(v);
          view.set(k, v);
          model.set(k, v);
          writes++;
          assert.deepEqual(hooked[hooked.length - 1], [k, v]);
        }
        assertSame(cache, model, `seed ${seed} step ${step}`);
      }
      assert.equal(hooked.length, writes);
    }
  });
});
