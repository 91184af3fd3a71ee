// Two builds' decodeTx on the same blocks, alternated in one process (issue 13, round 10): the
// execution stage's per-transaction decode of pre-decoded transfers (the mempool's body and
// address, as `bench exec` and the node hand them over), 10k per block over 100k accounts.
// CPU time (process.cpuUsage) per transaction of each round, order swapped each round, medians
// per build; both builds must give the same sender and declared key strings.
//   node dist/bench/execDecode.js A_ROOT B_ROOT [--rounds N]
// ROOT is a worktree with a built dist/ (npx tsc -p tsconfig.json). One process: both builds'
// code warms up side by side, so read the difference, not the absolute figures.
import { median } from "./lib/stats.js";
import { type AnyModule as Any, twoBuilds } from "./lib/twoBuilds.js";

const WARM = 4;

async function main(args: string[]) {
  const cli = twoBuilds(args, "node dist/bench/execDecode.js A_ROOT B_ROOT [--rounds N]");
  if (cli === null) return;
  const { roots, load: mod } = cli;
  const rounds = WARM + cli.opt("--rounds", 20);
  const trees = await Promise.all(
    roots.map(async (root) => ({ root, p: await mod(root, "src/exec/programs.js") })),
  );
  const bench = await mod(roots[0]!, "bench/exec.js");
  const { blocks } = bench.makeBlocks(
    { name: "", workload: "transfer", accounts: 100_000, blockSize: 10_000 },
    12,
  );
  const us = new Map<string, number[]>(roots.map((r) => [r, []]));
  const keysOf = new Map<string, string>();
  for (let r = 0; r < rounds; r++) {
    const blk = blocks[r % blocks.length];
    for (const t of r % 2 ? [...trees].reverse() : trees) {
      const out: Any[] = new Array(blk.txs.length);
      const c0 = process.cpuUsage();
      for (let j = 0; j < blk.txs.length; j++)
        out[j] = t.p.decodeTx(blk.txs[j].body, blk.txHashes[j], blk.decoded[j]);
      const c = process.cpuUsage(c0);
      if (r >= WARM) us.get(t.root)!.push((c.user + c.system) / blk.txs.length);
      if (r === 0)
        keysOf.set(
          t.root,
          out.map((d) => `${d.senderKey}|${d.writes.join("|")}|${d.reads.join("|")}`).join("\n"),
        );
    }
  }
  for (const [root, xs] of us) {
    process.stdout.write(
      `${root}: decodeTx µs/tx median ${median(xs).toFixed(3)} (min ${Math.min(...xs).toFixed(3)}, max ${Math.max(...xs).toFixed(3)}, ${xs.length} rounds)\n`,
    );
  }
  const same = keysOf.get(roots[0]!) === keysOf.get(roots[1]!);
  process.stdout.write(`same key strings in both builds: ${same}\n`);
  if (!same) process.exitCode = 1;
}

await main(process.argv.slice(2));
