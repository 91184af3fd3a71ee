// The bench's chain watcher (bench/cluster/chain.ts): how it learns the watched node's executed
// height. By default from the node's StreamBlocks (the executed feed), with no GetStatus at all; a
// node without the feed is asked at each streamed block and then every 5 ms while one awaits
// execution; with PARABFT_BENCH_EXEC_POLL_MS=N only every N ms, whatever the stream brings.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChainWatcher, execFeed, execPollMs, executedMethod } from "../../../bench/cluster/chain.js";
import type { ParabftClient } from "../../../src/client/node.js";

/** A client streaming `blocks` heights (one per `release()`) whose node executes nothing. */
function fakeClient() {
  let statusCalls = 0;
  const waiting: (() => void)[] = [];
  let height = 0n;
  const client = {
    getStatus: async () => {
      statusCalls++;
      return { executedHeight: 0n, committedHeight: height };
    },
    async *streamBlocks(_from: bigint, opts: { signal?: AbortSignal } = {}) {
      opts.signal?.addEventListener("abort", () => {
        for (const r of waiting.splice(0)) r();
      });
      while (!opts.signal?.aborted) {
        await new Promise<void>((r) => waiting.push(r));
        if (opts.signal?.aborted) return;
        height++;
        yield { height, block: undefined, certificate: undefined };
      }
    },
  } as unknown as ParabftClient;
  return {
    client,
    calls: () => statusCalls,
    release: () => waiting.shift()?.(),
    waiting: () => waiting.length,
  };
}

/**
 * A node with the executed feed: each `commit()` streams a block carrying the executed height,
 * each `execute()` an update (height 0). Records whether each stream asked for the feed.
 */
