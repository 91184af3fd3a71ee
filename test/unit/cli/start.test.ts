// `parabft start` and `parabft cluster` as real processes: configuration errors exit 2 before
// anything starts; a healthy node or cluster stops gracefully on a signal and exits 0.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkHealth, newHealthClient } from "../../../src/cli/cluster.js";
import { freePorts } from "../../../src/cli/ports.js";

const MAIN = fileURLToPath(new URL("../../../src/cli/main.js", import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, o, e) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout: o, stderr: e }),
    );
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitServing(api: string, timeoutMs: number): Promise<void> {
  const client = newHealthClient(api);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await checkHealth(client, 1_000)) === "SERVING") return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${api} not SERVING after ${timeoutMs} ms`);
  } finally {
    client.close();
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => reject(new Error("process did not exit in time")), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve(code ?? String(signal));
    });
  });
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "parabft-start-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("parabft start", () => {
  it("exits 2 naming the field of an invalid config, before starting anything", async () => {
    const home = path.join(dir, "bad");
    assert.equal((await run(["init", "--home", home])).code, 0);
    const file = path.join(home, "config.json");
    const cfg = JSON.parse(await readFile(file, "utf8")) as { listen: Record<string, string> };
    cfg.listen.api = "not-an-address";
    await writeFile(file, JSON.stringify(cfg));
    const r = await run(["start", "--home", home]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /listen\.api/);
    const r2 = await run(["start", "--home", path.join(dir, "missing")]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /config\.json/);
    const r3 = await run(["start"]);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /--home/);
  });

  it("runs a single-validator home until SIGTERM, then exits 0", async () => {
    const home = path.join(dir, "solo");
    const init = await run(["init", "--home", home, "--preset", "minimal"]);
    assert.equal(init.code, 0, init.stderr);
    // Free ports through env overrides: the default ports may be taken on a shared machine.
    const [p1, p2, p3] = await freePorts(3);
    const env = {
      PARABFT_API_ADDR: `127.0.0.1:${p1}`,
      PARABFT_PEER_ADDR: `127.0.0.1:${p2}`,
      PARABFT_METRICS_ADDR: `127.0.0.1:${p3}`,
    };
    const child = spawn(process.execPath, [MAIN, "start", "--home", home], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      await waitServing(env.PARABFT_API_ADDR, 60_000).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${stderr.slice(-2000)}`);
      });
      const metrics = await fetch(`http://${env.PARABFT_METRICS_ADDR}/metrics`);
      assert.equal(metrics.status, 200);
      child.kill("SIGTERM");
      assert.equal(await exited(child, 30_000), 0, stderr.slice(-2000));
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("parabft cluster", () => {
  it("starts N healthy validators, writes cluster.json, and stops them all on SIGINT", async () => {
    const cdir = path.join(dir, "cluster");
    const child = spawn(
      process.execPath,
      [
        MAIN,
        "cluster",
        "--validators",
        "4",
        "--dir",
        cdir,
        "--preset",
        "minimal",
        "--json",
        "--accounts",
        "1",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let pids: number[] = [];
    try {
      const deadline = Date.now() + 90_000;
      while (!stdout.trimEnd().endsWith("}")) {
        if (child.exitCode !== null) assert.fail(`cluster exited ${child.exitCode}: ${stderr}`);
        if (Date.now() > deadline) assert.fail(`cluster not up in time: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const printed = JSON.parse(stdout) as { nodes: { pid: number; api: string; home: string }[] };
      const onDisk = JSON.parse(await readFile(path.join(cdir, "cluster.json"), "utf8")) as typeof printed;
      assert.deepEqual(onDisk, printed);
      assert.equal(printed.nodes.length, 4);
      pids = printed.nodes.map((n) => n.pid);
      for (const n of printed.nodes) {
        assert.ok(alive(n.pid));
        await waitServing(n.api, 5_000);
      }
      child.kill("SIGINT");
      assert.equal(await exited(child, 60_000), 0, stderr);
      for (const p of pids) assert.equal(alive(p), false, `node pid ${p} was stopped`);
    } finally {
      child.kill("SIGKILL");
      for (const p of pids) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // already stopped: the expected case
        }
      }
    }
  });
});
