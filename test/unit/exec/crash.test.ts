// Crash test (DESIGN §5): a child executing and persisting into RocksDB is SIGKILLed in the
// middle of persisting; after restart, recovery from the stored blocks must give exactly the
// state of a clean re-execution.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openExecution } from "../../../src/exec/recovery.js";
import { initFromResult, ReferenceExecutor } from "../../../src/exec/reference.js";
import { ChainDb, emptyCommitCertificate } from "../../../src/storage/index.js";
import { blockDigest } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";
import { CRASH_BLOCKS, crashBlocks, genesis } from "./fixtures/crashWorkload.js";
import { toProtoBlock, waitFor } from "./helpers.js";

describe("crash during persistence", () => {
  it("recovers to the same state as a clean re-execution after SIGKILL mid-persist", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parabft-exec-crash-"));
    let child: ChildProcess | null = null;
    try {
      const blocks = crashBlocks();
      const db0 = await ChainDb.open(dir);
      for (const b of blocks) {
        const block = toProtoBlock(b);
        const digest = blockDigest(block.header!);
        await db0.writeCommitBatch({
          height: b.height,
          digest,
          block,
          certificate: emptyCommitCertificate(b.height, 0n, digest),
          chainHash: new Uint8Array(32),
          blockTimeMs: b.timestampMs,
        });
      }
      await db0.close();

      let out = "";
      const script = fileURLToPath(new URL("./fixtures/crashChild.js", import.meta.url));
      child = spawn(process.execPath, [script, dir], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        // Kill the moment the third execution batch starts being written.
        if (out.includes("persisting 3\n") && child?.pid) process.kill(child.pid, "SIGKILL");
      });
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | string | null>((r) =>
        child!.on("exit", (code, sig) => r(sig ?? code)),
      );
      await waitFor(() => out.includes("persisting 3\n") || out.includes("done"), 120_000, "child progress");
      assert.equal(await exited, "SIGKILL", `child must be killed, not finish (stderr: ${stderr})`);
      child = null;

      const ref = new ReferenceExecutor(initFromResult(genesis));
      const roots = new Map<bigint, string>([[0n, toHex(genesis.stateRoot)]]);
      for (const b of blocks) roots.set(b.height, toHex((await ref.executeBlock(b)).stateRoot));

      const db = await ChainDb.open(dir);
      try {
        const executed = await db.getExecutedHeight();
        assert.ok(executed >= 2n && executed <= 3n, `executed height after the kill: ${executed}`);
        // The execution batch is all or nothing: the stored root is the root at that height.
        assert.equal(toHex((await db.getStateRoot())!), roots.get(executed));

        const { executor, recovered } = await openExecution(db, db, genesis, { workers: 2 });
        try {
          assert.deepEqual(recovered, {
            from: executed + 1n,
            to: BigInt(CRASH_BLOCKS),
            blocks: CRASH_BLOCKS - Number(executed),
          });
          assert.equal(toHex(executor.stateRoot), roots.get(BigInt(CRASH_BLOCKS)));
          assert.equal(toHex((await db.getStateRoot())!), roots.get(BigInt(CRASH_BLOCKS)));
          const stored: [string, string][] = [];
          for await (const [k, v] of db.iterateState()) stored.push([toHex(k), toHex(v)]);
          const expected = ref.entries().map((e) => [toHex(e.key), toHex(e.value!)] as [string, string]);
          assert.equal(stored.length, expected.length);
          assert.deepEqual(stored, expected);
        } finally {
          await executor.close();
        }
      } finally {
        await db.close();
      }
    } finally {
      if (child?.pid && child.exitCode === null && child.signalCode === null)
        process.kill(child.pid, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
