// The follower's timer (src/node/follower.ts): a validator in the set only checks now and then
// whether to follow, and an epoch change that makes it a follower starts fetching at once (wake).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Follower } from "../../../src/node/follower.js";

describe("follower", () => {
  it("fetches only while following; wake() checks at once", async () => {
    let following = false;
    let checks = 0;
    let fetches = 0;
    const f = new Follower({
      // Nothing listens there: a fetch fails, which is all this test needs.
      apis: ["127.0.0.1:1"],
      following: () => {
        checks++;
        return following;
      },
      committedHeight: () => {
        fetches++;
        return 0n;
      },
      deliver: () => assert.fail("nothing to deliver"),
      log: { debug: () => {}, warn: () => {} },
    });
    try {
      f.wake();
      assert.equal(checks, 0, "not started: wake does nothing");
      f.start();
      f.wake();
      assert.equal(checks, 1, "wake checked at once");
      assert.equal(fetches, 0, "not following: no fetch");
      following = true;
      f.wake();
      assert.equal(fetches, 1, "following: the fetch round started at once");
    } finally {
      f.stop();
    }
    const before = checks;
    f.wake();
    assert.equal(checks, before, "stopped: wake does nothing");
  });
});
