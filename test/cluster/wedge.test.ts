// Issue 9: consensus that cannot be wedged. All four validators are SIGKILLed right after each
// made its COMMIT record durable (the block is prepared, its body durable with the PREPARE) and
// before any COMMIT leaves, so no validator has the certificate. After a restart the cluster must
// continue, and that height must hold the same block on every validator: the prepared block
// (committed after a view change re-proposes it from the persisted prepared certificates) or, if
// the cluster abandoned it, the same null block everywhere.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { ParabftClient } from "../../src/client/node.js";
import { toHex } from "../../src/types/bytes.js";
import { LocalCluster, stopAndRemove, tempDir } from "./harness.js";
import {
  checkChain,
  clientsFor,
  closeAll,
  clusterReport,
  signerOf,
  TransferLoad,
  until,
  waitAllAtHeight,
} from "./lib.js";

const CRASH_HEIGHT = 3n;

describe("a whole cluster killed between prepare and commit is not wedged", { timeout: 300_000 }, () => {
  let cluster: LocalCluster;
  let clients: ParabftClient[];
  let marker: string;

  before(async () => {
    const dir = await tempDir();
    marker = path.join(dir, "crashed-after-commit-record");
    cluster = await LocalCluster.create(4, dir, {
      preset: "minimal",
      accounts: 4,
      env: {
        PARABFT_TEST_CRASH_AFTER_PERSIST: `*:commit:${marker}:${CRASH_HEIGHT}`,
        PARABFT_LOG_LEVEL: "debug",
      },
      onUnexpectedExit: () => {},
    });
    await cluster.start();
    clients = clientsFor(cluster);
  });

  after(async () => {
    closeAll(clients ?? []);
    // Kills by pid whatever is still running (SIGTERM, then SIGKILL).
    await stopAndRemove(cluster);
  });

  it("SIGKILL all four right after the COMMIT record at one height; restart; the height resolves the same everywhere and commits continue", async () => {
    const senders = await Promise.all(cluster.accounts.slice(0, 3).map((a) => signerOf(a.keyFile)));
    const recipient = await signerOf(cluster.accounts[3]!.keyFile);
    const load = new TransferLoad(cluster, clients, senders, recipient.address);
    load.start();
    try {
      // Every validator dies right after persisting its first COMMIT record at or above
      // CRASH_HEIGHT, before sending it, so nobody can commit that height. The first one to die
      // marks the moment: the test SIGKILLs the others at once (by pid), prepared or not.
      await until(
        "a validator to die right after persisting a COMMIT",
        async () => [0, 1, 2, 3].some((i) => existsSync(`${marker}.${i}`) && !cluster.isRunning(i)),
        90_000,
      );
      for (const i of [0, 1, 2, 3]) {
        // It may die by itself meanwhile (its own COMMIT record): then it is not running any more.
        if (cluster.isRunning(i)) await cluster.kill(i, "SIGKILL").catch(() => {});
      }
      const died = [0, 1, 2, 3].filter((i) => existsSync(`${marker}.${i}`));
      const heights = died.map((i) => BigInt(readFileSync(`${marker}.${i}`, "utf8").trim().split(":")[2]!));
      // The hook fires once per validator: mark the ones the test killed, so none dies again.
      for (const i of [0, 1, 2, 3])
        if (!existsSync(`${marker}.${i}`)) writeFileSync(`${marker}.${i}`, "killed\n");
      console.log(
        `# wedge: validators ${died.join(",")} died after persisting COMMITs at heights ${heights.join(", ")}; the rest were SIGKILLed`,
      );
      const top = heights.reduce((m, h) => (h > m ? h : m), 0n);
      await cluster.start({ timeoutMs: 120_000 });
      const acked = load.acks.length;
      await until(
        "10 more commits after the whole-cluster restart",
        async () => load.acks.length >= acked + 10,
        120_000,
      ).catch(async (err: Error) => {
        err.message += `\nlast client errors: ${load.errors.slice(-3).join(" | ")}\n${await clusterReport(cluster, clients)}`;
        throw err;
      });
      await load.stop();
      const last = load.acks.reduce((m, a) => (a.height > m ? a.height : m), top);
      await waitAllAtHeight(clients, [0, 1, 2, 3], last, 90_000);
      // Every height, including the ones that were prepared but uncommitted at the kill, holds the
      // same block on all four validators (checkChain compares every digest).
      await checkChain(clients, [0, 1, 2, 3], load.acks);
      for (const h of new Set(heights)) {
        const blocks = await Promise.all(clients.map((c) => c.getBlock({ height: h })));
        const digests = blocks.map((b) => (b ? toHex(b.digest) : "missing"));
        assert.ok(
          digests.every((d) => d === digests[0] && d !== "missing"),
          `height ${h}: ${digests.join(" ")}`,
        );
        console.log(
          `# wedge: height ${h} resolved to ${blocks[0]!.block ? "the prepared block" : "a null block"} everywhere`,
        );
      }
    } finally {
      await load.stop();
    }
  });
});
