export * from "./admission.js";
export * from "./errors.js";
export * from "./mempool.js";
export * from "./types.js";
