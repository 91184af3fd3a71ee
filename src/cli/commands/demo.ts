// `parabft demo` (make demo): a 4-validator local cluster under ~20 s of load, finality latency
// and throughput printed, the report written to .parabft-demo/ or --out (never a tracked file, so
// a demo leaves the checkout clean). Ctrl-C stops everything: the first SIGINT stops the nodes
// gracefully, a second one kills them by pid.
import path from "node:path";
import { formatReport, runClusterBench } from "../../../bench/cluster.js";
import type { LocalCluster } from "../cluster.js";
import { type CliCommand, intFlag, parseCommandArgs, UsageError } from "../command.js";
import { printJson } from "../output.js";

const usage = `Usage: parabft demo [--validators N] [--duration S] [--rate R] [--out DIR] [--json]

Starts a local cluster of validator processes on 127.0.0.1 in a temporary directory, sends
pre-signed transfers at a fixed rate for a while, prints finality latency (submit->committed),
execution latency and throughput (also as a ratio to this machine's signature-verification
ceiling, measured in the same run), checks every committed transaction is in the chain, writes
the report (JSON, table, SVG chart) and stops the cluster. Ctrl-C stops it cleanly.

Options:
  --validators N   validators (default 4)
  --duration S     seconds of load (default 20)
  --rate R         offered load in tx/s (default 100)
  --out DIR        report directory (default .parabft-demo/, ignored by git)
  --json           print the full report as JSON
  -h, --help       show this help`;

function killByPid(cluster: LocalCluster | null): void {
  if (!cluster) return;
  for (const n of cluster.manifest().nodes) {
    if (n.pid === null) continue;
    try {
      process.kill(n.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export const demoCommand: CliCommand = {
  name: "demo",
  summary: "run a local 4-validator cluster under load and report finality and throughput",
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, {
      validators: { type: "string" },
      duration: { type: "string" },
      rate: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean" },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError("arguments", `unexpected argument '${positionals[0]}'`);
    const validators = intFlag("validators", values.validators, 4, 1, 16);
    const durationS = intFlag("duration", values.duration, 20, 1, 3600);
    const rate = intFlag("rate", values.rate, 100, 1, 1_000_000);
    const outDir = path.resolve(values.out ?? ".parabft-demo");

    // First signal: abort the load and stop the nodes gracefully; runClusterBench then cleans
    // up (nodes, temp dir) and this command exits 130. A second signal, or cleanup taking too
    // long, kills the nodes by pid at once.
    const ac = new AbortController();
    let cluster: LocalCluster | null = null;
    let interrupts = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      interrupts++;
      ac.abort();
      if (interrupts === 1) {
        process.stderr.write(`\n${signal}: stopping the cluster (again to kill it now) ...\n`);
        void cluster?.stop().catch(() => killByPid(cluster));
        setTimeout(() => {
          killByPid(cluster);
          process.exit(130);
        }, 30_000).unref();
      } else {
        killByPid(cluster);
        process.exit(130);
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      process.stderr.write(
        `ParaBFT demo: ${validators} validators on 127.0.0.1, ${rate} tx/s for ${durationS} s (Ctrl-C stops)\n`,
      );
      let report: Awaited<ReturnType<typeof runClusterBench>>;
      try {
        report = await runClusterBench({
          validators,
          durationS,
          rate,
          senders: 64,
          outDir,
          name: "demo",
          signal: ac.signal,
          onCluster: (c) => {
            cluster = c;
          },
        });
      } catch (err) {
        // Whatever failed after an interrupt (a node killed mid-start, say) is the interrupt.
        if (ac.signal.aborted) {
          process.stderr.write("demo interrupted; cluster stopped\n");
          return 130;
        }
        throw err;
      }
      if (values.json) {
        printJson(report);
        return 0;
      }
      const run = report.runs[0]!;
      const v = report.verification;
      const c = report.verifyCeiling;
      console.log("");
      console.log(formatReport(report));
      console.log("");
      console.log(`Finality (submit -> committed), ${run.finalityMs.count} txs:`);
      console.log(
        `  p50 ${run.finalityMs.p50} ms   p90 ${run.finalityMs.p90} ms   p99 ${run.finalityMs.p99} ms   max ${run.finalityMs.max} ms`,
      );
      console.log(
        `Executed (submit -> receipt): p50 ${run.executedMs.p50} ms   p99 ${run.executedMs.p99} ms`,
      );
      console.log(
        `Throughput: ${run.achievedTps} tx/s committed of ${run.offeredRate} offered = ${run.ratioToClusterCeiling}× the signature-verification ceiling of ${c.clusterCeilingPerSec} tx/s for ${validators} validators on ${c.cores} cores`,
      );
      console.log(
        `Chain check: ${v.inChain}/${v.checked} committed txs found with GetTx; ${v.certificatesValid}/${v.certificatesChecked} commit certificates verified by the SDK`,
      );
      if (report.files) console.log(`Report: ${report.files.json} (+ .txt, .svg)`);
      return v.missing + v.heightMismatch > 0 || run.committed === 0 ? 1 : 0;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
};
