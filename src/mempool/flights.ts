// Transactions between proposal and commit (issue 9 part 5). A transaction carried by a block
// this replica proposed, or prepared, stays known as "in flight" so it is neither proposed nor
// admitted as fresh again; it returns to the ready set only when that block is abandoned:
//  - another block (or a null block) commits at its height, or
//  - a view change installs a NEW-VIEW that does not re-propose it. A block that committed
//    anywhere was prepared by a quorum, so every NEW-VIEW re-proposes it (DESIGN §2): releasing
//    what the NEW-VIEW left out cannot free a transaction that will still commit.
// Hashes are tracked here whether or not the pool holds the transaction, so one that arrives by
// gossip after its block enters the pool already in flight.

/** Height for proposals with no known height (released only by a view change or requeue). */
export const NO_HEIGHT = 1n << 64n;

const MAX_BLOCKS = 1024;

export class Flights {
  /** Blocks seen in PRE-PREPAREs (or proposed here), by digest, until their height commits. */
  private readonly blocks = new Map<string, { height: bigint; hashes: readonly string[] }>();
  /** hash -> highest height of a pending proposal carrying it. */
  private readonly heightOf = new Map<string, bigint>();
  private readonly byHeight = new Map<bigint, Set<string>>();
  /** Blocks this replica prepared without holding their body yet: digest -> height. */
  private readonly unresolved = new Map<string, bigint>();
  /** During a view change: hashes (and unresolved digests) the new view's proposals carry again. */
  private remarked: Set<string> | null = null;
  /**
   * Hashes of blocks the core delivered (committed) that the pool has not removed yet (the commit
   * stage runs behind): no view change releases them, whatever the new view re-proposes.
   */
  private readonly delivered = new Map<string, bigint>();

  get size(): number {
    return this.heightOf.size;
  }

  has(hash: string): boolean {
    return this.heightOf.has(hash);
  }

  /** The core committed a block carrying `hash` (it executes before anything proposed now). */
  isDelivered(hash: string): boolean {
    return this.delivered.has(hash);
  }

  /** Height of the highest pending proposal carrying `hash` (NO_HEIGHT when not in flight). */
  heightFor(hash: string): bigint {
    return this.heightOf.get(hash) ?? NO_HEIGHT;
  }

  /**
   * Remembers a block's transactions, so a later PREPARE (or NEW-VIEW) for it can mark them. If
   * this replica already prepared it without the body, marks them now and returns them.
   */
  note(digest: string, height: bigint, hashes: readonly string[]): readonly string[] | null {
    if (!this.blocks.has(digest)) {
      if (this.blocks.size >= MAX_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
      this.blocks.set(digest, { height, hashes });
    }
    const at = this.unresolved.get(digest);
    if (at === undefined) return null;
    this.unresolved.delete(digest);
    this.mark(hashes, at);
    return hashes;
  }

  /**
   * Marks a noted block's transactions in flight at `height`. For a block whose body has not
   * arrived, returns null and remembers it: note() marks it when the body comes, and until then
   * `unresolvedBelow` holds back fresh proposals above it (they might carry the same txs).
   */
  markBlock(digest: string, height: bigint): readonly string[] | null {
    const b = this.blocks.get(digest);
    if (!b) {
      this.remarked?.add(digest);
      const prev = this.unresolved.get(digest);
      if (prev === undefined || height > prev) this.unresolved.set(digest, height);
      return null;
    }
    this.mark(b.hashes, height);
    return b.hashes;
  }

  /** A prepared block below `height` has no body here yet. */
  unresolvedBelow(height: bigint): boolean {
    for (const h of this.unresolved.values()) if (h < height) return true;
    return false;
  }

  mark(hashes: Iterable<string>, height: bigint): void {
    for (const h of hashes) {
      this.remarked?.add(h);
      const prev = this.heightOf.get(h);
      if (prev !== undefined && prev >= height) continue;
      if (prev !== undefined) this.unindex(h, prev);
      this.heightOf.set(h, height);
      let set = this.byHeight.get(height);
      if (!set) {
        set = new Set();
        this.byHeight.set(height, set);
      }
      set.add(h);
    }
  }

  /**
   * `height` committed: proposals at or below it are settled (committed or abandoned). Returns
   * the hashes no pending proposal carries any more.
   */
  committed(height: bigint): string[] {
    const out: string[] = [];
    for (const [h, set] of this.byHeight) {
      if (h > height) continue;
      for (const hash of set) {
        this.heightOf.delete(hash);
        out.push(hash);
      }
      this.byHeight.delete(h);
    }
    for (const [d, b] of this.blocks) if (b.height <= height) this.blocks.delete(d);
    for (const [d, h] of this.unresolved) if (h <= height) this.unresolved.delete(d);
    for (const [hash, h] of this.delivered) if (h <= height) this.delivered.delete(hash);
    return out;
  }

  /** A view change starts: proposals the new view carries again are marked before endViewChange. */
  beginViewChange(): void {
    this.remarked = new Set();
  }

  /**
   * The core committed these transactions at `height`: in flight until `committed(height)`, never
   * released by a view change (a NEW-VIEW re-proposing a height this replica already committed
   * makes it send no PREPARE, so nothing would mark them again).
   */
  markDelivered(hashes: Iterable<string>, height: bigint): void {
    const list = [...hashes];
    for (const h of list) this.delivered.set(h, height);
    this.mark(list, height);
  }

  /** The new view is installed: returns the hashes of proposals it abandoned. */
  endViewChange(): string[] {
    const keep = this.remarked;
    this.remarked = null;
    if (keep === null) return [];
    for (const d of this.unresolved.keys()) if (!keep.has(d)) this.unresolved.delete(d);
    const out: string[] = [];
    for (const [hash, h] of this.heightOf) {
      if (keep.has(hash) || this.delivered.has(hash)) continue;
      this.heightOf.delete(hash);
      this.unindex(hash, h);
      out.push(hash);
    }
    return out;
  }

  /** Forgets everything in flight (blocks stay noted); returns the hashes. */
  clear(): string[] {
    this.unresolved.clear();
    this.delivered.clear();
    const out = [...this.heightOf.keys()];
    this.heightOf.clear();
    this.byHeight.clear();
    return out;
  }

  private unindex(hash: string, height: bigint): void {
    const set = this.byHeight.get(height);
    if (!set) return;
    set.delete(hash);
    if (set.size === 0) this.byHeight.delete(height);
  }
}
