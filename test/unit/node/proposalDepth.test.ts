// The proposer's pipeline depth (issue 14, src/node/proposer.ts Proposer.schedule): a primary
// proposes at once with nothing uncommitted below its request, holds a request while
// `proposalDepth` heights below it are uncommitted, lets it go when one commits or the batch is
// full, spaces by maxBatchDelayMs in between, and drops a held request on a view change.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { Action, Event, StepResult } from "../../../src/consensus/pbft/types.js";
import { SignedTxSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { ConsensusDriver, type DriverOpts } from "../../../src/node/driver.js";
import { defaultParams } from "../../../src/params/index.js";
import { CHAIN, envCtx, makeBlock, makeSets, prePrepareFrom } from "../consensus/harness.js";
import { noop, stubDriverModules } from "./driverStubs.js";

const MAX_BLOCK_TXS = 50;
const DELAY_MS = 20;

function setup(depth = 2) {
  const { set, sets } = makeSets(4);
  let clock = 1_000_000;
  let pending = 0;
  const proposals: bigint[] = [];
  const replica = {
    committedHeight: 0n,
    set,
    view: 0n,
    primary: 0,
    selfIndex: 0,
    /** Whether the core accepts a proposal (broadcasts a PRE-PREPARE for it). */
    accept: true,
    handle(e: Event): StepResult {
      const actions: Action[] = [];
      if (e.kind === "proposal") {
        proposals.push(e.height);
        if (replica.accept)
          actions.push({
            kind: "broadcast",
            msg: prePrepareFrom(0, replica.view, makeBlock(set, e.height, 0)),
          });
      }
      return { actions, verdict: null, sender: null };
    },
  };
  const mempool = {
    inFlightCount: 0,
    pendingExecutable: () => pending,
    reap: (max: number) => {
      const n = Math.min(max, pending);
      return {
        txs: Array.from({ length: n }, () => create(SignedTxSchema, {})),
        hashes: Array.from({ length: n }, (_, i) => new Uint8Array(32).fill(i + 1)),
      };
    },
    markBlockInFlight: noop,
    markProposed: noop,
    noteBlock: noop,
    beginViewChange: noop,
    endViewChange: noop,
  };
  const mod = stubDriverModules({
    replica,
    envelopeContext: envCtx(sets),
    mempool,
    onDeliver: noop,
    lastCommit: () => null,
    now: () => clock,
  });
  const opts: DriverOpts = {
    chainId: CHAIN,
    self: 0,
    tickMs: 500,
    maxBlockTxs: MAX_BLOCK_TXS,
    maxBlockBytes: 1 << 20,
    consensus: { ...defaultParams.consensus, proposalDepth: depth, maxBatchDelayMs: DELAY_MS },
  };
  const driver = new ConsensusDriver(opts, mod);
  const perform = (actions: Action[]) =>
    (driver as unknown as { perform(a: Action[]): void }).perform(actions);
  const request = (height: bigint) => perform([{ kind: "requestProposal", height, view: replica.view }]);
  /** The core delivered `height` (and everything below it). */
  const commit = (height: bigint) => {
    replica.committedHeight = height;
    perform([
      {
        kind: "deliver",
        height,
        epoch: 0n,
        block: {} as never,
        digest: new Uint8Array(32),
        certificate: {} as never,
        chainHash: new Uint8Array(32),
      },
    ]);
  };
  return {
    driver,
    replica,
    perform,
    request,
    commit,
    proposals,
    setPending: (n: number) => {
      pending = n;
    },
    advance: (ms: number) => {
      clock += ms;
    },
    stop: () => driver.stop(),
  };
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("proposer pipeline depth", () => {
  it("proposes at once with nothing uncommitted below the requested height", async () => {
    const d = setup();
    try {
      d.setPending(3);
      d.request(1n);
      assert.deepEqual(d.proposals, [1n]);
      d.replica.committedHeight = 6n;
      d.request(7n);
      assert.deepEqual(d.proposals, [1n, 7n]);
    } finally {
      await d.stop();
    }
  });

  it("holds a request while proposalDepth heights are uncommitted and proposes when one commits", async () => {
    const d = setup(2);
    try {
      d.setPending(3);
      // Heights 1 and 2 are in the pipeline: depth 2 reached.
      d.request(3n);
      // The core re-issues its request on every pendingWork change and tick: still held, on no clock.
      d.advance(10 * DELAY_MS);
      d.setPending(4);
      d.driver.notifyPendingWork();
      d.request(3n);
      assert.deepEqual(d.proposals, [], "held at depth 2");
      assert.equal(
        (d.driver as unknown as { proposer: { batchTimer: unknown } }).proposer.batchTimer,
        null,
        "no timer armed",
      );
      // Height 1 commits: one uncommitted height below 3, and our last proposal is long past.
      d.commit(1n);
      assert.deepEqual(d.proposals, [3n], "a commit frees the slot");
    } finally {
      await d.stop();
    }
  });

  it("with fewer than proposalDepth uncommitted, spaces by maxBatchDelayMs after our last proposal", async () => {
    const d = setup(3);
    try {
      d.setPending(2);
      d.request(1n);
      assert.deepEqual(d.proposals, [1n]);
      // Just proposed (accepted) at the fake clock's now: height 2 waits DELAY_MS of real time.
      d.request(2n);
      assert.deepEqual(d.proposals, [1n], "spaced");
      await until(() => d.proposals.length === 2, "the spaced proposal");
      assert.deepEqual(d.proposals, [1n, 2n]);
      // Height 3 would wait too, but both below it commit: nothing in flight, at once.
      d.request(3n);
      assert.deepEqual(d.proposals, [1n, 2n]);
      d.commit(2n);
      assert.deepEqual(d.proposals, [1n, 2n, 3n]);
    } finally {
      await d.stop();
    }
  });

  it("a full batch goes at once whatever the depth", async () => {
    const d = setup(1);
    try {
      d.setPending(MAX_BLOCK_TXS - 1);
      d.request(5n);
      assert.deepEqual(d.proposals, [], "held: 4 heights uncommitted below");
      d.setPending(MAX_BLOCK_TXS);
      d.driver.notifyPendingWork();
      assert.deepEqual(d.proposals, [5n], "the batch filled while held");
      d.request(6n);
      assert.deepEqual(d.proposals, [5n, 6n], "a request with a full pool goes at once");
    } finally {
      await d.stop();
    }
  });

  it("a view change drops a held request; the new view's request from a free pipeline goes at once", async () => {
    const d = setup(2);
    try {
      d.setPending(3);
      d.request(3n);
      assert.deepEqual(d.proposals, []);
      d.replica.view = 1n;
      d.perform([{ kind: "viewChanged", view: 1n, primary: 0 }]);
      // The old view's request is gone: a commit does not propose it.
      d.commit(1n);
      assert.deepEqual(d.proposals, [], "the old view's request was dropped");
      // Nothing uncommitted below height 2: the new view's request goes at once.
      d.request(2n);
      assert.deepEqual(d.proposals, [2n]);
    } finally {
      await d.stop();
    }
  });
});
