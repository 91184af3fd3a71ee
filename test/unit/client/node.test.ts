// The SDK's grpc-js transport against the real ApiServer over a fake node (the API engineer's
// test backend): every call shape, typed errors with status codes, streaming and cancellation.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ApiServer } from "../../../src/api/index.js";
import {
  isNonceError,
  kvPutTx,
  ParabftClient,
  RpcError,
  signTx,
  transferTx,
} from "../../../src/client/node.js";
import { TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { toHex } from "../../../src/types/index.js";
import { FakeNode } from "../api/fakeNode.js";
import { CHAIN } from "../mempool/helpers.js";
import { seededSigner } from "./helpers.js";

describe("ParabftClient over grpc-js", () => {
  let node: FakeNode;
  let server: ApiServer;
  let client: ParabftClient;

  before(async () => {
    node = new FakeNode();
    node.setReady(true);
    server = new ApiServer(
      { address: "127.0.0.1:0", reflection: false },
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

  it("submits and waits for commit and execution, then finds the tx, receipt and block", async () => {
    const alice = seededSigner(1);
    const bob = seededSigner(2);
    const nonce = await client.nonces.next(alice.address);
    assert.equal(nonce, 0n);
    const p = signTx(transferTx({ chainId: CHAIN, sender: alice.publicKey, nonce }, bob.address, 5n), alice);
    node.autoCommit = true;
    const res = await client.submitAndWait(p, { timeoutMs: 5_000, waitExecuted: true });
    node.autoCommit = false;
    assert.equal(toHex(res.txHash), toHex(p.hash));
    assert.ok(res.height >= 1n);
    assert.equal(res.receipt?.status, TxStatus.OK);

    const got = await client.getTx(p.hash);
    assert.equal(got?.height, res.height);
    assert.equal(toHex(got!.tx!.body), toHex(p.tx.body));
    assert.equal((await client.getReceipt(p.hash))?.status, TxStatus.OK);
    const block = await client.getBlock({ height: res.height });
    assert.equal(block?.height, res.height);
    const byDigest = await client.getBlock({ digest: block!.digest });
    assert.equal(byDigest?.height, res.height);
    const acct = await client.getAccount(alice.address);
    assert.equal(acct.nonce, 1n);
    assert.equal(typeof acct.balance, "bigint");
    const status = await client.getStatus();
    assert.equal(status.chainId, CHAIN);
    assert.equal(status.committedHeight, res.height);
    assert.equal((await client.getValidators(0n)).validators.length, 1);
  });

  it("returns null for unknown transactions and blocks instead of throwing", async () => {
    const unknown = new Uint8Array(32).fill(0xee);
    assert.equal(await client.getTx(unknown), null);
    assert.equal(await client.getReceipt(unknown), null);
    assert.equal(await client.getBlock({ height: 10_000n }), null);
  });

  it("surfaces rejections as RpcError with the gRPC status, and recognises a stale nonce", async () => {
    const carol = seededSigner(3);
    const stale = signTx(
      kvPutTx({ chainId: CHAIN, sender: carol.publicKey, nonce: 0n }, Uint8Array.of(1), Uint8Array.of(2)),
      carol,
    );
    node.autoCommit = true;
    await client.submitAndWait(stale, { timeoutMs: 5_000 });
    node.autoCommit = false;
    // Same nonce again, different body: the mempool refuses a nonce the chain has consumed.
    const again = signTx(
      kvPutTx({ chainId: CHAIN, sender: carol.publicKey, nonce: 0n }, Uint8Array.of(1), Uint8Array.of(3)),
      carol,
    );
    const err = await client.submitTx(again).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof RpcError, String(err));
    assert.equal(err.statusName, "INVALID_ARGUMENT");
    assert.equal(err.status, 3);
    assert.match(err.serverMessage, /BAD_NONCE/);
    assert.equal(isNonceError(err), true);

    const wrongChain = signTx(
      transferTx({ chainId: "other", sender: carol.publicKey, nonce: 1n }, carol.address, 1n),
      carol,
    );
    const e2 = await client.submitTx(wrongChain).catch((e: unknown) => e);
    assert.ok(e2 instanceof RpcError);
    assert.equal(e2.statusName, "INVALID_ARGUMENT");
    assert.equal(isNonceError(e2), false);
  });

  it("send() uses the chain's nonce and recovers from a stale local nonce by resyncing once", async () => {
    const erin = seededSigner(5);
    // A different amount per build: a byte-identical resubmit would be an idempotent DUPLICATE.
    let amount = 1n;
    const build = (nonce: bigint) =>
      transferTx({ chainId: CHAIN, sender: erin.publicKey, nonce }, erin.address, amount++);
    node.autoCommit = true;
    try {
      const first = await client.send(erin, build, { wait: true, timeoutMs: 5_000 });
      assert.equal(first.prepared.body.nonce, 0n);
      assert.ok(first.height !== undefined && first.height > 0n);
      // Pretend another client's view: the local counter is behind the chain.
      client.nonces.set(erin.address, 0n);
      const second = await client.send(erin, build, { wait: true, timeoutMs: 5_000 });
      assert.equal(second.prepared.body.nonce, 1n);
      assert.equal(await client.nonces.next(erin.address), 2n);
    } finally {
      node.autoCommit = false;
    }
  });

  it("streams committed blocks in order and cancels the call when the consumer stops", async () => {
    const start = node.committedHeight() + 1n;
    const dave = seededSigner(4);
    const seen: bigint[] = [];
    const consumer = (async () => {
      for await (const b of client.streamBlocks(start)) {
        seen.push(b.height);
        if (seen.length === 3) break;
      }
    })();
    for (let i = 0; i < 3; i++) {
      const p = signTx(
        kvPutTx(
          { chainId: CHAIN, sender: dave.publicKey, nonce: BigInt(i) },
          Uint8Array.of(i),
          Uint8Array.of(i),
        ),
        dave,
      );
      await client.submitTx(p);
      node.commitBlock();
    }
    await consumer;
    assert.deepEqual(seen, [start, start + 1n, start + 2n]);
    // The server sees the cancellation and drops its subscription (bounded wait).
    for (let i = 0; i < 100 && node.subscribers > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(node.subscribers, 0);
  });

  it("stops a stream when its abort signal fires", async () => {
    const ac = new AbortController();
    const got: bigint[] = [];
    const consumer = (async () => {
      for await (const b of client.streamBlocks(1n, { signal: ac.signal })) {
        got.push(b.height);
        if (b.height === 1n) ac.abort();
      }
    })();
    await consumer;
    assert.equal(got[0], 1n);
  });

  it("reports an unreachable server as UNAVAILABLE", async () => {
    const dead = new ParabftClient("127.0.0.1:1", { deadlineMs: 2_000 });
    try {
      const e = await dead.getStatus().catch((x: unknown) => x);
      assert.ok(e instanceof RpcError);
      assert.ok(["UNAVAILABLE", "DEADLINE_EXCEEDED"].includes(e.statusName), e.statusName);
    } finally {
      dead.close();
    }
  });
});
