// `parabft config show|check --home DIR`: the effective configuration (file + PARABFT_* env)
// and a pre-flight check of config, genesis and key together, without starting anything.
import { readKeyFile } from "../../crypto/keys.js";
import { ENV_OVERRIDES, loadConfig, resolveConfigPaths } from "../../node/config.js";
import { checkConfigAgainstGenesis, loadGenesis } from "../../node/genesis.js";
import { toHex } from "../../types/bytes.js";
import { type CliCommand, parseCommandArgs, UsageError } from "../command.js";
import { printJson, toJson } from "../output.js";

const usage = `Usage:
  parabft config show --home DIR [--json]
  parabft config check --home DIR [--json]

show    prints the effective configuration: DIR/config.json with defaults filled in and the
        PARABFT_* environment overrides applied, plus the resolved absolute paths.
check   also loads the genesis and the validator key and checks them against the config
        (chain id, validator index, peers, key = genesis validator at the index).
Both exit 2 with the offending field named when something is invalid.

Environment overrides:
${ENV_OVERRIDES.map((o) => `  ${o.env.padEnd(32)} ${o.field}`).join("\n")}

Options:
  --home DIR   node home (required)
  --json       machine-readable output
  -h, --help   show this help`;

export const configCommand: CliCommand = {
  name: "config",
  summary: "show or check a node's effective configuration",
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      argv,
      { home: { type: "string" }, json: { type: "boolean" } },
      true,
    );
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const [action, ...extra] = positionals;
    if (action !== "show" && action !== "check") {
      throw new UsageError("action", `expected 'show' or 'check', got ${action ? `'${action}'` : "nothing"}`);
    }
    if (extra.length > 0) throw new UsageError("arguments", `unexpected argument '${extra[0]}'`);
    if (!values.home) throw new UsageError("--home", "--home is required");
    const cfg = loadConfig(values.home);
    const paths = resolveConfigPaths(values.home, cfg);
    if (action === "show") {
      if (values.json) printJson({ config: cfg, paths });
      else console.log(`${toJson(cfg)}\n# resolved paths\n${toJson(paths)}`);
      return 0;
    }
    const genesis = loadGenesis(paths.genesisFile);
    const key = await readKeyFile(paths.keyFile);
    checkConfigAgainstGenesis(cfg, genesis, key.publicKey);
    const summary = {
      ok: true,
      chainId: cfg.chainId,
      validatorIndex: cfg.validatorIndex,
      validators: genesis.validators.length,
      publicKey: toHex(key.publicKey),
      preset: genesis.preset,
      peers: cfg.peers.length,
    };
    if (values.json) printJson(summary);
    else {
      console.log(
        `ok: validator ${cfg.validatorIndex} of ${genesis.validators.length} on ${cfg.chainId}, ${cfg.peers.length} peers`,
      );
    }
    return 0;
  },
};
