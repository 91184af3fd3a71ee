export * from "./backend.js";
export type { ApiLimitReason } from "./callLimits.js";
export * from "./epochProof.js";
export * from "./errors.js";
export * from "./protoFiles.js";
export * from "./server.js";
