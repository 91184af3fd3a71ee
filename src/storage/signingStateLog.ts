// The signing state as an append-only log beside the validator key (DESIGN §2): each record the
// consensus core persists is appended as one JSON line and fdatasync'ed before the send it guards,
// instead of rewriting the whole state per vote. Every `compactEvery` records the folded state is
// written as a snapshot (signing_state.json, atomically) and the log is truncated.
//
// Crash cases: a torn last line is a record whose append never resolved, so its message was never
// sent: it is dropped. Lines carry a sequence number; after a crash between writing a snapshot
// and truncating the log, lines the snapshot already covers are skipped, never folded twice.
import { promises as fs } from "node:fs";
import path from "node:path";
import { fsyncDir, writeFileAtomic } from "../crypto/keys.js";
import { StorageError } from "./errors.js";
import { decodeJson, encodeJson } from "./json.js";
import {
  oldSigningStateFormat as oldFormat,
  SIGNING_STATE_FILE,
  SIGNING_STATE_FORMAT,
} from "./signingState.js";

export const SIGNING_LOG_FILE = "signing_state.log";
const FORMAT_VERSION = SIGNING_STATE_FORMAT;

export interface SigningStateLogOpts<S, R> {
  /** Folds one record into the state; must not modify its input. */
  fold: (state: S, record: R) => S;
  /** The state before any record. */
  initial: () => S;
  /** Snapshot and truncate the log after this many appends. Default 512. */
  compactEvery?: number;
}

interface Snapshot {
  version: number;
  /** Sequence number of the last record folded into `record`. */
  seq: number;
  record: unknown;
}

export class SigningStateLog<S, R> {
  readonly snapshotFile: string;
  readonly logFile: string;
  private fh: fs.FileHandle | null = null;
  private current: S;
  private seq = 0;
  private sinceCompact = 0;
  private size = 0;
  private chain: Promise<void> = Promise.resolve();
  private lastMs = 0;

  constructor(
    readonly dir: string,
    private readonly opts: SigningStateLogOpts<S, R>,
  ) {
    this.snapshotFile = path.join(dir, SIGNING_STATE_FILE);
    this.logFile = path.join(dir, SIGNING_LOG_FILE);
    this.current = opts.initial();
  }

  static besideKey<S, R>(keyFile: string, opts: SigningStateLogOpts<S, R>): SigningStateLog<S, R> {
    return new SigningStateLog(path.dirname(keyFile), opts);
  }

