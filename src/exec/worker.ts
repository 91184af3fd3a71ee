// Worker-thread entry: runs lane jobs (laneWire.ts) and transfers the result buffer back.
import { parentPort } from "node:worker_threads";
import { runJob } from "./laneWire.js";

interface JobMessage {
  id: number;
  job: ArrayBuffer;
}

const port = parentPort;
if (port === null) throw new Error("exec worker must run in a worker thread");

port.on("message", (msg: JobMessage) => {
  try {
    const result = runJob(msg.job);
    port.postMessage({ id: msg.id, result }, [result]);
  } catch (err: unknown) {
    port.postMessage({ id: msg.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});
// Modules loaded: the pool's ready() resolves on this (id 0 is never a job's).
port.postMessage({ id: 0, ready: true });
