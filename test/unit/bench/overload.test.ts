// The overload measurement's client (bench/cluster/overload.ts) without a cluster: the real
// ApiServer over a fake node that commits every admitted transaction and refuses every other
// submission as OVERLOADED. A refused payment must be counted, not retried, and its sender's
// next payment must take the unused nonce: were the nonce burnt, every later transaction of that
// sender would sit behind a gap and never commit, and "nothing admitted lost" would fail.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type MetricSample, type TimedScrape, validatorWindow } from "../../../bench/cluster/stages.js";
import { runClusterBench } from "../../../bench/cluster.js";
import { generateKeyPair, writeKeyFile } from "../../../src/crypto/keys.js";
import type { SignedTx } from "../../../src/gen/parabft/v1/types_pb.js";
import { MempoolError } from "../../../src/mempool/index.js";
import type { Hash } from "../../../src/types/hash.js";
import { FakeNode } from "../api/fakeNode.js";
import { type FakeServer, startFakeServer } from "../api/fakeServer.js";

class RefusingNode extends FakeNode {
  submits = 0;
  /** Every distinct transaction submitted (body and signature). */
  readonly seen = new Set<string>();
  override async submitTx(tx: SignedTx): Promise<Hash> {
    this.seen.add(Buffer.concat([tx.body, tx.signature]).toString("hex"));
    if (++this.submits % 2 === 0)
      throw new MempoolError("OVERLOADED", { retryAfterMs: 100 }, "node overloaded; retry after 100 ms");
    return super.submitTx(tx);
  }
}

