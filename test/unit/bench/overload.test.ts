// The overload measurement's client (bench/cluster/overload.ts) without a cluster: the real
// ApiServer over a fake node that commits every admitted transaction and refuses every other
// submission as OVERLOADED. A refused payment must be counted, not retried, and its sender's
// next payment must take the unused nonce: were the nonce burnt, every later transaction of that
// sender would sit behind a gap and never commit, and "nothing admitted lost" would fail.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { runClusterBench } from "../../../bench/cluster.js";
import { generateKeyPair, writeKeyFile } from "../../../src/crypto/keys.js";
import type { SignedTx } from "../../../src/gen/parabft/v1/types_pb.js";
import { MempoolError } from "../../../src/mempool/index.js";
import type { Hash } from "../../../src/types/hash.js";
import { FakeNode } from "../api/fakeNode.js";
import { type FakeServer, startFakeServer } from "../api/fakeServer.js";

class RefusingNode extends FakeNode {
  submits = 0;
  override async submitTx(tx: SignedTx): Promise<Hash> {
    if (++this.submits % 2 === 0)
      throw new MempoolError("OVERLOADED", { retryAfterMs: 100 }, "node overloaded; retry after 100 ms");
    return super.submitTx(tx);
  }
}

describe("overload measurement against a fake node", () => {
  let fx: FakeServer<RefusingNode>;
  let node: RefusingNode;

  before(async () => {
    fx = await startFakeServer(
      "parabft-bench-overload-",
      new RefusingNode({ maxTxs: 10_000, maxPerSender: 1_000, maxNonceGap: 1_000 }),
    );
    node = fx.node;
    for (let i = 0; i < 4; i++)
      await writeKeyFile(path.join(fx.dir, "keys", `k${i}.json`), generateKeyPair());
  });

  after(async () => {
    await fx?.stop();
  });

  it("counts refusals by status without retrying them, and every admitted transaction commits", async () => {
    const report = await runClusterBench({
      api: [fx.api],
      keysDir: path.join(fx.dir, "keys"),
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
    assert.deepEqual(r.submitFailures, {});
    assert.equal(r.committed, r.submitted, "every admitted transaction committed (no nonce gap)");
    assert.equal(r.uncommitted, 0);
    const o = report.overload!;
    assert.equal(o.saturationTps, 10);
    assert.equal(o.admitted, r.submitted);
    assert.equal(o.admittedNotCommitted, 0);
    assert.deepEqual(o.refused, r.refused);
    assert.equal(o.goals.length, 3);
    const v = report.verification;
    assert.equal(v.inChain, r.committed);
    assert.equal(v.missing + v.heightMismatch, 0);
  });
});
