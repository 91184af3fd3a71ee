// The history recorder: client operations through the SDK (src/client) against the live
// validators, each recorded with its invocation and completion time and an outcome: ok, fail
// (definitely no effect) or info (unknown: may or may not have taken effect).
//  - bank: each sender transfers small amounts among the bank accounts, one at a time with
//    consecutive nonces; a failed attempt is retried with the same signed bytes (so it can never
//    commit twice) and resolved by looking the transaction up;
//  - kv: each process does put / compare-and-set / read on a few keys; reads are fenced: they are
//    answered only by a node whose state is at least as new as every operation already completed
//    (as a linearizable read through a quorum would be);
//  - pollers sample every node's (executed height, state root), the commit timeline, and
//    consistent bank snapshots (every balance read at the same height).
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  kvCasTx,
  kvPutTx,
  type ParabftClient,
  type PreparedTx,
  signTx,
  TxSigner,
  toHex,
  transferTx,
} from "../../../src/client/node.js";
import { TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { kvKey } from "../../../src/types/stateKeys.js";
import type {
  BankSnapshot,
  Inclusion,
  KvOp,
  NodeChain,
  ReceiptInfo,
  StateRootSample,
  TxRecord,
} from "./checkers.js";

/** What the recorder needs from a cluster (DockerCluster implements it). */
export interface Target {
  readonly size: number;
  readonly chainId: string;
  client(i: number): ParabftClient;
}

export interface BankOp extends TxRecord {
  sender: number;
  invokeMs: number;
  completeMs?: number;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
const now = () => performance.now();

export class History {
  readonly bank: BankOp[] = [];
  readonly kv: KvOp[] = [];
  readonly kvTx: TxRecord[] = [];
  readonly snapshots: BankSnapshot[] = [];
  readonly roots: StateRootSample[] = [];
  /** (time, highest committed height seen) whenever it grew. */
  readonly commits: { t: number; height: bigint }[] = [];
  /** Nodes the clients may use; scenarios remove the ones they take down. */
  readonly live: Set<number>;
  private fence = 0n;
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private turn = 0;
  readonly errors: string[] = [];

  constructor(
    private readonly target: Target,
    private readonly bankSigners: TxSigner[],
    private readonly kvSigners: TxSigner[],
    readonly keys: string[] = ["k0", "k1"],
    private readonly validatorAccounts: Uint8Array[] = [],
  ) {
    this.live = new Set(Array.from({ length: target.size }, (_, i) => i));
  }

  static async fromKeyFiles(
    target: Target,
    bankFiles: string[],
    kvFiles: string[],
    validatorAccounts: Uint8Array[] = [],
  ): Promise<History> {
    const { readFile } = await import("node:fs/promises");
    const load = async (f: string) =>
      TxSigner.fromKeyJson(JSON.parse(await readFile(f, "utf8")) as { secretKey: string });
    return new History(
      target,
      await Promise.all(bankFiles.map(load)),
      await Promise.all(kvFiles.map(load)),
      undefined,
      validatorAccounts,
    );
  }

  /**
   * Every account whose balance the run moves: the bank senders, the kv writers (they pay fees),
   * the validators' own accounts (a node pays for the SubmitEvidence transactions it sends when
   * it sees a validator equivocate) and the fee collector (the all-zero address); their total is
   * conserved.
   */
  get bankAddresses(): Uint8Array[] {
    return [...this.bankSigners, ...this.kvSigners]
      .map((s) => s.address)
      .concat(this.validatorAccounts, [new Uint8Array(20)]);
  }

  avoid(i: number): void {
    this.live.delete(i);
  }

  allow(i: number): void {
    this.live.add(i);
  }

  start(): void {
    this.bankSigners.forEach((s, k) => {
      this.loops.push(this.guard(`bank ${k}`, this.bankLoop(s, k)));
    });
    this.kvSigners.forEach((s, p) => {
      this.loops.push(this.guard(`kv ${p}`, this.kvLoop(s, p)));
    });
    this.loops.push(this.guard("status", this.statusLoop()));
    this.loops.push(this.guard("snapshots", this.snapshotLoop()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** Acknowledged bank transfers so far. */
  get acked(): number {
    return this.bank.filter((b) => b.outcome === "ok").length;
  }

  private async guard(name: string, p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (err) {
      this.errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private pick(): number {
    const live = [...this.live].sort();
    if (live.length === 0) return 0;
    return live[this.turn++ % live.length]!;
  }

  private async anyNode<T>(fn: (c: ParabftClient, i: number) => Promise<T>): Promise<T> {
    let last: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      const i = this.pick();
      try {
        return await fn(this.target.client(i), i);
      } catch (err) {
        last = err;
        await sleep(200);
      }
    }
    throw last;
  }

  private raiseFence(h: bigint): void {
    if (h > this.fence) this.fence = h;
  }

  /**
   * Submits until acknowledged or the recorder stops; after a failed attempt the transaction is
   * looked up, since it may have committed. Returns the height and receipt, or null (unknown).
   */
  private async submit(
    tx: PreparedTx,
    waitExecuted: boolean,
  ): Promise<{ height: bigint; status?: TxStatus; error?: string } | null> {
    for (;;) {
      const i = this.pick();
      try {
        const r = await this.target.client(i).submitAndWait(tx, { timeoutMs: 5000, waitExecuted });
        return { height: r.height, status: r.receipt?.status, error: r.receipt?.error };
      } catch (err) {
        this.errors.push(`submit via ${i}: ${err instanceof Error ? err.message : String(err)}`);
      }
      for (const j of [...this.live]) {
        try {
          const rc = await this.target.client(j).getReceipt(tx.hash);
          if (rc) return { height: rc.height, status: rc.status, error: rc.error };
          if (!waitExecuted) {
            const found = await this.target.client(j).getTx(tx.hash);
            if (found) return { height: found.height };
          }
        } catch {
          // that node is down or cut off: ask the next one
        }
      }
      if (this.stopped) return null;
      await sleep(200);
    }
  }

  private async bankLoop(sender: TxSigner, k: number): Promise<void> {
    let nonce = (await this.anyNode((c) => c.getAccount(sender.address))).nonce;
    const others = this.bankSigners.filter((_, j) => j !== k);
    while (!this.stopped) {
      const to = others[Math.floor(Math.random() * others.length)]!.address;
      const tx = signTx(
        transferTx({ chainId: this.target.chainId, sender: sender.publicKey, nonce }, to, 1n + BigInt(k)),
        sender,
      );
      const op: BankOp = { hash: toHex(tx.hash), outcome: "info", sender: k, invokeMs: now() };
      this.bank.push(op);
      const r = await this.submit(tx, false);
      if (r === null) return; // unknown: this sender's nonce is uncertain from here on
      op.outcome = "ok";
      op.ackHeight = r.height;
      op.completeMs = now();
      this.raiseFence(r.height);
      nonce++;
    }
  }

  private async kvLoop(sender: TxSigner, p: number): Promise<void> {
    let nonce = (await this.anyNode((c) => c.getAccount(sender.address))).nonce;
    const lastSeen = new Map<string, string | null>();
    let canWrite = true;
    for (let seq = 0; !this.stopped; seq++) {
      const key = this.keys[Math.floor(Math.random() * this.keys.length)]!;
      const r = Math.random();
      if (r < 0.4 || !canWrite) {
        const op = await this.read(p, key);
        if (op) {
          this.kv.push(op);
          lastSeen.set(key, op.result as string | null);
        }
        if (!canWrite) await sleep(200);
        continue;
      }
      const value = `p${p}s${seq}`;
      const isCas = r >= 0.7;
      const expected = lastSeen.get(key) ?? null;
      const body = isCas
        ? kvCasTx(
            { chainId: this.target.chainId, sender: sender.publicKey, nonce },
            utf8.encode(key),
            expected === null ? null : utf8.encode(expected),
            utf8.encode(value),
          )
        : kvPutTx(
            { chainId: this.target.chainId, sender: sender.publicKey, nonce },
            utf8.encode(key),
            utf8.encode(value),
          );
      const tx = signTx(body, sender);
      const op: KvOp = {
        process: p,
        key,
        call: isCas ? { f: "cas", expected, value } : { f: "put", value },
        outcome: "info",
        invokeMs: now(),
        completeMs: Number.POSITIVE_INFINITY,
      };
      const rec: TxRecord = { hash: toHex(tx.hash), outcome: "info" };
      op.tx = rec.hash;
      this.kv.push(op);
      this.kvTx.push(rec);
      const res = await this.submit(tx, true);
      if (res === null || res.status === undefined) {
        canWrite = false; // unknown outcome: the nonce is uncertain
        continue;
      }
      op.completeMs = now();
      rec.outcome = "ok";
      rec.ackHeight = res.height;
      this.raiseFence(res.height);
      nonce++;
      if (res.status === TxStatus.OK) {
        op.outcome = "ok";
        op.result = isCas ? true : undefined;
        lastSeen.set(key, value);
      } else if (isCas && /CAS_MISMATCH/.test(res.error ?? "")) {
        op.outcome = "ok";
        op.result = false;
      } else {
        op.outcome = "fail"; // executed as failed: no effect on the register
        this.errors.push(`kv ${p}: ${key} failed: ${res.error}`);
      }
    }
  }

  /** A fenced read; null when no node at or above the fence answered in time (no effect). */
  private async read(p: number, key: string): Promise<KvOp | null> {
    const invokeMs = now();
    const fence = this.fence;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !this.stopped) {
      const i = this.pick();
      try {
        const res = await this.target.client(i).getState(kvKey(utf8.encode(key)));
        if (res.height >= fence) {
          this.raiseFence(res.height);
          return {
            process: p,
            key,
            call: { f: "read" },
            outcome: "ok",
            result: res.found ? fromUtf8.decode(res.value) : null,
            invokeMs,
            completeMs: now(),
            node: i,
            height: res.height,
          };
        }
      } catch {
        // try another node
      }
      await sleep(50);
    }
    return null;
  }

  private async statusLoop(): Promise<void> {
    let top = 0n;
    while (!this.stopped) {
      await Promise.all(
        [...this.live].map(async (i) => {
          try {
            const s = await this.target.client(i).getStatus();
            this.roots.push({ node: i, executedHeight: s.executedHeight, stateRoot: toHex(s.stateRoot) });
            if (s.committedHeight > top) {
              top = s.committedHeight;
              this.commits.push({ t: now(), height: top });
            }
          } catch {
            // down or cut off
          }
        }),
      );
      await sleep(400);
    }
  }

  private async snapshotLoop(): Promise<void> {
    while (!this.stopped) {
      await sleep(1000);
      const i = this.pick();
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          const c = this.target.client(i);
          const accts = await Promise.all(this.bankAddresses.map((a) => c.getAccount(a)));
          if (accts.every((a) => a.height === accts[0]!.height)) {
            this.snapshots.push({ node: i, height: accts[0]!.height, balances: accts.map((a) => a.balance) });
            break;
          }
        } catch {
          break;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The chain collector: what every node holds once the cluster is quiet.

export interface Collected {
  chains: NodeChain[];
  inclusions: Inclusion[];
  receipts: ReceiptInfo[];
  top: bigint;
}

async function inBatches<T, R>(items: T[], size: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let k = 0; k < items.length; k += size)
    out.push(...(await Promise.all(items.slice(k, k + size).map(fn))));
  return out;
}

export async function collectChain(target: Target, nodes: number[]): Promise<Collected> {
  const statuses = await Promise.all(nodes.map((i) => target.client(i).getStatus()));
  const top = statuses.reduce(
    (m, s) => (s.committedHeight < m ? s.committedHeight : m),
    statuses[0]!.committedHeight,
  );
  const heights = Array.from({ length: Number(top) }, (_, k) => BigInt(k + 1));
  const chains: NodeChain[] = [];
  const inclusions: Inclusion[] = [];
  for (const [k, i] of nodes.entries()) {
    const c = target.client(i);
    const blocks = await inBatches(heights, 25, (h) => c.getBlock({ height: h }));
    const digests = new Map<bigint, string>();
    blocks.forEach((b, j) => {
      digests.set(heights[j]!, b ? toHex(b.digest) : "missing");
      if (k === 0) {
        for (const tx of b?.block?.txs ?? []) {
          inclusions.push({ hash: createHash("sha256").update(tx.body).digest("hex"), height: heights[j]! });
        }
      }
    });
    chains.push({ node: i, digests });
  }
  const c0 = target.client(nodes[0]!);
  const hashes = [...new Set(inclusions.map((x) => x.hash))];
  const receipts = (
    await inBatches(hashes, 25, async (hash) => {
      const r = await c0.getReceipt(Buffer.from(hash, "hex"));
      if (!r) return null;
      const status: ReceiptInfo["status"] =
        r.status === TxStatus.DUPLICATE ? "duplicate" : r.status === TxStatus.OK ? "ok" : "failed";
      return { hash, height: r.height, status };
    })
  ).filter((r): r is ReceiptInfo => r !== null);
  return { chains, inclusions, receipts, top };
}
