import { type ParabftClient, verifyCommitCertificate } from "../../src/client/node.js";
import type { BlockHeader, CommitCertificate } from "../../src/gen/parabft/v1/types_pb.js";
import { TxStatus } from "../../src/gen/parabft/v1/types_pb.js";
import { sha256, toHex } from "../../src/types/index.js";
import { type RunContext, sleep } from "./load.js";
import type { ChainVerification } from "./types.js";

// Fast only while something awaits execution, so the poller adds no steady load to the node.
const STATUS_POLL_MS = 5;
const STATUS_IDLE_POLL_MS = 100;

/**
 * PARABFT_BENCH_EXEC_POLL_MS=N: poll the executed height every N ms, and not at each streamed
 * block. The default (unset) polls at each block and then every 5 ms while it awaits execution:
 * ~1 GetStatus per height on the watched node at closed loop ×1, each ~1 ms of that validator's
 * CPU; on a quiet box that measurement load was ~12 % of the cluster's CPU per height and ~19 % of
 * its finality p50 (bench/results/l18-notes.md). A coarse N trades executedMs resolution (± N ms)
 * for a cluster that is not loaded by its own measurement.
 */
export function execPollMs(env: NodeJS.ProcessEnv = process.env): number | null {
  const v = env.PARABFT_BENCH_EXEC_POLL_MS;
  if (v === undefined || v === "") return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 60_000)
    throw new Error(`PARABFT_BENCH_EXEC_POLL_MS must be an integer of 1-60000 ms (got ${v})`);
  return n;
}

/**
 * PARABFT_BENCH_EXEC_FEED=0: never ask the stream for the executed height (the watcher polls as
 * before the feed existed). Default on: StreamBlocks with `executed` set carries the watched
 * node's executed height, pushed as it rises, and the watcher sends no GetStatus at all; a node
 * that predates the feed (its messages carry no executed height) is polled as before.
 */
export function execFeed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.PARABFT_BENCH_EXEC_FEED !== "0";
}

/** How the executed latency is measured, for the report's setup. */
export function executedMethod(pollMs: number | null = execPollMs(), feed: boolean = execFeed()): string {
  const polled = `watcher node's GetStatus executed_height, polled every ${STATUS_POLL_MS} ms while a streamed block awaits execution (every ${STATUS_IDLE_POLL_MS} ms otherwise)`;
  if (pollMs !== null)
    return `watcher node's GetStatus executed_height, polled every ${pollMs} ms (PARABFT_BENCH_EXEC_POLL_MS; resolution ± ${pollMs} ms)`;
  return feed
    ? `watcher node's executed height pushed on its StreamBlocks (executed feed); nodes without the feed: ${polled}`
    : polled;
}

export class ChainWatcher {
  /** tx hash (hex) -> pending transaction slot. */
  readonly pending = new Map<string, (height: number, at: number) => void>();
  executedHeight = 0;
  committedHeight = 0;
  readonly onExecuted: ((height: number, at: number) => void)[] = [];

  /**
   * Calls `mark(i, at)` for every transaction slot of `byHeight` (height -> slots) once the
   * watched node has executed its height, and forgets the height. Returns the unsubscribe.
   */
  trackExecuted(byHeight: Map<number, number[]>, mark: (i: number, at: number) => void): () => void {
    const onExecuted = (h: number, at: number) => {
      for (const [height, list] of byHeight) {
        if (height > h) continue;
        for (const i of list) mark(i, at);
        byHeight.delete(height);
      }
    };
    this.onExecuted.push(onExecuted);
    return () => {
      const k = this.onExecuted.indexOf(onExecuted);
      if (k >= 0) this.onExecuted.splice(k, 1);
    };
  }
  readonly blocks: { height: bigint; header: BlockHeader | null; certificate: CommitCertificate | null }[] =
    [];
  blocksSeen = 0;
  lastError: string | null = null;
  readonly #abort = new AbortController();
  #loops: Promise<void>[] = [];
  #wake: (() => void) | null = null;
  /** Wakes the status loop when the stream's feed state changes. */
  #feedWake: (() => void) | null = null;

