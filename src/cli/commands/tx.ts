// `parabft tx transfer|kv-put|kv-cas|stake ...`: build, sign and submit one transaction with the SDK.

import {
  ClientError,
  delegateTx,
  kvCasTx,
  kvPutTx,
  ParabftClient,
  RpcError,
  registerValidatorTx,
  signTx,
  TxSigner,
  transferTx,
  undelegateTx,
  unjailTx,
  voteTx,
} from "../../client/node.js";
import { readKeyFile } from "../../crypto/keys.js";
import type { TxBody } from "../../gen/parabft/v1/types_pb.js";
import { TxStatus } from "../../gen/parabft/v1/types_pb.js";
import { fromHex, toHex, utf8Bytes } from "../../types/bytes.js";
import {
  type CliCommand,
  intFlag,
  parseAction,
  parseCommandArgs,
  requiredFlag,
  UsageError,
} from "../command.js";
import { printJson } from "../output.js";

const usage = `Usage:
  parabft tx transfer --api ADDR --key FILE --to ADDRESS --amount N [flags]
  parabft tx kv-put   --api ADDR --key FILE --kv-key K --value V [flags]
  parabft tx kv-cas   --api ADDR --key FILE --kv-key K (--expect V | --expect-absent) --value V [flags]
  parabft tx stake register   --api ADDR --key FILE --consensus-key HEX --self-stake N --peer-address HOST:PORT [--commission-bps N] [flags]
  parabft tx stake delegate   --api ADDR --key FILE --amount N [flags]
  parabft tx stake undelegate --api ADDR --key FILE --amount N [flags]
  parabft tx stake vote       --api ADDR --key FILE --ballot ADDRESS=N[,ADDRESS=N...] [flags]
  parabft tx stake unjail     --api ADDR --key FILE [flags]

Builds the transaction with its declared access list, signs it with the key file's Ed25519 key
and submits it to one node's public API. Without --wait it returns once the node admitted it;
with --wait it returns once the transaction is committed and executed, with its receipt.

Options:
  --api ADDR         node API address host:port (required)
  --key FILE         sender key file { publicKey, secretKey, address } (required)
  --to ADDRESS       transfer: recipient address, 40 hex characters
  --amount N         transfer: amount, a non-negative integer
  --kv-key K         kv: register key (UTF-8 text, or hex with a 0x prefix)
  --value V          kv: new value (UTF-8 text, or hex with a 0x prefix)
  --expect V         kv-cas: the value the register must hold
  --expect-absent    kv-cas: the register must not exist
  --consensus-key HEX  stake register: the validator's 32-byte Ed25519 consensus public key
  --self-stake N     stake register: stake the operator bonds (at least the chain's minimum)
  --peer-address A   stake register: host:port peers dial once the validator is elected
  --commission-bps N stake register: commission in basis points (default 0)
  --ballot LIST      stake vote: the whole new ballot (replaces the old one; "" clears it)
  --amount N         stake delegate/undelegate: amount, a non-negative integer
  --nonce N          use this nonce instead of reading the account's next nonce
  --chain-id ID      chain id (default: asked from the node)
  --wait             wait for commit and execution; exit 1 when the receipt is not OK
  --timeout MS       --wait bound in milliseconds (default 30000)
  --json             print the result as JSON
  -h, --help         show this help`;

/** UTF-8 text, or raw bytes when written as 0x-prefixed hex. */
export function bytesArg(flag: string, raw: string): Uint8Array {
  if (raw.startsWith("0x")) {
    try {
      return fromHex(raw);
    } catch {
      throw new UsageError(flag, `${flag} is not valid hex: '${raw}'`);
    }
  }
  return utf8Bytes(raw);
}

export function addressArg(flag: string, raw: string | undefined): Uint8Array {
  if (raw === undefined) throw new UsageError(flag, `${flag} is required`);
  const clean = raw.startsWith("0x") ? raw.slice(2) : raw;
  if (!/^[0-9a-fA-F]{40}$/.test(clean)) throw new UsageError(flag, `${flag} must be 40 hex characters`);
  return fromHex(clean);
}

