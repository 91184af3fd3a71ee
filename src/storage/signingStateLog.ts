// The signing state as a preallocated, append-only BINARY log beside the validator key (DESIGN
// §2): each batch of records the consensus core persists is written as one frame at the log's
// write position and fdatasync'ed before the sends it guards. The file is preallocated (zeros) at
// open, so an append overwrites allocated blocks and never grows the file: fdatasync flushes the
// data only, no file-size metadata and no journal commit. When the file is full (or every
// `compactEvery` records, if set), the folded state is written as a snapshot (signing_state.json,
// atomically) and the log starts a new generation at offset 0.
//
// Frame: magic u32 | length u32 (whole frame) | crc32 u32 (of the bytes after it) | first seq
// u53 (8 bytes) | count u32 | count × (length u32 | binValue record). Sequence numbers run on
// across generations, so a reader tells the current generation from stale frames left behind an
// older one: frames are read from offset 0 while each one is whole and continues the sequence.
//
// Crash cases:
// - A torn last frame (its fdatasync never completed, so nothing it covers was sent) fails its
//   CRC or its header: it is dropped, and the next append overwrites it.
// - A bad frame followed by a whole frame that continues past the last good sequence is damage
//   in the middle of the log, never a torn tail (frames are written one at a time, each after the
//   previous one's sync): refused with SIGNING_STATE_CORRUPT.
// - A crash between writing a snapshot and the first frame of the new generation: the frames
//   still at offset 0 carry sequence numbers the snapshot covers and are skipped.
// - An older build's JSON-lines log (signing_state.log) is read once at open, folded into a
//   snapshot and removed (a one-way migration).
import { closeSync, fdatasync, promises as fs, openSync, writeSync } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { fsyncDir, writeFileAtomic } from "../crypto/keys.js";
import { BinReader, BinWriter } from "./binValue.js";
import { StorageError } from "./errors.js";
import { decodeJson, encodeJson } from "./json.js";
import { SerialWrites } from "./serialWrites.js";
import {
  oldSigningStateFormat as oldFormat,
  SIGNING_STATE_FILE,
  SIGNING_STATE_FORMAT,
} from "./signingState.js";

/** The binary log. */
export const SIGNING_LOG_FILE = "signing_state.bin";
/** The JSON-lines log of earlier builds: migrated (folded into the snapshot) at open, then removed. */
export const LEGACY_SIGNING_LOG_FILE = "signing_state.log";
const FORMAT_VERSION = SIGNING_STATE_FORMAT;
/** Default preallocated size of the log. */
export const SIGNING_LOG_CAPACITY = 8 * 1024 * 1024;
const MAGIC = 0x46534250; // "PBSF"
const HEADER = 24;

export interface SigningStateLogOpts<S, R> {
  /** Folds one record into the state; must not modify its input. */
  fold: (state: S, record: R) => S;
  /** The state before any record. */
  initial: () => S;
  /** Also snapshot and restart the log after this many records (default: only when full). */
  compactEvery?: number;
  /** Preallocated size of the log file in bytes (default SIGNING_LOG_CAPACITY). */
  capacity?: number;
}

interface Snapshot {
  version: number;
  /** Sequence number of the last record folded into `record`. */
  seq: number;
  record: unknown;
}

interface Frame {
  firstSeq: number;
  count: number;
  /** Offset just past the frame. */
  end: number;
  /** Offset of each record's payload and its length. */
  records: { at: number; len: number }[];
}

/** Parses the frame at `at`, or null when it is not a whole frame (zeros, torn, garbage). */
function readFrame(buf: Buffer, at: number): Frame | null {
  if (at + HEADER > buf.length) return null;
  if (buf.readUInt32LE(at) !== MAGIC) return null;
  const len = buf.readUInt32LE(at + 4);
  if (len < HEADER || at + len > buf.length) return null;
  if (crc32(buf.subarray(at + 12, at + len)) !== buf.readUInt32LE(at + 8)) return null;
  const firstSeq = buf.readUInt32LE(at + 12) + buf.readUInt32LE(at + 16) * 0x1_0000_0000;
  const count = buf.readUInt32LE(at + 20);
  const records: { at: number; len: number }[] = [];
  let p = at + HEADER;
  for (let i = 0; i < count; i++) {
    if (p + 4 > at + len) return null;
    const n = buf.readUInt32LE(p);
    if (p + 4 + n > at + len) return null;
    records.push({ at: p + 4, len: n });
    p += 4 + n;
  }
  if (p !== at + len) return null;
  return { firstSeq, count, end: at + len, records };
}

