import { ParabftError } from "../types/errors.js";

export type StorageErrorCode =
  | "DB_CLOSED"
  /** A chained batch (Db.chain) used after its write(): a bug in the caller. */
  | "DB_BATCH_WRITTEN"
  | "DB_OPEN_FAILED"
  | "SCHEMA_TOO_NEW"
  /** Execution results written in an older layout: refused, with the command that rebuilds it. */
  | "EXEC_LAYOUT_OLD"
  /** Written by an older protocol version that this build refuses to read (no migration). */
  | "SCHEMA_TOO_OLD"
  | "SIGNING_STATE_OLD_FORMAT"
  | "CORRUPT_RECORD"
  | "SIGNING_STATE_CORRUPT"
  /** A commit batch above committed + 1: heights are committed in order, without gaps. */
  | "COMMIT_GAP"
  /** A different digest offered for an already committed height: a safety violation. */
  | "CONFLICTING_COMMIT"
  /** An execution batch below the executed height. */
  | "EXEC_REWIND";

export class StorageError extends ParabftError<StorageErrorCode, Record<string, unknown>> {}
