// `parabft start --home DIR`: runs one validator until SIGINT/SIGTERM, then stops it gracefully
// and exits 0. A second signal while stopping exits at once with code 1.
import { createLogger } from "../../logger/index.js";
import { loadConfig } from "../../node/config.js";
import { startNode } from "../../node/index.js";
import { errorMessage } from "../../types/errors.js";
import { type CliCommand, intFlag, parseCommandArgs, UsageError } from "../command.js";

const usage = `Usage: parabft start --home DIR [--stop-timeout-ms MS]

Runs the validator whose home is DIR (created by \`parabft init\` or \`parabft testnet\`).
Configuration comes from DIR/config.json with PARABFT_* environment overrides (docs/CONFIG.md),
e.g. PARABFT_LOG_LEVEL=debug, PARABFT_API_ADDR=0.0.0.0:26657.
Logs are JSON on stderr (pretty when stderr is a terminal).

SIGINT or SIGTERM stops the node gracefully (exit code 0); a second signal exits immediately.

Options:
  --home DIR             node home (required)
  --stop-timeout-ms MS   give up on a graceful stop after MS ms and exit 1 (default 30000)
  -h, --help             show this help`;

export const startCommand: CliCommand = {
  name: "start",
  summary: "run a validator node",
  usage,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      home: { type: "string" },
      "stop-timeout-ms": { type: "string" },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (!values.home) throw new UsageError("--home", "--home is required");
    const stopTimeoutMs = intFlag("stop-timeout-ms", values["stop-timeout-ms"], 30_000, 1);
    const home = values.home;
    // Loaded here first so that a bad config fails before anything starts (exit code 2).
    const cfg = loadConfig(home);
    const log = createLogger({ level: cfg.log.level });

    let signalled: NodeJS.Signals | null = null;
    let wake: () => void = () => {};
    const stopRequested = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        log.error({ signal }, "second signal while stopping: exiting now");
        log.flush();
        process.exit(1);
      }
      signalled = signal;
      log.info({ signal }, "stopping");
      wake();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      const node = await startNode(home, { log });
      node.ready.then(
        () => log.info({ api: cfg.listen.api }, "node ready"),
        (err: unknown) => {
          log.error({ err: errorMessage(err) }, "node failed to become ready");
          wake();
        },
      );
      await stopRequested;
      const stopped = await Promise.race([
        node.stop().then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), stopTimeoutMs).unref()),
      ]);
      if (!stopped) {
        log.error({ stopTimeoutMs }, "graceful stop timed out");
        return 1;
      }
      log.info("stopped");
      return signalled ? 0 : 1;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      log.flush();
    }
  },
};
