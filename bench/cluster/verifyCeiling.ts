// The signature-verification ceiling of this machine, measured in the same run as the load (the
// cluster figures are reported as a ratio to it).
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { VerifyCeiling } from "./types.js";

// ---------------------------------------------------------------------------------------------
// The signature-verification ceiling of this machine

const VERIFY_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { generateKeyPairSync, sign, verify } = require("node:crypto");
const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const msg = Buffer.alloc(200, 7);
const sig = sign(null, msg, privateKey);
const until = Date.now() + workerData.ms;
let n = 0;
while (Date.now() < until) { for (let i = 0; i < 64; i++) verify(null, msg, publicKey, sig); n += 64; }
parentPort.postMessage(n);
`;

function verifyBurst(threads: number, ms: number): Promise<number> {
  const runs = Array.from(
    { length: threads },
    () =>
      new Promise<number>((resolve, reject) => {
        const w = new Worker(VERIFY_WORKER, { eval: true, workerData: { ms } });
        w.once("message", (n: number) => {
          resolve(n);
          void w.terminate();
        });
        w.once("error", reject);
      }),
  );
  return Promise.all(runs).then((ns) => (ns.reduce((a, b) => a + b, 0) * 1000) / ms);
}

/** Measured while the cluster idles, so the figure belongs to this run's machine and load. */
export async function measureVerifyCeiling(validators: number, ms = 1000): Promise<VerifyCeiling> {
  const cores = availableParallelism();
  const singleThreadPerSec = await verifyBurst(1, ms);
  const allCoresPerSec = await verifyBurst(cores, ms);
  return {
    singleThreadPerSec: Math.round(singleThreadPerSec),
    allCoresPerSec: Math.round(allCoresPerSec),
    cores,
    clusterCeilingPerSec: Math.round(allCoresPerSec / Math.max(1, validators)),
  };
}
