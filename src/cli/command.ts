// The contract every `parabft` subcommand implements. Commands parse their own flags with
// parseCommandArgs, print data as JSON with --json, and return an exit code:
// 0 success, 1 a failure of the work itself (e.g. a simulator violation), 2 bad usage/config.
import { type ParseArgsConfig, parseArgs } from "node:util";
import { ParabftError } from "../types/errors.js";

export interface CliCommand {
  name: string;
  summary: string;
  /** Full --help text. */
  usage: string;
  run(argv: string[]): Promise<number>;
}

export type UsageErrorCode = "USAGE";

/** A bad flag or value; the CLI prints its message and exits with code 2. */
export class UsageError extends ParabftError<UsageErrorCode, { field: string }> {
  constructor(field: string, message: string) {
    super("USAGE", { field }, message);
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** node:util parseArgs in strict mode, with errors turned into UsageError naming the flag. */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals,
    });
  } catch (err: unknown) {
    const msg = err instanceof Error ? err.message : String(err);
    const flag = /'(--?[\w-]+)/.exec(msg)?.[1] ?? "arguments";
    throw new UsageError(flag, msg);
  }
}

export function intFlag(
  name: string,
  raw: string | undefined,
  dflt: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
) {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(`--${name}`, `--${name} must be an integer in [${min}, ${max}], got '${raw}'`);
  }
  return v;
}

/** A flag that must be present and non-empty. */
export function requiredFlag(flag: string, v: string | undefined): string {
  if (v === undefined || v === "") throw new UsageError(flag, `${flag} is required`);
  return v;
}

/** The subcommand action (`parabft tx transfer`, `parabft query block`): exactly one known word. */
export function parseAction<A extends string>(positionals: readonly string[], actions: readonly A[]): A {
  const [action, ...extra] = positionals;
  if (!actions.includes(action as A)) {
    throw new UsageError(
      "action",
      `expected one of ${actions.join(", ")}, got ${action ? `'${action}'` : "nothing"}`,
    );
  }
  if (extra.length > 0) throw new UsageError("arguments", `unexpected argument '${extra[0]}'`);
  return action as A;
}
