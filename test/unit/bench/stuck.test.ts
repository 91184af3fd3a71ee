// Why an admitted transaction did not commit (bench/cluster/stuck.ts): the verdict from the
// validators' next nonces of its sender, and the overload run's report of such transactions
// against a fake node that admits one sender's later payments and never commits them.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { explainUncommitted, stuckVerdict } from "../../../bench/cluster/stuck.js";
import { runClusterBench } from "../../../bench/cluster.js";
import { generateKeyPair, writeKeyFile } from "../../../src/crypto/keys.js";
import { type SignedTx, TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { toHex } from "../../../src/types/index.js";
import { FakeNode } from "../api/fakeNode.js";
import { type FakeServer, startFakeServer } from "../api/fakeServer.js";

describe("stuck transaction verdicts", () => {
  it("files a nonce against the highest next nonce any validator reports", () => {
    assert.equal(
      stuckVerdict(5n, [7n, 5n, null]),
      "nonce used",
      "one validator is past it: it can never commit",
    );
    assert.equal(stuckVerdict(5n, [5n, 4n]), "next in line");
    assert.equal(stuckVerdict(5n, [3n, 4n]), "behind a gap");
    assert.equal(stuckVerdict(5n, [3n], true), "behind the client's gap");
    assert.equal(stuckVerdict(5n, [null, null]), "unknown");
  });

  it("asks once per sender, counts by verdict and by admitting validator", async () => {
    const asked: string[] = [];
    const report = await explainUncommitted(
      [
        { sender: 1, nonce: 3n, conn: 5, admittedAtS: 1.04 },
        { sender: 1, nonce: 4n, conn: 2, admittedAtS: 1.5 },
        { sender: 0, nonce: 9n, conn: -1, admittedAtS: 2 },
      ],
      {
        nodes: 4,
        addressOf: (s) => Uint8Array.of(s),
        chainNonces: async (a) => {
          asked.push(toHex(a));
          return a[0] === 1 ? [3n, 3n, null, 2n] : [10n, null, null, null];
        },
        poolTxs: async () => [2, 0, null, 1],
      },
    );
    assert.ok(report);
    assert.deepEqual(asked.sort(), ["00", "01"]);
    assert.equal(report.total, 3);
    assert.deepEqual(report.byVerdict, { "nonce used": 1, "next in line": 1, "behind a gap": 1 });
    assert.deepEqual(report.byNode, [0, 1, 1, 0], "connection c admits through validator c % 4");
    assert.deepEqual(report.poolTxs, [2, 0, null, 1]);
    assert.deepEqual(
      report.examples.map((e) => [e.sender, e.nonce, e.node, e.admittedAtS, e.verdict]),
      [
        [0, "9", -1, 2, "nonce used"],
        [1, "3", 1, 1, "next in line"],
        [1, "4", 2, 1.5, "behind a gap"],
      ],
    );
    assert.equal(
      await explainUncommitted([], {
        nodes: 1,
        addressOf: () => new Uint8Array(),
        chainNonces: async () => [],
        poolTxs: async () => [],
      }),
      undefined,
    );
  });
});

/** Admits everything; never commits the first sender's payments after its first one. */
class HoldingNode extends FakeNode {
  held: string | null = null;
  override commitBlock() {
    const reaped = this.mempool.reap(1000, 1 << 20).txs;
    const keep = reaped.filter((tx: SignedTx) => {
      const body = fromBinary(TxBodySchema, tx.body);
      const sender = toHex(body.sender);
      this.held ??= sender;
      return !(sender === this.held && body.nonce >= 1n);
    });
    return this.commitTxs(keep);
  }
}

describe("an overload run reports what it admitted and never saw commit", () => {
  let fx: FakeServer<HoldingNode>;

  before(async () => {
    fx = await startFakeServer(
      "parabft-bench-stuck-",
      new HoldingNode({ maxTxs: 10_000, maxPerSender: 1_000, maxNonceGap: 1_000 }),
    );
    for (let i = 0; i < 4; i++)
      await writeKeyFile(path.join(fx.dir, "keys", `k${i}.json`), generateKeyPair());
  });

  after(async () => {
    await fx?.stop();
  });

  it("files the held sender's next nonce as next in line and the rest behind it", async () => {
    const report = await runClusterBench({
      api: [fx.api],
      keysDir: path.join(fx.dir, "keys"),
      durationS: 2,
      rate: 10,
      overload: { factor: 2, probeS: 1, saturationTps: 10 },
      senders: 4,
      connections: 2,
      drainTimeoutS: 2,
      outDir: null,
      progress: false,
      verifyCeilingMs: 200,
    });
    const r = report.runs[0]!;
    assert.ok(r.uncommitted >= 2, `the held sender's later payments stay uncommitted (${r.uncommitted})`);
    const s = r.stuck;
    assert.ok(s, "the run explains them");
    assert.equal(s.total, r.uncommitted);
    assert.equal(s.byVerdict["next in line"], 1, JSON.stringify(s));
    assert.equal(s.byVerdict["behind a gap"], s.total - 1);
    assert.equal(s.byNode.length, 1);
    assert.equal(s.byNode[0], s.total, "one validator admitted them all");
    const first = s.examples[0]!;
    assert.equal(first.nonce, "1");
    assert.deepEqual(first.chainNonces, ["1"]);
    assert.deepEqual(s.poolTxs, [null], "no metrics endpoint was given");
    assert.deepEqual(report.overload?.stuck, s);
  });
});
