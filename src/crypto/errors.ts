import { ParabftError } from "../types/errors.js";

export type CryptoErrorCode =
  | "KEY_FILE_MISSING"
  | "KEY_FILE_MALFORMED"
  | "KEY_LENGTH"
  | "KEY_MISMATCH"
  | "KEY_FILE_EXISTS"
  | "VERIFY_POOL_STOPPED"
  | "VERIFY_WORKER_FAILED";

export class CryptoError extends ParabftError<CryptoErrorCode, { path?: string; field?: string }> {}
