// Interleaved pairs of two builds on the result stage alone (issue 13, round 8): the inline
// path's WriteStage (exec/writeStage.ts; exec/result.ts before r26) staging 20k writes, as a
// 10k-transfer block makes them
// (a 21-byte account key each; values alternating 24 bytes and 56-152 bytes, an account with
// its recent-transactions record), then order() and write() of the block's log and hash input.
// CPU time (process.cpuUsage) per transfer of each step, medians per build; both builds must
// produce the same log and hash input. Each run a fresh process of one build's dist/.
//   node dist/bench/execStage.js A_ROOT B_ROOT [--pairs N]
//   node dist/bench/execStage.js --run ROOT   (one run, JSON line)
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

interface StageRun {
  root: string;
  addUs: number;
  orderUs: number;
  writeUs: number;
  digest: string;
  load1m: number;
}

const WRITES = 20_000;
const ROUNDS = 40;
const WARM = 10;

/** A deterministic byte stream (xorshift32), so both builds stage the same writes. */
function bytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

async function runOne(root: string): Promise<StageRun> {
  // WriteStage has its own module since r26; older builds (a baseline) export it from result.js.
  const own = join(root, "dist", "src/exec/writeStage.js");
  const file = existsSync(own) ? own : join(root, "dist", "src/exec/result.js");
  const { WriteStage } = await import(pathToFileURL(file).href);
  const keys: string[] = [];
  const values: Uint8Array[] = [];
  for (let i = 0; i < WRITES; i++) {
    const k = bytes(i * 7919 + 1, 21);
    k[0] = 1;
    keys.push(String.fromCharCode(...k));
    values.push(bytes(i * 104_729 + 3, i % 2 ? 56 + 32 * (i % 4) : 24));
  }
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const stage = new WriteStage();
  let add = 0;
  let order = 0;
  let write = 0;
  let digest = "";
  for (let r = 0; r < ROUNDS; r++) {
    const a = cpu();
    stage.reset();
    for (let i = 0; i < WRITES; i++) stage.add(keys[i], values[i]);
    const b = cpu();
    const o = stage.order();
    const c = cpu();
    const { log, hashInput } = stage.write(o);
    const d = cpu();
    if (r === 0) digest = createHash("sha256").update(log).update(hashInput).digest("hex");
    if (r < WARM) continue;
    add += b - a;
    order += c - b;
    write += d - c;
  }
  // µs per transfer: two staged writes each.
  const perTx = (ms: number) => Math.round(((ms * 1000) / (ROUNDS - WARM) / (WRITES / 2)) * 1000) / 1000;
  return {
    root,
    addUs: perTx(add),
    orderUs: perTx(order),
    writeUs: perTx(write),
    digest,
    load1m: Math.round(loadavg()[0]! * 100) / 100,
  };
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

async function main(args: string[]) {
  if (args[0] === "--run") {
    process.stdout.write(`${JSON.stringify(await runOne(resolve(args[1]!)))}\n`);
    return;
  }
  if (!args[0] || !args[1]) {
    process.stderr.write("usage: node dist/bench/execStage.js A_ROOT B_ROOT [--pairs N]\n");
    process.exitCode = 2;
    return;
  }
  const [a, b] = [resolve(args[0]), resolve(args[1])];
  const i = args.indexOf("--pairs");
  const pairs = i >= 0 ? +args[i + 1]! : 5;
  const self = fileURLToPath(import.meta.url);
  const runs: StageRun[] = [];
  for (let p = 0; p < pairs; p++) {
    for (const root of p % 2 === 0 ? [a, b] : [b, a]) {
      const out = execFileSync(process.execPath, [self, "--run", root], { encoding: "utf8" });
      const r = JSON.parse(out.trim().split("\n").pop()!) as StageRun;
      runs.push(r);
      process.stderr.write(
        `pair ${p + 1} ${root}: add ${r.addUs}, order ${r.orderUs}, write ${r.writeUs} µs CPU/tx, load ${r.load1m}\n`,
      );
    }
  }
  for (const root of [a, b]) {
    const of = runs.filter((r) => r.root === root);
    const m = (f: (r: StageRun) => number) => Math.round(median(of.map(f)) * 1000) / 1000;
    process.stdout.write(
      `${root}: median µs CPU/tx add ${m((r) => r.addUs)}, order ${m((r) => r.orderUs)}, write ${m((r) => r.writeUs)}, stage total ${m((r) => r.addUs + r.orderUs + r.writeUs)} (${of.length} runs)\n`,
    );
  }
  process.stdout.write(
    `same log and hash input in every run: ${new Set(runs.map((r) => r.digest)).size === 1}\n`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