/** The header of a frame whose body may be damaged: where it claims to end, or null. */
function claimedEnd(buf: Buffer, at: number): number | null {
  if (at + HEADER > buf.length || buf.readUInt32LE(at) !== MAGIC) return null;
  const len = buf.readUInt32LE(at + 4);
  return len >= HEADER && at + len <= buf.length ? at + len : null;
}

/**
 * Every record the log in `dir` holds past its snapshot, without opening it for appending (tools
 * and tests that audit what a validator made durable). Includes an unmigrated legacy log's lines.
 */
export async function readSigningLogRecords<R = unknown>(dir: string): Promise<R[]> {
  const out: R[] = [];
  const reader = new SigningStateLog<null, R>(dir, {
    fold: (_s, r) => {
      out.push(r);
      return null;
    },
    initial: () => null,
  });
  await reader.readOnly();
  return out;
}

export class SigningStateLog<S, R> {
  readonly snapshotFile: string;
  readonly logFile: string;
  readonly legacyLogFile: string;
  private fd: number | null = null;
  /** Folded state up to the records in `pending` (folded lazily, on read or compaction). */
  private folded: S;
  private pending: R[] = [];
  private seq = 0;
  private sinceCompact = 0;
  /** Where the next frame goes. */
  private pos = 0;
  private capacity: number;
  private readonly writes = new SerialWrites();
  private lastMs = 0;
  private readonly writer = new BinWriter(16 * 1024);

  constructor(
    readonly dir: string,
    private readonly opts: SigningStateLogOpts<S, R>,
  ) {
    this.snapshotFile = path.join(dir, SIGNING_STATE_FILE);
    this.logFile = path.join(dir, SIGNING_LOG_FILE);
    this.legacyLogFile = path.join(dir, LEGACY_SIGNING_LOG_FILE);
    this.folded = opts.initial();
    this.capacity = opts.capacity ?? SIGNING_LOG_CAPACITY;
  }

  static besideKey<S, R>(keyFile: string, opts: SigningStateLogOpts<S, R>): SigningStateLog<S, R> {
    return new SigningStateLog(path.dirname(keyFile), opts);
  }

