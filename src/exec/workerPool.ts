// A fixed pool of execution workers. One job per worker per block; jobs and results are
// transferred ArrayBuffers. A worker that dies fails its pending jobs loudly: the executor
// cannot silently continue with half a block.
import { Worker } from "node:worker_threads";
import { ParabftError } from "../types/errors.js";

interface Pending {
  resolve: (b: ArrayBuffer) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  dead: Error | null;
  /** Resolves once the worker has loaded its modules (or died). */
  ready: Promise<void>;
}

export class ExecWorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL("./worker.js", import.meta.url));
    let markReady = () => {};
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const slot: Slot = { worker, pending: new Map(), dead: null, ready };
    const failAll = (err: Error) => {
      markReady();
      slot.dead = err;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on("message", (msg: { id: number; result?: ArrayBuffer; error?: string; ready?: true }) => {
      if (msg.ready) {
        markReady();
        return;
      }
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if (msg.result !== undefined) p.resolve(msg.result);
      else p.reject(new ParabftError("EXEC_WORKER_FAILED", {}, `execution worker failed: ${msg.error}`));
    });
    worker.on("error", (err) =>
      failAll(new ParabftError("EXEC_WORKER_FAILED", {}, `execution worker: ${err.message}`)),
    );
    worker.on("exit", (code) => {
      if (!this.closed)
        failAll(new ParabftError("EXEC_WORKER_FAILED", { code }, `execution worker exited (${code})`));
    });
    return slot;
  }

  /**
   * Resolves once every worker has started and loaded its modules (a dead one counts as settled:
   * its jobs fail). Benchmarks wait on it so worker start-up is not timed as execution.
   */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  run(workerIndex: number, job: ArrayBuffer): Promise<ArrayBuffer> {
    const slot = this.slots[workerIndex % this.slots.length]!;
    if (this.closed) return Promise.reject(new ParabftError("EXEC_STOPPED", {}, "worker pool closed"));
    if (slot.dead) return Promise.reject(slot.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, job }, [job]);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    for (const s of this.slots) {
      for (const p of s.pending.values())
        p.reject(new ParabftError("EXEC_STOPPED", {}, "worker pool closed"));
      s.pending.clear();
    }
  }
}
