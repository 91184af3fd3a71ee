// A fake node behind the API: a real Mempool (real signatures through node:crypto) and an
// in-memory chain whose blocks the test commits explicitly.
import { create, fromBinary } from "@bufbuild/protobuf";
import type {
  AccountRecord,
  ApiBackend,
  BlockRecord,
  BlockRef,
  NodeStatus,
  StateRecord,
  TxRecord,
} from "../../../src/api/index.js";
import { ApiError } from "../../../src/api/index.js";
import {
  type Block,
  BlockSchema,
  CommitCertificateSchema,
  type Receipt,
  ReceiptSchema,
  type SignedTx,
  TxBodySchema,
  TxStatus,
  type ValidatorSet,
  ValidatorSetSchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { Mempool, type MempoolOpts } from "../../../src/mempool/index.js";
import { addressOf, blockDigest, type Hash, toHex, txHash, txsRoot } from "../../../src/types/index.js";
import { CHAIN, countingVerifier } from "../mempool/helpers.js";

type Waiter<T> = { resolve: (v: T) => void };

export class FakeNode implements ApiBackend {
  readonly mempool: Mempool;
  readonly blocks: BlockRecord[] = [];
  private readonly txIndex = new Map<string, TxRecord>();
  private readonly receipts = new Map<string, Receipt>();
  private readonly nonces = new Map<string, bigint>();
  readonly state = new Map<string, Uint8Array>();
  readonly validators = new Map<bigint, ValidatorSet>();
  private ready = false;
  private readonly readyListeners = new Set<(r: boolean) => void>();
  private readonly blockListeners = new Set<(b: BlockRecord) => void>();
  private readonly executedListeners = new Set<(height: bigint) => void>();
  /** Set: execution stops at this height until executeTo moves it (StreamBlocks' executed feed). */
  private heldExecutedAt: bigint | null = null;
  private readonly commitWaiters = new Map<string, Set<Waiter<bigint>>>();
  private readonly execWaiters = new Map<string, Set<Waiter<Receipt>>>();
  /** Commit every admitted tx in its own block on the next tick. */
  autoCommit = false;
  /** When set, every query throws this error (e.g. a syncing node). */
  failWith: Error | null = null;

  constructor(mempoolOpts: Partial<MempoolOpts> = {}) {
    this.mempool = new Mempool(
      {
        chainId: CHAIN,
        maxTxs: 100,
        maxBytes: 1 << 20,
        maxPerSender: 50,
        maxTxBytes: 16 * 1024,
        maxNonceGap: 10,
        ...mempoolOpts,
      },
      {
        verifyTxs: countingVerifier().fn,
        nextNonce: (a) => this.nonces.get(toHex(a)) ?? 0n,
        log: silentLogger(),
      },
    );
    this.validators.set(
      0n,
      create(ValidatorSetSchema, {
        epoch: 0n,
        validators: [{ publicKey: new Uint8Array(32).fill(9), power: 1n }],
      }),
    );
  }

  get subscribers(): number {
    return this.blockListeners.size;
  }

  setReady(r: boolean): void {
    this.ready = r;
    for (const l of this.readyListeners) l(r);
  }

  /** Commits and executes everything reapable as one block. */
  commitBlock(): BlockRecord {
    const reaped = this.mempool.reap(1000, 1 << 20);
    return this.commitTxs(reaped.txs);
  }

  commitTxs(txs: SignedTx[]): BlockRecord {
    const height = BigInt(this.blocks.length + 1);
    const block: Block = create(BlockSchema, {
      header: { chainId: CHAIN, height, txsRoot: txsRoot(txs.map(txHash)), timestampMs: 1000n + height },
      txs,
    });
    const digest = blockDigest(block.header!);
    const certificate = create(CommitCertificateSchema, { height, blockDigest: digest });
    const rec: BlockRecord = { height, digest, block, certificate };
    this.blocks.push(rec);
    this.mempool.removeCommitted(txs, height);
    txs.forEach((tx, index) => {
      const hex = toHex(txHash(tx));
      this.txIndex.set(hex, { tx, height, index });
      const body = fromBinary(TxBodySchema, tx.body);
      const addr = toHex(addressOf(body.sender));
      this.nonces.set(addr, body.nonce + 1n);
      const receipt = create(ReceiptSchema, { txHash: txHash(tx), height, index, status: TxStatus.OK });
      this.receipts.set(hex, receipt);
      for (const w of this.commitWaiters.get(hex) ?? []) w.resolve(height);
      for (const w of this.execWaiters.get(hex) ?? []) w.resolve(receipt);
    });
    this.mempool.markExecuted(height);
    for (const l of this.blockListeners) l(rec);
    return rec;
  }

  private check(): void {
    if (this.failWith) throw this.failWith;
  }

  async submitTx(tx: SignedTx): Promise<Hash> {
    this.check();
    const { hash } = await this.mempool.add(tx, "api");
    if (this.autoCommit) setImmediate(() => this.commitBlock());
    return hash;
  }

  private wait<T>(
    waiters: Map<string, Set<Waiter<T>>>,
    hash: Hash,
    now: () => T | undefined,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<T> {
    const hex = toHex(hash);
    const have = now();
    if (have !== undefined) return Promise.resolve(have);
    return new Promise<T>((resolve, reject) => {
      const set = waiters.get(hex) ?? new Set<Waiter<T>>();
      waiters.set(hex, set);
      const cleanup = () => {
        clearTimeout(timer);
        set.delete(w);
        signal.removeEventListener("abort", onAbort);
      };
      const w: Waiter<T> = {
        resolve: (v) => {
          cleanup();
          resolve(v);
        },
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ApiError("TIMEOUT", {}, `not committed within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = () => {
        cleanup();
        reject(new ApiError("CANCELLED", {}, "wait cancelled"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      set.add(w);
    });
  }

  /** Commit waits still registered (a cancelled or finished call must leave none behind). */
  get pendingCommitWaits(): number {
    let n = 0;
    for (const set of this.commitWaiters.values()) n += set.size;
    return n;
  }

  waitCommitted(hash: Hash, timeoutMs: number, signal: AbortSignal): Promise<bigint> {
    return this.wait(
      this.commitWaiters,
      hash,
      () => this.txIndex.get(toHex(hash))?.height,
      timeoutMs,
      signal,
    );
  }

  waitExecuted(hash: Hash, timeoutMs: number, signal: AbortSignal): Promise<Receipt> {
    return this.wait(this.execWaiters, hash, () => this.receipts.get(toHex(hash)), timeoutMs, signal);
  }

  async getTx(hash: Hash): Promise<TxRecord | null> {
    this.check();
    return this.txIndex.get(toHex(hash)) ?? null;
  }

  async getReceipt(hash: Hash): Promise<Receipt | null> {
    this.check();
    return this.receipts.get(toHex(hash)) ?? null;
  }

  async getBlock(ref: BlockRef): Promise<BlockRecord | null> {
    this.check();
    if ("height" in ref) return this.blocks[Number(ref.height) - 1] ?? null;
    const hex = toHex(ref.digest);
    return this.blocks.find((b) => toHex(b.digest) === hex) ?? null;
  }

  async getAccount(address: Uint8Array): Promise<AccountRecord> {
    this.check();
    return { balance: 1000n, nonce: this.nonces.get(toHex(address)) ?? 0n, height: this.committedHeight() };
  }

  async getState(key: Uint8Array): Promise<StateRecord> {
    this.check();
    return { value: this.state.get(toHex(key)) ?? null, height: this.committedHeight() };
  }

  async getValidators(epoch: bigint): Promise<ValidatorSet | null> {
    this.check();
    return this.validators.get(epoch) ?? null;
  }

  async getStatus(): Promise<NodeStatus> {
    this.check();
    return {
      chainId: CHAIN,
      validatorIndex: 2,
      state: this.ready ? "validating" : "syncing",
      committedHeight: this.committedHeight(),
      executedHeight: this.executedHeight(),
      view: 3n,
      primary: 1,
      epoch: 0n,
      stableCheckpoint: 0n,
      peersConnected: 3,
      mempoolSize: this.mempool.size,
      stateRoot: new Uint8Array(32).fill(5),
    };
  }

  committedHeight(): bigint {
    return BigInt(this.blocks.length);
  }

  executedHeight(): bigint {
    return this.heldExecutedAt ?? BigInt(this.blocks.length);
  }

  /** From now on the executed height stays where it is until executeTo moves it. */
  holdExecution(): void {
    this.heldExecutedAt = this.executedHeight();
  }

  /** The held executed height rises to `height` (and the executed subscribers hear of it). */
  executeTo(height: bigint): void {
    this.heldExecutedAt = height;
    for (const l of this.executedListeners) l(height);
  }

  subscribeBlocks(onBlock: (block: BlockRecord) => void): () => void {
    this.blockListeners.add(onBlock);
    return () => this.blockListeners.delete(onBlock);
  }

  subscribeExecuted(onExecuted: (height: bigint) => void): () => void {
    this.executedListeners.add(onExecuted);
    return () => this.executedListeners.delete(onExecuted);
  }

  get executedSubscribers(): number {
    return this.executedListeners.size;
  }

  isReady(): boolean {
    return this.ready;
  }

  onReadyChange(listener: (ready: boolean) => void): () => void {
    this.readyListeners.add(listener);
    return () => this.readyListeners.delete(listener);
  }
}
