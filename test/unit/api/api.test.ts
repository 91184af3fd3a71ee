import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ApiServer, type ApiServerOpts, findProtoDir, statusForCode } from "../../../src/api/index.js";
import {
  type GetAccountResponse,
  type GetBlockResponse,
  type GetReceiptResponse,
  type GetStateResponse,
  type GetStatusResponse,
  type GetTxResponse,
  type GetValidatorsResponse,
  NodeState,
  type SubmitTxAndWaitResponse,
  type SubmitTxResponse,
} from "../../../src/gen/parabft/v1/api_pb.js";
import { SignedTxSchema, TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import type { MempoolOpts } from "../../../src/mempool/index.js";
import { ParabftError, toHex, txHash } from "../../../src/types/index.js";
import { CHAIN, newKey, signedTx } from "../mempool/helpers.js";
import { apiClient, call, callError, eventually, healthClient, reflectionClient, request } from "./client.js";
import { FakeNode } from "./fakeNode.js";

interface Ctx {
  node: FakeNode;
  server: ApiServer;
  client: ReturnType<typeof apiClient>;
}

async function withServer(
  fn: (ctx: Ctx) => Promise<void>,
  opts: Partial<ApiServerOpts> = {},
  mempool: Partial<MempoolOpts> = {},
): Promise<void> {
  const node = new FakeNode(mempool);
  const server = new ApiServer({ address: "127.0.0.1:0", ...opts }, { backend: node, log: silentLogger() });
  let client: ReturnType<typeof apiClient> | null = null;
  try {
    await server.start();
    client = apiClient(server.port);
    await fn({ node, server, client });
  } finally {
    client?.close();
    await server.stop();
  }
}

const code = (err: grpc.ServiceError) => grpc.status[err.code];

describe("api: happy paths", () => {
  it("submits, commits and answers every query", () =>
    withServer(async ({ node, client }) => {
      const key = newKey();
      const tx = signedTx(key, { nonce: 0n });
      const sub = await call<SubmitTxResponse>(client, "submitTx", { tx });
      assert.equal(toHex(sub.txHash), toHex(txHash(tx)));
      assert.equal(node.mempool.size, 1);

      const rec = node.commitBlock();
      const got = await call<GetTxResponse>(client, "getTx", { txHash: sub.txHash });
      assert.equal(got.height, 1n);
      assert.equal(got.index, 0);
      assert.equal(toHex(got.tx!.body), toHex(tx.body));

      const receipt = await call<GetReceiptResponse>(client, "getReceipt", { txHash: sub.txHash });
      assert.equal(receipt.receipt!.status, TxStatus.OK);

      const byHeight = await call<GetBlockResponse>(client, "getBlock", {
        by: { case: "height", value: 1n },
      });
      assert.equal(toHex(byHeight.digest), toHex(rec.digest));
      assert.equal(byHeight.block!.txs.length, 1);
      assert.equal(toHex(byHeight.certificate!.blockDigest), toHex(rec.digest));
      const byDigest = await call<GetBlockResponse>(client, "getBlock", {
        by: { case: "digest", value: rec.digest },
      });
      assert.equal(byDigest.height, 1n);

      const acct = await call<GetAccountResponse>(client, "getAccount", { address: key.address });
      assert.equal(acct.balance, "1000");
      assert.equal(acct.nonce, 1n);
      assert.equal(acct.height, 1n);

      node.state.set(toHex(Uint8Array.of(2, 1)), Uint8Array.of(42));
      const st = await call<GetStateResponse>(client, "getState", { key: Uint8Array.of(2, 1) });
      assert.deepEqual([st.found, [...st.value]], [true, [42]]);
      const missing = await call<GetStateResponse>(client, "getState", { key: Uint8Array.of(2, 2) });
      assert.equal(missing.found, false);

      const vals = await call<GetValidatorsResponse>(client, "getValidators", { epoch: 0n });
      assert.equal(vals.set!.validators.length, 1);

      const status = await call<GetStatusResponse>(client, "getStatus", {});
      assert.equal(status.state, NodeState.SYNCING);
      assert.equal(status.committedHeight, 1n);
      assert.equal(status.view, 3n);
      assert.equal(status.chainId, CHAIN);
      assert.equal(status.mempoolSize, 0);
    }));

  it("SubmitTxAndWait returns the commit height and, when asked, the receipt", () =>
    withServer(async ({ node, client }) => {
      node.autoCommit = true;
      const key = newKey();
      const res = await call<SubmitTxAndWaitResponse>(client, "submitTxAndWait", {
        tx: signedTx(key, { nonce: 0n }),
        timeoutMs: 5000,
        waitExecuted: true,
      });
      assert.equal(res.height, 1n);
      assert.equal(res.receipt!.status, TxStatus.OK);
      const committedOnly = await call<SubmitTxAndWaitResponse>(client, "submitTxAndWait", {
        tx: signedTx(key, { nonce: 1n }),
      });
      assert.equal(committedOnly.height, 2n);
      assert.equal(committedOnly.receipt, undefined);
    }));

  it("treats resubmits as idempotent: pending or already committed", () =>
    withServer(async ({ node, client }) => {
      const tx = signedTx(newKey(), { nonce: 0n });
      const a = await call<SubmitTxResponse>(client, "submitTx", { tx });
      const b = await call<SubmitTxResponse>(client, "submitTx", { tx });
      assert.equal(toHex(a.txHash), toHex(b.txHash));
      assert.equal(node.mempool.size, 1);
      node.commitBlock();
      const again = await call<SubmitTxAndWaitResponse>(client, "submitTxAndWait", { tx, timeoutMs: 1000 });
      assert.equal(again.height, 1n);
    }));
});

describe("api: status codes", () => {
  it("maps admission failures to INVALID_ARGUMENT, FAILED_PRECONDITION and RESOURCE_EXHAUSTED", () =>
    withServer(
      async ({ client }) => {
        const key = newKey();
        const junk = create(SignedTxSchema, {
          body: Uint8Array.of(0x0a, 0x09),
          signature: new Uint8Array(64),
        });
        const malformed = await callError(client, "submitTx", { tx: junk });
        assert.equal(code(malformed), "INVALID_ARGUMENT");
        assert.match(malformed.details, /MALFORMED/);

        const bad = signedTx(key, { nonce: 0n });
        bad.signature = new Uint8Array(64).fill(1);
        const sig = await callError(client, "submitTx", { tx: bad });
        assert.equal(code(sig), "INVALID_ARGUMENT");
        assert.match(sig.details, /BAD_SIGNATURE/);

        const chain = await callError(client, "submitTx", { tx: signedTx(key, { chainId: "other" }) });
        assert.equal(code(chain), "INVALID_ARGUMENT");
        assert.match(chain.details, /WRONG_CHAIN.*other/);

        await call(client, "submitTx", { tx: signedTx(key, { nonce: 0n }) });
        const taken = await callError(client, "submitTx", { tx: signedTx(key, { nonce: 0n, amount: "5" }) });
        assert.equal(code(taken), "INVALID_ARGUMENT");
        assert.match(taken.details, /BAD_NONCE/);

        const gap = await callError(client, "submitTx", { tx: signedTx(key, { nonce: 500n }) });
        assert.equal(code(gap), "FAILED_PRECONDITION");
        assert.match(gap.details, /NONCE_GAP/);

        await call(client, "submitTx", { tx: signedTx(newKey()) });
        const full = await callError(client, "submitTx", { tx: signedTx(newKey()) });
        assert.equal(code(full), "RESOURCE_EXHAUSTED");
        assert.match(full.details, /MEMPOOL_FULL/);

        const none = await callError(client, "submitTx", {});
        assert.equal(code(none), "INVALID_ARGUMENT");
        assert.match(none.details, /tx: required/);
      },
      {},
      { maxTxs: 2 },
    ));

  it("answers a request that is not valid protobuf with INVALID_ARGUMENT", () =>
    withServer(async ({ client }) => {
      const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
        client.makeUnaryRequest(
          "/parabft.v1.ApiService/GetTx",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x0a, 0xff, 0xff, 0xff]),
          (e: grpc.ServiceError | null) => (e ? resolve(e) : reject(new Error("succeeded"))),
        );
      });
      assert.equal(code(err), "INVALID_ARGUMENT");
      assert.match(err.details, /malformed/);
    }));

  it("rejects wrong argument lengths with a message naming the field", () =>
    withServer(async ({ client }) => {
      const cases: [string, object, RegExp][] = [
        ["getTx", { txHash: new Uint8Array(31) }, /tx_hash: must be 32 bytes, got 31/],
        ["getReceipt", { txHash: new Uint8Array(0) }, /tx_hash: must be 32 bytes/],
        ["getBlock", { by: { case: "digest", value: new Uint8Array(3) } }, /digest: must be 32 bytes/],
        ["getBlock", {}, /set height or digest/],
        ["getAccount", { address: new Uint8Array(32) }, /address: must be 20 bytes, got 32/],
        ["getState", { key: new Uint8Array(0) }, /key: must be 1 to 1024 bytes/],
        ["getState", { key: new Uint8Array(2000) }, /key: must be 1 to 1024 bytes, got 2000/],
        ["submitTxAndWait", { tx: signedTx(newKey()), timeoutMs: 10_000_000 }, /timeout_ms: must be at most/],
      ];
      for (const [method, req, msg] of cases) {
        const err = await callError(client, method, req);
        assert.equal(code(err), "INVALID_ARGUMENT", method);
        assert.match(err.details, msg);
      }
    }));

  it("answers NOT_FOUND for unknown hashes, heights and epochs", () =>
    withServer(async ({ client }) => {
      const h = new Uint8Array(32).fill(3);
      for (const [method, req] of [
        ["getTx", { txHash: h }],
        ["getReceipt", { txHash: h }],
        ["getBlock", { by: { case: "height", value: 99n } }],
        ["getBlock", { by: { case: "digest", value: h } }],
        ["getValidators", { epoch: 7n }],
      ] as const) {
        assert.equal(code(await callError(client, method, req)), "NOT_FOUND", method);
      }
    }));

  it("answers DEADLINE_EXCEEDED when a wait times out", () =>
    withServer(async ({ client }) => {
      const err = await callError(client, "submitTxAndWait", { tx: signedTx(newKey()), timeoutMs: 50 });
      assert.equal(code(err), "DEADLINE_EXCEEDED");
    }));

  it("ends a commit wait when the client cancels its call, and frees the call's slot", () =>
    withServer(
      async ({ node, client }) => {
        const pending = client.submitTxAndWait(
          request("submitTxAndWait", { tx: signedTx(newKey()), timeoutMs: 60_000 }),
          { deadline: Date.now() + 60_000 },
          () => {},
        ) as grpc.ClientUnaryCall;
        await eventually(() => node.pendingCommitWaits === 1, 30_000);
        pending.cancel();
        // The server-side wait is aborted (not left to its 60 s timeout) and the slot is free.
        await eventually(() => node.pendingCommitWaits === 0, 30_000);
        await eventually(async () => {
          try {
            await call(client, "getStatus", {});
            return true;
          } catch {
            return false;
          }
        }, 30_000);
      },
      { maxInFlightPerConnection: 1 },
    ));

  it("answers UNAVAILABLE to a wait cut short by stop()", async () => {
    const node = new FakeNode();
    const server = new ApiServer({ address: "127.0.0.1:0" }, { backend: node, log: silentLogger() });
    await server.start();
    const client = apiClient(server.port);
    try {
      const waiting = callError(client, "submitTxAndWait", { tx: signedTx(newKey()), timeoutMs: 60_000 });
      await eventually(() => node.pendingCommitWaits === 1, 30_000);
      await server.stop();
      const err = await waiting;
      assert.equal(code(err), "UNAVAILABLE");
      assert.match(err.details, /shutting down/);
      assert.equal(node.pendingCommitWaits, 0);
    } finally {
      client.close();
      await server.stop();
    }
  });

  it("answers UNAVAILABLE while the node is syncing", () =>
    withServer(async ({ node, client }) => {
      node.failWith = new ParabftError("SYNCING", {}, "node is catching up");
      const err = await callError(client, "getAccount", { address: new Uint8Array(20) });
      assert.equal(code(err), "UNAVAILABLE");
      assert.match(err.details, /catching up/);
    }));

  it("hides unexpected errors behind INTERNAL", () =>
    withServer(async ({ node, client }) => {
      node.failWith = new Error("secret stack detail");
      const err = await callError(client, "getStatus", {});
      assert.equal(code(err), "INTERNAL");
      assert.doesNotMatch(err.details, /secret/);
    }));

  it("limits calls in flight per connection with RESOURCE_EXHAUSTED", () =>
    withServer(
      async ({ node, client }) => {
        const waiting = call<SubmitTxAndWaitResponse>(client, "submitTxAndWait", {
          tx: signedTx(newKey()),
          timeoutMs: 10_000,
        });
        // The first call holds the connection's only slot while it waits for the commit.
        await eventually(() => node.mempool.size === 1);
        const second = await callError(client, "getStatus", {});
        assert.equal(code(second), "RESOURCE_EXHAUSTED");
        assert.match(second.details, /in flight/);
        node.commitBlock();
        assert.equal((await waiting).height, 1n);
        // The slot is released afterwards.
        await call(client, "getStatus", {});
      },
      { maxInFlightPerConnection: 1 },
    ));

  it("refuses requests over max_receive_message_length with RESOURCE_EXHAUSTED", () =>
    withServer(
      async ({ client, node }) => {
        const err = await callError(client, "submitTx", { tx: signedTx(newKey(), { padding: 4000 }) });
        assert.equal(code(err), "RESOURCE_EXHAUSTED");
        assert.equal(node.mempool.size, 0);
        await call(client, "submitTx", { tx: signedTx(newKey()) });
      },
      { maxMessageBytes: 2048 },
    ));

  it("fails to start with a clear error when the port is taken", () =>
    withServer(async ({ server }) => {
      const second = new ApiServer(
        { address: `127.0.0.1:${server.port}`, reflection: false },
        { backend: new FakeNode(), log: silentLogger() },
      );
      try {
        await assert.rejects(second.start(), /cannot listen on 127\.0\.0\.1:\d+/);
      } finally {
        await second.stop();
      }
    }));

  it("uses one table for every code", () => {
    assert.equal(statusForCode("MALFORMED"), grpc.status.INVALID_ARGUMENT);
    assert.equal(statusForCode("MEMPOOL_FULL"), grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(statusForCode("TIMEOUT"), grpc.status.DEADLINE_EXCEEDED);
    assert.equal(statusForCode("HALTED"), grpc.status.UNAVAILABLE);
    assert.equal(statusForCode("SOMETHING_NEW"), grpc.status.INTERNAL);
  });
});