  /** PARABFT_BENCH_EXEC_POLL_MS, or null: fast polling while a block awaits execution. */
  readonly #pollMs: number | null;
  /** The stream is asked for the executed height (no poll interval given and the feed not off). */
  readonly #askFeed: boolean;
  /**
   * Whether the current stream carries the executed height: null until the first message, then
   * true (no GetStatus polling) or false (a node without the feed, or a broken stream: polled as
   * before until a stream's message carries the height).
   */
  feed: boolean | null = null;
  /** GetStatus calls the watcher made (the measurement's own load on the watched node). */
  statusCalls = 0;

  constructor(
    private readonly clients: ParabftClient[],
    private fromHeight: bigint,
    pollMs: number | null = execPollMs(),
    feed: boolean = execFeed(),
  ) {
    this.#pollMs = pollMs;
    this.#askFeed = pollMs === null && feed;
  }

  /** The watched node executed up to `h` (seen at `at`). */
  #executedTo(h: number, at: number): void {
    if (h <= this.executedHeight) return;
    this.executedHeight = h;
    for (const cb of this.onExecuted) cb(h, at);
  }

  start(): void {
    this.#loops = [this.#streamLoop(), this.#statusLoop()];
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
  }

  async #streamLoop(): Promise<void> {
    let attempt = 0;
    while (!this.#abort.signal.aborted) {
      // Reconnect to the next node if the stream breaks (a node restarting mid-run).
      const client = this.clients[attempt % this.clients.length]!;
      try {
        for await (const res of client.streamBlocks(this.fromHeight, {
          signal: this.#abort.signal,
          executed: this.#askFeed,
        })) {
          const at = performance.now();
          if (this.#askFeed) {
            const fed = res.executedHeight !== undefined;
            if (this.feed !== fed) {
              this.feed = fed;
              this.#feedWake?.();
            }
            if (fed) this.#executedTo(Number(res.executedHeight), at);
            // An executed-height update, not a block.
            if (fed && res.height === 0n) continue;
          }
          const height = Number(res.height);
          this.fromHeight = res.height + 1n;
          this.committedHeight = Math.max(this.committedHeight, height);
          this.blocksSeen++;
          this.blocks.push({
            height: res.height,
            header: res.block?.header ?? null,
            certificate: res.certificate ?? null,
          });
          this.#wake?.();
          for (const tx of res.block?.txs ?? []) {
            const k = toHex(sha256(tx.body));
            const cb = this.pending.get(k);
            if (cb) {
              this.pending.delete(k);
              cb(height, at);
            }
          }
        }
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
      }
      attempt++;
      if (this.#abort.signal.aborted) break;
      // The stream broke: the executed height is polled (as without the feed) until the next
      // stream's first message says it carries the height again.
      if (this.feed !== false) {
        this.feed = false;
        this.#feedWake?.();
      }
      await sleep(100);
    }
  }

  /** Sleeps `ms`, or less when the watcher stops. */
  #sleepOrStop(ms: number): Promise<void> {
    const signal = this.#abort.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async #statusLoop(): Promise<void> {
    const client = this.clients[0]!;
    while (!this.#abort.signal.aborted) {
      if (this.feed === true || (this.feed === null && this.#askFeed)) {
        // The stream carries the executed height (or its first message will say whether it
        // does): nothing to ask until it does not (an older node, a broken stream).
        const signal = this.#abort.signal;
        await new Promise<void>((resolve) => {
          const done = () => {
            signal.removeEventListener("abort", done);
            this.#feedWake = null;
            resolve();
          };
          this.#feedWake = done;
          signal.addEventListener("abort", done, { once: true });
        });
        continue;
      }
      try {
        this.statusCalls++;
        const s = await client.getStatus();
        this.#executedTo(Number(s.executedHeight), performance.now());
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
      }
      if (this.#pollMs !== null) await this.#sleepOrStop(this.#pollMs);
      else if (this.committedHeight > this.executedHeight) await sleep(STATUS_POLL_MS);
      else {
        // Idle: sleep until the stream brings a block (or the idle period ends).
        await Promise.race([
          sleep(STATUS_IDLE_POLL_MS),
          new Promise<void>((resolve) => {
            this.#wake = resolve;
          }),
        ]);
        this.#wake = null;
      }
    }
  }
}

/** A fixed client-side bound per connection, below the API's per-connection in-flight limit. */