function feedClient() {
  let statusCalls = 0;
  const asked: boolean[] = [];
  const queue: { height: bigint; executedHeight?: bigint }[] = [];
  let wake: (() => void) | null = null;
  let committed = 0n;
  let executed = 0n;
  const push = (m: { height: bigint; executedHeight?: bigint }) => {
    queue.push(m);
    wake?.();
  };
  const client = {
    getStatus: async () => {
      statusCalls++;
      return { executedHeight: executed, committedHeight: committed };
    },
    async *streamBlocks(_from: bigint, opts: { signal?: AbortSignal; executed?: boolean } = {}) {
      asked.push(opts.executed === true);
      opts.signal?.addEventListener("abort", () => wake?.());
      if (opts.executed) yield { height: 0n, executedHeight: executed };
      while (!opts.signal?.aborted) {
        const m = queue.shift();
        if (m === undefined) {
          await new Promise<void>((r) => {
            wake = r;
          });
          continue;
        }
        if (!opts.executed && m.height === 0n) continue;
        yield opts.executed ? m : { height: m.height };
      }
    },
  } as unknown as ParabftClient;
  return {
    client,
    asked,
    calls: () => statusCalls,
    commit: () => push({ height: ++committed, executedHeight: executed }),
    execute: () => push({ height: 0n, executedHeight: ++executed }),
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!cond()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("bench chain watcher", () => {
  it("reads PARABFT_BENCH_EXEC_POLL_MS and says which method the report used", () => {
    assert.equal(execPollMs({}), null);
    assert.equal(execPollMs({ PARABFT_BENCH_EXEC_POLL_MS: "250" }), 250);
    assert.throws(() => execPollMs({ PARABFT_BENCH_EXEC_POLL_MS: "0" }), /1-60000/);
    assert.throws(() => execPollMs({ PARABFT_BENCH_EXEC_POLL_MS: "fast" }), /1-60000/);
    assert.match(executedMethod(null), /every 5 ms while a streamed block awaits execution/);
    assert.match(executedMethod(250), /every 250 ms/);
  });

  it("by default takes the executed height from the stream and sends no GetStatus", async () => {
    assert.equal(execFeed({}), true);
    assert.equal(execFeed({ PARABFT_BENCH_EXEC_FEED: "0" }), false);
    assert.match(executedMethod(null, true), /pushed on its StreamBlocks/);
    assert.doesNotMatch(executedMethod(null, false), /StreamBlocks/);
    const f = feedClient();
    const w = new ChainWatcher([f.client], 1n, null, true);
    const seen: number[] = [];
    const byHeight = new Map([
      [1, [10]],
      [2, [20, 21]],
    ]);
    w.trackExecuted(byHeight, (i) => seen.push(i));
    w.start();
    try {
      await until(() => w.feed === true, "the stream's first message");
      for (let k = 1; k <= 20; k++) {
        f.commit();
        await until(() => w.blocksSeen === k, `block ${k}`);
        f.execute();
        await until(() => w.executedHeight === k, `executed ${k}`);
        if (k === 2) assert.deepEqual(seen, [10, 20, 21], "slots marked as their heights executed");
      }
      assert.deepEqual(f.asked, [true]);
      assert.equal(w.committedHeight, 20, "updates (height 0) are not blocks");
      assert.equal(f.calls(), 0, "20 blocks executed, not one GetStatus");
      assert.equal(w.statusCalls, 0);
    } finally {
      await w.stop();
    }
    assert.equal(w.feed, true, "the report still says the feed was used after stop");
  });

  it("polls while the stream is broken and stops when a new stream carries the height again", async () => {
    const f = feedClient();
    let broken = true;
    const flaky = {
      getStatus: f.client.getStatus,
      streamBlocks(from: bigint, opts: { signal?: AbortSignal; executed?: boolean } = {}) {
        if (broken) {
          broken = false;
          // biome-ignore lint/correctness/useYield: a stream that fails before its first message
          return (async function* () {
            throw new Error("connection refused");
          })();
        }
        return f.client.streamBlocks(from, opts);
      },
    } as unknown as ParabftClient;
    const w = new ChainWatcher([flaky], 1n, null, true);
    w.start();
    try {
      await until(() => w.lastError === "connection refused", "the broken stream");
      await until(() => f.calls() >= 1, "a poll while the stream is broken");
      await until(() => w.feed === true, "the next stream's first message");
      const polls = f.calls();
      for (let k = 1; k <= 5; k++) {
        f.commit();
        f.execute();
        await until(() => w.executedHeight === k, `executed ${k}`);
      }
      assert.ok(f.calls() <= polls + 1, "polling stopped once the feed was back (at most one in flight)");
    } finally {
      await w.stop();
    }
  });

  it("with the feed off asks the stream for nothing and polls", async () => {
    const f = feedClient();
    const w = new ChainWatcher([f.client], 1n, null, false);
    w.start();
    try {
      f.commit();
      await until(() => w.blocksSeen === 1, "the block");
      f.execute();
      await until(() => w.executedHeight === 1, "executed, by polling");
      assert.deepEqual(f.asked, [false]);
      assert.ok(f.calls() >= 1);
      assert.equal(w.feed, null);
    } finally {
      await w.stop();
    }
  });

  it("against a node without the feed polls again while a streamed block awaits execution", async () => {
    const f = fakeClient();
    const w = new ChainWatcher([f.client], 1n, null, true);
    w.start();
    try {
      // Until the stream's first message says whether it carries the height, nothing is asked.
      await until(() => f.waiting() === 1, "the stream");
      assert.equal(f.calls(), 0);
      f.release();
      await until(() => w.blocksSeen === 1, "the block");
      assert.equal(w.feed, false, "its block carried no executed height");
      await until(() => f.calls() >= 5, "polls while the block awaits execution");
    } finally {
      await w.stop();
    }
  });

  it("with a poll interval it does not poll per block", async () => {
    const f = fakeClient();
    const w = new ChainWatcher([f.client], 1n, 600_000);
    w.start();
    try {
      await until(() => f.calls() >= 1, "the first poll");
      for (let k = 1; k <= 20; k++) {
        f.release();
        await until(() => w.blocksSeen === k, `block ${k}`);
      }
      assert.equal(f.calls(), 1, "20 blocks streamed, no poll beyond the first");
    } finally {
      await w.stop();
    }
  });
});
