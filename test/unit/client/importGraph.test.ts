// The SDK core must run in browsers: nothing reachable from src/client/index.js may import a
// node: builtin or grpc-js. Walks the compiled graph (relative imports) and checks every bare
// specifier against the browser-safe packages.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ENTRY = new URL("../../../src/client/index.js", import.meta.url);
const ALLOWED_PACKAGES = ["@bufbuild/protobuf", "@noble/curves", "@noble/hashes"];
const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s*(?:[^'"]*?\sfrom\s*)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function specifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2])!);
  return out;
}

function walk(entry: URL): { files: string[]; bare: Map<string, string> } {
  const seen = new Set<string>();
  const bare = new Map<string, string>();
  const stack = [entry];
  while (stack.length > 0) {
    const url = stack.pop()!;
    if (seen.has(url.href)) continue;
    seen.add(url.href);
    const src = readFileSync(fileURLToPath(url), "utf8");
    for (const spec of specifiers(src)) {
      if (spec.startsWith(".")) stack.push(new URL(spec, url));
      else bare.set(spec, fileURLToPath(url));
    }
  }
  return { files: [...seen], bare };
}

describe("node-free SDK entry", () => {
  it("reaches no node: builtin and no grpc-js from src/client/index.js", () => {
    const { files, bare } = walk(ENTRY);
    assert.ok(
      files.some((f) => f.endsWith("/src/client/signer.js")),
      "graph walk found the SDK modules",
    );
    assert.ok(files.some((f) => f.endsWith("/src/types/block.js")));
    const builtins = new Set(builtinModules);
    for (const [spec, from] of bare) {
      assert.ok(
        !spec.startsWith("node:") && !builtins.has(spec.split("/")[0]!),
        `${from} imports builtin ${spec}`,
      );
      assert.ok(
        ALLOWED_PACKAGES.some((p) => spec === p || spec.startsWith(`${p}/`)),
        `${from} imports ${spec}, which is not a browser-safe dependency`,
      );
    }
  });

  it("catches a node-only import when one is present (checks the checker)", () => {
    const node = new URL("../../../src/client/node.js", import.meta.url);
    const { bare } = walk(node);
    assert.ok(bare.has("@grpc/grpc-js"));
  });
});
