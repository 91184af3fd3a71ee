export { Bucket } from "./buckets.js";
export * from "./chainDb.js";
export { Db, type DbOp, type IterateOpts, type WriteOpts } from "./db.js";
export * from "./errors.js";
export { decodeJson, encodeJson } from "./json.js";
export * from "./signingState.js";
export * from "./signingStateLog.js";
