// Group commit of the signing state (issue 14, direction 1), the rule at its heart: a message
// leaves the node only once every signing record appended before it is durable. The driver
// appends the records of each event and hands every send here; this class owns the batches, the
// one sync in flight and the sends waiting for it. Its own file so that the rule is read (and
// tested: test/unit/node/groupCommit.test.ts) apart from event handling.
import type { SigningRecord } from "../consensus/pbft/types.js";

export interface GroupCommitModules {
  /** Makes a batch of records durable (the signing-state log's append + sync). */
  persist(records: SigningRecord[]): Promise<void>;
  /** A batch became durable after `ms` (metrics, trace). */
  synced?(ms: number, records: number): void;
  /**
   * The group commit stopped for good: a sync failed (`persist`), or a send it released threw
   * (`send`, a bug). Nothing queued is sent afterwards; the driver halts.
   */
  failed(cause: "persist" | "send", err: unknown): void;
}

/**
 * Records go into one open batch; at most one batch is being written and synced at a time, and
 * the next one (everything appended meanwhile) starts when it completes. A send waits only for
 * the batch that holds every record appended before it, and sends leave in order. So "a
 * message's signing state is durable before the message leaves the node" holds exactly as with
 * one synced append per event, while the caller keeps appending during a sync.
 */
export class SigningGroupCommit {
  /** Records of the open batch (not yet handed to persist). */
  private openBatch: SigningRecord[] = [];
  /** Closed batches waiting for the sync in flight, in id order. */
  private readonly closedBatches: { id: number; records: SigningRecord[] }[] = [];
  /** Id of the open batch; batches get ids 1, 2, 3, ... in append order. */
  private openId = 1;
  /** Id of the batch being synced, or 0. */
  private syncingId = 0;
  /** Highest batch id known durable. */
  private durableId = 0;
  /** Sends waiting for a batch: [batch id that must be durable, send]. In order. */
  private readonly outbox: { gate: number; send: () => void }[] = [];
  private broken = false;
  /** Set by stop(): the sync in flight completes (and releases its sends), no new one starts. */
  private stopping = false;
  private idle: Promise<void> = Promise.resolve();
  private releaseIdle: (() => void) | null = null;

  constructor(private readonly mod: GroupCommitModules) {}

  /** Whether a sync failed: nothing is sent any more. */
  get failed(): boolean {
    return this.broken;
  }

  /**
   * Appends a record to the open batch. A COMMIT never shares a batch with the PREPARE (or
   * PRE-PREPARE) it follows: that one leaves first, so a crash can leave a durable unsent COMMIT
   * but never an unsent PREPARE behind it, and the others can still become prepared without us.
   */
  append(record: SigningRecord): void {
    if (record.kind === "commit") {
      const h = record.height;
      if (this.openBatch.some((r) => (r.kind === "prepare" || r.kind === "prePrepare") && r.height === h))
        this.closeOpenBatch();
    }
    this.openBatch.push(record);
  }

  /**
   * Sends now if every record appended so far is durable and nothing is queued before it;
   * otherwise queues it behind the batch holding the latest record (and starts that batch's
   * sync if none is in flight).
   */
  sendWhenDurable(send: () => void): void {
    if (this.broken) return;
    // Every batch id below openId holds records; the open one too when it is not empty.
    const gate = this.openBatch.length > 0 ? this.openId : this.openId - 1;
    if (gate <= this.durableId && this.outbox.length === 0) {
      send();
      return;
    }
    this.outbox.push({ gate, send });
    this.flush();
  }

  /** Makes what is appended durable too when no send waits for it (in the next sync). */
  flush(): void {
    if (this.openBatch.length > 0 || this.closedBatches.length > 0) this.startSync();
  }

  /** No new sync starts; resolves once the one in flight (and the sends it releases) is done. */
  stop(): Promise<void> {
    this.stopping = true;
    return this.idle;
  }

  private closeOpenBatch(): void {
    if (this.openBatch.length === 0) return;
    this.closedBatches.push({ id: this.openId, records: this.openBatch });
    this.openBatch = [];
    this.openId++;
  }

  /**
   * Starts syncing the oldest closed batch, else the open one, unless a sync is in flight (the
   * next starts when that one ends).
   */
  private startSync(): void {
    if (this.syncingId !== 0 || this.broken || this.stopping) return;
    if (this.closedBatches.length === 0) this.closeOpenBatch();
    const next = this.closedBatches.shift();
    if (next === undefined) return;
    const { id, records } = next;
    this.syncingId = id;
    if (this.releaseIdle === null)
      this.idle = new Promise((r) => {
        this.releaseIdle = r;
      });
    const t0 = performance.now();
    this.mod.persist(records).then(
      () => {
        this.mod.synced?.(performance.now() - t0, records.length);
        this.syncingId = 0;
        this.durableId = id;
        try {
          while (this.outbox.length > 0 && this.outbox[0]!.gate <= this.durableId)
            this.outbox.shift()!.send();
        } catch (err: unknown) {
          // As a failing send on the event path: a bug; stop rather than go on half-sent.
          this.outbox.length = 0;
          this.stopping = true;
          this.mod.failed("send", err);
        }
        if ((this.closedBatches.length > 0 || this.openBatch.length > 0) && !this.stopping) this.startSync();
        else this.settleIdle();
      },
      (err: unknown) => {
        // Stop voting rather than risk sending what was not recorded: nothing queued is sent.
        this.broken = true;
        this.syncingId = 0;
        this.outbox.length = 0;
        this.openBatch = [];
        this.closedBatches.length = 0;
        this.settleIdle();
        this.mod.failed("persist", err);
      },
    );
  }

  private settleIdle(): void {
    const r = this.releaseIdle;
    this.releaseIdle = null;
    r?.();
  }
}
