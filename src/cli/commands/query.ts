// `parabft query status|block|tx|account|state|validators|delegations|epoch-proof`: read a node
// through the SDK. Blocks come with their commit certificate, which this command verifies like a
// light client; with --verify-from-genesis (and `epoch-proof`) it trusts only the genesis set and
// proves each later epoch's set from the node's epoch-set proofs (DPoS, issue 11).
import { fromBinary } from "@bufbuild/protobuf";
import { EpochSetChain, ParabftClient, RpcError, verifyCommitCertificate } from "../../client/node.js";
import { type GetBlockResponse, NodeState } from "../../gen/parabft/v1/api_pb.js";
import { TxBodySchema, TxStatus, type ValidatorSet } from "../../gen/parabft/v1/types_pb.js";
import { genesisValidatorSet, loadGenesis } from "../../node/genesis.js";
import { fromHex, toHex } from "../../types/bytes.js";
import { type CliCommand, parseAction, parseCommandArgs, requiredFlag, UsageError } from "../command.js";
import { printJson, toJson } from "../output.js";
import { addressArg, bytesArg } from "./tx.js";

const usage = `Usage:
  parabft query status     --api ADDR [--json]
  parabft query block      --api ADDR (--height N | --digest HEX) [--no-verify]
                           [--verify-from-genesis [--genesis FILE]] [--json]
  parabft query tx         --api ADDR --hash HEX [--json]
  parabft query account    --api ADDR --address HEX [--json]
  parabft query state      --api ADDR --state-key K [--json]
  parabft query validators --api ADDR [--epoch N] [--json]
  parabft query delegations --api ADDR --address HEX [--json]
  parabft query epoch-proof --api ADDR --epoch N [--genesis FILE] [--json]

Reads one node's public API. 'block' verifies the block's commit certificate against the epoch's
validator set (digest, signatures under strict Ed25519, distinct signers, more than 2/3 of the
power) and exits 1 if it does not verify. 'tx' shows the transaction, its position and receipt.
With --verify-from-genesis the set is not asked of the node: starting from the genesis set, each
epoch's set is proven from the node's epoch-set proofs (the old set's checkpoint certificate of
the epoch boundary plus that block's write set, holding the election). 'epoch-proof' fetches the
proof of epoch N's set, checks it (and every earlier one) from genesis and exits 1 if it fails.
The genesis set comes from --genesis FILE; without it, from the node (then it is trusted).

Options:
  --api ADDR        node API address host:port (required)
  --height N        block height
  --digest HEX      block digest (64 hex characters)
  --no-verify       block: skip the certificate check
  --hash HEX        transaction hash (64 hex characters)
  --address HEX     account address (40 hex characters)
  --state-key K     raw state key (0x-prefixed hex, or UTF-8 text)
  --epoch N         validator set epoch (default: the node's current epoch)
  --verify-from-genesis  block: prove the epoch's set from genesis (light client)
  --genesis FILE    the genesis file holding the trusted genesis set
  --json            print the answer as JSON
  -h, --help        show this help`;

const ACTIONS = [
  "status",
  "block",
  "tx",
  "account",
  "state",
  "validators",
  "delegations",
  "epoch-proof",
] as const;
type Action = (typeof ACTIONS)[number];

function uintArg(flag: string, raw: string): bigint {
  if (!/^\d+$/.test(raw)) throw new UsageError(flag, `${flag} must be a non-negative integer, got '${raw}'`);
  return BigInt(raw);
}

function hashArg(flag: string, raw: string | undefined): Uint8Array {
  const v = requiredFlag(flag, raw);
  const clean = v.startsWith("0x") ? v.slice(2) : v;
  if (!/^[0-9a-fA-F]{64}$/.test(clean)) throw new UsageError(flag, `${flag} must be 64 hex characters`);
  return fromHex(clean);
}

function print(json: boolean, value: Record<string, unknown>): void {
  if (json) {
    printJson(value);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const text =
      v instanceof Uint8Array ? toHex(v) : typeof v === "object" && v !== null ? toJson(v, 0) : String(v);
    console.log(`${k}: ${text}`);
  }
}

async function blockView(client: ParabftClient, res: GetBlockResponse, verify: boolean) {
  const header = res.block?.header;
  const out: Record<string, unknown> = {
    height: res.height,
    digest: res.digest,
    nullBlock: res.block === undefined,
    txs: res.block?.txs.length ?? 0,
  };
  if (header) {
    out.epoch = header.epoch;
    out.proposer = header.proposer;
    out.timestampMs = header.timestampMs;
    out.txsRoot = header.txsRoot;
  }
  const cert = res.certificate;
  out.signers = cert?.signatures.map((s) => s.validator) ?? [];
  let ok = true;
  if (verify) {
    if (!cert) {
      out.certificate = "missing";
      ok = false;
    } else {
      const chainId = header?.chainId ?? (await client.getStatus()).chainId;
      const set = await client.getValidators(cert.epoch);
      const v = verifyCommitCertificate(
        header ?? { kind: "null", epoch: cert.epoch, height: res.height },
        cert,
        set,
        chainId,
      );
      out.certificate = v.ok
        ? `valid (signed power ${v.signedPower} of ${v.totalPower})`
        : `INVALID: ${v.reason}: ${v.message}`;
      ok = v.ok;
    }
  }
  return { out, ok };
}

