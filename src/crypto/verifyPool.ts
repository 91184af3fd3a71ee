// Transaction signature verification off the main thread (DESIGN §3): the dominant per-tx CPU
// cost. Items are batched (flush at maxBatch items or after flushMs), shipped as one transferred
// buffer to the least-loaded worker, and verified there with the same NodeVerifier rule. Results
// of transactions are cached by (tx hash, signature) so a tx seen at admission is free in a block.
import { hash as nodeHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../types/block.js";
import { txSignBytes } from "../types/signing.js";
import { encodeBatch, type VerifyItem } from "./batchCodec.js";
import { CryptoError } from "./errors.js";
import { Lru } from "./lru.js";
import { NodeVerifier } from "./node.js";
import { txBodySender } from "./txSender.js";
import { type VerifyRequest, type VerifyResponse, WORKER_READY } from "./verifyWorkerProtocol.js";

export type { VerifyItem } from "./batchCodec.js";

export interface VerifyPoolOpts {
  /** Worker threads; 0 verifies inline on the calling thread. Default 2. */
  size?: number;
  /**
   * Verify a lone signature inline when the pool is idle (nothing queued or in the workers and
   * no inline verify in the last inlineGapMs): at light load that saves the batch wait and the
   * worker handoff; under load everything is batched in the workers. Default true.
   */
  inlineWhenIdle?: boolean;
  /** See inlineWhenIdle. Default 2 ms. */
  inlineGapMs?: number;
  /**
   * A verifyTxs call of at most this many transactions (an API submit, a light-load gossip batch)
   * is verified inline whatever the workers are doing: a handful of signatures costs well under a
   * millisecond on the calling thread, while the batch wait and the handoff to a worker thread
   * that shares its core took 26 ms p50 for one signature at 200 tx/s on a loaded 2-core box
   * running 4 validators (p24-notes.md). Larger calls go to the workers. 0 turns it off. Default 8.
   * Bounded by inlineBudgetPerSec.
   */
  inlineMaxTxs?: number;
  /**
   * Signatures per second that small calls (inlineMaxTxs) may verify on the calling thread; past
   * it they go to the workers as before (a bucket of 2 × inlineMaxTxs, refilled at this rate).
   * Under load a validator's gossip arrives as many small batches: verified all on the main thread
   * they cost ~0.18 ms each there, and the lead's quiet overload run of the unbounded rule (s24)
   * stalled the event loop up to 1.9 s, fell from 1,777 to 1,370 tx/s of saturation and changed
   * views twice. Default 300 (~5 % of the calling thread), which covers a light load's every tx.
   */
  inlineBudgetPerSec?: number;
  /** Flush a batch once it holds this many items. Default 64. */
  maxBatch?: number;
  /** Flush a non-empty batch after this long. Default 1 ms. */
  flushMs?: number;
  /** Cached transaction verdicts (about 150 bytes each). Default 100 000. */
  resultCacheSize?: number;
  /** Cached KeyObjects per verifier (each worker has its own). Default 8192. */
  keyCacheSize?: number;
  log?: Logger;
  /** The worker script; tests substitute a broken one. Default: ./verifyWorker.js. */
  workerUrl?: URL;
}

export interface VerifyPoolStats {
  /** Transactions answered from the verdict cache (including in-flight duplicates). */
  cacheHits: number;
  /** Signatures actually verified (workers or inline). */
  verified: number;
  batches: number;
  /** Workers replaced after a crash. */
  respawns: number;
}

interface Pending {
  item: VerifyItem;
  resolve: (ok: boolean) => void;
  reject: (err: unknown) => void;
}

interface InFlight {
  pending: Pending[];
  worker: WorkerSlot;
}

interface WorkerSlot {
  worker: Worker;
  inFlight: number;
  /** Sent WORKER_READY and has not exited. */
  ready: boolean;
}

export class VerifyPool {
  private readonly size: number;
  private readonly maxBatch: number;
  /** opts.inlineMaxTxs, and the inline bucket's size (2 × it). */
  private readonly inlineMaxTxs: number;
  private readonly inlineCap: number;
  private readonly flushMs: number;
  private readonly inline: NodeVerifier;
  private readonly verdicts: Lru<string, boolean>;
  private readonly inProgress = new Map<string, Promise<boolean>>();
  private workers: WorkerSlot[] = [];
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Map<number, InFlight>();
  private nextId = 1;
  private running = false;
  private live = 0;
  private stopping = false;
  private lastInlineAt = Number.NEGATIVE_INFINITY;
  /** inlineBudgetPerSec's bucket: signatures small calls may still verify inline, and when it was filled. */
  private inlineTokens: number;
  private inlineFilledAt = performance.now();
  readonly stats: VerifyPoolStats = { cacheHits: 0, verified: 0, batches: 0, respawns: 0 };

  constructor(private readonly opts: VerifyPoolOpts = {}) {
    this.size = opts.size ?? 2;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 64);
    this.inlineMaxTxs = opts.inlineMaxTxs ?? 8;
    this.inlineCap = 2 * this.inlineMaxTxs;
    this.inlineTokens = this.inlineCap;
    this.flushMs = opts.flushMs ?? 1;
    this.inline = new NodeVerifier({ keyCacheSize: opts.keyCacheSize });
    this.verdicts = new Lru(opts.resultCacheSize ?? 100_000);
  }

  get workerCount(): number {
    return this.workers.length;
  }

  /** Worker threads that came online and have not exited yet: 0 after stop(). */
  get liveWorkers(): number {
    return this.live;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    const spawned: Promise<void>[] = [];
    for (let i = 0; i < this.size; i++) spawned.push(this.spawn());
    try {
      await Promise.all(spawned);
    } catch (err) {
      await this.stop();
      throw new CryptoError("VERIFY_WORKER_FAILED", {}, `verify pool failed to start: ${String(err)}`);
    }
  }

  /** Terminates every worker. Requests still queued or in flight are rejected. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const err = new CryptoError("VERIFY_POOL_STOPPED", {}, "verify pool stopped");
    for (const p of this.queue) p.reject(err);
    this.queue = [];
    for (const f of this.inFlight.values()) for (const p of f.pending) p.reject(err);
    this.inFlight.clear();
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  /** Verifies arbitrary (publicKey, message, signature) triples with the node rule. Not cached. */
  verifyMany(items: readonly VerifyItem[]): Promise<boolean[]> {
    return Promise.all(items.map((it) => this.verifyOne(it)));
  }

  /**
   * Verifies transaction signatures: message = txSignBytes(body), key = TxBody.sender. An
   * undecodable body is false. Pass `hashes` (txHash of each tx) and `senders` (TxBody.sender,
   * decoded from these very bytes) when already at hand, to skip recomputing them.
   */
  verifyTxs(
    txs: readonly SignedTx[],
    hashes?: readonly Uint8Array[],
    senders?: readonly Uint8Array[],
  ): Promise<boolean[]> {
    const inline = txs.length <= this.inlineMaxTxs && this.takeInline(txs.length);
    return Promise.all(txs.map((tx, i) => this.verifyTx(tx, hashes?.[i], senders?.[i], inline)));
  }

  /** `inline`: verified on the calling thread (see inlineMaxTxs) unless cached or in progress. */
  verifyTx(tx: SignedTx, hash?: Uint8Array, knownSender?: Uint8Array, inline = false): Promise<boolean> {
    if (tx.signature.length !== SIGNATURE_LENGTH) return Promise.resolve(false);
    const h = hash ?? nodeHash("sha256", tx.body, "buffer");
    // The verdict belongs to these exact signature bytes: a cached "valid" must not vouch for a
    // different (invalid) signature over the same body, or replicas would disagree on a block.
    const key = Buffer.concat([h, tx.signature]).toString("latin1");
    const cached = this.verdicts.get(key);
    if (cached !== undefined) {
      this.stats.cacheHits++;
      return Promise.resolve(cached);
    }
    const running = this.inProgress.get(key);
    if (running) {
      this.stats.cacheHits++;
      return running;
    }
    const sender = knownSender ?? txBodySender(tx.body);
    if (sender === undefined) {
      this.verdicts.set(key, false);
      return Promise.resolve(false);
    }
    const item = { publicKey: sender, message: txSignBytes(tx.body), signature: tx.signature };
    if (inline && this.running) {
      const ok = this.verifyNow(item);
      this.verdicts.set(key, ok);
      return Promise.resolve(ok);
    }
    const p = this.verifyOne(item).then(
      (ok) => {
        this.inProgress.delete(key);
        this.verdicts.set(key, ok);
        return ok;
      },
      (err: unknown) => {
        this.inProgress.delete(key);
        throw err;
      },
    );
    this.inProgress.set(key, p);
    return p;
  }

  /** True when this exact signed tx already has a cached verdict (for tests and metrics). */
  hasVerdict(tx: SignedTx): boolean {
    const h = nodeHash("sha256", tx.body, "buffer");
    return this.verdicts.has(Buffer.concat([h, tx.signature]).toString("latin1"));
  }

  /** Takes n signatures from the inline bucket (see inlineBudgetPerSec), or false when it is short. */
  private takeInline(n: number): boolean {
    const now = performance.now();
    const rate = (this.opts.inlineBudgetPerSec ?? 300) / 1000;
    this.inlineTokens = Math.min(this.inlineCap, this.inlineTokens + (now - this.inlineFilledAt) * rate);
    this.inlineFilledAt = now;
    if (this.inlineTokens < n) return false;
    this.inlineTokens -= n;
    return true;
  }

  private verifyNow(item: VerifyItem): boolean {
    if (item.publicKey.length !== PUBLIC_KEY_LENGTH || item.signature.length !== SIGNATURE_LENGTH)
      return false;
    this.stats.verified++;
    const ok = this.inline.verify(item.publicKey, item.message, item.signature);
    this.lastInlineAt = performance.now();
    return ok;
  }

  private verifyOne(item: VerifyItem): Promise<boolean> {
    if (item.publicKey.length !== PUBLIC_KEY_LENGTH || item.signature.length !== SIGNATURE_LENGTH) {
      return Promise.resolve(false);
    }
    if (this.size === 0) {
      this.stats.verified++;
      return Promise.resolve(this.inline.verify(item.publicKey, item.message, item.signature));
    }
    if (!this.running) {
      return Promise.reject(new CryptoError("VERIFY_POOL_STOPPED", {}, "verify pool is not running"));
    }
    if (
      this.opts.inlineWhenIdle !== false &&
      this.queue.length === 0 &&
      this.inFlight.size === 0 &&
      performance.now() - this.lastInlineAt >= (this.opts.inlineGapMs ?? 2)
    ) {
      this.stats.verified++;
      const ok = this.inline.verify(item.publicKey, item.message, item.signature);
      this.lastInlineAt = performance.now();
      return Promise.resolve(ok);
    }
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (this.timer === null) this.timer = setTimeout(() => this.flush(), this.flushMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length > 0) {
      const pending = this.queue.splice(0, this.maxBatch);
      this.dispatch(pending);
    }
  }

  private dispatch(pending: Pending[]): void {
    let slot = this.workers[0];
    for (const w of this.workers) if (slot === undefined || w.inFlight < slot.inFlight) slot = w;
    if (slot === undefined) {
      // Every worker died and none has respawned yet: keep the answer correct, verify inline.
      this.verifyInline(pending);
      return;
    }
    const id = this.nextId++;
    const batch = encodeBatch(pending.map((p) => p.item));
    slot.inFlight++;
    this.inFlight.set(id, { pending, worker: slot });
    this.stats.batches++;
    const req: VerifyRequest = { id, batch };
    slot.worker.postMessage(req, [batch]);
  }

  private verifyInline(pending: Pending[]): void {
    for (const p of pending) {
      this.stats.verified++;
      p.resolve(this.inline.verify(p.item.publicKey, p.item.message, p.item.signature));
    }
  }

  private spawn(): Promise<void> {
    const worker = new Worker(this.opts.workerUrl ?? new URL("./verifyWorker.js", import.meta.url), {
      workerData: { keyCacheSize: this.opts.keyCacheSize },
    });
    const slot: WorkerSlot = { worker, inFlight: 0, ready: false };
    this.workers.push(slot);
    let everReady = false;
    let settle: ((err?: unknown) => void) | null = null;
    const started = new Promise<void>((resolve, reject) => {
      settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
    });
    worker.on("message", (res: VerifyResponse | typeof WORKER_READY) => {
      if (res === WORKER_READY) {
        slot.ready = true;
        everReady = true;
        this.live++;
        settle?.();
        settle = null;
        return;
      }
      const f = this.inFlight.get(res.id);
      if (!f) return;
      this.inFlight.delete(res.id);
      slot.inFlight--;
      const results = new Uint8Array(res.results);
      for (let i = 0; i < f.pending.length; i++) {
        this.stats.verified++;
        f.pending[i]!.resolve(results[i] === 1);
      }
    });
    const onFailure = (err: unknown) => {
      settle?.(err);
      settle = null;
      if (this.stopping || !this.workers.includes(slot)) return;
      this.workers = this.workers.filter((w) => w !== slot);
      // Re-verify its batches inline so no caller is left waiting or gets a wrong answer.
      for (const [id, f] of this.inFlight) {
        if (f.worker !== slot) continue;
        this.inFlight.delete(id);
        this.verifyInline(f.pending);
      }
      void worker.terminate();
      // Respawn only a worker that had worked: one that cannot even start would loop forever.
      if (this.running && everReady) {
        this.stats.respawns++;
        this.opts.log?.error({ err, threadId: worker.threadId }, "verify worker failed; respawning");
        this.spawn().catch((e: unknown) => this.opts.log?.error({ err: e }, "verify worker respawn failed"));
      } else {
        this.opts.log?.error({ err }, "verify worker failed to start");
      }
    };
    worker.on("error", onFailure);
    worker.on("exit", (code) => {
      if (slot.ready) this.live--;
      slot.ready = false;
      onFailure(new Error(`verify worker exited with code ${code}`));
    });
    return started;
  }
}
