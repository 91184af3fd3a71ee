// The `parabft` dispatcher: command table, global --help/--version, and the one place that maps
// errors to exit codes (2: bad usage or configuration, naming the flag or field; 1: failure).
import { ParabftError } from "../types/errors.js";
import type { CliCommand } from "./command.js";
import { formatTable } from "./output.js";
import { VERSION } from "./version.js";

export interface CommandEntry {
  summary: string;
  /** Loaded on use, so `parabft keys` does not pay for loading the node or the simulator. */
  load?: () => Promise<CliCommand>;
  /** A command group such as `bench exec|cluster`. */
  sub?: Record<string, CommandEntry>;
}

export const commands: Record<string, CommandEntry> = {
  init: {
    summary: "create a single-validator node home (key, config, genesis)",
    load: async () => (await import("./commands/init.js")).initCommand,
  },
  keys: {
    summary: "generate or show an Ed25519 key file",
    load: async () => (await import("./commands/keys.js")).keysCommand,
  },
  testnet: {
    summary: "write genesis, configs and keys for an N-validator network",
    load: async () => (await import("./commands/testnet.js")).testnetCommand,
  },
  config: {
    summary: "show or check a node's effective configuration",
    load: async () => (await import("./commands/config.js")).configCommand,
  },
  start: {
    summary: "run a validator node",
    load: async () => (await import("./commands/start.js")).startCommand,
  },
  cluster: {
    summary: "run N validators as local processes on 127.0.0.1",
    load: async () => (await import("./commands/cluster.js")).clusterCommand,
  },
  tx: {
    summary: "sign and submit a transaction (transfer, kv-put, kv-cas, stake)",
    load: async () => (await import("./commands/tx.js")).txCommand,
  },
  query: {
    summary: "query a node: status, block, tx, account, state, validators, delegations",
    load: async () => (await import("./commands/query.js")).queryCommand,
  },
  sim: {
    summary: "run the deterministic adversarial simulator over many seeds",
    load: async () => (await import("./commands/sim.js")).simCommand,
  },
  bench: {
    summary: "benchmarks (JSON + table + chart in bench/results/)",
    sub: {
      exec: {
        summary: "executor benchmark: reference vs parallel, with and without persistence",
        load: async () => (await import("./commands/benchExec.js")).benchExecCommand,
      },
      cluster: {
        summary: "cluster benchmark: finality latency and throughput under open-loop load",
        load: async () => (await import("./commands/benchCluster.js")).benchClusterCommand,
      },
    },
  },
  demo: {
    summary: "run a local 4-validator cluster under load and report finality and throughput",
    load: async () => (await import("./commands/demo.js")).demoCommand,
  },
};

/** Error codes that mean "the user asked for something invalid": exit code 2. */
const USER_ERROR_CODES = new Set([
  "USAGE",
  "CONFIG_INVALID",
  "GENESIS_INVALID",
  "INVALID_GENESIS",
  "INVALID_PARAMS",
  "KEY_FILE_MISSING",
  "KEY_FILE_MALFORMED",
  "KEY_FILE_EXISTS",
  "KEY_LENGTH",
  "KEY_MISMATCH",
]);

function topUsage(): string {
  const rows: string[][] = [];
  for (const [name, e] of Object.entries(commands)) {
    rows.push([name, e.summary]);
    for (const [sub, s] of Object.entries(e.sub ?? {})) rows.push([`${name} ${sub}`, s.summary]);
  }
  return `parabft ${VERSION}: a BFT validator cluster (PBFT, DPoS, parallel execution)

Usage: parabft <command> [flags]

Commands:
${formatTable(["", ""], rows)
  .split("\n")
  .slice(1)
  .map((l) => `  ${l}`)
  .join("\n")}

Global flags:
  -h, --help      show help (also: parabft <command> --help)
  --version       print the version

Exit codes: 0 success, 1 failure, 2 bad usage or configuration.`;
}

const isHelp = (a: string) => a === "--help" || a === "-h";

function usageError(prefix: string, message: string, hint: string): number {
  process.stderr.write(`${prefix}: error: ${message}\n${hint}\n`);
  return 2;
}

/** Runs the CLI; returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || isHelp(first)) {
    (first === undefined ? process.stderr : process.stdout).write(`${topUsage()}\n`);
    return first === undefined ? 2 : 0;
  }
  if (first === "--version" || first === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (first === "help") return runCli([...rest, "--help"]);

  let entry = commands[first];
  let name = first;
  let args = rest;
  if (!entry) {
    return usageError(
      "parabft",
      `unknown command '${first}'`,
      `Commands: ${Object.keys(commands).join(", ")}. Run 'parabft --help'.`,
    );
  }
  while (entry.sub) {
    const [sub, ...subArgs] = args;
    const names = Object.keys(entry.sub).join("|");
    if (sub === undefined || isHelp(sub)) {
      const text = `Usage: parabft ${name} <${names}> [flags]\n\n${formatTable(
        ["", ""],
        Object.entries(entry.sub).map(([k, v]) => [k, v.summary]),
      )
        .split("\n")
        .slice(1)
        .map((l) => `  ${l}`)
        .join("\n")}`;
      (sub === undefined ? process.stderr : process.stdout).write(`${text}\n`);
      return sub === undefined ? 2 : 0;
    }
    const next: CommandEntry | undefined = entry.sub[sub];
    if (!next) {
      return usageError(`parabft ${name}`, `unknown subcommand '${sub}'`, `Expected one of: ${names}.`);
    }
    entry = next;
    name = `${name} ${sub}`;
    args = subArgs;
  }

  const prefix = `parabft ${name}`;
  try {
    const cmd = await entry.load!();
    // Help is handled here so every command answers it, including before any flag parsing.
    const dashDash = args.indexOf("--");
    if ((dashDash < 0 ? args : args.slice(0, dashDash)).some(isHelp)) {
      process.stdout.write(`${cmd.usage}\n`);
      return 0;
    }
    return await cmd.run(args);
  } catch (err) {
    if (err instanceof ParabftError && USER_ERROR_CODES.has(err.code)) {
      return usageError(prefix, err.message, `Run '${prefix} --help' for usage.`);
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${prefix}: ${msg}\n`);
    if (process.env.PARABFT_DEBUG && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