  /**
   * Loads snapshot + log and opens the log for appending. Returns null when there was no signing
   * state at all (the validator must not vote until caught up), else the folded state.
   */
  async open(): Promise<S | null> {
    if (this.fh) throw new Error("signing state log already open");
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const snapshot = await this.readSnapshot();
    let state = snapshot ? (snapshot.record as S) : this.opts.initial();
    let seq = snapshot?.seq ?? 0;
    let found = snapshot !== null;

    let text: string | null = null;
    try {
      text = await fs.readFile(this.logFile, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    let goodBytes = 0;
    if (text !== null && text.length > 0) {
      found = true;
      let offset = 0;
      while (offset < text.length) {
        const nl = text.indexOf("\n", offset);
        // No newline: a torn tail from an append that never resolved. Dropped below.
        if (nl === -1) break;
        const line = text.slice(offset, nl);
        let parsed: { seq: number; r: R; v?: number } | null = null;
        try {
          parsed = decodeJson<{ seq: number; r: R; v?: number }>(line);
        } catch {
          parsed = null;
        }
        // Every line names its format; a line of an older format is refused, never folded.
        if (parsed !== null && typeof parsed.seq === "number" && parsed.v !== FORMAT_VERSION) {
          throw oldFormat(this.logFile, parsed.v ?? 1);
        }
        if (parsed === null || typeof parsed.seq !== "number") {
          throw new StorageError(
            "SIGNING_STATE_CORRUPT",
            { file: this.logFile, offset: goodBytes },
            `${this.logFile}: unreadable record at byte ${goodBytes}`,
          );
        }
        if (parsed.seq > seq) {
          if (parsed.seq !== seq + 1) {
            throw new StorageError(
              "SIGNING_STATE_CORRUPT",
              { file: this.logFile, expected: seq + 1, found: parsed.seq },
              `${this.logFile}: record ${seq + 1} missing`,
            );
          }
          state = this.opts.fold(state, parsed.r);
          seq = parsed.seq;
        }
        offset = nl + 1;
        goodBytes += Buffer.byteLength(line) + 1;
      }
    }

    const existed = text !== null;
    this.fh = await fs.open(this.logFile, "a", 0o600);
    const stat = await this.fh.stat();
    if (stat.size !== goodBytes) {
      await this.fh.truncate(goodBytes);
      await this.fh.sync();
    }
    if (!existed) await fsyncDir(this.dir);
    this.size = goodBytes;
    this.current = state;
    this.seq = seq;
    return found ? state : null;
  }

  /** The state folded from every record appended so far. */
  get state(): S {
    return this.current;
  }

  /** Wall time of the last completed append (including any compaction it triggered). */
  get lastAppendMs(): number {
    return this.lastMs;
  }

  /** Durably appends records (one fdatasync for all of them); resolves once they are on disk. */
  append(...records: R[]): Promise<void> {
    const next = this.chain.then(() => this.doAppend(records));
    this.chain = next.catch(() => {});
    return next;
  }

  /** Writes the folded state as the snapshot and empties the log. */
  compact(): Promise<void> {
    const next = this.chain.then(() => this.doCompact());
    this.chain = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    await this.chain;
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  private async doAppend(records: R[]): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error("signing state log is not open");
    if (records.length === 0) return;
    const t0 = performance.now();
    let text = "";
    for (let i = 0; i < records.length; i++) {
      text += `${encodeJson({ v: FORMAT_VERSION, seq: this.seq + 1 + i, r: records[i] })}\n`;
    }
    const bytes = Buffer.from(text);
    try {
      await fh.write(bytes);
      await fh.datasync();
    } catch (err) {
      // Cut a partial line off so the next append does not follow garbage.
      await fh.truncate(this.size).catch(() => {});
      throw err;
    }
    this.size += bytes.length;
    let state = this.current;
    for (const r of records) state = this.opts.fold(state, r);
    this.current = state;
    this.seq += records.length;
    this.sinceCompact += records.length;
    if (this.sinceCompact >= (this.opts.compactEvery ?? 512)) await this.doCompact();
    this.lastMs = performance.now() - t0;
  }

  private async doCompact(): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error("signing state log is not open");
    const snap: Snapshot = { version: FORMAT_VERSION, seq: this.seq, record: this.current };
    await writeFileAtomic(this.snapshotFile, encodeJson(snap), 0o600);
    await fh.truncate(0);
    await fh.sync();
    this.size = 0;
    this.sinceCompact = 0;
  }

  private async readSnapshot(): Promise<Snapshot | null> {
    let text: string;
    try {
      text = await fs.readFile(this.snapshotFile, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    let snap: Snapshot;
    try {
      snap = decodeJson<Snapshot>(text);
    } catch {
      throw new StorageError(
        "SIGNING_STATE_CORRUPT",
        { file: this.snapshotFile },
        `${this.snapshotFile}: bad JSON`,
      );
    }
    if (typeof snap?.version === "number" && snap.version < FORMAT_VERSION) {
      throw oldFormat(this.snapshotFile, snap.version);
    }
    if (snap?.version !== FORMAT_VERSION) {
      throw new StorageError(
        "SIGNING_STATE_CORRUPT",
        { file: this.snapshotFile },
        `${this.snapshotFile}: unknown signing state format`,
      );
    }
    return { version: snap.version, seq: typeof snap.seq === "number" ? snap.seq : 0, record: snap.record };
  }
}
