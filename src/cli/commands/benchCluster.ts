// `parabft bench cluster`: the cluster benchmark (bench/cluster.ts) from the command line.
import path from "node:path";
import { formatReport, runClusterBench } from "../../../bench/cluster.js";
import { type ConsensusParams, isConsensusParam, type PresetName, presets } from "../../params/index.js";
import { type CliCommand, intFlag, parseCommandArgs, UsageError } from "../command.js";
import { printJson } from "../output.js";

const usage = `Usage:
  parabft bench cluster --validators N [flags]            start a local cluster and load it
  parabft bench cluster --api ADDR,... --keys DIR [flags] load an existing cluster

Open-loop load of pre-signed bank transfers from many senders, sent at a fixed rate over several
connections round-robin across the nodes. Measures submit->committed (finality) and
submit->executed latency (HDR histograms: p50/p90/p99/max), achieved throughput, failures and a
per-second timeline; measures this machine's Ed25519 verification ceiling (node:crypto) in the
same run and reports throughput as a ratio to it; finally checks with GetTx that every
transaction counted as committed is in the chain. Writes JSON, a table and an SVG chart.

Options:
  --validators N     start a local cluster of N validators in a temp dir (stopped at the end)
  --preset NAME      local cluster chain parameters: default | minimal (default: default)
  --consensus K=V,.. local cluster: consensus parameters replacing the preset's, e.g.
                     maxBlockTxs=500,proposalDepth=2 (names as in src/params)
  --insecure-peers   local cluster: peer links without TLS (to measure what TLS costs)
  --api LIST         comma-separated API addresses of an existing cluster
  --keys DIR         existing cluster: directory of funded account key files (*.json)
  --metrics LIST     existing cluster: validators' metrics addresses, for the per-stage table
  --duration S       seconds of load (per step with --sweep; default 10, 5 with --sweep)
  --rate R           offered load in tx/s (the first step with --sweep; default 200)
  --closed-loop N    closed loop instead: N clients, each submitting with SubmitTxAndWait and
                     waiting for its commit before the next; latency is send -> reply
  --warmup S         closed loop: unrecorded warm-up seconds before --duration (default 1);
                     open loop at one --rate: a warm-up run at that rate first, reported
                     apart and not judged (default 0), so CPU and latency are the warm code's
  --warmup-ramp      open loop: the warm-up climbs to --rate in four equal steps (25, 50, 75,
                     100 %) instead of starting at the full rate
  --sweep            raise the rate stepwise (×1.5) until latency or errors climb; reports the
                     saturation point and the latency-throughput curve
  --sweep-steps N    at most N sweep steps (default 8; the overload probe's: 16)
  --overload         issue 14's overload goal: measure saturation first (an open-loop probe
                     sweep from --rate, ×1.5 per --probe seconds, ÷1.5 while the first
                     steps do not keep up, then ×1.5 again until one fails twice, then
                     ×1.15 from the last step that kept up; judged by errors and
                     throughput), then offer
                     --factor × it for --duration seconds; refusals are
                     counted by status and never retried (the sender's next payment takes the
                     nonce); reports achieved/saturation, view changes, refusals, finality of
                     what was admitted and the chain check (default --duration 60)
  --factor F         overload: offered load as a multiple of saturation (default 2)
  --probe S          overload: seconds per probe step (default 10)
  --saturation R     overload: skip the probe and take R tx/s as saturation (quick checks)
  --senders N        distinct sending accounts (default: 2 per tx/s of --rate, 64 to 2048;
                     2048 with --overload or --sweep; closed loop: 64 or one per client)
  --submit-batch N   open loop and overload: SubmitTxs batches of up to N transactions, gathered
                     for at most 5 ms (default 64); 1 = one SubmitTx per transaction
  --sticky-senders   open loop: each sender's batches on its own connection (a gathering lane
                     per connection) instead of one lane whose calls go round-robin (default)
  --connections N    client connections (default 2 per node, at least 4; with --overload one
                     per 48 senders)
  --drain S          seconds to wait for stragglers after the load (default 15)
  --out DIR          result directory (default bench/results)
  --no-write         do not write result files
  --json             print the report as JSON on stdout (progress stays on stderr)
  --quiet            no progress on stderr
  -h, --help         show this help`;

