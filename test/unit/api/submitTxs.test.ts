// SubmitTxs: many transactions in one call, each admitted or refused on its own with the status
// SubmitTx would give it; bounds on the batch; backpressure (OVERLOADED) per transaction.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ApiServer, type ApiServerOpts, type SubmitResult } from "../../../src/api/index.js";
import type { SubmitTxResponse, SubmitTxsResponse } from "../../../src/gen/parabft/v1/api_pb.js";
import type { SignedTx } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import type { MempoolOpts } from "../../../src/mempool/index.js";
import { toHex, txHash } from "../../../src/types/index.js";
import { newKey, signedTx } from "../mempool/helpers.js";
import { apiClient, call, callError } from "./client.js";
import { FakeNode } from "./fakeNode.js";

/** The node's way: the whole batch through one mempool addBatch (one verifier call). */
class BatchFakeNode extends FakeNode {
  batches = 0;
  async submitTxs(txs: readonly SignedTx[]): Promise<SubmitResult[]> {
    this.batches++;
    const results = await this.mempool.addBatch(txs, "api");
    return results.map((r) => (r.ok ? { ok: true, hash: r.hash } : { ok: false, error: r.error }));
  }
}

type Client = ReturnType<typeof apiClient>;

async function withServer(
  node: FakeNode,
  fn: (client: Client) => Promise<void>,
  opts: Partial<ApiServerOpts> = {},
): Promise<void> {
  const server = new ApiServer({ address: "127.0.0.1:0", ...opts }, { backend: node, log: silentLogger() });
  let client: Client | null = null;
  try {
    await server.start();
    client = apiClient(server.port, true);
    await fn(client);
  } finally {
    client?.close();
    await server.stop();
  }
}

const statusName = (code: number) => grpc.status[code];

for (const [name, make] of [
  ["the backend's batch admission", (o?: Partial<MempoolOpts>) => new BatchFakeNode(o)],
  [
    "a backend without submitTxs (one submitTx per transaction)",
    (o?: Partial<MempoolOpts>) => new FakeNode(o),
  ],
] as const) {
  describe(`api: SubmitTxs over ${name}`, () => {
    it("answers each transaction of a mixed batch on its own, in order", async () => {
      const node = make();
      await withServer(node, async (client) => {
        const a = newKey();
        const b = newKey();
        const good = signedTx(a, { nonce: 0n });
        const badSig = signedTx(b, { nonce: 0n });
        badSig.signature = new Uint8Array(badSig.signature);
        badSig.signature[0] = badSig.signature[0]! ^ 1;
        const wrongChain = signedTx(b, { nonce: 0n, chainId: "other-chain" });
        const good2 = signedTx(b, { nonce: 0n });
        const res = await call<SubmitTxsResponse>(client, "submitTxs", {
          txs: [good, badSig, wrongChain, good2, good],
        });
        assert.equal(res.statuses.length, 5);
        const [s0, s1, s2, s3, s4] = res.statuses;
        assert.equal(statusName(s0!.code), "OK");
        assert.equal(toHex(s0!.txHash), toHex(txHash(good)));
        assert.equal(statusName(s1!.code), "INVALID_ARGUMENT");
        assert.equal(s1!.reason, "BAD_SIGNATURE");
        assert.match(s1!.message, /^BAD_SIGNATURE: /);
        assert.equal(s1!.txHash.length, 0);
        assert.equal(statusName(s2!.code), "INVALID_ARGUMENT");
        assert.equal(s2!.reason, "WRONG_CHAIN");
        assert.equal(statusName(s3!.code), "OK");
        assert.equal(toHex(s3!.txHash), toHex(txHash(good2)));
        // The same transaction twice: already pending, answered with its hash (idempotent).
        assert.equal(statusName(s4!.code), "OK");
        assert.equal(toHex(s4!.txHash), toHex(txHash(good)));
        assert.equal(node.mempool.size, 2);
      });
    });

    it("answers a committed transaction's resubmit with its hash, as SubmitTx does", async () => {
      const node = make();
      await withServer(node, async (client) => {
        const a = newKey();
        const tx = signedTx(a, { nonce: 0n });
        await call<SubmitTxResponse>(client, "submitTx", { tx });
        node.commitBlock();
        const stale = signedTx(a, { nonce: 0n, amount: "2" });
        const res = await call<SubmitTxsResponse>(client, "submitTxs", { txs: [tx, stale] });
        assert.equal(statusName(res.statuses[0]!.code), "OK");
        assert.equal(toHex(res.statuses[0]!.txHash), toHex(txHash(tx)));
        assert.equal(statusName(res.statuses[1]!.code), "INVALID_ARGUMENT");
        assert.equal(res.statuses[1]!.reason, "BAD_NONCE");
      });
    });

    it("refuses the excess past the backlog per transaction as OVERLOADED, like calls in a row", async () => {
      // No commits yet: the backlog limit is minBacklog (4). One sender's nonces 0..9.
      const opts = { backlogSeconds: 1, minBacklog: 4, maxNonceGap: 16 };
      const key = newKey();
      const txs = Array.from({ length: 10 }, (_, n) => signedTx(key, { nonce: BigInt(n) }));
      const unaryNode = make(opts);
      const unary: string[] = [];
      await withServer(unaryNode, async (client) => {
        for (const tx of txs) {
          try {
            await call<SubmitTxResponse>(client, "submitTx", { tx });
            unary.push("OK");
          } catch (err) {
            unary.push(
              `${statusName((err as grpc.ServiceError).code)}/${/^(\w+):/.exec((err as grpc.ServiceError).details)?.[1]}`,
            );
          }
        }
      });
      const node = make(opts);
      await withServer(node, async (client) => {
        const res = await call<SubmitTxsResponse>(client, "submitTxs", { txs });
        const batch = res.statuses.map((s) => (s.code === 0 ? "OK" : `${statusName(s.code)}/${s.reason}`));
        // The same answers as ten SubmitTx calls in a row: admitted while the backlog had room
        // (first comers up to twice the limit: backlog.ts), refused after, never in between.
        assert.deepEqual(batch, unary);
        const admitted = batch.filter((s) => s === "OK").length;
        assert.ok(admitted >= 4 && admitted < 10, `admitted ${admitted}`);
        assert.deepEqual(
          batch.slice(admitted),
          Array<string>(10 - admitted).fill("RESOURCE_EXHAUSTED/OVERLOADED"),
        );
        assert.equal(node.mempool.size, admitted);
        for (const s of res.statuses.slice(admitted))
          assert.match(s.message, /^OVERLOADED: .*retry after \d+ ms/);
      });
    });
  });
}

