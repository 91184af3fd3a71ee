// ParabftClient.submitTxs against the real ApiServer over a fake node: one outcome per
// transaction (hash or RpcError), the call failing only as a whole past the server's bounds.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ApiServer } from "../../../src/api/index.js";
import { isNonceError, ParabftClient, RpcError, signTx, transferTx } from "../../../src/client/node.js";
import { silentLogger } from "../../../src/logger/index.js";
import { toHex } from "../../../src/types/index.js";
import { FakeNode } from "../api/fakeNode.js";
import { CHAIN } from "../mempool/helpers.js";
import { seededSigner } from "./helpers.js";

describe("ParabftClient.submitTxs", () => {
  let node: FakeNode;
  let server: ApiServer;
  let client: ParabftClient;

  before(async () => {
    node = new FakeNode();
    node.setReady(true);
    server = new ApiServer(
      { address: "127.0.0.1:0", maxSubmitBatchTxs: 8 },
      { backend: node, log: silentLogger() },
    );
    await server.start();
    client = new ParabftClient(`127.0.0.1:${server.port}`, { deadlineMs: 5_000 });
    await client.waitForReady(10_000);
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  it("answers each transaction with its hash or its own refusal, in order", async () => {
    const alice = seededSigner(31);
    const bob = seededSigner(32);
    const tx = (nonce: bigint, amount = 1n) =>
      signTx(transferTx({ chainId: CHAIN, sender: alice.publicKey, nonce }, bob.address, amount), alice);
    const first = tx(0n);
    node.commitTxs([first.tx]);
    const fresh = [tx(1n), tx(2n)];
    const stale = tx(0n, 7n);
    const out = await client.submitTxs([fresh[0]!, stale, fresh[1]!.tx, first]);
    assert.equal(out.length, 4);
    assert.ok(out[0]!.ok && toHex(out[0]!.txHash) === toHex(fresh[0]!.hash));
    const refused = out[1]!;
    assert.ok(!refused.ok);
    assert.ok(refused.error instanceof RpcError);
    assert.equal(refused.error.statusName, "INVALID_ARGUMENT");
    assert.match(refused.error.serverMessage, /^BAD_NONCE: /);
    assert.ok(isNonceError(refused.error), "the SDK's nonce-resync cue works on a batch outcome");
    assert.ok(out[2]!.ok && toHex(out[2]!.txHash) === toHex(fresh[1]!.hash));
    // Already committed with the same signature: answered with its hash (idempotent).
    assert.ok(out[3]!.ok && toHex(out[3]!.txHash) === toHex(first.hash));
  });

  it("throws BATCH_TOO_LARGE for the whole call past the server's bound", async () => {
    const carol = seededSigner(33);
    const txs = Array.from({ length: 9 }, (_, n) =>
      signTx(
        transferTx({ chainId: CHAIN, sender: carol.publicKey, nonce: BigInt(n) }, carol.address, 1n),
        carol,
      ),
    );
    const before = node.mempool.size;
    await assert.rejects(client.submitTxs(txs), (err: unknown) => {
      assert.ok(err instanceof RpcError);
      assert.equal(err.statusName, "INVALID_ARGUMENT");
      assert.match(err.serverMessage, /^BATCH_TOO_LARGE: 9 transactions in one call, at most 8/);
      return true;
    });
    assert.equal(node.mempool.size, before);
  });
});
