// The script behind x21-stages*.jsonl (session 21, kept as a record): node bench/results/x21-stages.mjs BUILD_ROOT [DROP]. EXECPAIRS_SOURCE=1-like run: 10 x 10k transfers over 100k accounts through an ExecutionPipeline over a ChainDb; the executor is seeded with the genesis state except every DROP-th entry (0: all), so those keys are read from the store when first touched. Prints CPU, main-thread CPU, GC share, wall and each stage busy time per tx.
// Pipeline stage busy time (wall ms while a stage works on a block) per tx, source mode, 10 x 10k transfers over 100k accounts.
const root = process.argv[2];
const m = (p) => import(`${root}/dist/${p}`);
const [bench, par, pipe, store, log] = await Promise.all([m("bench/exec.js"), m("src/exec/parallel.js"), m("src/exec/pipeline.js"), m("src/storage/index.js"), m("src/logger/index.js")]);
const { mkdtempSync, rmSync } = await import("node:fs");
const { loadavg } = await import("node:os");
const { u, blocks } = bench.makeBlocks({ name: "", workload: "transfer", accounts: 100000, blockSize: 10000 }, 11);
const warm = blocks.shift();
const dir = mkdtempSync("/tmp/x21stg-");
const chain = await store.ChainDb.open(dir, {});
const DROP = Number(process.argv[3] ?? 0); let j = 0; const seeded = new Map(); for (const [k, v] of u.state) { if (DROP > 0 && j++ % DROP === 0) continue; seeded.set(k, v); }
const ex = new par.ParallelExecutor({ height: 0n, stateRoot: u.genesis.stateRoot, state: seeded }, { workers: 2, source: chain });
await ex.ready();
await chain.writeExecutionBatch(u.genesis);
await chain.flushState();
const pl = new pipe.ExecutionPipeline({ queueCapacity: 4 }, { executor: ex, store: chain, log: log.silentLogger(), onExecuted: () => {} });
await pl.start();
await pl.submit(warm); await pl.idle();
const { PerformanceObserver } = await import("node:perf_hooks"); let gcMs = 0; const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) gcMs += e.duration; }); obs.observe({ entryTypes: ["gc"] });
const { readFileSync } = await import("node:fs"); const mainCpu = () => { const f = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) * 10; };
const m0 = mainCpu();
const s0 = pl.stats().stages.map((s) => ({ ...s }));
const c0 = process.cpuUsage(); const t0 = performance.now(); const l0 = loadavg()[0];
for (const b of blocks) await pl.submit(b);
await pl.idle();
const ms = performance.now() - t0; const c = process.cpuUsage(c0);
const s1 = pl.stats().stages; const m1 = mainCpu(); await new Promise((r) => setTimeout(r, 20));
const n = blocks.length * 10000;
let loaded = 0; const out = { root, drop: DROP, load: [l0, loadavg()[0]].map((x) => Math.round(x * 10) / 10), cpuUsPerTx: Math.round(((c.user + c.system) / n) * 100) / 100, wallUsPerTx: Math.round((ms * 1000 / n) * 100) / 100, mainUsPerTx: Math.round(((m1 - m0) * 1000 / n) * 100) / 100, gcShare: Math.round((gcMs / ms) * 1000) / 1000 };
for (let i = 0; i < s1.length; i++) out[`${s1[i].stage}BusyUsPerTx`] = Math.round(((s1[i].busyMs - s0[i].busyMs) * 1000 / n) * 100) / 100;
console.log(JSON.stringify(out));
await pl.stop(); await ex.close(); await chain.close(); rmSync(dir, { recursive: true, force: true });
