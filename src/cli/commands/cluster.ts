// `parabft cluster`: N validators as local processes on 127.0.0.1, until SIGINT/SIGTERM.
import { existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { LOG_LEVELS, type LogLevel } from "../../node/config.js";
import { presets } from "../../params/index.js";
import { errorMessage } from "../../types/errors.js";
import { LocalCluster } from "../cluster.js";
import { type CliCommand, intFlag, parseCommandArgs, UsageError } from "../command.js";
import { formatTable, printJson } from "../output.js";
import { presetFlag } from "./init.js";

const usage = `Usage: parabft cluster [--validators N] [--dir DIR] [--accounts M] [--preset default|minimal]
                       [--log-level LEVEL] [--timeout-ms MS] [--json]

Creates a fresh testnet in DIR (free ports on 127.0.0.1), starts one \`parabft start\` process per
validator, waits until every node's gRPC health check answers SERVING, writes DIR/cluster.json
(per node: index, api, peer and metrics addresses, pid, home, log file) and prints it.
Node logs go to DIR/node<i>/node.log. SIGINT/SIGTERM stop every node (SIGTERM, then SIGKILL
after a timeout) and exit 0.

Options:
  --validators N      number of validators (default 4)
  --dir DIR           testnet directory (default: a new temp dir); if DIR already holds a testnet
                      written by \`parabft cluster\` or \`parabft testnet\`, it is resumed with its
                      keys, ports and data
  --accounts M        funded client accounts in DIR/accounts/ (default 8)
  --preset NAME       default | minimal (default: default)
  --log-level LEVEL   node log level (default info)
  --timeout-ms MS     how long to wait for the nodes to become healthy (default 60000)
  --insecure-peers    peer links without TLS (local debugging only; a new testnet only)
  --json              print cluster.json to stdout
  -h, --help          show this help`;

export const clusterCommand: CliCommand = {
  name: "cluster",
  summary: "run N validators as local processes on 127.0.0.1",
  usage,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      validators: { type: "string" },
      dir: { type: "string" },
      accounts: { type: "string" },
      preset: { type: "string" },
      "log-level": { type: "string" },
      "timeout-ms": { type: "string" },
      "insecure-peers": { type: "boolean" },
      json: { type: "boolean" },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const preset = presetFlag(values.preset);
    const n = intFlag("validators", values.validators, 4, 1, presets[preset].staking.maxValidators);
    const accounts = intFlag("accounts", values.accounts, 8, 0, 100_000);
    const timeoutMs = intFlag("timeout-ms", values["timeout-ms"], 60_000, 1);
    const logLevel = values["log-level"] ?? "info";
    if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
      throw new UsageError(
        "--log-level",
        `--log-level must be one of ${LOG_LEVELS.join(", ")}, got '${logLevel}'`,
      );
    }
    const dir = path.resolve(values.dir ?? (await mkdtemp(path.join(tmpdir(), "parabft-cluster-"))));

    const clusterOpts = {
      preset,
      accounts,
      logLevel: logLevel as LogLevel,
      insecurePeers: values["insecure-peers"] === true,
      onUnexpectedExit: (i: number, code: number | null, signal: NodeJS.Signals | null) => {
        console.error(
          `parabft cluster: node ${i} exited unexpectedly (code ${code}, signal ${signal}); log: ${cluster.logFile(i)}`,
        );
      },
    };
    let cluster: LocalCluster;
    if (existsSync(path.join(dir, "testnet.json"))) {
      // Resume a cluster stopped earlier: same keys, ports and data.
      cluster = await LocalCluster.open(dir, clusterOpts);
      if (values.validators !== undefined && cluster.size !== n) {
        throw new UsageError(
          "--validators",
          `--dir ${dir} holds a ${cluster.size}-validator testnet, not ${n}`,
        );
      }
      console.error(`parabft cluster: resuming the ${cluster.size}-validator testnet in ${dir}`);
    } else {
      try {
        cluster = await LocalCluster.create(n, dir, clusterOpts);
      } catch (err) {
        if (/already contains a testnet/.test(errorMessage(err))) {
          throw new UsageError("--dir", `--dir: ${errorMessage(err)}`);
        }
        throw err;
      }
    }

    let wake: () => void = () => {};
    const stopRequested = new Promise<void>((resolve) => {
      wake = resolve;
    });
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        console.error(`parabft cluster: ${signal} again; killing all nodes`);
        for (let i = 0; i < cluster.size; i++) if (cluster.isRunning(i)) void cluster.kill(i, "SIGKILL");
        return;
      }
      console.error(`parabft cluster: ${signal}; stopping ${cluster.size} nodes`);
      wake();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      const started = cluster.start({ timeoutMs });
      const outcome = await Promise.race([
        started.then(
          () => "up" as const,
          (err: unknown) => err,
        ),
        stopRequested.then(() => "signal" as const),
      ]);
      if (outcome === "signal") return 0;
      if (outcome !== "up") {
        console.error(`parabft cluster: ${errorMessage(outcome)}`);
        return 1;
      }
      const file = await cluster.writeManifest();
      const m = cluster.manifest();
      if (values.json) printJson(m);
      else {
        console.log(`cluster ${m.chainId}: ${n} validators up; manifest ${file}`);
        console.log(
          formatTable(
            ["node", "pid", "api", "peer", "metrics", "home"],
            m.nodes.map((x) => [x.index, x.pid ?? "-", x.api, x.peer, x.metrics, x.home]),
          ),
        );
        console.log("press Ctrl-C to stop");
      }
      await stopRequested;
      return 0;
    } finally {
      await cluster.stop();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
};
