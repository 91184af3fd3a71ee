// Transaction admission and the pool the primary reaps blocks from (DESIGN §3, §4).
// Admission runs the stateless checks (decode, size, chain, fee fields and amounts: admission.ts),
// the backlog check (OVERLOADED: backlog.ts), the sender's account (funded, nonce window; read
// before any signature, so unfunded spam costs no verify), one signature check through the
// injected verifier (a worker pool in the node), then dedupe and capacity. The final insert runs
// synchronously, so concurrent admissions cannot overfill the pool or admit one hash twice.
import { fromBinary } from "@bufbuild/protobuf";
import { Lru } from "../crypto/lru.js";
import { type SignedTx, type TxBody, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import { type Logger, TRACE } from "../logger/index.js";
import { RateLimiter } from "../net/rateLimit.js";
import { addressOf, PUBLIC_KEY_LENGTH, txHash } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import type { Hash } from "../types/hash.js";
import {
  type AccountLookup,
  type AccountState,
  costOrNull,
  projectCommitted,
  statelessCheck,
} from "./admission.js";
import { Backlog } from "./backlog.js";
import { PoolEntries } from "./entries.js";
import { MempoolError } from "./errors.js";
import { Flights, NO_HEIGHT } from "./flights.js";
import type {
  AddContext,
  AddResult,
  AdmittedListener,
  BatchResult,
  MempoolModules,
  MempoolOpts,
  PoolTx,
  ReapResult,
  TxOrigin,
} from "./types.js";

/** A transaction past the stateless checks, before it is hashed. */
type Draft = Omit<PoolTx, "hash" | "hashHex">;

/** A transaction id as the pool keys it: the hex of its hash. */
function hexOf(hash: Hash | string): string {
  return typeof hash === "string" ? hash : toHex(hash);
}

/**
 * The draft with its hash, as a PoolTx. Written out field by field: an object spread here was the
 * hottest line of admission in the saturation profile (issue 14, s16-ledger.txt).
 */
function withHash(d: Draft, hash: Hash, hashHex: string): PoolTx {
  return {
    tx: d.tx,
    body: d.body,
    sender: d.sender,
    address: d.address,
    senderKey: d.senderKey,
    nonce: d.nonce,
    bytes: d.bytes,
    price: d.price,
    cost: d.cost,
    hash,
    hashHex,
  };
}

/** Balance of a sender under a nonce-only lookup. */
const UNLIMITED = 1n << 256n;

/** Senders with nothing pending whose projected account is kept (see Mempool.idle). */
const DEFAULT_IDLE_ACCOUNTS = 65_536;

/** An account for admission, and where it came from. */
interface Looked {
  state: AccountState | null;
  /** Read from storage by this admission. */
  read: boolean;
  /** A projection (SenderQueue.acctExact): current through every commit the pool was told of. */
  projected: boolean;
  /** nonceEpoch when it was looked up. */
  since: number;
  /**
   * A read issued while none of the sender's commits awaited execution (no floor, none trimmed
   * unexecuted): it saw every commit of the sender up to `since`.
   */
  clean: boolean;
}

export class Mempool {
  /** sender -> (nonce floor from commits, commit height); cleared once execution catches up. */
  private readonly committedFloors = new Map<string, { floor: bigint; height: bigint }>();
  private readonly listeners = new Set<AdmittedListener>();
  /** Proposals between PRE-PREPARE and commit, and the transactions they carry. */
  private readonly flights = new Flights();
  /** The pending transactions by hash and by sender, and their counts. */
  private readonly pool = new PoolEntries(this.flights);
  /** Highest height removeCommitted was told about. */
  private committedHeight = 0n;
  /** Bumped whenever commits or execution move nonces; tells whether a lookup is still current. */
  private nonceEpoch = 0;
  /**
   * Projected accounts of senders with nothing pending (their queue emptied on commit): the
   * account as execution will leave it after every commit this pool was told of (exact nonce,
   * balance lower bound; admission.ts projectCommitted). Issue 14: with each sender's queue
   * emptied by the commit of its one pending tx, every admission on every validator read
   * RocksDB (~9 % of the main threads at 800 tx/s open loop, c25-notes.md). A sender moves here
   * from its queue and back; never both.
   */
  private readonly idle: Lru<string, AccountState>;
  /** maxIdleAccounts > 0: accounts are projected through commits (else read after each, as before). */
  private readonly projecting: boolean;
  /** Highest height markExecuted was told about. */
  private executedHeight = 0n;
  /** Highest commit height of a floor trimFloors dropped before its execution. */
  private trimmedHeight = 0n;
  /**
   * nonceEpoch of each sender's latest commit (the newest maxCommittedFloors senders), and the
   * newest epoch forgotten: whether a sender committed while one of its lookups was out.
   */
  private readonly commitEpochs = new Map<string, number>();
  private forgottenCommitEpoch = -1;
  private running = true;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly lookup: AccountLookup;
  /** False with a nonce-only lookup: every sender counts as funded. */
  private readonly paid: boolean;
  private readonly senderLimiter: RateLimiter | null;
  private readonly connLimiter: RateLimiter | null;

  private readonly hashTx: (tx: SignedTx) => Hash;
  /** The commit rate and admissions in progress behind OVERLOADED. */
  private readonly backlog: Backlog;

  constructor(
    private readonly opts: MempoolOpts,
    private readonly mod: MempoolModules,
  ) {
    this.log = mod.log;
    this.hashTx = mod.hashTx ?? txHash;
    this.now = mod.now ?? Date.now;
    if (mod.account) {
      this.lookup = mod.account;
      this.paid = true;
    } else if (mod.nextNonce) {
      const nextNonce = mod.nextNonce;
      this.lookup = async (a) => ({ nonce: await nextNonce(a), balance: UNLIMITED });
      this.paid = false;
    } else {
      throw new Error("Mempool needs an account or a nextNonce lookup");
    }
    this.senderLimiter = opts.senderRate ? new RateLimiter(opts.senderRate) : null;
    this.connLimiter = opts.connectionRate ? new RateLimiter(opts.connectionRate) : null;
    this.backlog = new Backlog(opts, this.now);
    this.idle = new Lru(opts.maxIdleAccounts ?? DEFAULT_IDLE_ACCOUNTS);
    this.projecting = this.idle.capacity > 0;
  }

  async start(): Promise<void> {
    this.running = true;
    const ttl = this.opts.gappedTtlMs ?? 0;
    if (ttl > 0 && this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.expireGapped(), Math.max(100, Math.min(ttl / 4, 5_000)));
      this.sweepTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.listeners.clear();
  }

  /** Transactions in the pool, in flight or not. */
  get size(): number {
    return this.pool.size;
  }

  get bytes(): number {
    return this.pool.bytes;
  }

  /** Carried by a pending proposal (proposed or prepared here) and not yet committed. */
  get inFlightCount(): number {
    return this.pool.inFlight;
  }

  /** Transactions waiting for an earlier nonce of their sender (not gossiped, expire). */
  get gappedCount(): number {
    return this.pool.gapped;
  }

  /**
   * Transactions that could go into the next block now: the sender's next nonce onwards with no
   * gap, not already in flight. A primary proposes while this is > 0; backups keep their request
   * timer armed.
   */
  pendingExecutable(): number {
    return this.pool.executableCount;
  }

  has(hash: Hash | string): boolean {
    return this.pool.byHash.has(hexOf(hash));
  }

  get(hash: Hash | string): PoolTx | undefined {
    return this.pool.byHash.get(hexOf(hash));
  }

  /**
   * True when this exact transaction (same body and signature) was admitted, so its signature
   * was verified. A block carrying the same body with different signature bytes must be verified
   * anew: the hash covers the body only. `hash`: txHash(tx) when the caller has it (hex or bytes).
   */
  hasVerified(tx: SignedTx, hash?: Hash | string): boolean {
    const e = this.pool.byHash.get(hexOf(hash ?? this.hashTx(tx)));
    if (!e) return false;
    const a = e.tx.signature;
    const b = tx.signature;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /**
   * This node's own transactions (origin "api") that still wait, executable and not in flight,
   * `olderThanMs` after they were last gossiped (2×, 4×, ... up to 32× that for each repeat);
   * marks them gossiped now. Gossip is fire and
   * forget: a peer that missed a batch (a restart, a backlog, a link down) would otherwise never
   * hold them, and only this node, once it is primary, could ever propose them. At most `max`,
   * in nonce order per sender.
   */
  staleOwn(olderThanMs: number, max: number): SignedTx[] {
    return this.pool.staleOwn(olderThanMs, max, this.now());
  }

  /** See AdmittedListener: called for transactions as they become executable (the node gossips). */
  onAdmitted(listener: AdmittedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Admits one transaction or throws a MempoolError naming the first failed check. */
  async add(input: Uint8Array | SignedTx, origin: TxOrigin, ctx: AddContext = {}): Promise<AddResult> {
    const [res] = await this.addBatch([input], origin, ctx);
    if (!res!.ok) throw res!.error;
    return { hash: res!.hash, hashHex: res!.hashHex };
  }

  /** Admits many transactions with one verifier call (gossip). Never throws for a bad tx. */
  async addBatch(
    inputs: readonly (Uint8Array | SignedTx)[],
    origin: TxOrigin,
    ctx: AddContext = {},
  ): Promise<BatchResult[]> {
    const results: BatchResult[] = new Array(inputs.length);
    if (
      origin === "api" &&
      ctx.peer !== undefined &&
      this.connLimiter &&
      !this.connLimiter.take(ctx.peer, this.now(), inputs.length)
    ) {
      const err = new MempoolError(
        "CONNECTION_RATE_LIMITED",
        {},
        `more than ${this.opts.connectionRate!.perSecond} submissions per second on this connection`,
      );
      for (let i = 0; i < inputs.length; i++) results[i] = this.fail(err);
      return results;
    }
    // Backpressure: refused after the stateless checks (no account read, no signature), unless the
    // transaction pays a higher gas price than the cheapest pending one (as eviction would rank it),
    // or its sender has nothing executable pending yet and the backlog is below twice the limit
    // (fairness: one flooder's queue does not lock every other sender out; see backlog.ts).
    let overload = origin === "api" ? this.backlog.overloaded(this.pool.inRuns) : null;
    let floorPrice = overload ? this.pool.minPrice() : null;
    let firstComers = overload?.firstComerRoom ?? 0;
    const candidates: { i: number; ptx: Draft }[] = [];
    // A sender with an earlier candidate in this API batch is no first comer (as if it were pooled).
    const batchSenders = origin === "api" && inputs.length > 1 ? new Set<string>() : null;
    for (let i = 0; i < inputs.length; i++) {
      // An API batch (SubmitTxs) is judged as that many calls in a row: its earlier candidates
      // count toward the backlog, so a batch cannot carry the pool past the limit.
      if (origin === "api" && overload === null && candidates.length > 0) {
        overload = this.backlog.overloaded(this.pool.inRuns + candidates.length);
        if (overload !== null) {
          floorPrice = this.pool.minPrice();
          firstComers = overload.firstComerRoom;
        }
      }
      try {
        const ptx = this.statelessCheck(inputs[i]!);
        if (overload && (floorPrice === null || ptx.price <= floorPrice)) {
          if (
            firstComers > 0 &&
            !this.pool.hasExecutablePending(ptx.senderKey) &&
            !batchSenders?.has(ptx.senderKey)
          )
            firstComers--;
          else {
            results[i] = this.fail(overload.error);
            continue;
          }
        }
        candidates.push({ i, ptx });
        batchSenders?.add(ptx.senderKey);
      } catch (err) {
        results[i] = this.fail(err);
      }
    }
    if (candidates.length === 0) return results;
    if (origin !== "api") return this.admitCandidates(candidates, results, origin);
    const ended = this.backlog.beginAdmission(candidates.length);
    try {
      return await this.admitCandidates(candidates, results, origin);
    } finally {
      ended();
    }
  }

  private async admitCandidates(
    candidates: { i: number; ptx: Draft }[],
    results: BatchResult[],
    origin: TxOrigin,
  ): Promise<BatchResult[]> {
    // Accounts before signatures: spam from keys with no account or no funds, or far-future nonces,
    // costs one (bloom-filtered) storage read instead of a signature check. Looked up before the
    // synchronous section because the lookup may read storage.
    const epoch = this.nonceEpoch;
    const tA = TRACE ? performance.now() : 0;
    const accounts = await this.accountsFor(candidates.map((c) => c.ptx));
    const tB = TRACE ? performance.now() : 0;
    // A gossip batch carries runs of a sender's consecutive nonces (its origin admitted them one by
    // one). Each tx is judged, and inserted, in (sender, nonce) order as if the batch's lower
    // nonces were already pooled, so a run longer than maxNonceGap is not refused as NONCE_GAP.
    candidates.sort(bySenderThenNonce);
    const runEnds = new Map<string, bigint>();
    const funded: { i: number; ptx: PoolTx }[] = [];
    for (const c of candidates) {
      try {
        const key = c.ptx.senderKey;
        const pendingNext = this.precheck(c.ptx, accounts.get(key)!.state, runEnds.get(key));
        if (c.ptx.nonce === pendingNext) runEnds.set(key, pendingNext + 1n);
        // Hashed only now: spam refused above never costs a hash of its (up to 16 KiB) body.
        const hash = this.hashTx(c.ptx.tx);
        const hashHex = toHex(hash);
        // Already pending (gossip of a tx this node holds, a resubmission): refused before its
        // signature is checked. insert() checks again for one admitted while we await.
        if (this.pool.byHash.has(hashHex)) {
          results[c.i] = this.fail(
            new MempoolError("DUPLICATE", { hash: hashHex }, "transaction is already pending"),
          );
          continue;
        }
        funded.push({ i: c.i, ptx: withHash(c.ptx, hash, hashHex) });
      } catch (err) {
        results[c.i] = this.fail(err);
      }
    }
    const verdicts =
      funded.length === 0
        ? []
        : await this.mod.verifyTxs(
            funded.map((c) => c.ptx.tx),
            funded.map((c) => c.ptx.hash),
            funded.map((c) => c.ptx.sender),
          );
    const tC = TRACE ? performance.now() : 0;
    const verified: { i: number; ptx: PoolTx }[] = [];
    const now = this.now();
    for (let k = 0; k < funded.length; k++) {
      const { i, ptx } = funded[k]!;
      if (verdicts[k] !== true) {
        results[i] = this.fail(
          new MempoolError("BAD_SIGNATURE", { hash: ptx.hashHex }, "transaction signature does not verify"),
        );
      } else if (origin === "api" && this.senderLimiter && !this.senderLimiter.take(ptx.senderKey, now)) {
        results[i] = this.fail(
          new MempoolError(
            "SENDER_RATE_LIMITED",
            { hash: ptx.hashHex },
            `more than ${this.opts.senderRate!.perSecond} submissions per second from this sender`,
          ),
        );
      } else verified.push(funded[k]!);
    }
    // A commit or an execution moved nonces while we awaited the lookup or the signatures: the
    // account read may predate an execution whose commit floor is gone by now, and would place
    // the sender's next nonce behind a gap that never fills (a closed-loop client's next tx,
    // submitted right after its previous one committed, stalled that way). Read those again.
    // Only senders whose answer may be stale: one that is settled (see settled()) saw everything
    // of its sender that moved since, and reading it again cost a RocksDB read per admission.
    let epochNow = epoch;
    for (let tries = 0; epochNow !== this.nonceEpoch && verified.length > 0 && tries < 3; tries++) {
      epochNow = this.nonceEpoch;
      const stale = verified.filter((v) => !this.settled(v.ptx.senderKey, accounts.get(v.ptx.senderKey)!));
      if (stale.length === 0) break;
      const again = await this.accountsFor(
        stale.map((v) => v.ptx),
        true,
      );
      for (const [k, v] of again) accounts.set(k, v);
    }
    const current = epochNow === this.nonceEpoch;
    if (TRACE)
      this.log.debug(
        {
          origin,
          n: candidates.length,
          verify: funded.length,
          accountMs: +(tB - tA).toFixed(2),
          verifyMs: +(tC - tB).toFixed(2),
          rereadMs: +(performance.now() - tC).toFixed(2),
          reread: epoch !== epochNow,
        },
        "trace admission",
      );
    let admitted = 0;
    for (const { i, ptx } of verified) {
      try {
        this.insert(ptx, origin, accounts.get(ptx.senderKey)!, current);
        admitted++;
        results[i] = { ok: true, hash: ptx.hash, hashHex: ptx.hashHex };
      } catch (err) {
        results[i] = this.fail(err);
      }
    }
    if (admitted > 0) {
      this.mod.metrics?.admitted(origin, admitted);
      this.mod.metrics?.size(this.pool.size, this.pool.bytes);
    }
    this.announce();
    return results;
  }

  /** Transactions committed per second over the last commitRateWindowMs. */
  commitRate(now?: number): number {
    return this.backlog.commitRate(now);
  }

  /**
   * One account per distinct sender: the cached one (the sender's queue's, or its idle
   * projection when it has no queue) when it covers what the sender has pending plus what this
   * batch adds, else a lookup. `forceRead`: the caller's earlier answers may predate a commit or
   * an execution; only projections (current through every commit) are reused then.
   */
  private async accountsFor(ptxs: readonly Draft[], forceRead = false): Promise<Map<string, Looked>> {
    const need = new Map<string, { address: Uint8Array; cost: bigint }>();
    for (const p of ptxs) {
      const n = need.get(p.senderKey);
      if (n) n.cost += p.cost;
      else need.set(p.senderKey, { address: p.address, cost: p.cost });
    }
    const out = new Map<string, Looked>();
    const reads: Promise<void>[] = [];
    for (const [key, { address, cost }] of need) {
      const q = this.pool.senders.get(key);
      const cached = q ? q.acct : (this.idle.get(key) ?? null);
      const projected = q ? q.acctExact : cached !== null;
      const since = this.nonceEpoch;
      if (cached && (!forceRead || projected) && (q?.pendingCost ?? 0n) + cost <= cached.balance) {
        out.set(key, { state: cached, read: false, projected, since, clean: false });
        continue;
      }
      const clean = !this.committedFloors.has(key) && this.executedHeight >= this.trimmedHeight;
      reads.push(
        Promise.resolve(this.lookup(address)).then((state) => {
          out.set(key, { state, read: true, projected: false, since, clean });
        }),
      );
    }
    await Promise.all(reads);
    return out;
  }

  /**
   * The sender's account as `looked` gave it still holds: no commit of the sender since, and it
   * is a projection, or a clean read (nothing of the sender awaited execution when it was taken).
   * Execution only follows commits, so nothing else moves the sender's nonce or lowers its balance.
   */
  private settled(key: string, looked: Looked): boolean {
    if (!looked.projected && !(looked.read && looked.clean)) return false;
    const e = this.commitEpochs.get(key);
    return (e ?? this.forgottenCommitEpoch) <= looked.since;
  }

  private fail(err: unknown): { ok: false; error: MempoolError } {
    if (!(err instanceof MempoolError)) throw err;
    this.mod.metrics?.rejected(err.code);
    return { ok: false, error: err };
  }

  private statelessCheck(input: Uint8Array | SignedTx): Draft {
    if (!this.running) throw new MempoolError("MEMPOOL_STOPPED", {}, "mempool is stopped");
    return statelessCheck(input, this.opts);
  }

  /**
   * What the account alone rules out, before the signature check: no account, a nonce past the
   * gap window, a cost above the whole balance. insert() checks all of it again, exactly. Returns
   * the sender's pending nonce (raised to `runEnd`, the end of the run this tx's batch has
   * already passed).
   */
  private precheck(ptx: Draft, acct: AccountState | null, runEnd?: bigint): bigint {
    if (acct === null) {
      throw new MempoolError(
        "UNKNOWN_ACCOUNT",
        {},
        "the sender has no account: only funded accounts may submit",
      );
    }
    const q = this.pool.senders.get(ptx.senderKey);
    const floor = this.committedFloors.get(ptx.senderKey)?.floor ?? 0n;
    let next = acct.nonce > floor ? acct.nonce : floor;
    if (q && q.base > next) next = q.base;
    let pendingNext = next + BigInt(q && q.base === next ? q.runLength : 0);
    if (runEnd !== undefined && runEnd > pendingNext) pendingNext = runEnd;
    if (ptx.nonce > pendingNext + BigInt(this.opts.maxNonceGap)) {
      throw new MempoolError(
        "NONCE_GAP",
        { nonce: ptx.nonce.toString(), expected: pendingNext.toString() },
        `nonce ${ptx.nonce} is more than ${this.opts.maxNonceGap} ahead of the sender's pending nonce ${pendingNext}`,
      );
    }
    if (this.paid && ptx.cost > acct.balance) {
      throw new MempoolError(
        "INSUFFICIENT_FUNDS",
        { expected: ptx.cost.toString() },
        `balance ${acct.balance} does not cover maxFee + value ${ptx.cost}`,
      );
    }
    return pendingNext;
  }

  /**
   * The synchronous part of admission: account, nonce window, dedupe, funds, capacity (evicting
   * if that makes room), then insert. `current`: no commit or execution since `looked` was
   * answered, so a read is fresh (after every commit the pool knows).
   */
  private insert(ptx: PoolTx, origin: TxOrigin, looked: Looked, current: boolean): void {
    if (!this.running) throw new MempoolError("MEMPOOL_STOPPED", {}, "mempool is stopped");
    const acct = looked.state;
    const key = ptx.senderKey;
    // Exact (kept as a projection once the tx is pooled): see settled(). Judged before nextFor,
    // which may drop the floor.
    const exact = this.projecting && this.settled(key, looked);
    // A settled read is as fresh for its sender as one no commit or execution overtook.
    const fresh = (current || exact) && looked.read;
    if (acct === null) {
      throw new MempoolError(
        "UNKNOWN_ACCOUNT",
        { hash: ptx.hashHex },
        "the sender has no account: only funded accounts may submit",
      );
    }
    let q = this.pool.senders.get(key);
    // A projection is no evidence that execution caught up: it must not clear the floor.
    let next = this.nextFor(key, acct.nonce, !looked.projected);
    // A lookup that raced a commit or execution (or a cached one) may be older than the pool.
    if (q && !fresh && next < q.base) next = q.base;
    // Built only for a refusal: two bigint strings per admitted tx were pure garbage.
    const detail = () => ({ hash: ptx.hashHex, nonce: ptx.nonce.toString(), expected: next.toString() });
    if (ptx.nonce < next) {
      throw new MempoolError(
        "BAD_NONCE",
        { ...detail(), reason: "stale" },
        `nonce ${ptx.nonce} is already used; the sender's next nonce is ${next}`,
      );
    }
    // The sender's pending nonce: the end of its executable run, kept in memory.
    const pendingNext = next + BigInt(q && q.base === next ? q.runLength : 0);
    if (ptx.nonce > pendingNext + BigInt(this.opts.maxNonceGap)) {
      throw new MempoolError(
        "NONCE_GAP",
        { ...detail(), expected: pendingNext.toString() },
        `nonce ${ptx.nonce} is more than ${this.opts.maxNonceGap} ahead of the sender's pending nonce ${pendingNext}`,
      );
    }
    if (this.pool.byHash.has(ptx.hashHex)) {
      throw new MempoolError("DUPLICATE", { hash: ptx.hashHex }, "transaction is already pending");
    }
    if (q && q.base !== next) {
      // Drop what the new base made stale before counting the sender's pending cost.
      this.pool.rebase(q, next);
      this.pool.recount(q);
      q = this.pool.senders.get(key);
    }
    if (q?.byNonce.has(Number(ptx.nonce))) {
      throw new MempoolError(
        "BAD_NONCE",
        { ...detail(), reason: "taken" },
        `another pending transaction from this sender already uses nonce ${ptx.nonce}`,
      );
    }
    if (q && q.byNonce.size >= this.opts.maxPerSender) {
      throw new MempoolError(
        "MEMPOOL_FULL",
        { hash: ptx.hashHex, reason: "sender" },
        `sender has ${q.byNonce.size} pending transactions, limit ${this.opts.maxPerSender}`,
      );
    }
    const pending = q?.pendingCost ?? 0n;
    if (this.paid && pending + ptx.cost > acct.balance) {
      throw new MempoolError(
        "INSUFFICIENT_FUNDS",
        { hash: ptx.hashHex, expected: (pending + ptx.cost).toString() },
        `balance ${acct.balance} does not cover maxFee + value ${ptx.cost}` +
          (pending > 0n ? ` plus ${pending} of pending transactions` : ""),
      );
    }
    const executableNow = ptx.nonce === next + BigInt(q?.runLength ?? 0);
    this.makeRoom(ptx, executableNow);
    // Already carried by a pending proposal (its block arrived before the transaction).
    const queue = this.pool.add(ptx, origin, this.now(), this.flights.has(ptx.hashHex), next);
    if (fresh || !queue.acct) {
      queue.acct = acct;
      queue.acctExact = exact;
    }
    this.idle.delete(key);
  }

  /**
   * Makes room for `ptx` when the pool is full: gapped transactions go first (newest nonce of a
   * sender first), then the executable transaction with the lowest gas price at the end of its
   * sender's run, and only if that price is below the newcomer's. Nothing in flight is evicted,
   * and a gapped newcomer evicts nothing. Throws MEMPOOL_FULL when no victim qualifies.
   */
  private makeRoom(ptx: PoolTx, executableNow: boolean): void {
    for (;;) {
      const reason =
        this.pool.size >= this.opts.maxTxs
          ? "txs"
          : this.pool.bytes + ptx.bytes > this.opts.maxBytes
            ? "bytes"
            : null;
      if (reason === null) return;
      const victim = executableNow ? this.pool.victim(ptx) : null;
      if (victim === null) {
        throw new MempoolError(
          "MEMPOOL_FULL",
          { hash: ptx.hashHex, reason },
          reason === "txs" ? "mempool is full" : "mempool byte limit reached",
        );
      }
      const q = this.pool.senders.get(victim.senderKey)!;
      this.pool.drop(q, victim);
      this.pool.recount(q);
      this.mod.metrics?.rejected("EVICTED");
    }
  }

  /** Drops gapped transactions admitted more than gappedTtlMs ago; returns how many. */
  expireGapped(now = this.now()): number {
    const ttl = this.opts.gappedTtlMs ?? 0;
    if (ttl <= 0) return 0;
    const dropped = this.pool.expireGapped(ttl, now);
    if (dropped > 0) {
      this.mod.metrics?.size(this.pool.size, this.pool.bytes);
      for (let i = 0; i < dropped; i++) this.mod.metrics?.rejected("EXPIRED");
      this.log.debug({ dropped }, "gapped transactions expired");
    }
    return dropped;
  }

  /** Tells listeners about entries that became executable, grouped by origin. */
  private announce(): void {
    const batch = this.pool.takeAnnouncements();
    if (batch.length === 0) return;
    const byOrigin = new Map<TxOrigin, PoolTx[]>();
    for (const e of batch) {
      const list = byOrigin.get(e.origin);
      if (list) list.push(e);
      else byOrigin.set(e.origin, [e]);
    }
    for (const [origin, txs] of byOrigin) {
      for (const l of this.listeners) {
        try {
          l(txs, origin);
        } catch (err) {
          this.log.error({ err }, "mempool admission listener failed");
        }
      }
    }
  }

  /**
   * The sender's next nonce: state, raised by commits not yet executed. `fromState`: the nonce was
   * read from executed state, so one at or past the floor shows execution caught up (the floor
   * goes); a projection's nonce shows nothing about execution.
   */
  private nextFor(key: string, stateNonce: bigint, fromState: boolean): bigint {
    const floor = this.committedFloors.get(key);
    if (floor && stateNonce >= floor.floor) {
      if (fromState) this.committedFloors.delete(key);
    } else if (floor) return floor.floor;
    return stateNonce;
  }

  /**
   * Transactions for the next block: each sender's executable run in nonce order, one per sender
   * per round so a busy sender cannot starve others, oldest waiting sender first. Skips what is
   * in flight. Does not mark anything: call markProposed with what the block actually carries.
   * A leading in-flight entry is skipped only if the core already committed its block (with
   * `height`, the block's, that block must also be lower). One still pending (proposed or
   * prepared) ends its sender's lane: a view change may abandon its height while a later height
   * carrying the next nonce commits, and that nonce would then fail BAD_NONCE and strand every
   * nonce after it.
   */
  reap(maxTxs: number, maxBytes: number, height?: bigint): ReapResult {
    return this.pool.reap(maxTxs, maxBytes, height);
  }

  /**
   * Marks transactions as carried by a proposal in flight at `height` (this node's own, accepted
   * by the core). Without a height they stay in flight until a view change or requeueInFlight.
   * Hashes the pool does not hold are remembered: they enter the pool in flight.
   */
  markProposed(hashes: readonly (Hash | string)[], height: bigint = NO_HEIGHT): void {
    const hexes = hashes.map(hexOf);
    this.flights.mark(hexes, height);
    this.pool.setInFlight(hexes, true);
  }

  /**
   * The core committed these transactions at `height`; removeCommitted follows once the commit
   * stage reaches it. Until then they stay in flight through any view change, so this replica
   * never proposes them again at a later height (they would execute as DUPLICATE).
   */
  markDelivered(hashes: readonly (Hash | string)[], height: bigint): void {
    const hexes = hashes.map(hexOf);
    this.flights.markDelivered(hexes, height);
    // Entries already in flight changed only their delivered mark, which reap() reads: recount.
    this.pool.setInFlight(hexes, true, true);
  }

  /**
   * A block seen in a PRE-PREPARE (or proposed here) under `digest`: remembered so that signing
   * PREPARE for it (markBlockInFlight) puts its transactions in flight, even in a later view.
   */
  noteBlock(
    digest: Hash,
    height: bigint,
    txs: readonly SignedTx[],
    hashes?: readonly (Hash | string)[],
  ): void {
    const hexes = txs.map((tx, i) => hexOf(hashes?.[i] ?? this.hashTx(tx)));
    const marked = this.flights.note(toHex(digest), height, hexes);
    if (marked !== null) this.pool.setInFlight(marked, true);
  }

  /**
   * This replica prepared (or, as primary, proposed or re-proposed in a NEW-VIEW) the block
   * `digest` at `height`: its transactions are in flight until it commits or is abandoned.
   * Returns false when the block was never noted: its body is awaited (noteBlock marks it then),
   * and reap(…, height) proposes nothing above it meanwhile.
   */
  markBlockInFlight(digest: Hash, height: bigint): boolean {
    // A NEW-VIEW also re-proposes heights this node already committed: nothing is in flight there.
    if (height <= this.committedHeight) return false;
    const hexes = this.flights.markBlock(toHex(digest), height);
    if (hexes === null) return false;
    this.pool.setInFlight(hexes, true);
    return true;
  }

  /**
   * A view change starts: every in-flight proposal is presumed abandoned unless the new view
   * carries it again (markBlockInFlight / markProposed before endViewChange).
   */
  beginViewChange(): void {
    this.flights.beginViewChange();
  }

  /** The new view is installed: what it did not re-propose returns to the ready set. */
  endViewChange(): number {
    const released = this.flights.endViewChange();
    return this.pool.setInFlight(released, false);
  }

  /**
   * Removes committed transactions and every pending transaction of their senders whose nonce
   * is now stale. Commits run ahead of execution, so the committed nonces are remembered as a
   * floor until markExecuted(height) says state has caught up. `hashes` (txHash of each tx) saves
   * rehashing when the caller has them.
   *
   * A sender's floor moves only through the nonces that will execute: block order, each one
   * the sender's next nonce. A committed nonce past a gap (its predecessor's height was
   * abandoned by a view change) fails BAD_NONCE in execution and takes nothing: the pending
   * predecessor stays in the pool instead of being dropped as stale.
   */
  removeCommitted(txs: readonly SignedTx[], height: bigint, hashes?: readonly (Hash | string)[]): void {
    this.nonceEpoch++;
    this.backlog.onCommitted(txs.length);
    if (height > this.committedHeight) this.committedHeight = height;
    const floors = new Map<string, bigint>();
    // Each sender's projected account (its queue's exact one, or its idle one), carried through
    // this block's transactions in block order; null once it cannot be (read again then).
    const projections = new Map<string, AccountState | null>();
    for (let i = 0; i < txs.length; i++) {
      const tx = txs[i]!;
      const hex = hexOf(hashes?.[i] ?? this.hashTx(tx));
      const e = this.pool.byHash.get(hex);
      let key: string;
      let nonce: bigint;
      let body: TxBody;
      if (e) {
        key = e.senderKey;
        nonce = e.nonce;
        body = e.body;
      } else {
        // A transaction this node never admitted still advances its sender.
        try {
          body = fromBinary(TxBodySchema, tx.body);
        } catch {
          continue;
        }
        if (body.sender.length !== PUBLIC_KEY_LENGTH) continue;
        key = toHex(addressOf(body.sender));
        nonce = body.nonce;
      }
      const next =
        floors.get(key) ?? this.pool.senders.get(key)?.base ?? this.committedFloors.get(key)?.floor;
      if (next === undefined) floors.set(key, nonce + 1n);
      else floors.set(key, nonce === next ? next + 1n : next);
      let p = projections.get(key);
      if (p === undefined) {
        const q = this.pool.senders.get(key);
        p = q ? (q.acctExact ? q.acct : null) : (this.idle.get(key) ?? null);
      }
      projections.set(key, p && projectCommitted(p, nonce, e ? e.cost : costOrNull(body), body));
      if (e) {
        const q = this.pool.senders.get(key);
        if (q) this.pool.drop(q, e);
      }
    }
    for (const [key, floor] of floors) {
      this.noteCommitEpoch(key);
      const prev = this.committedFloors.get(key);
      if (!prev || floor > prev.floor) {
        this.committedFloors.delete(key);
        this.committedFloors.set(key, { floor, height });
      }
      // The projection must agree with the floor the pool now works from (they follow the same
      // rule from the same nonce); if not, trust neither and read the account again next time.
      let p = projections.get(key) ?? null;
      if (p !== null && p.nonce !== floor) p = null;
      const q = this.pool.senders.get(key);
      if (q) {
        // Without a projection, its execution will change the nonce and balance: read again.
        q.acct = p;
        q.acctExact = p !== null;
        if (floor > q.base) this.pool.rebase(q, floor);
        this.pool.recount(q);
      }
      // Its queue emptied (or it had none): the projection is kept for its next transaction.
      if (this.pool.senders.has(key)) this.idle.delete(key);
      else if (p !== null) this.idle.set(key, p);
      else this.idle.delete(key);
    }
    this.trimFloors();
    // Proposals at or below this height that did not commit are abandoned.
    this.pool.setInFlight(this.flights.committed(height), false);
    this.mod.metrics?.size(this.pool.size, this.pool.bytes);
    this.announce();
  }

  /** Execution reached `height`: state nonces now include every commit up to it. */
  markExecuted(height: bigint): void {
    this.nonceEpoch++;
    if (height > this.executedHeight) this.executedHeight = height;
    // Floors sit in commit-height order (each update re-inserts), so stop at the first newer one.
    for (const [key, f] of this.committedFloors) {
      if (f.height > height) break;
      this.committedFloors.delete(key);
      // A read between the commit and its execution saw the old account (a projection did not).
      const q = this.pool.senders.get(key);
      if (q && !q.acctExact) q.acct = null;
    }
  }

  private noteCommitEpoch(key: string): void {
    this.commitEpochs.delete(key);
    this.commitEpochs.set(key, this.nonceEpoch);
    const cap = this.opts.maxCommittedFloors ?? Math.max(10_000, this.opts.maxTxs);
    if (this.commitEpochs.size <= cap) return;
    for (const [k, e] of this.commitEpochs) {
      this.commitEpochs.delete(k);
      if (e > this.forgottenCommitEpoch) this.forgottenCommitEpoch = e;
      if (this.commitEpochs.size <= cap) break;
    }
  }

  private trimFloors(): void {
    const cap = this.opts.maxCommittedFloors ?? Math.max(10_000, this.opts.maxTxs);
    if (this.committedFloors.size <= cap) return;
    for (const [key, f] of this.committedFloors) {
      this.committedFloors.delete(key);
      // Until execution passes it, "no floor" no longer shows a sender's commits executed.
      if (f.height > this.trimmedHeight) this.trimmedHeight = f.height;
      if (this.committedFloors.size <= cap) break;
    }
  }

  /** Forgets every proposal in flight and makes its transactions reapable again. */
  requeueInFlight(): number {
    this.flights.clear();
    return this.pool.clearInFlight();
  }
}

function bySenderThenNonce(a: { ptx: Draft }, b: { ptx: Draft }): number {
  if (a.ptx.senderKey !== b.ptx.senderKey) return a.ptx.senderKey < b.ptx.senderKey ? -1 : 1;
  return a.ptx.nonce < b.ptx.nonce ? -1 : a.ptx.nonce > b.ptx.nonce ? 1 : 0;
}
