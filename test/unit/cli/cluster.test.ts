// LocalCluster process management, against a stand-in node (fixtures/fakeNode.ts) that serves
// only the gRPC health service: spawning, health waits, crash/pause/restart, graceful stop with
// SIGKILL escalation, and that no child outlives its parent.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkHealth, LocalCluster, newHealthClient, tempDir } from "../../cluster/harness.js";

const FAKE = fileURLToPath(new URL("./fixtures/fakeNode.js", import.meta.url));
const ORPHAN = fileURLToPath(new URL("./fixtures/orphanParent.js", import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // An exited child not yet reaped by its new parent is a zombie: it is gone for our purposes.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let root: string;
before(async () => {
  root = await tempDir("parabft-cluster-unit-");
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("LocalCluster", () => {
  it("starts nodes, survives a crash and a restart, wipes only data, and stops gracefully", async () => {
    const dir = path.join(root, "a");
    const unexpected: number[] = [];
    const cluster = await LocalCluster.create(3, dir, {
      entry: FAKE,
      accounts: 1,
      preset: "minimal",
      onUnexpectedExit: (i) => unexpected.push(i),
    });
    try {
      await cluster.start({ timeoutMs: 20_000 });
      const m = JSON.parse(await readFile(path.join(dir, "cluster.json"), "utf8")) as {
        nodes: { index: number; pid: number; api: string; home: string }[];
      };
      assert.equal(m.nodes.length, 3);
      assert.deepEqual(
        m.nodes.map((n) => n.api),
        cluster.apiAddresses,
      );
      for (const n of m.nodes) assert.ok(n.pid > 0 && alive(n.pid), `node ${n.index} runs`);

      const crashed = m.nodes[1]!.pid;
      await cluster.kill(1); // SIGKILL
      assert.equal(cluster.isRunning(1), false);
      assert.equal(cluster.node(1).pid, null);
      assert.equal(alive(crashed), false);

      // Data can be wiped only while the node is down, and only the data directory goes.
      await assert.rejects(cluster.wipeData(0), /running/);
      const home1 = cluster.node(1).home;
      await mkdir(path.join(home1, "data"), { recursive: true });
      await writeFile(path.join(home1, "data", "blocks"), "x");
      await cluster.wipeData(1);
      await assert.rejects(stat(path.join(home1, "data")));
      await stat(path.join(home1, "keys", "validator.json"));

      await cluster.restart(1, { timeoutMs: 20_000 });
      const restarted = cluster.node(1).pid!;
      assert.notEqual(restarted, crashed);
      assert.ok(alive(restarted));
      const updated = JSON.parse(await readFile(path.join(dir, "cluster.json"), "utf8")) as typeof m;
      assert.equal(updated.nodes[1]!.pid, restarted, "cluster.json follows restarts");

      // A node dying on its own (not through the harness) is reported.
      process.kill(cluster.node(0).pid!, "SIGKILL");
      await waitUntil("node 0 is seen as exited", () => !cluster.isRunning(0));
      assert.deepEqual(unexpected, [0]);
      await cluster.restart(0, { timeoutMs: 20_000 });

      await cluster.pause(2);
      await cluster.resume(2);
      await cluster.waitHealthy(2, 60_000); // returns at the first SERVING; generous for a loaded box
    } finally {
      await cluster.stop();
    }
    for (let i = 0; i < 3; i++) assert.equal(cluster.isRunning(i), false);
    assert.deepEqual(unexpected, [0], "kill, restart and stop are not reported as unexpected");
    // Graceful: every node that was running at stop() got SIGTERM (and exited on it).
    for (let i = 0; i < 3; i++) {
      const events = await readFile(path.join(dir, `node${i}`, "fake-events.log"), "utf8");
      assert.match(events, /SIGTERM/);
    }
  });

  it("reopens a stopped cluster's directory with the same nodes", async () => {
    const dir = path.join(root, "reopen");
    const first = await LocalCluster.create(2, dir, { entry: FAKE, accounts: 0 });
    try {
      await first.start({ timeoutMs: 20_000 });
    } finally {
      await first.stop();
    }
    const again = await LocalCluster.open(dir, { entry: FAKE });
    try {
      assert.deepEqual(again.apiAddresses, first.apiAddresses);
      assert.equal(again.chainId, first.chainId);
      await again.start({ timeoutMs: 20_000 });
      assert.ok(again.isRunning(0) && again.isRunning(1));
    } finally {
      await again.stop();
    }
  });

  it("escalates to SIGKILL when a node ignores SIGTERM", async () => {
    const cluster = await LocalCluster.create(1, path.join(root, "b"), {
      entry: FAKE,
      accounts: 0,
      env: { FAKE_NODE_MODE: "ignore-term" },
      stopTimeoutMs: 300,
    });
    let pid = 0;
    try {
      await cluster.start({ timeoutMs: 20_000 });
      pid = cluster.node(0).pid!;
    } finally {
      await cluster.stop();
    }
    assert.ok(pid > 0);
    assert.equal(alive(pid), false);
  });

  it("fails start() with the node's log when a node exits during start-up", async () => {
    const cluster = await LocalCluster.create(2, path.join(root, "c"), {
      entry: FAKE,
      accounts: 0,
      env: { FAKE_NODE_MODE: "crash" },
    });
    try {
      await assert.rejects(
        cluster.start({ timeoutMs: 20_000 }),
        /exited \(code 3.*\)[\s\S]*crashing on purpose/,
      );
    } finally {
      await cluster.stop();
    }
  });

  it("fails waitHealthy after its timeout when a node never reports SERVING", async () => {
    const cluster = await LocalCluster.create(1, path.join(root, "d"), {
      entry: FAKE,
      accounts: 0,
      env: { FAKE_NODE_MODE: "not-serving" },
    });
    try {
      // Wait (generously: a loaded box can take seconds to start a process) until the node
      // answers at all; only then is a short health timeout about NOT_SERVING, not about startup.
      await cluster.startNode(0);
      const health = newHealthClient(cluster.node(0).api);
      try {
        const deadline = Date.now() + 60_000;
        while ((await checkHealth(health, 2_000)) !== "NOT_SERVING") {
          assert.ok(Date.now() < deadline, "the fake node never answered health checks");
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        health.close();
      }
      // waitHealthy opens its own connection: on a loaded box its first answer alone took longer
      // than a 1.5 s timeout ("last: no answer yet"), so give it room to hear NOT_SERVING.
      await assert.rejects(cluster.waitHealthy(0, 8_000), /not healthy after 8000 ms \(last: NOT_SERVING\)/);
    } finally {
      await cluster.stop();
    }
  });

  it("reports the node's last answer, not a timed-out check, when the node goes silent", async () => {
    const cluster = await LocalCluster.create(1, path.join(root, "e"), {
      entry: FAKE,
      accounts: 0,
      env: { FAKE_NODE_MODE: "goes-silent" },
    });
    try {
      await cluster.startNode(0);
      // The first two checks hear NOT_SERVING; every later one runs out of time. The error must
      // name the answer the node gave, however long the box takes to start it.
      await assert.rejects(
        cluster.waitHealthy(0, 15_000),
        /not healthy after 15000 ms \(last: NOT_SERVING\)/,
      );
      const events = readFileSync(path.join(cluster.node(0).home, "fake-events.log"), "utf8");
      assert.match(events, /check 3 left unanswered/, "waitHealthy never reached a check that timed out");
    } finally {
      await cluster.stop();
    }
  });

  for (const mode of ["exit", "signal"] as const) {
    it(`kills every child when its parent ${mode === "exit" ? "exits without stop()" : "gets SIGTERM"}`, async () => {
      const parent = spawn(process.execPath, [ORPHAN, path.join(root, `orphan-${mode}`), FAKE], {
        env: { ...process.env, ORPHAN_MODE: mode },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let pids: number[] = [];
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let buf = "";
          parent.stdout!.on("data", (d: Buffer) => {
            buf += d.toString();
            if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
          });
          parent.once("exit", (code) => reject(new Error(`parent exited early with ${code}`)));
        });
        pids = JSON.parse(line) as number[];
        assert.equal(pids.length, 2);
        // In exit mode the parent leaves right after printing: its hook may already have killed them.
        if (mode === "signal") for (const p of pids) assert.ok(alive(p));
        if (mode === "signal") parent.kill("SIGTERM");
        await waitUntil("the parent exits", () => parent.exitCode !== null || parent.signalCode !== null);
        await waitUntil("every child is gone", () => pids.every((p) => !alive(p)));
      } finally {
        parent.kill("SIGKILL");
        for (const p of pids) {
          try {
            process.kill(p, "SIGKILL");
          } catch {
            // already gone: the expected case
          }
        }
      }
    });
  }
});
