// `bench cluster`'s default sender count (src/cli/commands/benchCluster.ts defaultSenders): an
// open loop gives each sender ~0.5 tx/s so its waiting nonces stay inside the pool's nonce window.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultSenders } from "../../../src/cli/commands/benchCluster.js";

const open = (rate: number) => defaultSenders({ overload: false, sweep: false, closedLoop: undefined, rate });

describe("bench cluster default senders", () => {
  it("open loop: 2 per tx/s offered, at least 64 and at most 2048", () => {
    assert.equal(open(10), 64);
    assert.equal(open(200), 400);
    assert.equal(open(1000), 2000);
    assert.equal(open(5000), 2048);
  });

  it("overload and sweeps take 2048; a closed loop one per client, at least 64", () => {
    assert.equal(defaultSenders({ overload: true, sweep: false, closedLoop: undefined, rate: 100 }), 2048);
    assert.equal(defaultSenders({ overload: false, sweep: true, closedLoop: undefined, rate: 100 }), 2048);
    assert.equal(defaultSenders({ overload: false, sweep: false, closedLoop: 1, rate: 5000 }), 64);
    assert.equal(defaultSenders({ overload: false, sweep: false, closedLoop: 300, rate: 200 }), 300);
  });
});
