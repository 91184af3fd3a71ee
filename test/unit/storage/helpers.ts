import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `parabft-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/** The storage module as a file path, for scripts run in a child process. */
export const STORAGE_MODULE = fileURLToPath(new URL("../../../src/storage/index.js", import.meta.url));

/**
 * Runs an ES module `script` in a child process (env SS_MODULE = the storage module) and asserts
 * that it ends by SIGKILL, as the script itself does to simulate a crash. The child is killed if
 * it outlives the wait.
 */
export async function runUntilKilled(script: string, env: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, SS_MODULE: STORAGE_MODULE, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += String(d);
  });
  try {
    const signal = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("child did not exit")), 30_000);
      child.once("exit", (_code, sig) => {
        clearTimeout(t);
        resolve(sig);
      });
    });
    assert.equal(signal, "SIGKILL", stderr);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}
