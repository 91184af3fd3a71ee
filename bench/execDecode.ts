// Two builds' decodeTx on the same blocks, alternated in one process (issue 13, round 10): the
// execution stage's per-transaction decode of pre-decoded transfers (the mempool's body and
// address, as `bench exec` and the node hand them over), 10k per block over 100k accounts.
// CPU time (process.cpuUsage) per transaction of each round, order swapped each round, medians
// per build; both builds must give the same sender and declared key strings.
//   node dist/bench/execDecode.js A_ROOT B_ROOT [--rounds N]
// ROOT is a worktree with a built dist/ (npx tsc -p tsconfig.json). One process: both builds'
// code warms up side by side, so read the difference, not the absolute figures.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

// biome-ignore lint/suspicious/noExplicitAny: modules of another build, loaded by path
type Any = any;

const WARM = 4;

async function main(args: string[]) {
  const roots = [resolve(args[0] ?? ""), resolve(args[1] ?? "")];
  if (!args[0] || !args[1] || args[0].startsWith("--")) {
    process.stderr.write("usage: node dist/bench/execDecode.js A_ROOT B_ROOT [--rounds N]\n");
    process.exitCode = 2;
    return;
  }
  const i = args.indexOf("--rounds");
  const rounds = WARM + (i >= 0 ? +args[i + 1]! : 20);
  const mod = (root: string, p: string): Promise<Any> => import(pathToFileURL(`${root}/dist/${p}`).href);
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
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
  };
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
