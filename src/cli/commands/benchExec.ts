// `parabft bench exec`: the executor benchmark (bench/exec.ts) from the command line.
import { fileURLToPath } from "node:url";
import { benchExecMain } from "../../../bench/exec.js";
import { type CliCommand, intFlag, parseCommandArgs } from "../command.js";

const usage = `Usage: parabft bench exec [--quick] [--json] [--runs N] [--out DIR | --no-write]

Measures executor throughput on pre-built (pre-verified) transactions: bank transfers over 2 to
100k accounts, an AMM hot spot, compute.work at low and high cost and at full contention, blocks
of 1k and 10k; executors: sequential reference, parallel with 1 and 2 workers (cost model on).
Reports median tx/s over N blocks, speedup against the reference measured in the same run, and
tx/s with persistence through the execution pipeline: reference and parallel executors over
the old storage layout (1: per-tx keys) and the current one (3: per-block logs, recent record in the account), timed to the
end of folding the logs into the state bucket; keys written per tx, GC share, issue 13 goals.
Progress goes to stderr; the table (or JSON with --json) to stdout; files to bench/results/.

Options:
  --quick        a reduced set that finishes in well under a minute
  --json         print the report as JSON instead of the table
  --runs N       measured blocks per scenario (median; default 5, minimum 5); compute rows are
                 timed after 8 warm-up blocks (steady state), their first blocks' figure beside
  --out DIR      result directory (default: bench/results of the project)
  --no-write     do not write result files`;

export const benchExecCommand: CliCommand = {
  name: "exec",
  summary: "executor benchmark: reference vs parallel, with and without persistence",
  usage,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      quick: { type: "boolean" },
      json: { type: "boolean" },
      runs: { type: "string" },
      out: { type: "string" },
      "no-write": { type: "boolean" },
    });
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const runs = intFlag("runs", values.runs, 5, 5, 1000);
    const defaultOut = fileURLToPath(new URL("../../../../bench/results", import.meta.url));
    const report = await benchExecMain({
      quick: values.quick === true,
      json: values.json === true,
      runs,
      outDir: values["no-write"] ? null : (values.out ?? defaultOut),
    });
    return report.checks.allRootsMatchReference ? 0 : 1;
  },
};