  /**
   * Loads snapshot + log and opens the log for appending. Returns null when there was no signing
   * state at all (the validator must not vote until caught up), else the folded state.
   */
  async open(): Promise<S | null> {
    if (this.fd !== null) throw new Error("signing state log already open");
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const snapshot = await this.readSnapshot();
    let state = snapshot ? (snapshot.record as S) : this.opts.initial();
    let seq = snapshot?.seq ?? 0;
    let found = snapshot !== null;

    // An older build's JSON-lines log: fold it, then make it a snapshot (below) and remove it.
    const legacy = await this.readLegacyLog(state, seq);
    if (legacy !== null) {
      found = true;
      state = legacy.state;
      seq = legacy.seq;
    }

    let buf: Buffer | null = null;
    try {
      buf = await fs.readFile(this.logFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    let pos = 0;
    if (buf !== null) {
      const scan = this.scan(buf, state, seq);
      if (scan.any) found = true;
      state = scan.state;
      seq = scan.seq;
      pos = scan.pos;
    }
    this.folded = state;
    this.seq = seq;

    if (legacy !== null) {
      // Snapshot first (covers every legacy record), then remove the legacy log: a crash between
      // the two leaves legacy lines the snapshot covers, which are skipped.
      await this.writeSnapshot();
      pos = 0;
      await fs.rm(this.legacyLogFile, { force: true });
      await fsyncDir(this.dir);
    }

    const existed = buf !== null;
    const fd = openSync(this.logFile, existed ? "r+" : "w+", 0o600);
    try {
      this.capacity = Math.max(this.capacity, buf?.length ?? 0);
      if ((buf?.length ?? 0) < this.capacity) await this.preallocate(fd, buf?.length ?? 0, this.capacity);
      if (!existed) await fsyncDir(this.dir);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
    this.pos = pos;
    return found ? this.state : null;
  }

  /** Folds snapshot, legacy log and binary log as open() does, opening nothing for writing. */
  async readOnly(): Promise<void> {
    const snapshot = await this.readSnapshot();
    let seq = snapshot?.seq ?? 0;
    let state = this.opts.initial();
    const legacy = await this.readLegacyLog(state, seq);
    if (legacy !== null) ({ state, seq } = legacy);
    let buf: Buffer;
    try {
      buf = await fs.readFile(this.logFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    this.scan(buf, state, seq);
  }

  /** The state folded from every record appended so far. */
  get state(): S {
    return this.foldPending();
  }

  private foldPending(): S {
    if (this.pending.length > 0) {
      let s = this.folded;
      for (const r of this.pending) s = this.opts.fold(s, r);
      this.folded = s;
      this.pending = [];
    }
    return this.folded;
  }

  /** Wall time of the last completed append (including any compaction it triggered). */
  get lastAppendMs(): number {
    return this.lastMs;
  }

  /** Durably appends records (one write and one fdatasync for all of them); resolves once they are on disk. */
  append(...records: R[]): Promise<void> {
    return this.writes.run(() => this.doAppend(records));
  }

  /** Writes the folded state as the snapshot and starts a new log generation. */
  compact(): Promise<void> {
    return this.writes.run(() => this.doCompact());
  }

  async close(): Promise<void> {
    await this.writes.idle();
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeSync(fd);
  }

  private async doAppend(records: R[]): Promise<void> {
    if (this.fd === null) throw new Error("signing state log is not open");
    if (records.length === 0) return;
    const t0 = performance.now();
    const frame = this.encodeFrame(records, this.seq + 1);
    if (this.pos + frame.length > this.capacity) {
      await this.doCompact();
      if (frame.length > this.capacity) {
        // Off the hot path: a single batch larger than the whole log (huge blocks).
        await this.preallocate(this.fd, this.capacity, frame.length * 2);
        this.capacity = frame.length * 2;
      }
    }
    const fd = this.fd;
    // One positioned write into preallocated blocks (page cache: microseconds, on this thread),
    // then one fdatasync on the thread pool.
    let written = 0;
    while (written < frame.length) {
      written += writeSync(fd, frame, written, frame.length - written, this.pos + written);
    }
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    // The frame is durable: the position moves past it only now, so a failed sync is overwritten.
    this.pos += frame.length;
    for (const r of records) this.pending.push(r);
    // Folded in bulk (the state is read only at compaction), bounded so no fold is a long pause.
    if (this.pending.length >= 256) this.foldPending();
    this.seq += records.length;
    this.sinceCompact += records.length;
    if (this.opts.compactEvery !== undefined && this.sinceCompact >= this.opts.compactEvery)
      await this.doCompact();
    this.lastMs = performance.now() - t0;
  }

  private encodeFrame(records: R[], firstSeq: number): Buffer {
    const w = this.writer;
    w.pos = 0;
    w.ensure(HEADER);
    w.pos = HEADER;
    for (const r of records) {
      const at = w.pos;
      w.u32(0);
      w.value(r);
      w.buf.writeUInt32LE(w.pos - at - 4, at);
    }
    const len = w.pos;
    const buf = w.buf;
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(len, 4);
    buf.writeUInt32LE(firstSeq % 0x1_0000_0000, 12);
    buf.writeUInt32LE(Math.floor(firstSeq / 0x1_0000_0000), 16);
    buf.writeUInt32LE(records.length, 20);
    buf.writeUInt32LE(crc32(buf.subarray(12, len)), 8);
    return buf.subarray(0, len);
  }

  private async doCompact(): Promise<void> {
    if (this.fd === null) throw new Error("signing state log is not open");
    await this.writeSnapshot();
    // Stale frames stay in the file; their sequence numbers (all covered by the snapshot) end
    // the new generation when a reader reaches them.
    this.pos = 0;
    this.sinceCompact = 0;
  }

  private async writeSnapshot(): Promise<void> {
    const snap: Snapshot = { version: FORMAT_VERSION, seq: this.seq, record: this.state };
    await writeFileAtomic(this.snapshotFile, encodeJson(snap), 0o600);
  }

  /** Fills [from, to) with zeros and syncs, so later appends never grow the file. */
  private async preallocate(fd: number, from: number, to: number): Promise<void> {
    const chunk = Buffer.alloc(Math.min(1024 * 1024, to - from));
    for (let at = from; at < to; ) {
      const n = Math.min(chunk.length, to - at);
      at += writeSync(fd, chunk, 0, n, at);
    }
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Folds the current generation of `buf` into `state` past `seq`. */
  private scan(buf: Buffer, state: S, seq: number): { state: S; seq: number; pos: number; any: boolean } {
    let at = 0;
    let expected = -1; // the next sequence number of this generation, once its first frame is read
    let any = false;
    const covered = seq;
    for (;;) {
      const frame = readFrame(buf, at);
      if (frame === null) {
        // A torn tail, zeros, or damage: damage when a whole frame that continues the sequence
        // follows the bad one.
        const end = claimedEnd(buf, at);
        const after = end === null ? null : readFrame(buf, end);
        if (after !== null && after.firstSeq > Math.max(seq, expected - 1)) {
          throw new StorageError(
            "SIGNING_STATE_CORRUPT",
            { file: this.logFile, offset: at },
            `${this.logFile}: damaged frame at byte ${at}`,
          );
        }
        break;
      }
      // A frame below the sequence is a stale one of an older generation (the snapshot covers
      // it): the end. One above it means records are missing.
      if (expected !== -1 && frame.firstSeq < expected) break;
      if (frame.firstSeq > seq + 1 || (expected !== -1 && frame.firstSeq > expected)) {
        throw new StorageError(
          "SIGNING_STATE_CORRUPT",
          { file: this.logFile, expected: seq + 1, found: frame.firstSeq },
          `${this.logFile}: record ${seq + 1} missing`,
        );
      }
      any = true;
      for (let i = 0; i < frame.count; i++) {
        const s = frame.firstSeq + i;
        if (s <= seq) continue; // already in the snapshot
        const { at: rat, len } = frame.records[i]!;
        const reader = new BinReader(buf, rat, rat + len);
        state = this.opts.fold(state, reader.value() as R);
        seq = s;
      }
      expected = frame.firstSeq + frame.count;
      at = frame.end;
    }
    // A generation the snapshot covers entirely (a crash right after compaction) restarts at 0.
    const pos = expected === -1 || expected - 1 <= covered ? 0 : at;
    return { state, seq, pos, any };
  }

  /** Reads an older build's JSON-lines log, or null when there is none. */
  private async readLegacyLog(state: S, seq: number): Promise<{ state: S; seq: number } | null> {
    let text: string;
    try {
      text = await fs.readFile(this.legacyLogFile, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    let offset = 0;
    let goodBytes = 0;
    while (offset < text.length) {
      const nl = text.indexOf("\n", offset);
      // No newline: a torn tail from an append that never resolved.
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
        throw oldFormat(this.legacyLogFile, parsed.v ?? 1);
      }
      if (parsed === null || typeof parsed.seq !== "number") {
        throw new StorageError(
          "SIGNING_STATE_CORRUPT",
          { file: this.legacyLogFile, offset: goodBytes },
          `${this.legacyLogFile}: unreadable record at byte ${goodBytes}`,
        );
      }
      if (parsed.seq > seq) {
        if (parsed.seq !== seq + 1) {
          throw new StorageError(
            "SIGNING_STATE_CORRUPT",
            { file: this.legacyLogFile, expected: seq + 1, found: parsed.seq },
            `${this.legacyLogFile}: record ${seq + 1} missing`,
          );
        }
        state = this.opts.fold(state, parsed.r);
        seq = parsed.seq;
      }
      offset = nl + 1;
      goodBytes += Buffer.byteLength(line) + 1;
    }
    return { state, seq };
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