describe("api: health and reflection", () => {
  it("reports NOT_SERVING until the node is ready, then SERVING", () =>
    withServer(async ({ node, server }) => {
      const health = healthClient(server.port);
      try {
        const check = (service: string) =>
          new Promise<string>((resolve, reject) =>
            health.check({ service }, (e: Error | null, r: { status: string }) =>
              e ? reject(e) : resolve(r.status),
            ),
          );
        assert.equal(await check(""), "NOT_SERVING");
        assert.equal(await check("parabft.v1.ApiService"), "NOT_SERVING");
        node.setReady(true);
        assert.equal(await check(""), "SERVING");
        assert.equal(await check("parabft.v1.ApiService"), "SERVING");
        node.setReady(false);
        assert.equal(await check(""), "NOT_SERVING");
      } finally {
        health.close();
      }
    }));

  it("lists ApiService through server reflection and serves its file descriptor", () =>
    withServer(
      async ({ server }) => {
        const refl = reflectionClient(server.port);
        try {
          const ask = (req: object) =>
            new Promise<Record<string, unknown>>((resolve, reject) => {
              const stream = refl.ServerReflectionInfo();
              stream.on("data", (msg: Record<string, unknown>) => {
                resolve(msg);
                stream.end();
              });
              stream.on("error", reject);
              stream.write(req);
            });
          const list = await ask({ list_services: "*" });
          const names = (list.list_services_response as { service: { name: string }[] }).service.map(
            (s) => s.name,
          );
          assert.ok(names.includes("parabft.v1.ApiService"), names.join(","));
          assert.ok(names.includes("grpc.health.v1.Health"), names.join(","));
          const file = await ask({ file_containing_symbol: "parabft.v1.ApiService" });
          const fds = (file.file_descriptor_response as { file_descriptor_proto: Buffer[] })
            .file_descriptor_proto;
          assert.ok(fds.length > 0);
          assert.ok(fds.some((b) => b.includes(Buffer.from("SubmitTxAndWait"))));
        } finally {
          refl.close();
        }
      },
      { reflection: true },
    ));
});

