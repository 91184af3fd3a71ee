// The cluster benchmark's machinery without a cluster: open-loop load through the real
// ApiServer over a fake node that commits every admitted transaction. Checks the report's
// accounting (scheduled = committed + failures), the HDR summaries, the timeline, the chain
// check, and that the SDK's certificate check rejects the fake node's unsigned certificates.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { ClusterBenchOpts } from "../../../bench/cluster/types.js";
import { runClusterBench } from "../../../bench/cluster.js";
import { generateKeyPair, writeKeyFile } from "../../../src/crypto/keys.js";
import { FakeNode } from "../api/fakeNode.js";
import { type FakeServer, startFakeServer } from "../api/fakeServer.js";

describe("cluster benchmark against a fake node", () => {
  let fx: FakeServer;

  before(async () => {
    fx = await startFakeServer(
      "parabft-sdk-bench-",
      new FakeNode({ maxTxs: 10_000, maxPerSender: 1_000, maxNonceGap: 1_000 }),
    );
    for (let i = 0; i < 4; i++)
      await writeKeyFile(path.join(fx.dir, "keys", `k${i}.json`), generateKeyPair());
  });

  after(async () => {
    await fx?.stop();
  });

  /** 20 tx/s for 2 s from 4 senders over 2 connections to the fake node, quietly. */
  const smoke = (o: Partial<ClusterBenchOpts> & Pick<ClusterBenchOpts, "outDir">): ClusterBenchOpts => ({
    api: [fx.api],
    keysDir: path.join(fx.dir, "keys"),
    durationS: 2,
    rate: 20,
    senders: 4,
    connections: 2,
    drainTimeoutS: 10,
    progress: false,
    verifyCeilingMs: 200,
    ...o,
  });

  it("accounts for every scheduled transaction and finds every committed one in the chain", async () => {
    const report = await runClusterBench(smoke({ outDir: path.join(fx.dir, "out"), name: "smoke" }));
    assert.equal(report.runs.length, 1);
    const r = report.runs[0]!;
    assert.equal(r.scheduled, 40);
    const failures = Object.values(r.submitFailures).reduce((a, b) => a + b, 0);
    assert.equal(failures, 0, JSON.stringify(r.submitFailures));
    assert.equal(r.committed, 40);
    assert.equal(r.uncommitted, 0);
    assert.equal(r.executed, 40);
    assert.equal(r.finalityMs.count, 40);
    assert.ok(
      r.finalityMs.p50 > 0 && r.finalityMs.p50 <= r.finalityMs.p99 && r.finalityMs.p99 <= r.finalityMs.max,
    );
    assert.equal(
      r.timeline.reduce((a, p) => a + p.sent, 0),
      40,
    );
    assert.equal(
      r.timeline.reduce((a, p) => a + p.committed, 0),
      40,
    );
    assert.ok(report.verifyCeiling.singleThreadPerSec > 0);
    assert.equal(report.saturation, null);
    const v = report.verification;
    assert.equal(v.inChain, 40);
    assert.equal(v.missing + v.heightMismatch, 0);
    assert.deepEqual(v.receiptStatus, { OK: 40 });
    // The fake node's certificates carry no signatures: the light-client check must say so.
    assert.ok(v.certificatesChecked > 0);
    assert.equal(v.certificatesValid, 0);
    assert.match(v.certificateFailures[0]!, /INSUFFICIENT_QUORUM|EPOCH_MISMATCH|BAD_SIGNATURE/);
    const saved = JSON.parse(await readFile(report.files!.json, "utf8"));
    assert.equal(saved.runs[0].committed, 40);
    assert.equal(saved.files.svg, report.files!.svg);
  });

  it("runs an open loop's --warmup first, apart from the judged run, and checks both in the chain", async () => {
    const report = await runClusterBench(smoke({ warmupS: 1, outDir: null, name: "smoke-warmup" }));
    assert.deepEqual(
      report.runs.map((r) => [r.warmup === true, r.offeredRate, r.scheduled, r.committed]),
      [
        [true, 20, 20, 20],
        [false, 20, 40, 40],
      ],
    );
    assert.equal(report.verification.inChain, 60);
    assert.equal(report.verification.missing, 0);
  });
});
