// The command line of the A/B tools that load two builds' modules into one process
// (execDecode, execAlt, execFold): `A_ROOT B_ROOT [--name N ...]`, ROOT a worktree with a built
// dist/. Loading both builds side by side keeps their code warming up and their garbage in one
// heap, so the tools read differences, not absolute figures.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

// biome-ignore lint/suspicious/noExplicitAny: modules of another build, loaded by path
export type AnyModule = any;

export interface TwoBuilds {
  /** The two worktrees, resolved: A then B. */
  roots: [string, string];
  /** The number after `--name`, or `dflt` when the flag is absent. */
  opt(name: string, dflt: number): number;
  /** `dist/<path>` of a build (e.g. "src/exec/parallel.js"). */
  load(root: string, path: string): Promise<AnyModule>;
}

/** The two roots and numeric flags; null (usage printed, exit code 2) without two roots. */
export function twoBuilds(args: readonly string[], usage: string): TwoBuilds | null {
  if (!args[0] || !args[1] || args[0].startsWith("--")) {
    process.stderr.write(`usage: ${usage}\n`);
    process.exitCode = 2;
    return null;
  }
  return {
    roots: [resolve(args[0]), resolve(args[1])],
    opt: (name, dflt) => {
      const i = args.indexOf(name);
      return i >= 0 ? +args[i + 1]! : dflt;
    },
    load: (root, path) => import(pathToFileURL(`${root}/dist/${path}`).href),
  };
}
