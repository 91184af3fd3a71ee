// `parabft keys generate|show`: Ed25519 key files (mode 0600). Never prints the secret key.
import { stat } from "node:fs/promises";
import { generateKeyPair, type KeyPair, readKeyFile, writeKeyFile } from "../../crypto/keys.js";
import { toHex } from "../../types/bytes.js";
import { type CliCommand, parseCommandArgs, UsageError } from "../command.js";
import { printJson } from "../output.js";

const usage = `Usage:
  parabft keys generate --file FILE [--force] [--json]
  parabft keys show --file FILE [--json]

Creates or inspects an Ed25519 key file: JSON { publicKey, secretKey, address } in hex, written
with mode 0600. The secret key is never printed. The address is the first 20 bytes of
SHA-256(publicKey).

Options:
  --file FILE   key file path (required)
  --force       generate: overwrite an existing file
  --json        print { publicKey, address, file } as JSON
  -h, --help    show this help`;

function describe(kp: KeyPair, file: string) {
  return { file, publicKey: toHex(kp.publicKey), address: toHex(kp.address) };
}

export const keysCommand: CliCommand = {
  name: "keys",
  summary: "generate or show an Ed25519 key file",
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      argv,
      { file: { type: "string" }, force: { type: "boolean" }, json: { type: "boolean" } },
      true,
    );
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const [action, ...extra] = positionals;
    if (action !== "generate" && action !== "show") {
      throw new UsageError(
        "action",
        `expected 'generate' or 'show', got ${action ? `'${action}'` : "nothing"}`,
      );
    }
    if (extra.length > 0) throw new UsageError("arguments", `unexpected argument '${extra[0]}'`);
    if (!values.file) throw new UsageError("--file", "--file is required");
    if (values.force && action === "show")
      throw new UsageError("--force", "--force only applies to generate");

    let kp: KeyPair;
    if (action === "generate") {
      kp = generateKeyPair();
      await writeKeyFile(values.file, kp, { overwrite: values.force === true });
    } else {
      kp = await readKeyFile(values.file);
      const mode = (await stat(values.file)).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        console.error(
          `warning: ${values.file} is readable by others (mode ${mode.toString(8).padStart(4, "0")}); run chmod 600`,
        );
      }
    }
    const info = describe(kp, values.file);
    if (values.json) printJson(info);
    else {
      if (action === "generate") console.log(`wrote ${info.file} (mode 0600)`);
      console.log(`public key: ${info.publicKey}\naddress:    ${info.address}`);
    }
    return 0;
  },
};
