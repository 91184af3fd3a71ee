// The pool's pending transactions, by hash and by sender, with the counts admission, reaping and
// eviction read kept in step: executable (reapable now), in each sender's run (the rest are
// gapped), in flight, bytes and entries per gas price. Mempool decides what enters and leaves;
// this file only keeps the books, so every count changes in one place.
import type { AccountState } from "./admission.js";
import type { Flights } from "./flights.js";
import type { PoolTx, ReapResult, TxOrigin } from "./types.js";

export interface Entry extends PoolTx {
  /** The nonce as a number for the hot loops (a pooled nonce is within maxNonceGap of a real
   *  account's next nonce, far below 2^53). */
  readonly n: number;
  readonly origin: TxOrigin;
  readonly admittedAt: number;
  /** When this node last gossiped it (own txs only; see staleOwn). */
  gossipedAt: number;
  /** How often staleOwn handed it out again (each repeat waits twice as long). */
  regossips: number;
  inFlight: boolean;
  /** Announced to listeners (it became executable). */
  announced: boolean;
  /** Arrival order, for fairness across senders. */
  seq: number;
}

export interface SenderQueue {
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
  /** Sum of `cost` over byNonce: what the balance must cover. */
  pendingCost: bigint;
  /**
   * The account as last read, reused while no commit of this sender happened since (pending
   * nonces live here, so a sender's next submission costs no RocksDB read). Balances only grow
   * by other senders' transfers, so a cached balance that falls short is read again.
   */
  acct: AccountState | null;
  /**
   * `acct` is a projection (mempool.ts `projectCommitted`): exact nonce and a balance lower bound
   * through every commit the pool was told of, so commits and executions do not make it stale.
   * False: a read that may predate the execution of one of the sender's commits.
   */
  acctExact: boolean;
}

export class PoolEntries {
  readonly byHash = new Map<string, Entry>();
  readonly senders = new Map<string, SenderQueue>();
  /** Entry count per gas price, for the eviction fast path. */
  private readonly priceCount = new Map<bigint, number>();
  private totalBytes = 0;
  /** Entries reap() could take now (see recount). */
  private executable = 0;
  /** Entries in some sender's executable run; the rest are gapped. */
  private inRun = 0;
  private inFlightCount = 0;
  private seq = 0;
  /** Entries that became executable and are not yet announced to listeners. */
  private toAnnounce: Entry[] = [];

  /** `flights`: which hashes the core delivered, and at what height (reap's lane rule). */
  constructor(private readonly flights: Flights) {}