/**
 * A light client's chain of sets, trusting only the genesis set: from `genesisFile`, else from
 * the node (GetValidators(0); the epoch length from the staking view of epoch 1).
 */
async function genesisChain(client: ParabftClient, genesisFile: string | undefined) {
  if (genesisFile !== undefined) {
    const g = loadGenesis(genesisFile);
    return {
      chain: new EpochSetChain(g.chainId, g.params.staking.epochLength, genesisValidatorSet(g)),
      trust: `genesis file ${genesisFile}`,
    };
  }
  const status = await client.getStatus();
  const set: ValidatorSet = await client.getValidators(0n);
  const e1 = await client.getStakingValidators(1n);
  const length = Number(e1.lastHeight - e1.firstHeight + 1n);
  return { chain: new EpochSetChain(status.chainId, length, set), trust: "the node (GetValidators 0)" };
}

export const queryCommand: CliCommand = {
  name: "query",
  summary: "query a node: status, block, tx, account, state, validators, delegations",
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        api: { type: "string" },
        height: { type: "string" },
        digest: { type: "string" },
        "no-verify": { type: "boolean" },
        hash: { type: "string" },
        address: { type: "string" },
        "state-key": { type: "string" },
        epoch: { type: "string" },
        "verify-from-genesis": { type: "boolean" },
        genesis: { type: "string" },
        json: { type: "boolean" },
      },
      true,
    );
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const action = parseAction(positionals, ACTIONS);
    const api = requiredFlag("--api", values.api);
    const json = values.json === true;

    // Parse the action's flags before connecting.
    let blockRef: { height: bigint } | { digest: Uint8Array } | null = null;
    if (action === "block") {
      if ((values.height === undefined) === (values.digest === undefined)) {
        throw new UsageError("--height", "block needs exactly one of --height N or --digest HEX");
      }
      blockRef =
        values.height !== undefined
          ? { height: uintArg("--height", values.height) }
          : { digest: hashArg("--digest", values.digest) };
    }
    const txHashArg = action === "tx" ? hashArg("--hash", values.hash) : null;
    const address =
      action === "account" || action === "delegations" ? addressArg("--address", values.address) : null;
    const stateKey =
      action === "state" ? bytesArg("--state-key", requiredFlag("--state-key", values["state-key"])) : null;
    const epoch = values.epoch !== undefined ? uintArg("--epoch", values.epoch) : null;
    if (action === "epoch-proof" && epoch === null)
      throw new UsageError("--epoch", "epoch-proof needs --epoch N");
    const fromGenesis = values["verify-from-genesis"] === true;
    if (fromGenesis && (action !== "block" || blockRef === null || !("height" in blockRef))) {
      throw new UsageError("--verify-from-genesis", "--verify-from-genesis goes with block --height N");
    }

    const client = new ParabftClient(api);
    try {
      switch (action as Action) {
        case "status": {
          const s = await client.getStatus();
          print(json, {
            chainId: s.chainId,
            validatorIndex: s.validatorIndex,
            state: NodeState[s.state]?.replace("NODE_STATE_", "").toLowerCase() ?? String(s.state),
            committedHeight: s.committedHeight,
            executedHeight: s.executedHeight,
            view: s.view,
            primary: s.primary,
            epoch: s.epoch,
            stableCheckpoint: s.stableCheckpoint,
            peersConnected: s.peersConnected,
            mempoolSize: s.mempoolSize,
            stateRoot: s.stateRoot,
          });
          return 0;
        }
        case "block": {
          const res = await client.getBlock(blockRef!);
          if (!res) {
            process.stderr.write("parabft query: block not found\n");
            return 1;
          }
          const { out, ok } = await blockView(client, res, values["no-verify"] !== true && !fromGenesis);
          if (fromGenesis) {
            const { chain, trust } = await genesisChain(client, values.genesis);
            const v = await client.verifyBlockFromGenesis(chain, res.height);
            out.trustedGenesis = trust;
            out.provenEpochs = `0..${chain.latest}`;
            out.certificate = v.ok
              ? `valid from genesis (epoch ${v.epoch}, signed power ${v.verdict.signedPower} of ${v.verdict.totalPower})`
              : `INVALID (${v.stage}): ${v.verdict.reason}: ${v.verdict.message}`;
            print(json, out);
            return v.ok ? 0 : 1;
          }
          print(json, out);
          return ok ? 0 : 1;
        }
        case "tx": {
          const got = await client.getTx(txHashArg!);
          if (!got) {
            process.stderr.write("parabft query: transaction not found\n");
            return 1;
          }
          const receipt = await client.getReceipt(txHashArg!);
          const body = got.tx ? fromBinary(TxBodySchema, got.tx.body) : null;
          print(json, {
            hash: txHashArg!,
            height: got.height,
            index: got.index,
            sender: body?.sender ?? null,
            nonce: body?.nonce ?? null,
            call: body?.call?.call.case ?? null,
            receipt: receipt
              ? {
                  status: TxStatus[receipt.status] ?? String(receipt.status),
                  gasUsed: receipt.gasUsed,
                  error: receipt.error,
                  events: receipt.events.map((e) => ({ kind: e.kind, attributes: e.attributes })),
                }
              : "not executed yet",
          });
          return 0;
        }
        case "account": {
          const a = await client.getAccount(address!);
          print(json, { address: address!, balance: a.balance, nonce: a.nonce, height: a.height });
          return 0;
        }
        case "state": {
          const s = await client.getState(stateKey!);
          print(json, { key: stateKey!, found: s.found, value: s.value, height: s.height });
          return 0;
        }
        case "validators": {
          const e = epoch ?? (await client.getStatus()).epoch;
          // The consensus set (known once the epoch is reached) and the staking view (the
          // elected set is known two epochs ahead); either may be missing.
          const set = await client.getValidators(e).catch((err: unknown) => {
            if (err instanceof RpcError && err.detail.statusName === "NOT_FOUND") return null;
            throw err;
          });
          const staking = await client.getStakingValidators(e).catch((err: unknown) => {
            if (err instanceof RpcError) return null;
            throw err;
          });
          if (set === null && (staking === null || !staking.setKnown)) {
            process.stderr.write(`parabft query: no validator set for epoch ${e}\n`);
            return 1;
          }
          let total = 0n;
          for (const v of set?.validators ?? []) total += v.power;
          print(json, {
            epoch: e,
            totalPower: total,
            validators: (set?.validators ?? []).map((v, index) => ({
              index,
              name: v.name,
              publicKey: toHex(v.publicKey),
              power: v.power,
            })),
            ...(staking
              ? {
                  heights: `${staking.firstHeight}..${staking.lastHeight}`,
                  elected: staking.setKnown,
                  staking: staking.validators.map((v) => ({
                    operator: toHex(v.operator),
                    status: v.status,
                    power: v.power,
                    selfStake: v.selfStake,
                    delegated: v.delegated,
                    consensusKey: toHex(v.consensusKey),
                    peerAddress: v.peerAddress,
                  })),
                }
              : {}),
          });
          return 0;
        }
        case "epoch-proof": {
          const target = epoch!;
          // The asked-for proof first (its errors name its epoch), then every set before it (each
          // proven from the one two epochs before) from the genesis set, then the proof itself.
          const p = await client.getEpochSetProof(target);
          const { chain, trust } = await genesisChain(client, values.genesis);
          const before = await chain.syncTo(target - 1n, (e) => client.getEpochSetProof(e));
          if (!before.ok) {
            process.stderr.write(
              `parabft query: an earlier set did not verify: ${before.reason}: ${before.message}\n`,
            );
            return 1;
          }
          const v = chain.addProof(p);
          const set = v.ok ? v.set : undefined;
          print(json, {
            epoch: p.epoch,
            boundary: p.checkpoint.height,
            checkpointEpoch: p.checkpoint.epoch,
            checkpointSigners: p.checkpoint.signatures.map((s) => s.validator),
            stateRoot: p.checkpoint.stateRoot,
            previousRoot: p.previousRoot,
            writeSetEntries: p.writeSet.length,
            trustedGenesis: trust,
            verified: v.ok
              ? "yes: certified by the set of the checkpoint's epoch, write set hashes to its root"
              : `NO: ${v.reason}: ${v.message}`,
            set: (set?.validators ?? []).map((m, index) => ({
              index,
              publicKey: toHex(m.publicKey),
              power: m.power,
            })),
          });
          return v.ok ? 0 : 1;
        }
        case "delegations": {
          const d = await client.getDelegations(address!);
          print(json, {
            address: address!,
            bondedFree: d.free,
            ballot: d.ballot.map((b) => ({
              validator: toHex(b.validator),
              value: b.value,
              shares: b.shares,
            })),
            unbonding: d.unbonding.map((u) => ({ amount: u.amount, matureEpoch: u.matureEpoch })),
            exposedTo: d.exposedTo.map(toHex),
            height: d.height,
          });
          return 0;
        }
      }
      return 2;
    } catch (err) {
      if (err instanceof RpcError) {
        process.stderr.write(`parabft query: ${err.message}\n`);
        return 1;
      }
      throw err;
    } finally {
      client.close();
    }
  },
};
