export * from "./errors.js";
export * from "./hash.js";
export * from "./keys.js";
export * from "./node.js";
export * from "./tls.js";
export { txBodySender } from "./txSender.js";
export * from "./verifyPool.js";