export const benchClusterCommand: CliCommand = {
  name: "cluster",
  summary: "cluster benchmark: finality latency and throughput under open-loop load",
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, {
      validators: { type: "string" },
      preset: { type: "string" },
      consensus: { type: "string" },
      "insecure-peers": { type: "boolean" },
      api: { type: "string" },
      keys: { type: "string" },
      metrics: { type: "string" },
      duration: { type: "string" },
      rate: { type: "string" },
      sweep: { type: "boolean" },
      "closed-loop": { type: "string" },
      warmup: { type: "string" },
      "sweep-steps": { type: "string" },
      overload: { type: "boolean" },
      factor: { type: "string" },
      probe: { type: "string" },
      "submit-batch": { type: "string" },
      "sticky-senders": { type: "boolean" },
      "warmup-ramp": { type: "boolean" },
      saturation: { type: "string" },
      senders: { type: "string" },
      connections: { type: "string" },
      drain: { type: "string" },
      out: { type: "string" },
      "no-write": { type: "boolean" },
      json: { type: "boolean" },
      quiet: { type: "boolean" },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError("arguments", `unexpected argument '${positionals[0]}'`);
    if ((values.validators === undefined) === (values.api === undefined)) {
      throw new UsageError("--validators", "give exactly one of --validators N or --api ADDR,...");
    }
    const api = values.api
      ?.split(",")
      .map((a) => a.trim())
      .filter((a) => a.length > 0);
    if (api !== undefined) {
      if (api.length === 0) throw new UsageError("--api", "--api needs at least one address");
      for (const a of api)
        if (!/^[\w.-]+:\d+$/.test(a)) throw new UsageError("--api", `not a host:port: '${a}'`);
      if (!values.keys) throw new UsageError("--keys", "--api needs --keys DIR (funded account key files)");
    } else if (values.keys) {
      throw new UsageError("--keys", "--keys only applies with --api");
    }
    const preset = (values.preset ?? "default") as PresetName;
    if (!Object.hasOwn(presets, preset)) {
      throw new UsageError("--preset", `--preset must be one of ${Object.keys(presets).join(", ")}`);
    }
    if (values.consensus !== undefined && values.validators === undefined)
      throw new UsageError("--consensus", "--consensus only applies with --validators (a local cluster)");
    const consensus = values.consensus === undefined ? undefined : consensusFlag(values.consensus);
    if (values["no-write"] && values.out)
      throw new UsageError("--out", "--out and --no-write exclude each other");
    const sweep = values.sweep === true;
    const closedLoop =
      values["closed-loop"] !== undefined
        ? intFlag("closed-loop", values["closed-loop"], 1, 1, 1000)
        : undefined;
    if (closedLoop !== undefined && sweep)
      throw new UsageError("--closed-loop", "--closed-loop and --sweep exclude each other");
    if (closedLoop !== undefined && values.rate !== undefined)
      throw new UsageError("--closed-loop", "--closed-loop and --rate exclude each other");
    const overload = values.overload === true;
    if (overload && (sweep || closedLoop !== undefined))
      throw new UsageError("--overload", "--overload excludes --sweep and --closed-loop");
    for (const f of ["factor", "probe", "saturation"] as const)
      if (!overload && values[f] !== undefined)
        throw new UsageError(`--${f}`, `--${f} only applies with --overload`);
    const factor = values.factor === undefined ? 2 : Number(values.factor);
    if (!(factor >= 1 && factor <= 100))
      throw new UsageError("--factor", "--factor must be a number in 1..100");
    if ((sweep || overload) && values.warmup !== undefined)
      throw new UsageError("--warmup", "--warmup applies to --closed-loop and to one open-loop --rate");
    if (
      values["warmup-ramp"] === true &&
      (sweep || overload || closedLoop !== undefined || values.warmup === undefined)
    )
      throw new UsageError("--warmup-ramp", "--warmup-ramp needs --warmup S and one open-loop --rate");
    const report = await runClusterBench({
      ...(values.validators !== undefined
        ? { validators: intFlag("validators", values.validators, 4, 1, 64) }
        : {}),
      ...(api ? { api, keysDir: values.keys! } : {}),
      ...(values.metrics
        ? {
            metrics: values.metrics
              .split(",")
              .map((a) => a.trim())
              .filter((a) => a.length > 0),
          }
        : {}),
      preset,
      ...(consensus ? { consensus } : {}),
      insecurePeers: values["insecure-peers"] === true,
      durationS: intFlag("duration", values.duration, sweep ? 5 : overload ? 60 : 10, 1, 3600),
      rate: intFlag("rate", values.rate, 200, 1, 1_000_000),
      sweep,
      ...(overload
        ? {
            overload: {
              factor,
              probeS: intFlag("probe", values.probe, 10, 1, 600),
              ...(values.saturation !== undefined
                ? { saturationTps: intFlag("saturation", values.saturation, 1, 1, 1_000_000) }
                : {}),
            },
          }
        : {}),
      ...(closedLoop !== undefined
        ? { closedLoop, warmupS: intFlag("warmup", values.warmup, 1, 0, 600) }
        : values.warmup !== undefined
          ? { warmupS: intFlag("warmup", values.warmup, 0, 0, 600) }
          : {}),
      sweepMaxSteps: intFlag("sweep-steps", values["sweep-steps"], overload ? 16 : 8, 1, 50),
      // Overload: a sender waits for each answer before its next nonce, so more of them.
      senders: intFlag(
        "senders",
        values.senders,
        defaultSenders({
          overload,
          sweep,
          closedLoop,
          rate: intFlag("rate", values.rate, 200, 1, 1_000_000),
        }),
        1,
        10_000,
      ),
      ...(values["sticky-senders"] === true ? { stickySenders: true } : {}),
      ...(values["warmup-ramp"] === true ? { warmupRamp: true } : {}),
      ...(values["submit-batch"] !== undefined
        ? { submitBatch: intFlag("submit-batch", values["submit-batch"], 64, 1, 512) }
        : {}),
      ...(values.connections !== undefined
        ? { connections: intFlag("connections", values.connections, 4, 1, 256) }
        : {}),
      drainTimeoutS: intFlag("drain", values.drain, 15, 0, 600),
      outDir: values["no-write"] ? null : path.resolve(values.out ?? "bench/results"),
      progress: values.quiet !== true,
    });
    if (values.json) printJson(report);
    else {
      console.log(formatReport(report));
      if (report.files)
        console.log(`\nwrote ${report.files.json}, ${report.files.table}, ${report.files.svg}`);
    }
    const v = report.verification;
    // The benchmark itself failed if something it counted as committed is not in the chain.
    return v.missing + v.heightMismatch > 0 ? 1 : 0;
  },
};

