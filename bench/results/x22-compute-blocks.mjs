// per-block compute high (1,000 txs x 1,500 iterations): reference and parallel-2w alternated, wall ms and per-thread CPU ms (from /proc) of each call.
// node bench/results/x22-compute-blocks.mjs TREE [BLOCKS]; thread names: main, node:N = tid - pid (platform threads are the first four, the two exec workers later)
import { readdirSync, readFileSync } from "node:fs";
const tree = process.argv[2]; const n = +(process.argv[3] ?? 14);
const { makeBlocks } = await import(`${tree}/dist/bench/exec.js`);
const { ParallelExecutor } = await import(`${tree}/dist/src/exec/parallel.js`);
const { ReferenceExecutor } = await import(`${tree}/dist/src/exec/reference.js`);
function threads() { const m = new Map(); for (const t of readdirSync("/proc/self/task")) { try { const s = readFileSync(`/proc/self/task/${t}/stat`, "utf8"); const f = s.slice(s.lastIndexOf(")") + 2).split(" "); m.set(+t, { name: readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim(), ms: (+f[11] + +f[12]) * 10 }); } catch {} } return m; }
function diff(a, b) { const o = {}; for (const [t, v] of b) { const d = v.ms - (a.get(t)?.ms ?? 0); if (d > 0) { const nm = t === process.pid ? "main" : v.name + ":" + (t - process.pid); o[nm] = (o[nm] ?? 0) + d; } } return o; }
const s = { name: "", workload: "compute-high", accounts: 1000, blockSize: 1000, iterations: 1500 };
const { u, blocks } = makeBlocks(s, n);
const init = { height: 0n, stateRoot: u.genesis.stateRoot, state: u.state };
const ref = new ReferenceExecutor(init);
const par = new ParallelExecutor(init, { workers: 2 });
await par.ready?.();
for (const [i, b] of blocks.entries()) {
  const order = i % 2 === 0 ? ["ref", "par"] : ["par", "ref"];
  const r = {};
  for (const name of order) {
    const ex = name === "ref" ? ref : par;
    const th = threads(); const t0 = performance.now();
    await ex.executeBlock(b);
    r[name] = performance.now() - t0; r[name + "T"] = diff(th, threads());
  }
  console.log(i, "ref", r.ref.toFixed(0), "par", r.par.toFixed(0), "ratio", (r.ref / r.par).toFixed(3), JSON.stringify(r.refT), JSON.stringify(r.parT), (await import("node:os")).loadavg()[0].toFixed(1));
}
await par.close();
