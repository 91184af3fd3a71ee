// The bench client's signing threads: transfers are built and signed in worker threads
// (signWorker.ts), so the thread that paces sends and handles answers only picks a signed
// transaction and submits it. The one-thread client signed on the pacing thread and, on this
// 2-core box, lagged its schedule by 42-70 s (p50) at 2× saturation (bench/results/o16-notes.md).
import { Worker } from "node:worker_threads";
import { create } from "@bufbuild/protobuf";
import { type SignedTx, SignedTxSchema } from "../../src/gen/parabft/v1/types_pb.js";

export interface SignWorkerData {
  chainId: string;
  /** Every sender's 32-byte secret key, by sender index. */
  secretKeys: Uint8Array[];
}

/** One batch of transfers to sign: sender index, nonce and recipient number per transfer. */
export interface SignRequest {
  id: number;
  senders: number[];
  nonces: bigint[];
  recipients: number[];
}

export interface SignedBatch {
  id: number;
  bodies: Uint8Array[];
  signatures: Uint8Array[];
  hashes: Uint8Array[];
  hexes: string[];
}

/** A signed transfer ready to submit. */
export interface SignedTransfer {
  tx: SignedTx;
  hash: Uint8Array;
  hex: string;
}

export interface SignJob {
  sender: number;
  nonce: bigint;
  recipient: number;
}

/** Jobs per message to a worker: large enough to amortise a message, small enough to spread. */
const CHUNK = 256;

export class SignPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, (b: SignedBatch) => void>();
  private nextId = 0;
  private rr = 0;

  constructor(chainId: string, secretKeys: Uint8Array[], threads = 2) {
    const data: SignWorkerData = { chainId, secretKeys };
    this.workers = Array.from({ length: Math.max(1, threads) }, () => {
      const w = new Worker(new URL("./signWorker.js", import.meta.url), { workerData: data });
      w.on("message", (b: SignedBatch) => {
        const done = this.waiting.get(b.id);
        this.waiting.delete(b.id);
        done?.(b);
      });
      // A worker that dies would leave its batch waiting forever: fail loudly instead.
      w.on("error", (err) => {
        throw err;
      });
      return w;
    });
  }

  /** Signs `jobs` (split over the threads), results in job order. */
  async sign(jobs: readonly SignJob[]): Promise<SignedTransfer[]> {
    const parts: Promise<SignedBatch>[] = [];
    for (let from = 0; from < jobs.length; from += CHUNK) {
      const slice = jobs.slice(from, from + CHUNK);
      const id = this.nextId++;
      const req: SignRequest = {
        id,
        senders: slice.map((j) => j.sender),
        nonces: slice.map((j) => j.nonce),
        recipients: slice.map((j) => j.recipient),
      };
      parts.push(
        new Promise<SignedBatch>((resolve) => {
          this.waiting.set(id, resolve);
          this.workers[this.rr++ % this.workers.length]!.postMessage(req);
        }),
      );
    }
    const out: SignedTransfer[] = [];
    for (const b of await Promise.all(parts)) {
      for (let k = 0; k < b.bodies.length; k++) {
        out.push({
          tx: create(SignedTxSchema, { body: b.bodies[k]!, signature: b.signatures[k]! }),
          hash: b.hashes[k]!,
          hex: b.hexes[k]!,
        });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
