// The LocalCluster library for cluster tests and benchmarks. The core lives in src/cli/cluster.ts
// (the `parabft cluster` command runs the same code); this adds temp-dir helpers for tests.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { LocalCluster, type LocalClusterOpts } from "../../src/cli/cluster.js";

export {
  type ClusterManifest,
  type ClusterNode,
  checkHealth,
  LocalCluster,
  type LocalClusterOpts,
  newHealthClient,
} from "../../src/cli/cluster.js";
export { createTestnet, readTestnet, type Testnet, type TestnetOpts } from "../../src/cli/testnet.js";

export async function tempDir(prefix = "parabft-test-"): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

export interface WithClusterOpts extends LocalClusterOpts {
  /** Keep the directory afterwards (node logs for debugging); default: kept only on failure. */
  keepDir?: boolean;
  /** Do not start the nodes; the callback starts them itself. */
  noStart?: boolean;
}

/**
 * Creates an n-validator cluster in a fresh temp dir, starts it, runs fn, and always stops every
 * node. The directory is removed on success and kept (and named in the error) on failure.
 */
export async function withCluster<T>(
  n: number,
  fn: (cluster: LocalCluster) => Promise<T>,
  opts: WithClusterOpts = {},
): Promise<T> {
  const dir = await tempDir();
  const cluster = await LocalCluster.create(n, dir, { preset: "minimal", accounts: 4, ...opts });
  let ok = false;
  try {
    if (!opts.noStart) await cluster.start();
    const out = await fn(cluster);
    ok = true;
    return out;
  } catch (err) {
    if (err instanceof Error) err.message += `\n(cluster directory kept: ${dir})`;
    throw err;
  } finally {
    await cluster.stop();
    if (ok && !opts.keepDir) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Stops every node, then removes the cluster's directory (node logs included) unless `keep` (e.g.
 * the test failed and its message does not carry the nodes' log tails) or PARABFT_KEEP_TEST_DIRS=1.
 */
export async function stopAndRemove(cluster: LocalCluster | undefined, keep = false): Promise<void> {
  if (!cluster) return;
  await cluster.stop();
  if (!keep && process.env.PARABFT_KEEP_TEST_DIRS !== "1")
    await rm(cluster.dir, { recursive: true, force: true });
}
