// Four validators as real processes on 127.0.0.1: commits, the API's error contract, and a client
// built from proto/ at run time (not from the generated code), which pins the wire format.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { kvPutTx, type ParabftClient, RpcError, signTx, toHex, transferTx } from "../../src/client/node.js";
import { FEE_COLLECTOR_ADDRESS } from "../../src/exec/fees.js";
import { configDefaults } from "../../src/node/config.js";
import { txSignBytes } from "../../src/types/signing.js";
import { accountKey } from "../../src/types/stateKeys.js";
import { LocalCluster, stopAndRemove, tempDir } from "./harness.js";
import {
  checkChain,
  checkStateRoots,
  clientsFor,
  closeAll,
  metricValue,
  percentile,
  signerOf,
  TransferLoad,
  totalBalance,
  until,
  waitAllAtHeight,
} from "./lib.js";

const PROTO_DIR = path.resolve(process.cwd(), "proto");

describe("a 4-validator cluster on loopback", { timeout: 240_000 }, () => {
  let cluster: LocalCluster;
  let clients: ParabftClient[];

  before(async () => {
    cluster = await LocalCluster.create(4, await tempDir(), {
      preset: "minimal",
      accounts: 6,
      nodeOverrides: {
        mempool: { ...configDefaults.mempool, maxTxs: 10_000, maxBytes: 16 * 1024 * 1024, maxPerSender: 4 },
      },
    });
    await cluster.start();
    clients = clientsFor(cluster);
  });

  after(async () => {
    closeAll(clients ?? []);
    await stopAndRemove(cluster);
  });

  it("commits transactions submitted to any node; every node holds the same chain", async () => {
    const senders = await Promise.all(cluster.accounts.slice(0, 4).map((a) => signerOf(a.keyFile)));
    const recipient = await signerOf(cluster.accounts[4]!.keyFile);
    // The fee collector too: fees move balance to it, so the total including it is conserved.
    const everyone = [...senders.map((s) => s.address), recipient.address, FEE_COLLECTOR_ADDRESS];
    const totalBefore = await totalBalance(clients[0]!, everyone);
    const load = new TransferLoad(cluster, clients, senders, recipient.address);
    load.start();
    await until("60 acknowledged transfers", async () => load.acks.length >= 60, 90_000);
    await load.stop();
    const top = load.acks.reduce((m, a) => (a.height > m ? a.height : m), 0n);
    await waitAllAtHeight(clients, [0, 1, 2, 3], top, 30_000);
    const compared = await checkChain(clients, [0, 1, 2, 3], load.acks);
    assert.ok(compared >= 1n, "no heights compared");
    await until(
      "all nodes idle at one executed height",
      async () => {
        await checkStateRoots(clients, [0, 1, 2, 3]);
        return true;
      },
      20_000,
    );
    assert.equal(await totalBalance(clients[2]!, everyone), totalBefore, "transfers changed the bank total");
    // Prometheus: heights, phases, finality, mempool and peers are exported.
    for (const i of [0, 1, 2, 3]) {
      const m = cluster.node(i).metrics;
      assert.ok(
        (await metricValue(m, "parabft_consensus_committed_height")) >= Number(compared),
        `node ${i} height`,
      );
      assert.equal(await metricValue(m, "parabft_net_connected_peers"), 3, `node ${i} peers`);
      for (const stage of ["prepare", "execute", "persist"]) {
        assert.ok(
          (await metricValue(m, "parabft_exec_stage_txs_total", { stage })) > 0,
          `node ${i} ${stage} stage`,
        );
      }
    }
    // Phases are timed from a node's own PREPARE and COMMIT. A replica that lags (a loaded box
    // starves one process) may deliver every height from the others' commit certificates without
    // signing its own COMMIT, so it times none. A height's certificate needs COMMITs from a quorum,
    // so at least 3 of the 4 nodes time both phases.
    for (const phase of ["prepared", "committed"]) {
      const counts = await Promise.all(
        [0, 1, 2, 3].map((i) =>
          metricValue(cluster.node(i).metrics, "parabft_consensus_phase_seconds_count", { phase }),
        ),
      );
      assert.ok(counts.filter((c) => c > 0).length >= 3, `${phase} timed on fewer than 3 nodes: ${counts}`);
    }
    const finalityCount = await Promise.all(
      [0, 1, 2, 3].map((i) => metricValue(cluster.node(i).metrics, "parabft_api_finality_seconds_count")),
    );
    assert.ok(
      finalityCount.reduce((a, b) => a + b, 0) >= load.acks.length,
      `finality observed ${finalityCount}`,
    );
    const lat = load.acks.map((a) => a.latencyMs);
    console.log(
      `# basic: ${load.acks.length} acks over ${compared} heights; finality p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms`,
    );
  });

  it("answers bad API input with the right status codes and readable messages", async () => {
    const sender = await signerOf(cluster.accounts[5]!.keyFile);
    const c = clients[1]!;
    const expectStatus = async (p: Promise<unknown>, status: keyof typeof grpc.status, pattern: RegExp) => {
      await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof RpcError, `expected an RpcError, got ${String(err)}`);
        assert.equal(err.detail.statusName, status, err.message);
        assert.match(err.message, pattern);
        return true;
      });
    };
    const base = { chainId: cluster.chainId, sender: sender.publicKey };

    // Malformed transaction bytes.
    await expectStatus(
      c.submitTx({ body: Uint8Array.of(0xff, 0xff, 0xff), signature: new Uint8Array(64) } as never),
      "INVALID_ARGUMENT",
      /malformed|decode/i,
    );
    // A forged signature.
    const good = signTx(transferTx({ ...base, nonce: 0n }, sender.address, 1n), sender);
    const forged = { ...good.tx, signature: new Uint8Array(64).fill(7) };
    await expectStatus(c.submitTx(forged as never), "INVALID_ARGUMENT", /signature/i);
    // Wrong chain id.
    const wrongChain = signTx(
      transferTx({ ...base, chainId: "other-chain", nonce: 0n }, sender.address, 1n),
      sender,
    );
    await expectStatus(c.submitTx(wrongChain), "INVALID_ARGUMENT", /chain/i);
    // A stale nonce: commit nonce 0, then send another transaction with nonce 0.
    await c.submitAndWait(good, { waitExecuted: true, timeoutMs: 20_000 });
    const stale = signTx(kvPutTx({ ...base, nonce: 0n }, Uint8Array.of(1), Uint8Array.of(2)), sender);
    await until(
      "account nonce 1 executed",
      async () => (await c.getAccount(sender.address)).nonce === 1n,
      10_000,
    );
    await expectStatus(c.submitTx(stale), "INVALID_ARGUMENT", /nonce/i);
    // Unknown hashes.
    await expectStatus(
      c.getReceipt(new Uint8Array(32).fill(9)).then((r) => {
        if (r === null) throw new RpcError(grpc.status.NOT_FOUND, "getReceipt", "not found");
        return r;
      }),
      "NOT_FOUND",
      /not found/i,
    );
    assert.equal(await c.getTx(new Uint8Array(32).fill(9)), null);
    await expectStatus(c.getTx(new Uint8Array(5)), "INVALID_ARGUMENT", /32|length|hash/i);
    // A full mempool: this node keeps at most 4 pending transactions per sender; gapped nonces
    // (within 16 of the pending nonce) stay pending until they expire, the fifth is refused.
    for (let k = 0; k < 4; k++) {
      await c.submitTx(signTx(transferTx({ ...base, nonce: 10n + BigInt(k) }, sender.address, 1n), sender));
    }
    await expectStatus(
      c.submitTx(signTx(transferTx({ ...base, nonce: 14n }, sender.address, 1n), sender)),
      "RESOURCE_EXHAUSTED",
      /full|capacity|sender/i,
    );
  });

  it("serves a client built from proto/ at run time with @grpc/proto-loader", async () => {
    const def = protoLoader.loadSync("parabft/v1/api.proto", {
      includeDirs: [PROTO_DIR],
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      parabft: { v1: { ApiService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client } };
    };
    const client = new pkg.parabft.v1.ApiService(
      cluster.apiAddresses[3]!,
      grpc.credentials.createInsecure(),
    ) as grpc.Client &
      Record<
        string,
        (req: unknown, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void
      >;
    const call = <T>(method: string, req: unknown) =>
      new Promise<T>((resolve, reject) =>
        client[method]!(req, (err, res) => (err ? reject(err) : resolve(res as T))),
      );
    try {
      const status = await call<{ chainId: string; state: string; committedHeight: string }>("GetStatus", {});
      assert.equal(status.chainId, cluster.chainId);
      assert.equal(status.state, "NODE_STATE_VALIDATING");

      // Encode and sign a transfer with protobufjs from the .proto text alone.
      const root = new protobuf.Root();
      root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
      root.loadSync("parabft/v1/types.proto");
      const TxBody = root.lookupType("parabft.v1.TxBody");
      const sender = await signerOf(cluster.accounts[3]!.keyFile);
      const to = (await signerOf(cluster.accounts[4]!.keyFile)).address;
      const account = await call<{ nonce: string }>("GetAccount", { address: Buffer.from(sender.address) });
      const body = TxBody.encode(
        TxBody.create({
          chainId: cluster.chainId,
          sender: sender.publicKey,
          nonce: Number(account.nonce),
          // Paid admission: gas for a transfer (GAS.base + GAS.transfer) at the minimum price.
          gasLimit: 1500,
          fee: "1",
          access: { reads: [], writes: [accountKey(sender.address), accountKey(to)] },
          call: { transfer: { to, amount: "3" } },
        }),
      ).finish();
      const signature = sender.sign(txSignBytes(body));
      const res = await call<{ txHash: Buffer; height: string; receipt: { status: string } }>(
        "SubmitTxAndWait",
        {
          tx: { body, signature },
          timeoutMs: 20_000,
          waitExecuted: true,
        },
      );
      assert.ok(BigInt(res.height) >= 1n);
      assert.equal(res.receipt.status, "TX_STATUS_OK");
      const got = await call<{ tx: { body: Buffer }; height: string }>("GetTx", { txHash: res.txHash });
      assert.equal(toHex(got.tx.body), toHex(body), "the chain stores the exact signed bytes");
      const block = await call<{ certificate: { signatures: unknown[] }; height: string }>("GetBlock", {
        height: res.height,
      });
      assert.ok(
        block.certificate.signatures.length >= 3,
        "a commit certificate carries a quorum of signatures",
      );
    } finally {
      client.close();
    }
  });
});