  get size(): number {
    return this.byHash.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get gapped(): number {
    return this.byHash.size - this.inRun;
  }

  /** Entries in some sender's executable run, in flight or not: the backlog OVERLOADED weighs. */
  get inRuns(): number {
    return this.inRun;
  }

  get executableCount(): number {
    return this.executable;
  }

  /** The lowest gas price pending, null for an empty pool. */
  minPrice(): bigint | null {
    let min: bigint | null = null;
    for (const [p, n] of this.priceCount) if (n > 0 && (min === null || p < min)) min = p;
    return min;
  }

  /** Whether the sender has a transaction pending that could execute next (a non-empty run). */
  hasExecutablePending(senderKey: string): boolean {
    return (this.senders.get(senderKey)?.runLength ?? 0) > 0;
  }

  /**
   * Adds an admitted transaction to its sender's queue (made with base `base` if the sender has
   * none) and extends the sender's run. `inFlight`: a pending proposal already carries it.
   */
  add(ptx: PoolTx, origin: TxOrigin, now: number, inFlight: boolean, base: bigint): SenderQueue {
    // Every field written out, not `{ ...ptx, ... }`: V8 builds that spread on its slow path,
    // ~11 µs an entry against ~0.03 µs for this literal (issue 14, c25-notes.md: `add` was 3.7 %
    // of the validators' sampled main-thread time at 800 tx/s open loop).
    const entry: Entry = {
      tx: ptx.tx,
      body: ptx.body,
      hash: ptx.hash,
      hashHex: ptx.hashHex,
      sender: ptx.sender,
      address: ptx.address,
      senderKey: ptx.senderKey,
      nonce: ptx.nonce,
      bytes: ptx.bytes,
      price: ptx.price,
      cost: ptx.cost,
      n: Number(ptx.nonce),
      origin,
      admittedAt: now,
      gossipedAt: now,
      regossips: 0,
      inFlight,
      announced: false,
      seq: this.seq++,
    };
    const queue = this.senders.get(ptx.senderKey) ?? this.newQueue(ptx.senderKey, base);
    queue.byNonce.set(entry.n, entry);
    queue.pendingCost += entry.cost;
    this.byHash.set(entry.hashHex, entry);
    if (entry.inFlight) this.inFlightCount++;
    this.totalBytes += entry.bytes;
    this.priceCount.set(entry.price, (this.priceCount.get(entry.price) ?? 0) + 1);
    this.extend(queue);
    return queue;
  }

  /**
   * Moves a sender's base to `next` and drops entries below it. `next` may also move down: state
   * is authoritative once execution caught up (a nonce a view change nulled out becomes free).
   * Call recount(q) after.
   */
  rebase(q: SenderQueue, next: bigint): void {
    if (q.base === next) return;
    q.base = next;
    q.baseN = Number(next);
    for (const [n, e] of q.byNonce) if (n < q.baseN) this.drop(q, e);
  }

  /** Removes one entry from its queue and the books; call recount(q) after. */
  drop(q: SenderQueue, e: Entry): void {
    q.byNonce.delete(e.n);
    q.pendingCost -= e.cost;
    this.byHash.delete(e.hashHex);
    this.totalBytes -= e.bytes;
    const c = (this.priceCount.get(e.price) ?? 1) - 1;
    if (c <= 0) this.priceCount.delete(e.price);
    else this.priceCount.set(e.price, c);
    if (e.inFlight) this.inFlightCount--;
  }

  /** Recomputes a sender's executable run and keeps the pool-wide count in step. */
  recount(q: SenderQueue): void {
    this.executable -= q.reapable;
    this.inRun -= q.runLength;
    q.runLength = 0;
    q.reapable = 0;
    q.blocked = false;
    this.extend(q);
    if (q.byNonce.size === 0) this.senders.delete(q.key);
  }

  /**
   * The eviction victim for an executable newcomer `ptx` when the pool is full: a gapped entry
   * (a sender's newest nonce first), else the tail of another sender's run priced strictly below
   * the newcomer (lowest price, newest arrival). Never anything in flight; null when none qualifies.
   */
  victim(ptx: PoolTx): Entry | null {
    if (this.gapped > 0) {
      for (const q of this.senders.values()) {
        if (q.byNonce.size === q.runLength) continue;
        let best: Entry | null = null;
        for (const e of q.byNonce.values()) {
          if (e.n >= q.baseN + q.runLength && !e.inFlight && (best === null || e.n > best.n)) best = e;
        }
        if (best) return best;
      }
    }
    let min: bigint | null = null;
    for (const p of this.priceCount.keys()) if (min === null || p < min) min = p;
    if (min === null || min >= ptx.price) return null;
    let best: Entry | null = null;
    for (const q of this.senders.values()) {
      if (q.runLength === 0 || q.key === ptx.senderKey) continue;
      const tail = q.byNonce.get(q.baseN + q.runLength - 1);
      if (!tail || tail.inFlight || tail.price >= ptx.price) continue;
      if (best === null || tail.price < best.price || (tail.price === best.price && tail.seq > best.seq))
        best = tail;
    }
    return best;
  }

  /** Drops gapped entries not in flight admitted at least `ttlMs` before `now`; returns how many. */
  expireGapped(ttlMs: number, now: number): number {
    if (this.gapped === 0) return 0;
    let dropped = 0;
    for (const q of [...this.senders.values()]) {
      if (q.byNonce.size === q.runLength) continue;
      const end = q.baseN + q.runLength;
      let touched = false;
      for (const e of [...q.byNonce.values()]) {
        if (e.n >= end && !e.inFlight && now - e.admittedAt >= ttlMs) {
          this.drop(q, e);
          dropped++;
          touched = true;
        }
      }
      if (touched) this.recount(q);
    }
    return dropped;
  }

  /** Entries that became executable since the last call and are still pooled. */
  takeAnnouncements(): Entry[] {
    if (this.toAnnounce.length === 0) return [];
    const batch = this.toAnnounce.filter((e) => this.byHash.get(e.hashHex) === e);
    this.toAnnounce = [];
    return batch;
  }

  /** See Mempool.staleOwn. */
  staleOwn(olderThanMs: number, max: number, now: number): PoolTx["tx"][] {
    const out: PoolTx["tx"][] = [];
    for (const q of this.senders.values()) {
      for (let n = q.baseN; out.length < max; n++) {
        const e = q.byNonce.get(n);
        if (!e) break;
        // Each repeat waits twice as long (up to 32×): under overload every own tx waits for
        // seconds, and peers that hold it refuse each repeat as DUPLICATE.
        const wait = olderThanMs * 2 ** Math.min(e.regossips, 5);
        if (e.origin !== "api" || e.inFlight || now - e.gossipedAt < wait) continue;
        e.gossipedAt = now;
        e.regossips++;
        out.push(e.tx);
      }
      if (out.length >= max) break;
    }
    return out;
  }

  /** See Mempool.reap. */
  reap(maxTxs: number, maxBytes: number, height?: bigint): ReapResult {
    const out: ReapResult = { txs: [], hashes: [], bytes: 0 };
    if (maxTxs <= 0 || this.executable === 0) return out;
    // A block prepared below this height whose body has not arrived may carry any of our txs.
    if (height !== undefined && this.flights.unresolvedBelow(height)) return out;
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
          if (lane.length > 0 || !this.flights.isDelivered(e.hashHex)) break;
          if (height !== undefined && !(this.flights.heightFor(e.hashHex) < height)) break;
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

  /**
   * Sets entries' in-flight flag; returns how many changed. Their senders are recounted, and with
   * `recountUnchanged` also the senders of entries whose flag was already set.
   */
  setInFlight(hexes: readonly string[], on: boolean, recountUnchanged = false): number {
    const touched = new Set<SenderQueue>();
    let changed = 0;
    for (const hex of hexes) {
      const e = this.byHash.get(hex);
      if (!e) continue;
      if (e.inFlight === on) {
        const q = recountUnchanged ? this.senders.get(e.senderKey) : undefined;
        if (q) touched.add(q);
        continue;
      }
      e.inFlight = on;
      this.inFlightCount += on ? 1 : -1;
      changed++;
      const q = this.senders.get(e.senderKey);
      if (q) touched.add(q);
    }
    for (const q of touched) this.recount(q);
    return changed;
  }

  /** Clears every in-flight flag (the proposals were forgotten); returns how many were set. */
  clearInFlight(): number {
    if (this.inFlightCount === 0) return 0;
    const n = this.inFlightCount;
    for (const e of this.byHash.values()) e.inFlight = false;
    this.inFlightCount = 0;
    for (const q of this.senders.values()) this.recount(q);
    return n;
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
      pendingCost: 0n,
      acct: null,
      acctExact: false,
    };
    this.senders.set(key, q);
    return q;
  }

  /**
   * Extends a sender's run past its current end, counting exactly as reap() walks it: leading
   * in-flight entries the core committed are skipped, and any other in-flight entry ends what can
   * be reaped. Inserting at the end of the run (the common case) costs only the new entries.
   */
  private extend(q: SenderQueue): void {
    let added = 0;
    for (let n = q.baseN + q.runLength; ; n++) {
      const e = q.byNonce.get(n);
      if (!e) break;
      q.runLength++;
      this.inRun++;
      if (!e.announced) {
        e.announced = true;
        this.toAnnounce.push(e);
      }
      if (e.inFlight) q.blocked ||= q.reapable + added > 0 || !this.flights.isDelivered(e.hashHex);
      else if (!q.blocked) added++;
    }
    q.reapable += added;
    this.executable += added;
  }
}