/** The fake node's own counters on a metrics endpoint, as a validator exposes them. */
function metricsServer(node: RefusingNode): Promise<{ server: Server; addr: string }> {
  const server = createServer((_req, res) => {
    const txs = node.blocks.reduce((a, b) => a + (b.block?.txs.length ?? 0), 0);
    res.end(
      [
        "# TYPE parabft_consensus_committed_txs_total counter",
        `parabft_consensus_committed_txs_total{validator="0"} ${txs}`,
        `parabft_consensus_committed_height{validator="0"} ${node.blocks.length}`,
        `parabft_consensus_view_changes_total{validator="0"} 0`,
        "",
      ].join("\n"),
    );
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, addr: `127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

function sample(entries: Record<string, number>): MetricSample {
  return new Map(Object.entries(entries));
}

describe("validators' counters over a window", () => {
  const at = (atMs: number, samples: (MetricSample | null)[]): TimedScrape => ({ atMs, samples });
  const node = (txs: number, height: number, views: number, view = 1) =>
    sample({
      'parabft_consensus_committed_txs_total{validator="x"}': txs,
      'parabft_consensus_committed_height{validator="x"}': height,
      'parabft_consensus_view_changes_total{validator="x"}': views,
      'parabft_consensus_view_timer_armed_seconds{validator="x"}': 9,
      'parabft_consensus_view{validator="x"}': view,
    });

  it("rates the median validator, counts the highest validator's view changes, skips the unscraped", () => {
    const w = validatorWindow(
      at(1_000, [node(100, 10, 0), node(100, 10, 1), node(90, 9, 0), node(0, 0, 0)]),
      at(11_000, [node(1_100, 20, 0), node(1_300, 22, 3), node(1_000, 19, 0, 2), null]),
    );
    assert.ok(w !== null);
    assert.equal(w.windowS, 10);
    assert.deepEqual(w.committedTxs, [1_000, 1_200, 910, null]);
    assert.equal(w.tps, 100, "the median of 910, 1,000, 1,200 over 10 s");
    assert.equal(w.heights, 10);
    assert.equal(w.viewChanges, 2);
    // Each validator's view at the end (not the view timer or view-change counters beside it):
    // the third sits in a view nobody joined.
    assert.deepEqual(w.views, [1, 1, 2, null]);
    assert.equal(validatorWindow(at(0, [null]), at(1_000, [node(1, 1, 0)])), null, "nothing to compare");
  });

  it("reads the fired request timeouts by what they waited for, when the build exports it", () => {
    const timeouts = (fired: number, prepare: number, commit: number) =>
      sample({
        ...Object.fromEntries(node(100, 10, 0)),
        'parabft_consensus_request_timeouts_total{validator="x"}': fired,
        'parabft_consensus_request_timeouts_stalled_total{stalled_at="proposal",validator="x"}': 0,
        'parabft_consensus_request_timeouts_stalled_total{stalled_at="prepare",validator="x"}': prepare,
        'parabft_consensus_request_timeouts_stalled_total{stalled_at="commit",validator="x"}': commit,
        'parabft_consensus_last_request_timeout_seconds{value="armed",validator="x"}': 1.5,
      });
    const older = sample({
      ...Object.fromEntries(node(100, 10, 0)),
      'parabft_consensus_request_timeouts_total{validator="x"}': 0,
    });
    const w = validatorWindow(at(0, [timeouts(1, 1, 0), older]), at(1_000, [timeouts(4, 2, 2), older]));
    assert.ok(w !== null);
    const [mine, old] = w.requestTimeouts!;
    assert.equal(mine!.fired, 3);
    assert.deepEqual(mine!.stalledAt, { prepare: 1, commit: 2 }, "only the window's, zeros left out");
    assert.equal(mine!.armedMs, 1_500);
    assert.equal(old!.fired, 0);
    assert.equal(old!.stalledAt, undefined, "a build without the counter: absent, not zero");
  });
});

describe("overload measurement against a fake node", () => {
  let fx: FakeServer<RefusingNode>;
  let node: RefusingNode;
  let metrics: { server: Server; addr: string } | undefined;

  before(async () => {
    fx = await startFakeServer(
      "parabft-bench-overload-",
      new RefusingNode({ maxTxs: 10_000, maxPerSender: 1_000, maxNonceGap: 1_000 }),
    );
    node = fx.node;
    metrics = await metricsServer(node);
    for (let i = 0; i < 4; i++)
      await writeKeyFile(path.join(fx.dir, "keys", `k${i}.json`), generateKeyPair());
  });

  after(async () => {
    await new Promise((r) => (metrics ? metrics.server.close(r) : r(undefined)));
    await fx?.stop();
  });

  it("counts refusals by status without retrying them, and every admitted transaction commits", async () => {
    const report = await runClusterBench({
      api: [fx.api],
      keysDir: path.join(fx.dir, "keys"),
      metrics: [metrics!.addr],
      durationS: 2,
      rate: 10,
      overload: { factor: 2, probeS: 1, saturationTps: 10 },
      senders: 4,
      connections: 2,
      drainTimeoutS: 10,
      outDir: null,
      progress: false,
      verifyCeilingMs: 200,
    });
    assert.equal(report.runs.length, 1, "a given saturation skips the warm-up and the probe");
    const r = report.runs[0]!;
    assert.equal(r.mode, "overload");
    assert.equal(r.offeredRate, 20);
    assert.equal(r.scheduled, 40);
    const refused = r.refused?.["RESOURCE_EXHAUSTED/OVERLOADED"] ?? 0;
    const blocked = r.clientBlocked ?? 0;
    // Every scheduled send is admitted, refused or (every sender awaiting an answer) not sent.
    assert.equal(r.submitted + refused + blocked, 40, JSON.stringify(r));
    assert.equal(node.submits, r.submitted + refused, "no refusal was retried");
    assert.ok(refused >= 10, `every other submission is refused (${refused})`);
    // A refused transfer stays its sender's next payment (the same signed bytes), so the node sees
    // no more distinct transactions than were admitted plus one refused and never resent per sender.
    assert.ok(node.seen.size <= r.submitted + 4, `${node.seen.size} distinct for ${r.submitted} admitted`);
    // Signed before the load: half the offered sends (20 tx/s × 2 s / 4 senders / 2) + 4 each.
    assert.equal(r.signed?.before, 4 * 9);
    assert.ok(r.signed.before + r.signed.during >= r.submitted);
    assert.deepEqual(r.submitFailures, {});
    assert.equal(r.committed, r.submitted, "every admitted transaction committed (no nonce gap)");
    assert.equal(r.uncommitted, 0);
    const o = report.overload!;
    assert.equal(o.saturationTps, 10);
    assert.equal(o.admitted, r.submitted);
    assert.equal(o.admittedNotCommitted, 0);
    assert.deepEqual(o.refused, r.refused);
    assert.equal(o.goals.length, 3);
    // The ratio is judged on the node's own commit counter over the load window, not on what the
    // client's block stream saw; the client's figure stays beside it.
    const v = o.validators;
    assert.ok(v !== null, "the node's metrics were scraped at the window's ends");
    assert.equal(o.achievedFrom, "validators");
    assert.ok(v.windowS >= 1.8 && v.windowS < 10, `window ${v.windowS} s`);
    const inWindow = v.committedTxs[0]!;
    assert.ok(inWindow > 0 && inWindow <= r.submitted, `${inWindow} committed in the window`);
    assert.equal(o.achievedTps, v.tps);
    assert.equal(v.tps, Math.round((inWindow / v.windowS) * 10) / 10);
    assert.equal(o.ratioToSaturation, Math.round((v.tps / 10) * 1000) / 1000);
    assert.equal(o.clientAchievedTps, r.achievedTps);
    assert.equal(v.viewChanges, 0);
    // The client's answer times account for every answered send and every send not made.
    const a = r.answerTimes!;
    assert.equal(a.roundTripMs.count, r.submitted + refused);
    assert.equal(a.sendLagMs.count, r.submitted + refused);
    assert.equal(
      a.notSentBySecond.reduce((x, y) => x + y, 0),
      blocked,
    );
    assert.ok(a.outstandingMax >= 1 && a.outstandingMax <= 4, "at most one per sender");
    const chain = report.verification;
    assert.equal(chain.inChain, r.committed);
    assert.equal(chain.missing + chain.heightMismatch, 0);
  });
});
