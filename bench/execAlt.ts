// Two builds' parallel executor on the same 10k-transfer blocks over 100k accounts, alternated
// block by block in one process (issue 13, round 12): execution only (state in memory, the
// inline path of `bench exec` and execPairs --mode exec), each build with its own executor and
// cache, order swapped each block. Both builds share one heap, so a major GC lands on either
// side by chance instead of on a whole run (execPairs' runs are bimodal for that reason): small
// differences show here that execPairs cannot resolve. CPU µs per transaction of each block
// (process.cpuUsage: all threads), medians per build and the median of the paired differences;
// both builds must reach the same state roots.
//   node dist/bench/execAlt.js A_ROOT B_ROOT [--passes N] [--blocks N]
// ROOT is a worktree with a built dist/ (npx tsc -p tsconfig.json). Each pass starts both
// executors afresh from genesis; a warm-up block per executor is not counted.
import { median } from "./lib/stats.js";
import { type AnyModule as Any, twoBuilds } from "./lib/twoBuilds.js";

async function main(args: string[]) {
  const cli = twoBuilds(args, "node dist/bench/execAlt.js A_ROOT B_ROOT [--passes N] [--blocks N]");
  if (cli === null) return;
  const { roots, opt, load: mod } = cli;
  const passes = opt("--passes", 3);
  const count = opt("--blocks", 10);
  const par: Any[] = await Promise.all(roots.map((r) => mod(r, "src/exec/parallel.js")));
  const bench = await mod(roots[0]!, "bench/exec.js");
  const { u, blocks } = bench.makeBlocks(
    { name: "", workload: "transfer", accounts: 100_000, blockSize: 10_000 },
    count + 1,
  );
  const us: number[][] = [[], []];
  const diff: number[] = [];
  let sameRoots = true;
  for (let p = 0; p < passes; p++) {
    const ex: Any[] = par.map(
      (m) =>
        new m.ParallelExecutor(
          { height: 0n, stateRoot: u.genesis.stateRoot, state: u.state },
          { workers: 0 },
        ),
    );
    for (const e of ex) await e.executeBlock(blocks[0]);
    for (let b = 1; b < blocks.length; b++) {
      const blk = blocks[b];
      const got: number[] = [0, 0];
      const rootsHex: string[] = ["", ""];
      for (const t of (p * blocks.length + b) % 2 ? [1, 0] : [0, 1]) {
        const c0 = process.cpuUsage();
        const r = await ex[t].executeBlock(blk);
        const c = process.cpuUsage(c0);
        got[t] = (c.user + c.system) / blk.txs.length;
        rootsHex[t] = Buffer.from(r.stateRoot).toString("hex");
      }
      if (rootsHex[0] !== rootsHex[1]) sameRoots = false;
      us[0]!.push(got[0]!);
      us[1]!.push(got[1]!);
      diff.push(got[1]! - got[0]!);
    }
    for (const e of ex) await e.close();
  }
  for (let t = 0; t < 2; t++) {
    process.stdout.write(
      `${roots[t]}: median ${median(us[t]!).toFixed(2)} µs CPU/tx over ${us[t]!.length} blocks\n`,
    );
  }
  const lower = diff.filter((d) => d < 0).length;
  process.stdout.write(
    `B - A per block: median ${median(diff).toFixed(2)} µs/tx, B lower in ${lower} of ${diff.length}; ` +
      `same state roots: ${sameRoots}\n`,
  );
  if (!sameRoots) process.exitCode = 1;
}

await main(process.argv.slice(2));
