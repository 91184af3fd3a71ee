// How much parallel CPU this process can actually get right now: spins N worker threads for a
// while and reports process CPU time / wall time. On a shared machine this caps any parallel
// speedup, so benchmarks report it next to their speedups.
import { Worker } from "node:worker_threads";

const SPIN = `
const { parentPort, workerData } = require("node:worker_threads");
const end = Date.now() + workerData.ms;
let x = 0;
while (Date.now() < end) for (let i = 0; i < 10000; i++) x = (x * 31 + i) | 0;
parentPort.postMessage(x);
`;

/** Cores effectively available to `threads` busy threads over `ms` (≈ threads when idle). */
export async function availableCores(threads = 2, ms = 600): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(SPIN, { eval: true, workerData: { ms } });
          w.once("message", () => {
            void w.terminate().then(() => resolve());
          });
          w.once("error", reject);
        }),
    ),
  );
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / 1000 / (performance.now() - t0)) * 100) / 100;
}
