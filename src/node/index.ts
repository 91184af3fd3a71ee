// Entry point of a validator process.
import type { Logger } from "../logger/index.js";
import { type RunningNode, ValidatorNode } from "./node.js";

export type { RunningNode } from "./node.js";
export { ValidatorNode } from "./node.js";

/** Loads `<home>/config.json` and its genesis, recovers from disk and starts the validator. */
export async function startNode(home: string, opts: { log?: Logger } = {}): Promise<RunningNode> {
  return ValidatorNode.start(home, opts);
}