// ---------------------------------------------------------------------------------------------
// Final check: what we counted as committed is in the chain

/** How long the chain check waits for nodes to execute the last height the watcher saw. */
const CATCH_UP_WAIT_MS = 60_000;

/** The clients whose node has committed and executed `height`, waiting up to `waitMs` for all. */
export async function nodesAtHeight(
  clients: ParabftClient[],
  height: bigint,
  waitMs: number,
): Promise<ParabftClient[]> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const ready: ParabftClient[] = [];
    for (const c of clients) {
      const s = await c.getStatus().catch(() => null);
      if (s !== null && s.committedHeight >= height && s.executedHeight >= height) ready.push(c);
    }
    if (ready.length === clients.length || performance.now() > deadline) return ready;
    await sleep(200);
  }
}

export async function verifyChain(
  ctx: RunContext,
  clients: ParabftClient[],
  chainId: string,
  receiptSample = 1000,
  certificateSample = 12,
): Promise<ChainVerification> {
  const out: ChainVerification = {
    checked: 0,
    inChain: 0,
    missing: 0,
    heightMismatch: 0,
    receiptsChecked: 0,
    receiptStatus: {},
    receiptErrors: {},
    certificatesChecked: 0,
    certificatesValid: 0,
    certificateFailures: [],
  };
  const log = ctx.committedLog;
  const receiptEvery = Math.max(1, Math.ceil(log.length / receiptSample));
  let cursor = 0;
  // Only nodes that have executed every height the watcher saw can answer for all of it: on a busy
  // host a backup may trail the watcher by seconds, and its "not found" would be no loss.
  const top = log.reduce((m, e) => (e.height > m ? e.height : m), 0);
  const caughtUp = await nodesAtHeight(clients, BigInt(top), CATCH_UP_WAIT_MS);
  const askable = caughtUp.length > 0 ? caughtUp : clients;
  // A few parallel lookups per node; each tx is asked of a node other than the watcher's when possible.
  const workers = Array.from({ length: Math.min(32, Math.max(1, log.length)) }, async (_, wi) => {
    const client = askable[(wi + 1) % askable.length]!;
    while (cursor < log.length) {
      const j = cursor++;
      const { hash, height } = log[j]!;
      out.checked++;
      try {
        const got = await client.getTx(hash);
        if (got === null) out.missing++;
        else if (Number(got.height) !== height) out.heightMismatch++;
        else out.inChain++;
      } catch {
        out.missing++;
      }
      if (j % receiptEvery === 0) {
        try {
          const r = await client.getReceipt(hash);
          const k = r === null ? "NONE" : (TxStatus[r.status] ?? String(r.status));
          out.receiptStatus[k] = (out.receiptStatus[k] ?? 0) + 1;
          if (r !== null && r.status !== TxStatus.OK) {
            const e = r.error || k;
            out.receiptErrors[e] = (out.receiptErrors[e] ?? 0) + 1;
          }
          out.receiptsChecked++;
        } catch {
          out.receiptStatus.ERROR = (out.receiptStatus.ERROR ?? 0) + 1;
        }
      }
    }
  });
  await Promise.all(workers);

  // Certificates of a spread of blocks, checked like a light client against GetValidators.
  const withCert = ctx.watcher.blocks.filter((b) => b.certificate !== null);
  const step = Math.max(1, Math.floor(withCert.length / certificateSample));
  const sets = new Map<bigint, Awaited<ReturnType<ParabftClient["getValidators"]>>>();
  for (let i = 0; i < withCert.length && out.certificatesChecked < certificateSample; i += step) {
    const b = withCert[i]!;
    const cert = b.certificate!;
    try {
      let set = sets.get(cert.epoch);
      if (!set) {
        set = await clients[0]!.getValidators(cert.epoch);
        sets.set(cert.epoch, set);
      }
      const subject = b.header ? b.header : ({ kind: "null", epoch: cert.epoch, height: b.height } as const);
      const v = verifyCommitCertificate(subject, cert, set, chainId);
      out.certificatesChecked++;
      if (v.ok) out.certificatesValid++;
      else out.certificateFailures.push(`height ${b.height}: ${v.reason}: ${v.message}`);
    } catch (err) {
      out.certificatesChecked++;
      out.certificateFailures.push(`height ${b.height}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return out;
}
