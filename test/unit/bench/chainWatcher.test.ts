// The bench's chain watcher (bench/cluster/chain.ts): how often it asks the watched node for its
// executed height. By default at each streamed block and then every 5 ms while one awaits
// execution; with PARABFT_BENCH_EXEC_POLL_MS=N only every N ms, whatever the stream brings.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChainWatcher, execPollMs, executedMethod } from "../../../bench/cluster/chain.js";
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

  it("by default polls again while a streamed block awaits execution", async () => {
    const f = fakeClient();
    const w = new ChainWatcher([f.client], 1n, null);
    w.start();
    try {
      await until(() => f.calls() >= 1, "the first poll");
      f.release();
      await until(() => w.blocksSeen === 1, "the block");
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
