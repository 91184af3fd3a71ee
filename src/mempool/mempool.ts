// Transaction admission and the pool the primary reaps blocks from (DESIGN §3, §4).
// Admission runs the stateless checks, then one signature check through the injected verifier
// (a worker pool in the node), then the per-sender nonce window, dedupe and capacity. Everything
// after the verifier's await runs synchronously, so concurrent admissions cannot overfill the pool
// or admit one hash twice.
import { create, fromBinary } from "@bufbuild/protobuf";
import { type SignedTx, SignedTxSchema, type TxBody, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import type { LimitParams } from "../params/index.js";
import { addressOf, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, txHash } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import type { Hash } from "../types/hash.js";
import { MempoolError } from "./errors.js";

/** Where a transaction came from: the node gossips only what it admitted from its own API. */
export type TxOrigin = "api" | "peer" | "local";

/**
 * Verifies each transaction's signature over txSignBytes(body) with the body's sender key;
 * `hashes[i]` is txHash(txs[i]), passed so the verifier need not hash again. The node passes
 * `(txs, hashes) => verifyPool.verifyTxs(txs, hashes)` (src/crypto).
 */
export type TxVerifier = (txs: readonly SignedTx[], hashes: readonly Hash[]) => Promise<boolean[]>;

/** The sender's next nonce in the latest executed state (0 for an unknown account). */
export type NonceLookup = (address: Uint8Array) => bigint | Promise<bigint>;

export interface MempoolOpts {
  chainId: string;
  maxTxs: number;
  maxBytes: number;
  /** Pending transactions per sender. */
  maxPerSender: number;
  /** Largest encoded SignedTx (params.limits.maxTxBytes). */
  maxTxBytes: number;
  /** Accept nonces up to next + maxNonceGap. */
  maxNonceGap: number;
  /**
   * Senders whose committed-but-not-yet-executed nonces are remembered (state lags commits,
   * so without this a resubmitted committed transaction would look fresh).
   */
  maxCommittedFloors?: number;
}

export const mempoolDefaults = {
  maxTxs: 100_000,
  maxBytes: 64 * 1024 * 1024,
  maxPerSender: 1_000,
  maxNonceGap: 1_000,
} as const;

export function mempoolOptsFromParams(
  chainId: string,
  limits: LimitParams,
  sizing: Partial<Omit<MempoolOpts, "chainId" | "maxTxBytes">> = {},
): MempoolOpts {
  return { chainId, maxTxBytes: limits.maxTxBytes, ...mempoolDefaults, ...sizing };
}

export interface MempoolMetrics {
  admitted(origin: TxOrigin, count: number): void;
  rejected(code: string): void;
  /** Current pool size, after each change. */
  size(txs: number, bytes: number): void;
}

export interface MempoolModules {
  verifyTxs: TxVerifier;
  /** txHash; the node injects a native implementation (src/types' is pure JS). */
  hashTx?: (tx: SignedTx) => Hash;
  nextNonce: NonceLookup;
  log: Logger;
  metrics?: MempoolMetrics | null;
}

/** A decoded transaction as the pool holds it. */
export interface PoolTx {
  readonly tx: SignedTx;
  readonly body: TxBody;
  readonly hash: Hash;
  readonly hashHex: string;
  readonly sender: Uint8Array;
  /** addressOf(sender), and its hex: the account the nonce belongs to. */
  readonly address: Uint8Array;
  readonly senderKey: string;
  readonly nonce: bigint;
  /** Encoded SignedTx size: what it adds to a block. */
  readonly bytes: number;
}

export interface AddResult {
  hash: Hash;
  hashHex: string;
}

/** One entry per input of addBatch, in input order. */
export type BatchResult = { ok: true; hash: Hash; hashHex: string } | { ok: false; error: MempoolError };

export interface ReapResult {
  txs: SignedTx[];
  hashes: Hash[];
  bytes: number;
}

export type AdmittedListener = (txs: readonly PoolTx[], origin: TxOrigin) => void;

interface Entry extends PoolTx {
  /** The nonce as a number for the hot loops (a pooled nonce is within maxNonceGap of a real
   *  account's next nonce, far below 2^53). */
  readonly n: number;
  inFlight: boolean;
  /** Arrival order, for fairness across senders. */
  seq: number;
}

interface SenderQueue {
  readonly key: string;
  /** Lowest nonce that can execute next: max(state nonce, committed nonces + 1). */
  base: bigint;
  baseN: number;
  readonly byNonce: Map<number, Entry>;
  /** Length of the run base, base+1, ... present in byNonce. */
  runLength: number;
  /** What reap() can take from that run (see recount). */
  reapable: number;
  /** The run has an in-flight entry after a reapable one: nothing later in it is reapable. */
  blocked: boolean;
}

/** Wire overhead of SignedTx{body, signature}: two tags and two length varints. */
function encodedSize(bodyLen: number, sigLen: number): number {
  return 2 + varintLen(bodyLen) + bodyLen + varintLen(sigLen) + sigLen;
}

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function decodeInput(input: Uint8Array | SignedTx): { tx: SignedTx; body: TxBody } {
  let signed: SignedTx;
  try {
    signed = input instanceof Uint8Array ? fromBinary(SignedTxSchema, input) : input;
  } catch (err) {
    throw new MempoolError("MALFORMED", {}, `transaction is not a SignedTx: ${(err as Error).message}`);
  }
  let body: TxBody;
  try {
    body = fromBinary(TxBodySchema, signed.body);
  } catch (err) {
    throw new MempoolError("MALFORMED", {}, `transaction body is not a TxBody: ${(err as Error).message}`);
  }
  if (body.sender.length !== PUBLIC_KEY_LENGTH) {
    throw new MempoolError(
      "MALFORMED",
      {},
      `sender must be a ${PUBLIC_KEY_LENGTH}-byte public key, got ${body.sender.length} bytes`,
    );
  }
  if (signed.signature.length !== SIGNATURE_LENGTH) {
    throw new MempoolError(
      "MALFORMED",
      {},
      `signature must be ${SIGNATURE_LENGTH} bytes, got ${signed.signature.length}`,
    );
  }
  // Rebuild so unknown fields smuggled around the signed body never reach a block.
  return { tx: create(SignedTxSchema, { body: signed.body, signature: signed.signature }), body };
}

export class Mempool {
  private readonly byHash = new Map<string, Entry>();
  private readonly senders = new Map<string, SenderQueue>();
  /** sender -> (nonce floor from commits, commit height); cleared once execution catches up. */
  private readonly committedFloors = new Map<string, { floor: bigint; height: bigint }>();
  private readonly listeners = new Set<AdmittedListener>();
  private totalBytes = 0;
  private executable = 0;
  private inFlight = 0;
  private seq = 0;
  /** Bumped whenever commits or execution move nonces; tells whether a lookup is still current. */
  private nonceEpoch = 0;
  private running = true;
  private readonly log: Logger;

  private readonly hashTx: (tx: SignedTx) => Hash;

  constructor(
    private readonly opts: MempoolOpts,
    private readonly mod: MempoolModules,
  ) {
    this.log = mod.log;
    this.hashTx = mod.hashTx ?? txHash;
  }

  async start(): Promise<void> {
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.listeners.clear();
  }

  /** Transactions in the pool, in flight or not. */
  get size(): number {
    return this.byHash.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Proposed by this node and not yet committed. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  /**
   * Transactions that could go into the next block now: the sender's next nonce onwards with no
   * gap, not already in flight. A primary proposes while this is > 0; backups keep their request
   * timer armed.
   */
  pendingExecutable(): number {
    return this.executable;
  }

  has(hash: Hash | string): boolean {
    return this.byHash.has(typeof hash === "string" ? hash : toHex(hash));
  }

  get(hash: Hash | string): PoolTx | undefined {
    return this.byHash.get(typeof hash === "string" ? hash : toHex(hash));
  }

  /**
   * True when this exact transaction (same body and signature) was admitted, so its signature
   * was verified. A block carrying the same body with different signature bytes must be verified
   * anew: the hash covers the body only.
   */
  hasVerified(tx: SignedTx): boolean {
    const e = this.byHash.get(toHex(this.hashTx(tx)));
    if (!e) return false;
    const a = e.tx.signature;
    const b = tx.signature;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /** Called with every group of newly admitted transactions (the node gossips them). */
  onAdmitted(listener: AdmittedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Admits one transaction or throws a MempoolError naming the first failed check. */
  async add(input: Uint8Array | SignedTx, origin: TxOrigin): Promise<AddResult> {
    const [res] = await this.addBatch([input], origin);
    if (!res!.ok) throw res!.error;
    return { hash: res!.hash, hashHex: res!.hashHex };
  }

  /** Admits many transactions with one verifier call (gossip). Never throws for a bad tx. */
  async addBatch(inputs: readonly (Uint8Array | SignedTx)[], origin: TxOrigin): Promise<BatchResult[]> {
    const results: BatchResult[] = new Array(inputs.length);
    const candidates: { i: number; ptx: PoolTx }[] = [];
    for (let i = 0; i < inputs.length; i++) {
      try {
        candidates.push({ i, ptx: this.statelessCheck(inputs[i]!) });
      } catch (err) {
        results[i] = this.fail(err);
      }
    }
    if (candidates.length > 0) {
      const verdicts = await this.mod.verifyTxs(
        candidates.map((c) => c.ptx.tx),
        candidates.map((c) => c.ptx.hash),
      );
      const verified: { i: number; ptx: PoolTx }[] = [];
      for (let k = 0; k < candidates.length; k++) {
        const { i, ptx } = candidates[k]!;
        if (verdicts[k] === true) verified.push(candidates[k]!);
        else {
          results[i] = this.fail(
            new MempoolError("BAD_SIGNATURE", { hash: ptx.hashHex }, "transaction signature does not verify"),
          );
        }
      }
      // Look nonces up before the synchronous section: the lookup may read storage.
      const epoch = this.nonceEpoch;
      const bases = await Promise.all(verified.map((c) => this.mod.nextNonce(c.ptx.address)));
      const admitted: PoolTx[] = [];
      for (let k = 0; k < verified.length; k++) {
        const { i, ptx } = verified[k]!;
        try {
          this.insert(ptx, bases[k]!, epoch === this.nonceEpoch);
          admitted.push(ptx);
          results[i] = { ok: true, hash: ptx.hash, hashHex: ptx.hashHex };
        } catch (err) {
          results[i] = this.fail(err);
        }
      }
      if (admitted.length > 0) {
        this.mod.metrics?.admitted(origin, admitted.length);
        this.mod.metrics?.size(this.byHash.size, this.totalBytes);
        for (const l of this.listeners) {
          try {
            l(admitted, origin);
          } catch (err) {
            this.log.error({ err }, "mempool admission listener failed");
          }
        }
      }
    }
    return results;
  }

  private fail(err: unknown): { ok: false; error: MempoolError } {
    if (!(err instanceof MempoolError)) throw err;
    this.mod.metrics?.rejected(err.code);
    return { ok: false, error: err };
  }

  private statelessCheck(input: Uint8Array | SignedTx): PoolTx {
    if (!this.running) throw new MempoolError("MEMPOOL_STOPPED", {}, "mempool is stopped");
    const { tx, body } = decodeInput(input);
    const bytes = encodedSize(tx.body.length, tx.signature.length);
    const hash = this.hashTx(tx);
    const hashHex = toHex(hash);
    if (bytes > this.opts.maxTxBytes) {
      throw new MempoolError(
        "TX_TOO_LARGE",
        { hash: hashHex },
        `transaction is ${bytes} bytes, limit ${this.opts.maxTxBytes}`,
      );
    }
    if (body.chainId !== this.opts.chainId) {
      throw new MempoolError(
        "WRONG_CHAIN",
        { hash: hashHex },
        `transaction is for chain '${body.chainId}', this is '${this.opts.chainId}'`,
      );
    }
    const address = addressOf(body.sender);
    return {
      tx,
      body,
      hash,
      hashHex,
      sender: body.sender,
      address,
      senderKey: toHex(address),
      nonce: body.nonce,
      bytes,
    };
  }

  /** The synchronous part of admission: nonce window, dedupe, capacity, then insert. */
  private insert(ptx: PoolTx, stateNonce: bigint, lookupCurrent: boolean): void {
    if (!this.running) throw new MempoolError("MEMPOOL_STOPPED", {}, "mempool is stopped");
    const key = ptx.senderKey;
    const q = this.senders.get(key);
    let next = this.nextFor(key, stateNonce);
    // A lookup that raced a commit or execution may be older than what the pool already knows.
    if (q && !lookupCurrent && next < q.base) next = q.base;
    const detail = { hash: ptx.hashHex, nonce: ptx.nonce.toString(), expected: next.toString() };
    if (ptx.nonce < next) {
      throw new MempoolError(
        "BAD_NONCE",
        { ...detail, reason: "stale" },
        `nonce ${ptx.nonce} is already used; the sender's next nonce is ${next}`,
      );
    }
    if (ptx.nonce > next + BigInt(this.opts.maxNonceGap)) {
      throw new MempoolError(
        "NONCE_GAP",
        detail,
        `nonce ${ptx.nonce} is more than ${this.opts.maxNonceGap} ahead of the sender's next nonce ${next}`,
      );
    }
    if (this.byHash.has(ptx.hashHex)) {
      throw new MempoolError("DUPLICATE", { hash: ptx.hashHex }, "transaction is already pending");
    }
    if (q?.byNonce.has(Number(ptx.nonce))) {
      throw new MempoolError(
        "BAD_NONCE",
        { ...detail, reason: "taken" },
        `another pending transaction from this sender already uses nonce ${ptx.nonce}`,
      );
    }
    if (this.byHash.size >= this.opts.maxTxs) {
      throw new MempoolError("MEMPOOL_FULL", { hash: ptx.hashHex, reason: "txs" }, "mempool is full");
    }
    if (this.totalBytes + ptx.bytes > this.opts.maxBytes) {
      throw new MempoolError(
        "MEMPOOL_FULL",
        { hash: ptx.hashHex, reason: "bytes" },
        "mempool byte limit reached",
      );
    }
    if (q && q.byNonce.size >= this.opts.maxPerSender) {
      throw new MempoolError(
        "MEMPOOL_FULL",
        { hash: ptx.hashHex, reason: "sender" },
        `sender has ${q.byNonce.size} pending transactions, limit ${this.opts.maxPerSender}`,
      );
    }
    const entry: Entry = { ...ptx, n: Number(ptx.nonce), inFlight: false, seq: this.seq++ };
    const queue = q ?? this.newQueue(key, next);
    const moved = queue.base !== next;
    this.rebase(queue, next);
    queue.byNonce.set(entry.n, entry);
    this.byHash.set(entry.hashHex, entry);
    this.totalBytes += entry.bytes;
    if (moved) this.recount(queue);
    else this.extend(queue);
  }

  /** The sender's next nonce: state, raised by commits not yet executed. */
  private nextFor(key: string, stateNonce: bigint): bigint {
    const floor = this.committedFloors.get(key);
    if (floor && stateNonce >= floor.floor) this.committedFloors.delete(key);
    else if (floor) return floor.floor;
    return stateNonce;
  }

  private newQueue(key: string, base: bigint): SenderQueue {
    const q: SenderQueue = {
      key,
      base,
      baseN: Number(base),
      byNonce: new Map(),
      runLength: 0,
      reapable: 0,
      blocked: false,
    };
    this.senders.set(key, q);
    return q;
  }

  /**
   * Moves a sender's base to `next` and drops entries below it. `next` may also move down: state
   * is authoritative once execution caught up (a nonce a view change nulled out becomes free).
   */
  private rebase(q: SenderQueue, next: bigint): void {
    if (q.base === next) return;
    q.base = next;
    q.baseN = Number(next);
    for (const [n, e] of q.byNonce) if (n < q.baseN) this.drop(q, e);
  }

  private drop(q: SenderQueue, e: Entry): void {
    q.byNonce.delete(e.n);
    this.byHash.delete(e.hashHex);
    this.totalBytes -= e.bytes;
    if (e.inFlight) this.inFlight--;
  }

  /** Recomputes a sender's executable run and keeps the pool-wide count in step. */
  private recount(q: SenderQueue): void {
    this.executable -= q.reapable;
    q.runLength = 0;
    q.reapable = 0;
    q.blocked = false;
    this.extend(q);
    if (q.byNonce.size === 0) this.senders.delete(q.key);
  }

  /**
   * Extends a sender's run past its current end, counting exactly as reap() walks it: leading
   * in-flight entries are skipped, and an in-flight entry after a reapable one ends what can be
   * reaped. Inserting at the end of the run (the common case) costs only the new entries.
   */
  private extend(q: SenderQueue): void {
    let added = 0;
    for (let n = q.baseN + q.runLength; ; n++) {
      const e = q.byNonce.get(n);
      if (!e) break;
      q.runLength++;
      if (e.inFlight) q.blocked ||= q.reapable + added > 0;
      else if (!q.blocked) added++;
    }
    q.reapable += added;
    this.executable += added;
  }

  /**
   * Transactions for the next block: each sender's executable run in nonce order, one per sender
   * per round so a busy sender cannot starve others, oldest waiting sender first. Skips what is
   * in flight. Does not mark anything: call markProposed with what the block actually carries.
   */
  reap(maxTxs: number, maxBytes: number): ReapResult {
    const out: ReapResult = { txs: [], hashes: [], bytes: 0 };
    if (maxTxs <= 0 || this.executable === 0) return out;
    // Per sender, its candidates in nonce order. Once a sender has contributed, an in-flight
    // entry ends its run: proposing past it would put nonces out of order across blocks.
    const lanes: Entry[][] = [];
    for (const q of this.senders.values()) {
      if (q.reapable === 0) continue;
      const lane: Entry[] = [];
      for (let n = q.baseN; ; n++) {
        const e = q.byNonce.get(n);
        if (!e) break;
        if (e.inFlight) {
          if (lane.length > 0) break;
          continue;
        }
        lane.push(e);
      }
      if (lane.length > 0) lanes.push(lane);
    }
    lanes.sort((a, b) => a[0]!.seq - b[0]!.seq);
    const cursor = new Array<number>(lanes.length).fill(0);
    let active = lanes.length;
    while (active > 0 && out.txs.length < maxTxs) {
      active = 0;
      for (let l = 0; l < lanes.length && out.txs.length < maxTxs; l++) {
        const lane = lanes[l]!;
        const e = lane[cursor[l]!];
        if (!e) continue;
        if (out.bytes + e.bytes > maxBytes) {
          // This sender's next tx does not fit; later ones must not jump ahead of it.
          cursor[l] = lane.length;
          continue;
        }
        out.txs.push(e.tx);
        out.hashes.push(e.hash);
        out.bytes += e.bytes;
        cursor[l]!++;
        if (cursor[l]! < lane.length) active++;
      }
    }
    return out;
  }

  /** Marks transactions as carried by a proposal in flight; unknown hashes are ignored. */
  markProposed(hashes: readonly (Hash | string)[]): void {
    const touched = new Set<SenderQueue>();
    for (const h of hashes) {
      const e = this.byHash.get(typeof h === "string" ? h : toHex(h));
      if (!e || e.inFlight) continue;
      e.inFlight = true;
      this.inFlight++;
      const q = this.senders.get(e.senderKey);
      if (q) touched.add(q);
    }
    for (const q of touched) this.recount(q);
  }

  /**
   * Removes committed transactions and every pending transaction of their senders whose nonce
   * is now stale. Commits run ahead of execution, so the committed nonces are remembered as a
   * floor until markExecuted(height) says state has caught up. `hashes` (txHash of each tx) saves
   * rehashing when the caller has them.
   */
  removeCommitted(txs: readonly SignedTx[], height: bigint, hashes?: readonly Hash[]): void {
    this.nonceEpoch++;
    const floors = new Map<string, bigint>();
    for (let i = 0; i < txs.length; i++) {
      const tx = txs[i]!;
      const hex = toHex(hashes?.[i] ?? this.hashTx(tx));
      const e = this.byHash.get(hex);
      let key: string;
      let nonce: bigint;
      if (e) {
        key = e.senderKey;
        nonce = e.nonce;
      } else {
        // A transaction this node never admitted still advances its sender.
        let body: TxBody;
        try {
          body = fromBinary(TxBodySchema, tx.body);
        } catch {
          continue;
        }
        if (body.sender.length !== PUBLIC_KEY_LENGTH) continue;
        key = toHex(addressOf(body.sender));
        nonce = body.nonce;
      }
      const f = floors.get(key);
      if (f === undefined || nonce + 1n > f) floors.set(key, nonce + 1n);
      if (e) {
        const q = this.senders.get(key);
        if (q) this.drop(q, e);
      }
    }
    for (const [key, floor] of floors) {
      const prev = this.committedFloors.get(key);
      if (!prev || floor > prev.floor) {
        this.committedFloors.delete(key);
        this.committedFloors.set(key, { floor, height });
      }
      const q = this.senders.get(key);
      if (q) {
        if (floor > q.base) this.rebase(q, floor);
        this.recount(q);
      }
    }
    this.trimFloors();
    this.mod.metrics?.size(this.byHash.size, this.totalBytes);
  }

  /** Execution reached `height`: state nonces now include every commit up to it. */
  markExecuted(height: bigint): void {
    this.nonceEpoch++;
    // Floors sit in commit-height order (each update re-inserts), so stop at the first newer one.
    for (const [key, f] of this.committedFloors) {
      if (f.height > height) break;
      this.committedFloors.delete(key);
    }
  }

  private trimFloors(): void {
    const cap = this.opts.maxCommittedFloors ?? Math.max(10_000, this.opts.maxTxs);
    if (this.committedFloors.size <= cap) return;
    for (const key of this.committedFloors.keys()) {
      this.committedFloors.delete(key);
      if (this.committedFloors.size <= cap) break;
    }
  }

  /** After a view change: proposals in flight may never commit, so make them reapable again. */
  requeueInFlight(): number {
    if (this.inFlight === 0) return 0;
    const n = this.inFlight;
    for (const e of this.byHash.values()) e.inFlight = false;
    this.inFlight = 0;
    for (const q of this.senders.values()) this.recount(q);
    return n;
  }
}
