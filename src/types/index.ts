export * from "./block.js";
export * from "./bytes.js";
export * from "./errors.js";
export * from "./hash.js";
export * from "./signing.js";
export * from "./stateKeys.js";