/**
 * The default number of senders. An open loop gives each sender ~0.5 tx/s (2 per tx/s offered,
 * 64 to 2,048): a sender's txs still waiting must stay within the pool's nonce window (16), or its
 * later nonces are refused NONCE_GAP, retried, and the API closes the connection as abusive. p24:
 * at 1,000 tx/s on a loaded box the old default of 64 (15.6 tx/s per sender) had 10,500-11,000 of
 * 15,000 sends fail UNAVAILABLE, whichever way senders were spread over the connections. Overload
 * and sweeps (whose rate grows) take 2,048; a closed loop needs one per client.
 */
export function defaultSenders(o: {
  overload: boolean;
  sweep: boolean;
  closedLoop: number | undefined;
  rate: number;
}): number {
  if (o.closedLoop !== undefined) return Math.max(64, o.closedLoop);
  if (o.overload || o.sweep) return 2048;
  return Math.min(2048, Math.max(64, 2 * o.rate));
}

/** `--consensus maxBlockTxs=500,proposalDepth=2`: names of ConsensusParams, positive integers. */
function consensusFlag(v: string): Partial<ConsensusParams> {
  const out: Record<string, number> = {};
  for (const part of v
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0)) {
    const m = /^(\w+)=(\d+)$/.exec(part);
    if (!m) throw new UsageError("--consensus", `not NAME=INTEGER: '${part}'`);
    if (!isConsensusParam(m[1]!))
      throw new UsageError("--consensus", `unknown consensus parameter '${m[1]}'`);
    out[m[1]!] = Number(m[2]);
  }
  if (Object.keys(out).length === 0) throw new UsageError("--consensus", "--consensus needs NAME=INTEGER");
  return out as Partial<ConsensusParams>;
}