describe("api: SubmitTxs bounds", () => {
  it("refuses a batch of more transactions than the bound with BATCH_TOO_LARGE, admitting none", async () => {
    const node = new BatchFakeNode();
    await withServer(
      node,
      async (client) => {
        const key = newKey();
        const txs = Array.from({ length: 4 }, (_, n) => signedTx(key, { nonce: BigInt(n) }));
        const err = await callError(client, "submitTxs", { txs });
        assert.equal(statusName(err.code), "INVALID_ARGUMENT");
        assert.match(err.details, /^BATCH_TOO_LARGE: 4 transactions in one call, at most 3/);
        assert.equal(node.mempool.size, 0);
        assert.equal(node.batches, 0);
        const ok = await call<SubmitTxsResponse>(client, "submitTxs", { txs: txs.slice(0, 3) });
        assert.deepEqual(
          ok.statuses.map((s) => s.code),
          [0, 0, 0],
        );
      },
      { maxSubmitBatchTxs: 3 },
    );
  });

  it("refuses a batch past the byte bound and an empty batch, admitting none", async () => {
    const node = new BatchFakeNode();
    await withServer(
      node,
      async (client) => {
        const key = newKey();
        const small = signedTx(key, { nonce: 0n });
        const big = signedTx(key, { nonce: 1n, padding: 2_000 });
        const err = await callError(client, "submitTxs", { txs: [small, big] });
        assert.equal(statusName(err.code), "INVALID_ARGUMENT");
        assert.match(err.details, /^BATCH_TOO_LARGE: \d+ bytes of transactions in one call, at most 1500/);
        const empty = await callError(client, "submitTxs", { txs: [] });
        assert.equal(statusName(empty.code), "INVALID_ARGUMENT");
        assert.match(empty.details, /txs: required/);
        const noBody = await callError(client, "submitTxs", { txs: [small, { signature: small.signature }] });
        assert.match(noBody.details, /txs\[1\]\.body: required/);
        assert.equal(node.mempool.size, 0);
        assert.equal(node.batches, 0);
      },
      { maxSubmitBatchBytes: 1_500 },
    );
  });
});