/** Turns SDK argument errors into usage errors naming the flag (exit code 2). */
function asUsage<T>(flags: Record<string, string>, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ClientError && err.code === "BAD_ARGUMENT") {
      const field = (err.detail as { field?: string }).field ?? "arguments";
      throw new UsageError(flags[field] ?? `--${field}`, err.message);
    }
    throw err;
  }
}

const ACTIONS = ["transfer", "kv-put", "kv-cas", "stake"] as const;
const STAKE_ACTIONS = ["register", "delegate", "undelegate", "vote", "unjail"] as const;

function amountFlag(raw: string | undefined): bigint {
  const amount = requiredFlag("--amount", raw);
  if (!/^\d+$/.test(amount)) throw new UsageError("--amount", "--amount must be a non-negative integer");
  return BigInt(amount);
}

function ballotArg(raw: string | undefined): { validator: Uint8Array; amount: bigint }[] {
  if (raw === undefined) throw new UsageError("--ballot", "--ballot is required");
  if (raw.trim() === "") return [];
  return raw.split(",").map((part) => {
    const [addr, amount, ...rest] = part.trim().split("=");
    if (rest.length > 0 || amount === undefined || !/^\d+$/.test(amount)) {
      throw new UsageError("--ballot", `--ballot entries are ADDRESS=AMOUNT, got '${part}'`);
    }
    return { validator: addressArg("--ballot", addr), amount: BigInt(amount) };
  });
}

