// Remote crash, no key needed (issue: hostile clients): SubmitTxAndWait for an already committed
// transaction with timeout_ms = 1 once killed a validator within two calls, because the waiter's
// deadline rejected while a RocksDB read was in flight, with no handler attached yet. Every wait
// path is fired with timeout_ms = 1 in a loop at every node; all must stay up and keep committing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { signTx, transferTx } from "../../src/client/node.js";
import { withCluster } from "./harness.js";
import { clientsFor, closeAll, metricValue, signerOf } from "./lib.js";

const ROUNDS = 40;

describe("SubmitTxAndWait with timeout_ms = 1 cannot kill a node", { timeout: 240_000 }, () => {
  it("every node survives tight deadlines on every wait path and keeps committing", async () => {
    await withCluster(4, async (cluster) => {
      const clients = clientsFor(cluster);
      try {
        const sender = await signerOf(cluster.accounts[0]!.keyFile);
        const recipient = await signerOf(cluster.accounts[1]!.keyFile);
        const base = { chainId: cluster.chainId, sender: sender.publicKey };
        const tx = (nonce: bigint) => signTx(transferTx({ ...base, nonce }, recipient.address, 1n), sender);
        const committed = tx(0n);
        await clients[0]!.submitAndWait(committed, { timeoutMs: 30_000, waitExecuted: true });

        let outcomes = 0;
        let nonce = 1n;
        for (let round = 0; round < ROUNDS; round++) {
          const fresh = tx(nonce++);
          const calls = clients.flatMap((c) => [
            c.submitAndWait(committed, { timeoutMs: 1, waitExecuted: true }),
            c.submitAndWait(committed, { timeoutMs: 1 }),
            c.submitAndWait(fresh, { timeoutMs: 1, waitExecuted: true }),
          ]);
          // Each call may answer OK (already done) or a timeout; only the process matters here.
          outcomes += (await Promise.allSettled(calls)).length;
          for (let i = 0; i < cluster.size; i++) {
            assert.ok(cluster.isRunning(i), `node ${i} exited in round ${round}:\n${cluster.logTail(i)}`);
          }
        }
        assert.equal(outcomes, ROUNDS * clients.length * 3);

        // Still a working cluster: a new transaction commits and executes through every node.
        for (const c of clients) {
          const r = await c.submitAndWait(tx(nonce++), { timeoutMs: 30_000, waitExecuted: true });
          assert.ok(r.height > 0n);
        }
        for (let i = 0; i < cluster.size; i++) {
          assert.ok(cluster.isRunning(i), `node ${i} exited`);
          const escaped = await metricValue(cluster.node(i).metrics, "parabft_process_escaped_errors_total");
          assert.equal(escaped, 0, `node ${i} had errors escape every handler:\n${cluster.logTail(i)}`);
        }
      } finally {
        closeAll(clients);
      }
    });
  });
});
