// src/staking: delegated proof of stake as a pure state transition (see README.md).
export * from "./access.js";
export * from "./codec.js";
export * from "./elect.js";
export * from "./epoch.js";
export * from "./errors.js";
export * from "./evidence.js";
export * from "./hook.js";
export * from "./keys.js";
export * from "./programs.js";
export * from "./query.js";
export * from "./state.js";
export * from "./types.js";
