// The in-process set-up of the tests that drive the real ApiServer without a cluster (the CLI
// commands, the cluster benchmark's client): the server on 127.0.0.1 over a FakeNode that is
// ready and commits at once, a temp dir with a sender key file, and stdout capture.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ApiServer } from "../../../src/api/index.js";
import { generateKeyPair, type KeyPair, writeKeyFile } from "../../../src/crypto/keys.js";
import { silentLogger } from "../../../src/logger/index.js";
import { FakeNode } from "./fakeNode.js";

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

export interface FakeServer<N extends FakeNode = FakeNode> {
  node: N;
  /** The temp dir (removed by stop). */
  dir: string;
  /** The API address for `--api`. */
  api: string;
  /** A key file holding `kp`, for `--key`. */
  keyFile: string;
  kp: KeyPair;
  stop(): Promise<void>;
}

/**
 * Starts the server over `node` (default a plain FakeNode) and writes the key file; `stop` closes
 * the server and removes the dir.
 */
export async function startFakeServer<N extends FakeNode = FakeNode>(
  dirPrefix: string,
  node: N = new FakeNode() as N,
): Promise<FakeServer<N>> {
  const dir = await mkdtemp(path.join(tmpdir(), dirPrefix));
  const kp = generateKeyPair();
  const keyFile = path.join(dir, "sender.json");
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
    dir,
    api: `127.0.0.1:${server.port}`,
    keyFile,
    kp,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
