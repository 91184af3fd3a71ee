// Two builds' foldOrder (src/storage/execLog.ts: the fold's k-way merge of the write-set logs)
// on the same logs, alternated in one process (issue 13, round 12): LOGS key-sorted logs of 20k
// account keys each (21 bytes, drawn from 100k accounts; 56-byte values), as 10k-transfer blocks
// write them. CPU ms (process.cpuUsage) per merge, order swapped each round, medians per build;
// both builds must give the same merge.
//   node dist/bench/execFold.js A_ROOT B_ROOT [--logs N] [--rounds N]
// ROOT is a worktree with a built dist/ (npx tsc -p tsconfig.json). The fold writes 2M entries
// by default (stateApplyEntries): --logs 100 is that size.
import { randomBytes } from "node:crypto";
import { median } from "./lib/stats.js";
import { type AnyModule as Any, twoBuilds } from "./lib/twoBuilds.js";

const ENTRIES = 20_000;
const ACCOUNTS = 100_000;

async function main(args: string[]) {
  const cli = twoBuilds(args, "node dist/bench/execFold.js A_ROOT B_ROOT [--logs N] [--rounds N]");
  if (cli === null) return;
  const { roots, opt, load } = cli;
  const logCount = opt("--logs", 10);
  const rounds = opt("--rounds", 6);
  const mods: Any[] = await Promise.all(roots.map((r) => load(r, "src/storage/execLog.js")));
  const accounts = Array.from({ length: ACCOUNTS }, () => Buffer.concat([Buffer.of(1), randomBytes(20)]));
  const logs: { log: Buffer; offsets: Uint32Array }[] = [];
  for (let b = 0; b < logCount; b++) {
    const m = new Map<string, { key: Uint8Array; value: Uint8Array }>();
    while (m.size < ENTRIES) {
      const k = accounts[Math.floor(Math.random() * ACCOUNTS)]!;
      m.set(k.toString("hex"), { key: k, value: randomBytes(56) });
    }
    const ws = [...m.values()].sort((x, y) => Buffer.compare(x.key, y.key));
    const log: Buffer = mods[0].encodeWriteSetLog(ws);
    logs.push({ log, offsets: mods[0].logOffsets(log, BigInt(b + 1)) });
  }
  const ms: number[][] = [[], []];
  const out: Any[] = [null, null];
  for (let r = 0; r < 2 + rounds; r++) {
    for (const t of r % 2 ? [1, 0] : [0, 1]) {
      const c0 = process.cpuUsage();
      out[t] = mods[t].foldOrder(logs);
      const c = process.cpuUsage(c0);
      if (r >= 2) ms[t]!.push((c.user + c.system) / 1000);
    }
  }
  const same =
    out[0] !== null &&
    out[1] !== null &&
    out[0].n === out[1].n &&
    Buffer.compare(Buffer.from(out[0].block.buffer), Buffer.from(out[1].block.buffer)) === 0 &&
    Buffer.compare(Buffer.from(out[0].entry.buffer), Buffer.from(out[1].entry.buffer)) === 0;
  for (let t = 0; t < 2; t++) {
    const v = ms[t]!;
    process.stdout.write(
      `${roots[t]}: foldOrder of ${logCount} logs x ${ENTRIES}: median ${median(v).toFixed(1)} ms CPU ` +
        `(${v.map((x) => x.toFixed(0)).join(" ")})\n`,
    );
  }
  process.stdout.write(`same merge: ${same}\n`);
  if (!same) process.exitCode = 1;
}

await main(process.argv.slice(2));
