// The in-process set-up of the CLI command tests: the real ApiServer on 127.0.0.1 over a
// FakeNode that commits at once, a sender key file in a temp dir, and stdout capture.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ApiServer } from "../../../src/api/index.js";
import { generateKeyPair, type KeyPair, writeKeyFile } from "../../../src/crypto/keys.js";
import { silentLogger } from "../../../src/logger/index.js";
import { FakeNode } from "../api/fakeNode.js";

/**
 * Runs a command with its text output captured. Binary writes pass through: the test runner
 * reports to its parent over this same stdout.
 */
export async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (typeof chunk !== "string") return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    chunks.push(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await fn();
    return { code, out: chunks.join("") };
  } finally {
    process.stdout.write = write;
  }
}

export interface CliFixture {
  node: FakeNode;
  /** The API address for `--api`. */
  api: string;
  /** A key file holding `kp`, for `--key`. */
  keyFile: string;
  kp: KeyPair;
  stop(): Promise<void>;
}

/** Starts the server and writes the key file; `stop` closes the server and removes the dir. */
export async function startCliFixture(dirPrefix: string): Promise<CliFixture> {
  const dir = await mkdtemp(path.join(tmpdir(), dirPrefix));
  const kp = generateKeyPair();
  const keyFile = path.join(dir, "sender.json");
  const node = new FakeNode();
  node.setReady(true);
  node.autoCommit = true;
  const server = new ApiServer(
    { address: "127.0.0.1:0", reflection: false },
    { backend: node, log: silentLogger() },
  );
  try {
    await writeKeyFile(keyFile, kp);
    await server.start();
  } catch (err) {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    node,
    api: `127.0.0.1:${server.port}`,
    keyFile,
    kp,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
