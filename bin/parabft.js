#!/usr/bin/env node
// Entry point of the `parabft` command: runs the compiled CLI (make build).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
if (!existsSync(main)) {
  process.stderr.write("parabft: not built yet; run `make build` first\n");
  process.exit(2);
}
await import(main);
