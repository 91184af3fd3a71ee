// `parabft testnet`: genesis + one home per validator + funded client accounts.
import path from "node:path";
import { presets } from "../../params/index.js";
import { type CliCommand, intFlag, parseCommandArgs, UsageError } from "../command.js";
import { composeHost, k8sHost, writeDeployment } from "../deploy.js";
import { formatTable, printJson } from "../output.js";
import { createTestnet } from "../testnet.js";
import { chainIdFlag, presetFlag } from "./init.js";

const usage = `Usage: parabft testnet --validators N --out DIR [--base-port P] [--accounts M]
                       [--preset default|minimal] [--chain-id ID] [--json]
                       [--docker | --k8s] [--image IMAGE]

Writes a network of N validators into DIR (which must not already hold one):
  DIR/genesis.json                  the shared genesis (validators node0.., funded accounts, AMM pool amm0)
  DIR/node<i>/config.json           node i's config: listen addresses and all other nodes as peers
  DIR/node<i>/genesis.json          a copy of the genesis, so each home is self-contained
  DIR/node<i>/keys/validator.json   node i's validator key (mode 0600; its account is funded too)
  DIR/node<i>/tls/validator.crt     node i's TLS certificate for peer links (its key is the validator key)
  DIR/node<i>/tls/validators.pem    every validator's certificate: the trust roots for peer links
  DIR/accounts/account<j>.json      M funded client account keys (mode 0600)
  DIR/testnet.json                  a manifest of the above

Options:
  --validators N    number of validators (1..maxValidators of the preset; default 4)
  --out DIR         output directory (required)
  --base-port P     node i listens on P+10i (peer), P+10i+1 (api), P+10i+2 (metrics);
                    default: free ports on 127.0.0.1
  --host HOST       listen/advertise host (default 127.0.0.1)
  --accounts M      funded client accounts to create (default 8)
  --preset NAME     default | minimal (default: default)
  --chain-id ID     chain id (default parabft-local-N)
  --self-stake N    DPoS: each genesis validator's bonded self stake (>= the minimum, 1000, makes
                    the first election meaningful; default: the power, 1, so the set is kept)
  --joiners J       DPoS: also write J validator homes outside the genesis set (node<N>..): they
                    follow the chain until registered (parabft tx stake register) and elected
  --insecure-peers  peer links without TLS (net.insecure): local debugging only; certificates
                    are written anyway (DIR/node<i>/tls/)
  --json            print the manifest as JSON
  --docker          for containers: nodes listen on 0.0.0.0:26656/26657/26660, peers are node<i>,
                    and DIR/compose.yaml runs them (docker-compose -f DIR/compose.yaml up -d)
  --k8s             for Kubernetes: peers are parabft-<i>.parabft-peers, and DIR/k8s/ holds a
                    StatefulSet, Services, a genesis ConfigMap and one Secret per validator
  --image IMAGE     image the deployment runs (default parabft:local, see make image)
  -h, --help        show this help`;

export const testnetCommand: CliCommand = {
  name: "testnet",
  summary: "write genesis, configs and keys for an N-validator network",
  usage,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      validators: { type: "string" },
      out: { type: "string" },
      "base-port": { type: "string" },
      host: { type: "string" },
      accounts: { type: "string" },
      preset: { type: "string" },
      "chain-id": { type: "string" },
      "insecure-peers": { type: "boolean" },
      "self-stake": { type: "string" },
      joiners: { type: "string" },
      json: { type: "boolean" },
      docker: { type: "boolean" },
      k8s: { type: "boolean" },
      image: { type: "string" },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const preset = presetFlag(values.preset);
    const validators = intFlag("validators", values.validators, 4, 1, presets[preset].staking.maxValidators);
    if (!values.out) throw new UsageError("--out", "--out is required");
    const basePort =
      values["base-port"] === undefined ? undefined : intFlag("base-port", values["base-port"], 0, 1, 65535);
    if (basePort !== undefined && basePort + 10 * (validators - 1) + 2 > 65535) {
      throw new UsageError(
        "--base-port",
        `--base-port ${basePort} leaves no room for ${validators} validators`,
      );
    }
    const accounts = intFlag("accounts", values.accounts, 8, 0, 100_000);
    const out = path.resolve(values.out);
    if (values.docker && values.k8s) throw new UsageError("--k8s", "choose one of --docker and --k8s");
    const mode = values.docker ? "docker" : values.k8s ? "k8s" : undefined;
    if (mode && (basePort !== undefined || values.host !== undefined)) {
      throw new UsageError(
        `--${mode}`,
        `--${mode} uses fixed container ports and host names; drop --base-port/--host`,
      );
    }
    let testnet: Awaited<ReturnType<typeof createTestnet>>;
    try {
      testnet = await createTestnet({
        validators,
        ...(values["self-stake"] !== undefined
          ? { selfStake: BigInt(intFlag("self-stake", values["self-stake"], 0, 1, Number.MAX_SAFE_INTEGER)) }
          : {}),
        ...(values.joiners !== undefined ? { joiners: intFlag("joiners", values.joiners, 0, 0, 16) } : {}),
        out,
        preset,
        accounts,
        basePort,
        host: values.host,
        insecurePeers: values["insecure-peers"] === true,
        chainId: values["chain-id"] === undefined ? undefined : chainIdFlag(values["chain-id"]),
        hostOf: mode === "docker" ? composeHost : mode === "k8s" ? k8sHost : undefined,
      });
    } catch (err) {
      if (err instanceof Error && /already contains a testnet/.test(err.message)) {
        throw new UsageError("--out", `--out: ${err.message}`);
      }
      throw err;
    }
    const written = mode ? await writeDeployment(testnet, mode, { image: values.image }) : [];
    if (values.json) printJson({ ...testnet, deployment: written });
    else {
      console.log(`testnet ${testnet.chainId} (${preset}) in ${testnet.dir}`);
      console.log(
        formatTable(
          ["node", "home", "peer", "api", "metrics"],
          testnet.nodes.map((n) => [n.index, n.home, n.peer, n.api, n.metrics]),
        ),
      );
      console.log(
        `${testnet.accounts.length} funded client accounts in ${path.join(testnet.dir, "accounts")}`,
      );
      for (const f of written) console.log(`${mode} deployment: ${f}`);
    }
    return 0;
  },
};
