// The open-loop generator (bench/cluster/slots.ts): a generator that fell behind catches up in
// slices of `burst` sends with the event loop turning between them, so callbacks that became
// ready meanwhile (answers on the client's sockets) run before the rest of the overdue sends.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChainWatcher } from "../../../bench/cluster/chain.js";
import type { RunContext } from "../../../bench/cluster/load.js";
import type { SignPool } from "../../../bench/cluster/signPool.js";
import { Slots } from "../../../bench/cluster/slots.js";
import { Submitter } from "../../../bench/cluster/submitter.js";

function ctx(): RunContext {
  const watcher = { trackExecuted: () => () => {}, pending: new Map() } as unknown as ChainWatcher;
  return {
    chainId: "c",
    senders: [],
    conns: [],
    validatorClients: [],
    watcher,
    ceiling: { singleThreadPerSec: 1, allCoresPerSec: 1, cores: 1, clusterCeilingPerSec: 1 },
    drainTimeoutS: 1,
    progress: false,
    metricsAddrs: [],
    committedLog: [],
    recipientCounter: 0,
    // The generator never signs nor submits by itself: the runs' send callbacks do.
    signPool: {} as SignPool,
    submitter: new Submitter([], 1),
  };
}

/** 200 slots all overdue when the generator starts (its event loop stalled 40 ms first): how
 *  many were sent when a callback queued at the first send ran. */
async function sentWhenCallbackRan(burst?: number): Promise<{ at: number; sent: number }> {
  const slots = new Slots(ctx(), 100_000, 0.002);
  const until = performance.now() + 40;
  while (performance.now() < until) {
    // a busy box: the client's event loop is late, every slot is overdue
  }
  let sent = 0;
  let at = -1;
  await slots.run(
    "t",
    0.002,
    () => {
      if (sent++ === 0)
        setImmediate(() => {
          at = sent;
        });
    },
    () => "",
    burst,
  );
  slots.close();
  await new Promise((r) => setImmediate(r));
  return { at, sent };
}

describe("open-loop generator", () => {
  it("catches up in slices, turning the event loop between them", async () => {
    const sliced = await sentWhenCallbackRan(16);
    assert.equal(sliced.sent, 200);
    assert.ok(
      sliced.at >= 1 && sliced.at <= 16,
      `the callback ran after ${sliced.at} sends, within the first slice`,
    );
    const burst = await sentWhenCallbackRan();
    assert.equal(burst.sent, 200);
    assert.equal(burst.at, 200, "without a slice size every overdue slot goes in one synchronous burst");
  });
});
