// Worker-thread side of the verify pool: decodes a transferred batch, applies THE node rule
// (NodeVerifier) to each item, and transfers back one result byte per item.
import { parentPort, workerData } from "node:worker_threads";
import { decodeBatch } from "./batchCodec.js";
import { NodeVerifier } from "./node.js";
import { type VerifyRequest, type VerifyResponse, WORKER_READY } from "./verifyWorkerProtocol.js";

const verifier = new NodeVerifier({
  keyCacheSize: (workerData as { keyCacheSize?: number } | null)?.keyCacheSize,
});

parentPort?.on("message", (req: VerifyRequest) => {
  const items = decodeBatch(req.batch);
  const results = new Uint8Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    results[i] = verifier.verify(it.publicKey, it.message, it.signature) ? 1 : 0;
  }
  const res: VerifyResponse = { id: req.id, results: results.buffer };
  parentPort!.postMessage(res, [results.buffer]);
});

parentPort?.postMessage(WORKER_READY);
