// Entry point of the compiled `parabft` command (bin/parabft.js imports this file).
import { runCli } from "./run.js";

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// Let stdout/stderr drain and the event loop empty naturally; if a command left a handle open
// (a bug, but not one worth hanging a shell over), leave anyway after a grace period.
setTimeout(() => process.exit(code), 3_000).unref();
