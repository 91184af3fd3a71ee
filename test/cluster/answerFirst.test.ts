// Issue 14 direction 2, pinned at node level: a block with a commit certificate is final, so its
// waiting clients are answered before the commit batch is durable. Every validator holds its
// commit batch writes (test-only PARABFT_TEST_HOLD_COMMIT_WRITES) until the test releases them:
// the client's SubmitTxAndWait answer and GetTx must come while no validator has written a block.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type ParabftClient, signTx, transferTx } from "../../src/client/node.js";
import { LocalCluster, stopAndRemove, tempDir } from "./harness.js";
import { clientsFor, closeAll, metricValue, signerOf, until } from "./lib.js";

describe("clients are answered at certificate time, before the commit batch is durable", {
  timeout: 180_000,
}, () => {
  let cluster: LocalCluster;
  let clients: ParabftClient[] = [];
  let release: string;

  before(async () => {
    const dir = await tempDir();
    release = path.join(dir, "release-commit-writes");
    cluster = await LocalCluster.create(4, path.join(dir, "net"), {
      preset: "minimal",
      accounts: 2,
      env: { PARABFT_TEST_HOLD_COMMIT_WRITES: release },
    });
    await cluster.start();
    clients = clientsFor(cluster);
  });

  after(async () => {
    closeAll(clients);
    await stopAndRemove(cluster);
  });

  it("answers SubmitTxAndWait and GetTx while every commit batch is held, then writes the block", async () => {
    const sender = await signerOf(cluster.accounts[0]!.keyFile);
    const recipient = await signerOf(cluster.accounts[1]!.keyFile);
    const tx = signTx(
      transferTx({ chainId: cluster.chainId, sender: sender.publicKey, nonce: 0n }, recipient.address, 5n),
      sender,
    );
    const res = await clients[0]!.submitAndWait(tx, { timeoutMs: 60_000 });
    assert.ok(res.height >= 1n, `committed at height ${res.height}`);
    // The gauge moves only once a commit batch is written: no validator has written one.
    for (const i of [0, 1, 2, 3]) {
      const written = await metricValue(cluster.node(i).metrics, "parabft_consensus_committed_height");
      assert.equal(written, 0, `node ${i} wrote a commit batch before its clients were answered`);
    }
    // Queries answer from memory meanwhile, at the same height.
    const found = await clients[0]!.getTx(tx.hash);
    assert.equal(found?.height, res.height, "GetTx finds the answered, unwritten tx");
    await until(
      "another validator delivered it too",
      async () => (await clients[2]!.getTx(tx.hash)) !== null,
      30_000,
    );
    for (const i of [0, 1, 2, 3]) {
      const written = await metricValue(cluster.node(i).metrics, "parabft_consensus_committed_height");
      assert.equal(written, 0, `node ${i}: still nothing written while held`);
    }
    await writeFile(release, "");
    await until(
      "every validator wrote the block once released",
      async () => {
        for (const i of [0, 1, 2, 3]) {
          const written = await metricValue(cluster.node(i).metrics, "parabft_consensus_committed_height");
          if (written < Number(res.height)) return false;
        }
        return true;
      },
      60_000,
    );
  });
});
