import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { VERSION } from "../../../src/cli/version.js";

// The compiled test may run from dist/ or from another build directory: look upwards from it,
// then in the working directory, for the project's package.json.
function findPackageJson(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const f = path.join(dir, "package.json");
    if (existsSync(f) && (JSON.parse(readFileSync(f, "utf8")) as { name?: string }).name === "parabft")
      return f;
    const up = path.dirname(dir);
    if (up === dir) return path.join(process.cwd(), "package.json");
    dir = up;
  }
}

describe("parabft --version", () => {
  it("matches package.json", () => {
    const pkg = JSON.parse(readFileSync(findPackageJson(), "utf8")) as { version: string };
    assert.equal(VERSION, pkg.version);
  });
});
