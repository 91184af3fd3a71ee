import { ParabftError } from "../types/errors.js";

export type StorageErrorCode =
  | "DB_CLOSED"
  | "DB_OPEN_FAILED"
  | "SCHEMA_TOO_NEW"
  | "CORRUPT_RECORD"
  | "SIGNING_STATE_CORRUPT";

export class StorageError extends ParabftError<StorageErrorCode, Record<string, unknown>> {}
