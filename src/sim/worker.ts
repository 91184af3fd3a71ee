// Worker thread: runs the seeds it is handed, one after another, and posts back summaries.
import { parentPort } from "node:worker_threads";
import type { SimConfig } from "./config.js";
import { summarise } from "./runner.js";
import { runSimulation } from "./simulation.js";

if (parentPort === null) throw new Error("sim worker must run in a worker thread");
const port = parentPort;
port.on("message", (configs: SimConfig[]) => {
  try {
    port.postMessage({ ok: true, summaries: configs.map((c) => summarise(runSimulation(c))) });
  } catch (err: unknown) {
    port.postMessage({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});
