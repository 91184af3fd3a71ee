// A short cluster benchmark against a real local cluster: the report carries every field the
// docs promise, and every transaction the benchmark counted as committed is in the chain. Also
// drives `parabft tx` and `parabft query` (the SDK through the CLI) against the same cluster.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { runClusterBench } from "../../bench/cluster.js";
import { tempDir, withCluster } from "./harness.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("cluster benchmark and client commands against a 4-validator cluster", { timeout: 240_000 }, () => {
  it("reports latency, throughput and the ceiling, and every committed tx is in the chain", async () => {
    await withCluster(
      4,
      async (cluster) => {
        const out = await tempDir("parabft-bench-out-");
        try {
          const report = await runClusterBench({
            api: cluster.apiAddresses,
            keysDir: path.join(cluster.dir, "accounts"),
            durationS: 3,
            rate: 40,
            senders: 6,
            connections: 4,
            drainTimeoutS: 20,
            outDir: out,
            name: "test",
            progress: false,
          });
          const r = report.runs[0]!;
          assert.equal(report.kind, "parabft-cluster-bench");
          assert.equal(report.setup.validators, 4);
          assert.equal(report.setup.chainId, cluster.chainId);
          assert.ok(report.verifyCeiling.singleThreadPerSec > 0);
          assert.ok(report.verifyCeiling.allCoresPerSec >= report.verifyCeiling.singleThreadPerSec * 0.5);
          assert.equal(
            report.verifyCeiling.clusterCeilingPerSec,
            Math.round(report.verifyCeiling.allCoresPerSec / 4),
          );
          assert.equal(r.scheduled, 120);
          assert.ok(
            r.committed > 0,
            `committed ${r.committed}; failures ${JSON.stringify(r.submitFailures)}`,
          );
          assert.equal(
            r.committed + r.uncommitted + Object.values(r.submitFailures).reduce((a, b) => a + b, 0),
            120,
          );
          for (const k of ["p50", "p90", "p99", "max"] as const)
            assert.ok(r.finalityMs[k] > 0, `finality ${k}`);
          assert.ok(r.finalityMs.p50 <= r.finalityMs.p99 && r.finalityMs.p99 <= r.finalityMs.max);
          assert.ok(r.executedMs.count > 0);
          assert.ok(r.executedMs.p50 >= r.finalityMs.p50 * 0.5);
          assert.ok(r.achievedTps > 0);
          assert.ok(r.ratioToClusterCeiling > 0 && r.ratioToClusterCeiling < 1);
          assert.ok(r.timeline.length >= 3);
          assert.equal(
            r.timeline.reduce((a, p) => a + p.sent, 0),
            120,
          );
          // The chain check: everything counted as committed was found by GetTx at its height.
          const v = report.verification;
          assert.equal(v.checked, r.committed);
          assert.equal(v.inChain, r.committed);
          assert.equal(v.missing, 0);
          assert.equal(v.heightMismatch, 0);
          assert.ok(v.receiptsChecked > 0);
          // Each sender's nonces are consecutive and nothing fails here: any BAD_NONCE means a
          // nonce was stranded in flight while later ones were proposed past it.
          assert.deepEqual(
            Object.keys(v.receiptStatus),
            ["OK"],
            `receipt statuses ${JSON.stringify(v.receiptStatus)} ${JSON.stringify(v.receiptErrors)}`,
          );
          assert.ok(v.certificatesChecked > 0);
          assert.equal(v.certificatesValid, v.certificatesChecked, v.certificateFailures.join("; "));
          const json = JSON.parse(await readFile(report.files!.json, "utf8"));
          assert.equal(json.runs[0].committed, r.committed);
          assert.match(await readFile(report.files!.svg!, "utf8"), /^<svg/);
          assert.match(await readFile(report.files!.table, "utf8"), /chain check/);

          // Closed loop: 2 clients, each waiting for its commit; the per-stage table from metrics.
          const closed = await runClusterBench({
            api: cluster.apiAddresses,
            keysDir: path.join(cluster.dir, "accounts"),
            metrics: Array.from({ length: 4 }, (_, i) => cluster.node(i).metrics),
            durationS: 3,
            rate: 1,
            closedLoop: 2,
            warmupS: 0,
            senders: 2,
            connections: 2,
            drainTimeoutS: 10,
            outDir: null,
            progress: false,
          });
          const c = closed.runs[0]!;
          assert.equal(c.mode, "closed");
          assert.equal(c.clients, 2);
          assert.ok(c.committed > 0, `closed loop committed ${c.committed}`);
          assert.equal(c.finalityMs.count, c.committed);
          assert.ok(c.finalityMs.p50 > 0 && c.finalityMs.p50 <= c.finalityMs.max);
          assert.ok(c.timeline.some((p) => (p.finalityP99Ms ?? 0) > 0));
          assert.equal(closed.verification.inChain, c.committed);
          assert.ok(c.stages !== undefined && c.stages.heights > 0, JSON.stringify(c.stages));
          assert.ok((c.stages.persistMs ?? 0) > 0 && (c.stages.cpuPerTxMs ?? 0) > 0);

          // parabft tx / query through the compiled CLI, with an account the benchmark did not use.
          const key = cluster.accounts.at(-1)!.keyFile;
          const api = cluster.apiAddresses[1]!;
          const to = cluster.accounts[0]!.address;
          const sent = await cli([
            "tx",
            "transfer",
            "--api",
            api,
            "--key",
            key,
            "--to",
            to,
            "--amount",
            "7",
            "--wait",
            "--json",
          ]);
          assert.equal(sent.code, 0, sent.stderr);
          const tx = JSON.parse(sent.stdout);
          assert.equal(tx.receipt.status, "OK");
          const q = await cli([
            "query",
            "tx",
            "--api",
            cluster.apiAddresses[2]!,
            "--hash",
            tx.txHash,
            "--json",
          ]);
          assert.equal(q.code, 0, q.stderr);
          assert.equal(JSON.parse(q.stdout).height, tx.height);
          const b = await cli(["query", "block", "--api", api, "--height", String(tx.height), "--json"]);
          assert.equal(b.code, 0, b.stderr);
          assert.match(JSON.parse(b.stdout).certificate, /^valid/);
          const bad = await cli([
            "tx",
            "transfer",
            "--api",
            api,
            "--key",
            key,
            "--to",
            "xyz",
            "--amount",
            "1",
          ]);
          assert.equal(bad.code, 2);
          assert.match(bad.stderr, /--to/);
        } finally {
          await rm(out, { recursive: true, force: true });
        }
      },
      { accounts: 8 },
    );
  });
});
