// `parabft init --home DIR`: a single-validator home (key, config, genesis) that starts alone.
import { promises as fs } from "node:fs";
import path from "node:path";
import { generateKeyPair, writeKeyFile } from "../../crypto/keys.js";
import { createValidatorCertificate } from "../../crypto/tls.js";
import { CONFIG_FILE_NAME, defaultConfig, resolveConfigPaths, writeConfig } from "../../node/config.js";
import { writeGenesis } from "../../node/genesis.js";
import { type PresetName, presets, validateParams } from "../../params/index.js";
import { toHex } from "../../types/bytes.js";
import { type CliCommand, parseCommandArgs, UsageError } from "../command.js";
import { printJson } from "../output.js";
import {
  DEFAULT_ACCOUNT_BALANCE,
  DEFAULT_AMM_POOLS,
  writeInitialSigningState,
  writeTlsFiles,
} from "../testnet.js";

const usage = `Usage: parabft init --home DIR [--chain-id ID] [--preset default|minimal] [--json]

Creates a single-validator node home in DIR:
  DIR/config.json            node configuration (see docs/CONFIG.md)
  DIR/genesis.json           genesis with this validator and its funded account
  DIR/keys/validator.json    the validator key (mode 0600)
  DIR/tls/validator.crt      its TLS certificate for peer links (the key is the validator key)
  DIR/tls/validators.pem     the trusted validator certificates (add every peer's validator.crt)
The signing state will live beside the key (DIR/keys/signing_state.json), the database in DIR/data.
Refuses to touch a DIR that already has a config.json.

Options:
  --home DIR        node home (required)
  --chain-id ID     chain id (default parabft-local)
  --preset NAME     chain parameter preset: default | minimal (default: default)
  --json            print the created paths and the validator's public key and address as JSON
  -h, --help        show this help`;

export function presetFlag(raw: string | undefined): PresetName {
  const name = raw ?? "default";
  if (!Object.hasOwn(presets, name)) {
    throw new UsageError(
      "--preset",
      `--preset must be one of ${Object.keys(presets).join(", ")}, got '${name}'`,
    );
  }
  return name as PresetName;
}

export function chainIdFlag(raw: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(raw)) {
    throw new UsageError("--chain-id", `--chain-id must be 1-64 characters of [A-Za-z0-9._-], got '${raw}'`);
  }
  return raw;
}

export const initCommand: CliCommand = {
  name: "init",
  summary: "create a single-validator node home (key, config, genesis)",
  usage,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      home: { type: "string" },
      "chain-id": { type: "string" },
      preset: { type: "string" },
      json: { type: "boolean" },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (!values.home) throw new UsageError("--home", "--home is required");
    const preset = presetFlag(values.preset);
    const home = path.resolve(values.home);
    const exists = await fs.stat(path.join(home, CONFIG_FILE_NAME)).then(
      () => true,
      () => false,
    );
    if (exists) throw new UsageError("--home", `${home} is already initialised (${CONFIG_FILE_NAME} exists)`);

    const cfg = defaultConfig({
      chainId: chainIdFlag(values["chain-id"] ?? "parabft-local"),
      validatorIndex: 0,
    });
    const paths = resolveConfigPaths(home, cfg);
    const kp = generateKeyPair();
    await fs.mkdir(home, { recursive: true, mode: 0o700 });
    await writeConfig(home, cfg);
    await writeKeyFile(paths.keyFile, kp);
    const cert = await createValidatorCertificate(kp.secretKey);
    await writeTlsFiles(home, cfg, cert, cert);
    await writeInitialSigningState(home, cfg);
    await writeGenesis(paths.genesisFile, {
      chainId: cfg.chainId,
      genesisTimeMs: BigInt(Date.now()),
      preset,
      params: validateParams(structuredClone(presets[preset])),
      validators: [{ name: "node0", publicKey: kp.publicKey, power: 1n }],
      accounts: [{ address: kp.address, balance: DEFAULT_ACCOUNT_BALANCE }],
      ammPools: [...DEFAULT_AMM_POOLS],
    });
    const info = {
      home,
      config: paths.configFile,
      genesis: paths.genesisFile,
      keyFile: paths.keyFile,
      tlsCertFile: paths.tlsCertFile,
      signingStateFile: paths.signingStateFile,
      dataDir: paths.dataDir,
      chainId: cfg.chainId,
      publicKey: toHex(kp.publicKey),
      address: toHex(kp.address),
      api: cfg.listen.api,
    };
    if (values.json) printJson(info);
    else {
      console.log(`initialised ${home} (chain ${cfg.chainId}, preset ${preset})`);
      console.log(`validator public key: ${info.publicKey}\naccount address:      ${info.address}`);
      console.log(`start it with: parabft start --home ${home}`);
    }
    return 0;
  },
};