describe("api: proto files for reflection", () => {
  it("finds proto/ from the cwd or an explicit directory, and names the places it looked", () => {
    assert.ok(findProtoDir().endsWith("proto"));
    assert.equal(findProtoDir(path.resolve("proto")), path.resolve("proto"));
    assert.throws(
      () => findProtoDir("/nonexistent/protos"),
      /cannot find parabft\/v1\/api.proto.*nonexistent/,
    );
  });
});

describe("api: StreamBlocks", () => {
  it("replays stored blocks, follows new ones in order, and stops on cancel", () =>
    withServer(async ({ node, client }) => {
      const key = newKey();
      for (let n = 0n; n < 3n; n++) {
        await node.mempool.add(signedTx(key, { nonce: n }), "api");
        node.commitBlock();
      }
      const heights: bigint[] = [];
      const stream = client.streamBlocks(request("streamBlocks", { fromHeight: 2n }));
      let ended: grpc.ServiceError | null = null;
      const done = new Promise<void>((resolve) => {
        stream.on("error", (e: grpc.ServiceError) => {
          ended = e;
          resolve();
        });
        stream.on("end", () => resolve());
      });
      stream.on("data", (b: GetBlockResponse) => heights.push(b.height));
      await eventually(() => heights.length === 2);
      assert.equal(node.subscribers, 1);
      node.commitBlock();
      node.commitBlock();
      await eventually(() => heights.length === 4);
      assert.deepEqual(heights, [2n, 3n, 4n, 5n]);
      stream.cancel();
      await done;
      assert.equal(code(ended!), "CANCELLED");
      await eventually(() => node.subscribers === 0);
    }));

  it("with executed set carries the executed height on blocks and as updates; without, never", () =>
    withServer(async ({ node, client }) => {
      node.commitTxs([]);
      node.holdExecution();
      const got: GetBlockResponse[] = [];
      const plain: GetBlockResponse[] = [];
      const stream = client.streamBlocks(request("streamBlocks", { executed: true }));
      const old = client.streamBlocks(request("streamBlocks", {}));
      stream.on("data", (b: GetBlockResponse) => got.push(b));
      old.on("data", (b: GetBlockResponse) => plain.push(b));
      stream.on("error", () => {});
      old.on("error", () => {});
      try {
        // Opened with no block due: an update of the executed height at once.
        await eventually(() => got.length === 1);
        assert.deepEqual([got[0]!.height, got[0]!.executedHeight, got[0]!.block], [0n, 1n, undefined]);
        await eventually(() => node.subscribers === 2 && node.executedSubscribers === 1);
        node.commitTxs([]);
        await eventually(() => got.length === 2 && plain.length === 1);
        assert.deepEqual([got[1]!.height, got[1]!.executedHeight], [2n, 1n], "block 2, executed still 1");
        node.executeTo(2n);
        await eventually(() => got.length === 3);
        assert.deepEqual([got[2]!.height, got[2]!.executedHeight], [0n, 2n], "the update for height 2");
        node.commitTxs([]);
        node.commitTxs([]);
        node.executeTo(4n);
        await eventually(() => got[got.length - 1]!.executedHeight === 4n && plain.length === 3);
        const tail = got.slice(3);
        assert.deepEqual(
          tail.map((b) => b.height),
          tail[1]!.executedHeight === 4n ? [3n, 4n] : [3n, 4n, 0n],
          "blocks in order, then an update only if the blocks carried less than 4",
        );
        // A stream that did not ask: the messages older nodes send, no executed height at all.
        assert.deepEqual(
          plain.map((b) => [b.height, b.executedHeight]),
          [
            [2n, undefined],
            [3n, undefined],
            [4n, undefined],
          ],
        );
      } finally {
        stream.cancel();
        old.cancel();
      }
      await eventually(() => node.subscribers === 0 && node.executedSubscribers === 0);
    }));

  it("from_height 0 follows only new blocks; a server stop ends the stream", async () => {
    const node = new FakeNode();
    node.commitTxs([]);
    const server = new ApiServer({ address: "127.0.0.1:0" }, { backend: node, log: silentLogger() });
    await server.start();
    const client = apiClient(server.port);
    try {
      const heights: bigint[] = [];
      const stream = client.streamBlocks(request("streamBlocks", {}));
      const done = new Promise<void>((resolve) => {
        stream.on("error", () => resolve());
        stream.on("end", () => resolve());
      });
      stream.on("data", (b: GetBlockResponse) => heights.push(b.height));
      await eventually(() => node.subscribers === 1);
      node.commitTxs([]);
      await eventually(() => heights.length === 1);
      assert.deepEqual(heights, [2n]);
      await server.stop();
      await done;
      assert.equal(node.subscribers, 0);
    } finally {
      client.close();
      await server.stop();
    }
  });
});
