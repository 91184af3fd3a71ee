// Load and invariant checks shared by the multi-process cluster tests.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fromHex, ParabftClient, signTx, TxSigner, toHex, transferTx } from "../../src/client/node.js";
import type { PreparedTx } from "../../src/client/signer.js";
import { TxStatus } from "../../src/gen/parabft/v1/types_pb.js";
import type { LocalCluster } from "./harness.js";

export { setTimeout as sleep } from "node:timers/promises";

export async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs: number,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`,
  );
}

/**
 * What every node says about itself (GetStatus, or why it did not answer) and the tail of its log:
 * printed when a cluster test times out waiting for progress, so a CI failure can be diagnosed.
 */
export async function clusterReport(
  cluster: LocalCluster,
  clients: ParabftClient[],
  logLines = 25,
): Promise<string> {
  const parts: string[] = [];
  for (let i = 0; i < clients.length; i++) {
    let status: string;
    try {
      const s = await clients[i]!.getStatus();
      status = `state=${s.state} view=${s.view} primary=${s.primary} committed=${s.committedHeight} executed=${s.executedHeight} stable=${s.stableCheckpoint} peers=${s.peersConnected} mempool=${s.mempoolSize}`;
    } catch (err) {
      status = `no status: ${err instanceof Error ? err.message : String(err)}`;
    }
    parts.push(
      `node ${i} (${cluster.isRunning(i) ? "running" : "not running"}): ${status}\n${cluster.logTail(i, logLines)}`,
    );
  }
  return parts.join("\n");
}

export async function signerOf(keyFile: string): Promise<TxSigner> {
  const json = JSON.parse(await readFile(keyFile, "utf8")) as { secretKey: string };
  return new TxSigner(Buffer.from(json.secretKey, "hex"));
}

export function clientsFor(cluster: LocalCluster): ParabftClient[] {
  return cluster.apiAddresses.map((a) => new ParabftClient(a, { deadlineMs: 5000 }));
}

export function closeAll(clients: ParabftClient[]): void {
  for (const c of clients) c.close();
}

export interface Ack {
  hash: string;
  height: bigint;
  latencyMs: number;
}

/**
 * Closed-loop transfer load: each sender sends one transaction at a time (consecutive nonces),
 * rotating over the live nodes. A transaction is acknowledged when SubmitTxAndWait answers
 * "committed". Failed attempts are retried with the same signed bytes, so a retry can never
 * commit a second copy.
 */
export class TransferLoad {
  readonly acks: Ack[] = [];
  readonly errors: string[] = [];
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly skip = new Set<number>();

  constructor(
    private readonly cluster: LocalCluster,
    private readonly clients: ParabftClient[],
    private readonly senders: TxSigner[],
    private readonly recipient: Uint8Array,
  ) {}

  /** Stop sending to node i (it is down or about to be). */
  avoid(i: number): void {
    this.skip.add(i);
  }

  allow(i: number): void {
    this.skip.delete(i);
  }

  start(): void {
    this.senders.forEach((s, k) => {
      this.loops.push(this.run(s, k));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private async run(sender: TxSigner, k: number): Promise<void> {
    let nonce = (await this.clients[0]!.getAccount(sender.address)).nonce;
    let turn = k;
    while (!this.stopped) {
      const tx: PreparedTx = signTx(
        transferTx({ chainId: this.cluster.chainId, sender: sender.publicKey, nonce }, this.recipient, 1n),
        sender,
      );
      const t0 = performance.now();
      for (;;) {
        const i = this.pickNode(turn++);
        try {
          const res = await this.clients[i]!.submitAndWait(tx, { timeoutMs: 8000 });
          this.acks.push({ hash: toHex(res.txHash), height: res.height, latencyMs: performance.now() - t0 });
          break;
        } catch (err) {
          this.errors.push(`node ${i}: ${err instanceof Error ? err.message : String(err)}`);
          // A committed tx with an executed nonce is answered as DUPLICATE/BAD_NONCE on retry.
          const committed = await this.findCommitted(tx);
          if (committed !== null) {
            this.acks.push({ hash: toHex(tx.hash), height: committed, latencyMs: performance.now() - t0 });
            break;
          }
          if (this.stopped) return;
          await sleep(100);
        }
      }
      nonce++;
    }
  }

  private async findCommitted(tx: PreparedTx): Promise<bigint | null> {
    for (let i = 0; i < this.clients.length; i++) {
      if (this.skip.has(i)) continue;
      try {
        const found = await this.clients[i]!.getTx(tx.hash);
        if (found) return found.height;
      } catch {
        // Node down: ask the next one.
      }
    }
    return null;
  }

  private pickNode(turn: number): number {
    const n = this.clients.length;
    for (let j = 0; j < n; j++) {
      const i = (turn + j) % n;
      if (!this.skip.has(i)) return i;
    }
    return turn % n;
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Waits until every listed node has committed and executed at least `height`. */
export async function waitAllAtHeight(
  clients: ParabftClient[],
  nodes: number[],
  height: bigint,
  timeoutMs: number,
) {
  await until(
    `nodes ${nodes.join(",")} at height ${height}`,
    async () => {
      for (const i of nodes) {
        const s = await clients[i]!.getStatus();
        if (s.committedHeight < height || s.executedHeight < height) return false;
      }
      return true;
    },
    timeoutMs,
  );
}

/**
 * The safety checks of DESIGN §10 on a quiesced cluster:
 *  - every listed node has the same block digest at every height up to the lowest committed height;
 *  - every acknowledged transaction is in the chain and takes effect exactly once: its receipt
 *    (not DUPLICATE) sits at its first inclusion. A later inclusion can only come from a view
 *    change that re-proposed a prepared block while the same transaction was proposed again
 *    (DESIGN §4); execution then answers it DUPLICATE and it has no effect.
 * Returns the number of heights compared and the count of such duplicate inclusions.
 */
export async function checkChain(
  clients: ParabftClient[],
  nodes: number[],
  acks: readonly Ack[],
): Promise<bigint> {
  const statuses = await Promise.all(nodes.map((i) => clients[i]!.getStatus()));
  const top = statuses.reduce(
    (m, s) => (s.committedHeight < m ? s.committedHeight : m),
    statuses[0]!.committedHeight,
  );
  const inclusions = new Map<string, bigint[]>();
  for (let h = 1n; h <= top; h++) {
    const blocks = await Promise.all(nodes.map((i) => clients[i]!.getBlock({ height: h })));
    const digests = blocks.map((b) => (b ? toHex(b.digest) : "missing"));
    assert.ok(
      digests.every((d) => d === digests[0] && d !== "missing"),
      `height ${h}: nodes ${nodes.join(",")} disagree or miss the block: ${digests.join(" ")}`,
    );
    for (const tx of blocks[0]!.block?.txs ?? []) {
      const hash = createHash("sha256").update(tx.body).digest("hex");
      inclusions.set(hash, [...(inclusions.get(hash) ?? []), h]);
    }
  }
  let duplicates = 0;
  for (const [hash, heights] of inclusions) {
    if (heights.length === 1) continue;
    duplicates += heights.length - 1;
    const receipt = await clients[nodes[0]!]!.getReceipt(fromHex(hash));
    assert.ok(receipt, `tx ${hash} included at ${heights.join(",")} has no receipt`);
    assert.equal(
      receipt.height,
      heights[0],
      `tx ${hash} took effect at ${receipt.height}, not its first inclusion`,
    );
    assert.notEqual(receipt.status, TxStatus.DUPLICATE, `tx ${hash}: its effective receipt is DUPLICATE`);
  }
  for (const a of acks) {
    if (a.height > top) continue;
    const heights = inclusions.get(a.hash);
    assert.ok(heights, `acknowledged tx ${a.hash} (height ${a.height}) is missing from the chain`);
    assert.equal(
      heights[0],
      a.height,
      `acknowledged tx ${a.hash} was acknowledged at ${a.height}, first included at ${heights[0]}`,
    );
  }
  if (duplicates > 0)
    console.log(`# checkChain: ${duplicates} duplicate inclusion(s) answered DUPLICATE by execution`);
  return top;
}

/** All nodes report the same state root at the same executed height (call when idle). */
export async function checkStateRoots(clients: ParabftClient[], nodes: number[]): Promise<void> {
  const statuses = await Promise.all(nodes.map((i) => clients[i]!.getStatus()));
  const h = statuses[0]!.executedHeight;
  for (const [k, s] of statuses.entries()) {
    assert.equal(s.executedHeight, h, `node ${nodes[k]} executed ${s.executedHeight}, node ${nodes[0]} ${h}`);
    assert.equal(
      toHex(s.stateRoot),
      toHex(statuses[0]!.stateRoot),
      `node ${nodes[k]} state root differs at ${h}`,
    );
  }
}

/** Sum of the balances of `addresses`: transfers among them never change it. */
export async function totalBalance(client: ParabftClient, addresses: Uint8Array[]): Promise<bigint> {
  let sum = 0n;
  for (const a of addresses) sum += (await client.getAccount(a)).balance;
  return sum;
}

/** Reads a Prometheus counter/gauge sample (sum over label sets matching `labels`). */
export async function metricValue(metricsAddr: string, name: string, labels: Record<string, string> = {}) {
  const text = await (await fetch(`http://${metricsAddr}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
