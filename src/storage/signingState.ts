// The validator's signing state (DESIGN §2 "Safety across restarts"): what the replica has signed,
// kept BESIDE the validator key and OUTSIDE the data directory, so wiping the data directory
// cannot make it equivocate. Written atomically and durably before the message it covers is sent.
import { promises as fs } from "node:fs";
import path from "node:path";
import { fsyncDir, writeFileAtomic } from "../crypto/keys.js";
import { StorageError } from "./errors.js";
import { decodeJson, encodeJson } from "./json.js";
import { SerialWrites } from "./serialWrites.js";

export const SIGNING_STATE_FILE = "signing_state.json";
/**
 * 2: COMMITs are view-bound (protocol version 2) and PREPARE records carry block bodies. A
 * version-1 state held a commit lock and view-less COMMITs: it is refused, never read.
 */
export const SIGNING_STATE_FORMAT = 2;
const FORMAT_VERSION = SIGNING_STATE_FORMAT;

/** How to get past an old-format signing state or database on a local testnet. */
export const RESET_TESTNET_HINT =
  "this build (protocol version 2: view-bound COMMITs) cannot use it; on a local testnet stop every node, " +
  "delete the testnet directory and create a new one with `parabft testnet --validators N --out DIR`";

export function oldSigningStateFormat(file: string, found: unknown): StorageError {
  return new StorageError(
    "SIGNING_STATE_OLD_FORMAT",
    { file, found, supported: FORMAT_VERSION },
    `${file}: signing state format ${String(found)} was written by an older version; ${RESET_TESTNET_HINT}`,
  );
}

interface FileShape {
  version: number;
  record: unknown;
}

export class SigningStateStore {
  /** Saves are serialised in call order, so the file always ends with the latest record. */
  private readonly saves = new SerialWrites();
  private lastMs = 0;

  /** `file` is the full path; use `besideKey(keyFile)` for the conventional location. */
  constructor(readonly file: string) {}

  /** `<directory of the key file>/signing_state.json`. */
  static besideKey(keyFile: string): SigningStateStore {
    return new SigningStateStore(path.join(path.dirname(keyFile), SIGNING_STATE_FILE));
  }

  /** The last saved record, or null when none was ever saved (a validator that must not vote yet). */
  async load<T = unknown>(): Promise<T | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    let parsed: FileShape;
    try {
      parsed = decodeJson<FileShape>(text);
    } catch {
      // Never silently treat a damaged file as "no state": the operator must decide.
      throw new StorageError("SIGNING_STATE_CORRUPT", { file: this.file }, `${this.file}: not valid JSON`);
    }
    if (typeof parsed?.version === "number" && parsed.version < FORMAT_VERSION) {
      throw oldSigningStateFormat(this.file, parsed.version);
    }
    if (typeof parsed !== "object" || parsed === null || parsed.version !== FORMAT_VERSION) {
      throw new StorageError(
        "SIGNING_STATE_CORRUPT",
        { file: this.file, version: (parsed as FileShape | null)?.version },
        `${this.file}: unknown signing state format`,
      );
    }
    return parsed.record as T;
  }

  /**
   * Durably replaces the record (temp file 0600, fsync, rename, fsync directory). Saves are
   * serialised in call order, so the file always ends with the latest record.
   */
  save(record: unknown): Promise<void> {
    const text = encodeJson({ version: FORMAT_VERSION, record } satisfies FileShape);
    // A failed save rejects its caller but not the saves queued after it (SerialWrites).
    return this.saves.run(async () => {
      const t0 = performance.now();
      await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, text, 0o600);
      this.lastMs = performance.now() - t0;
    });
  }

  /** Wall time of the last completed save, for metrics. */
  get lastSaveMs(): number {
    return this.lastMs;
  }

  /** Removes the file (tests, and an operator's explicit reset). */
  async remove(): Promise<void> {
    await fs.rm(this.file, { force: true });
    await fsyncDir(path.dirname(this.file)).catch(() => {});
  }
}