export const txCommand: CliCommand = {
  name: "tx",
  summary: "sign and submit a transaction (transfer, kv-put, kv-cas, stake)",
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        api: { type: "string" },
        key: { type: "string" },
        to: { type: "string" },
        amount: { type: "string" },
        "kv-key": { type: "string" },
        value: { type: "string" },
        expect: { type: "string" },
        "expect-absent": { type: "boolean" },
        "consensus-key": { type: "string" },
        "self-stake": { type: "string" },
        "peer-address": { type: "string" },
        "commission-bps": { type: "string" },
        ballot: { type: "string" },
        nonce: { type: "string" },
        "chain-id": { type: "string" },
        wait: { type: "boolean" },
        timeout: { type: "string" },
        json: { type: "boolean" },
      },
      true,
    );
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const action = parseAction(positionals.slice(0, 1), ACTIONS);
    const stakeAction = action === "stake" ? parseAction(positionals.slice(1), STAKE_ACTIONS) : null;
    if (action !== "stake" && positionals.length > 1) parseAction(positionals, ACTIONS);
    const api = requiredFlag("--api", values.api);
    const keyFile = requiredFlag("--key", values.key);
    const timeoutMs = intFlag("timeout", values.timeout, 30_000, 1, 600_000);
    let fixedNonce: bigint | null = null;
    if (values.nonce !== undefined) {
      if (!/^\d+$/.test(values.nonce))
        throw new UsageError("--nonce", "--nonce must be a non-negative integer");
      fixedNonce = BigInt(values.nonce);
    }

    // Validate every flag before touching the network or the key file.
    let build: (c: { chainId: string; sender: Uint8Array; nonce: bigint }) => TxBody;
    // stake delegate/undelegate/vote: the validators of the sender's ballot and exposures (asked
    // from the node): the call may settle exposures and withdraw from the old ballot.
    let currentBallot: Uint8Array[] = [];
    if (stakeAction === "register") {
      const ck = requiredFlag("--consensus-key", values["consensus-key"]);
      const hexKey = ck.startsWith("0x") ? ck.slice(2) : ck;
      if (!/^[0-9a-fA-F]{64}$/.test(hexKey))
        throw new UsageError("--consensus-key", "--consensus-key must be 64 hex characters");
      const selfStake = requiredFlag("--self-stake", values["self-stake"]);
      if (!/^\d+$/.test(selfStake))
        throw new UsageError("--self-stake", "--self-stake must be a non-negative integer");
      const peerAddress = requiredFlag("--peer-address", values["peer-address"]);
      const commissionBps = intFlag("commission-bps", values["commission-bps"], 0, 0, 10_000);
      build = (c) =>
        registerValidatorTx(c, {
          consensusKey: fromHex(hexKey),
          selfStake: BigInt(selfStake),
          commissionBps,
          peerAddress,
        });
    } else if (stakeAction === "delegate") {
      const amount = amountFlag(values.amount);
      build = (c) => delegateTx(c, amount, currentBallot);
    } else if (stakeAction === "undelegate") {
      const amount = amountFlag(values.amount);
      build = (c) => undelegateTx(c, amount, currentBallot);
    } else if (stakeAction === "vote") {
      const entries = ballotArg(values.ballot);
      build = (c) => voteTx(c, entries, currentBallot);
    } else if (stakeAction === "unjail") {
      build = (c) => unjailTx(c);
    } else if (action === "transfer") {
      const to = addressArg("--to", values.to);
      const amount = requiredFlag("--amount", values.amount);
      if (!/^\d+$/.test(amount)) throw new UsageError("--amount", "--amount must be a non-negative integer");
      build = (c) => transferTx(c, to, BigInt(amount));
    } else {
      const k = bytesArg("--kv-key", requiredFlag("--kv-key", values["kv-key"]));
      const v = bytesArg("--value", requiredFlag("--value", values.value));
      if (action === "kv-put") {
        if (values.expect !== undefined || values["expect-absent"]) {
          throw new UsageError("--expect", "--expect/--expect-absent only apply to kv-cas");
        }
        build = (c) => kvPutTx(c, k, v);
      } else {
        if ((values.expect === undefined) === (values["expect-absent"] !== true)) {
          throw new UsageError("--expect", "kv-cas needs exactly one of --expect V or --expect-absent");
        }
        const expected = values.expect === undefined ? null : bytesArg("--expect", values.expect);
        build = (c) => kvCasTx(c, k, expected, v);
      }
    }

    const kp = await readKeyFile(keyFile);
    const signer = new TxSigner(kp.secretKey);
    const client = new ParabftClient(api);
    try {
      const chainId = values["chain-id"] ?? (await client.getStatus()).chainId;
      if (stakeAction === "vote" || stakeAction === "delegate" || stakeAction === "undelegate") {
        const d = await client.getDelegations(signer.address);
        currentBallot = [...d.ballot.map((b) => b.validator), ...d.exposedTo];
      }
      const buildBody = (nonce: bigint) =>
        asUsage(
          {
            to: "--to",
            amount: "--amount",
            sender: "--key",
            peerAddress: "--peer-address",
            selfStake: "--self-stake",
            validator: "--ballot",
          },
          () => build({ chainId, sender: signer.publicKey, nonce }),
        );
      const sendOpts = { wait: values.wait === true, timeoutMs, waitExecuted: true };
      const result =
        fixedNonce === null
          ? await client.send(signer, buildBody, sendOpts)
          : await (async () => {
              const prepared = signTx(buildBody(fixedNonce), signer);
              if (!sendOpts.wait) {
                await client.submitTx(prepared);
                return { prepared, height: undefined, receipt: undefined };
              }
              const r = await client.submitAndWait(prepared, sendOpts);
              return { prepared, height: r.height, receipt: r.receipt };
            })();
      const prepared = result.prepared;
      const receipt = result.receipt;
      const out = {
        txHash: toHex(prepared.hash),
        sender: toHex(signer.address),
        nonce: prepared.body.nonce,
        ...(result.height !== undefined ? { height: result.height } : {}),
        ...(receipt
          ? {
              receipt: {
                status: TxStatus[receipt.status] ?? String(receipt.status),
                index: receipt.index,
                gasUsed: receipt.gasUsed,
                error: receipt.error,
              },
            }
          : {}),
      };
      if (values.json) printJson(out);
      else {
        console.log(`tx ${out.txHash} (nonce ${out.nonce}) ${values.wait ? "committed" : "accepted"}`);
        if (result.height !== undefined) console.log(`height: ${result.height}`);
        if (out.receipt) {
          console.log(`receipt: ${out.receipt.status}${out.receipt.error ? ` (${out.receipt.error})` : ""}`);
        }
      }
      return receipt && receipt.status !== TxStatus.OK ? 1 : 0;
    } catch (err) {
      if (err instanceof RpcError) {
        process.stderr.write(`parabft tx: ${err.message}\n`);
        return 1;
      }
      throw err;
    } finally {
      client.close();
    }
  },
};
