// The command table: every entry loads a command whose name and summary match the table, and
// whose usage text documents --help, so `parabft <cmd> --help` works for all of them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CommandEntry, commands } from "../../../src/cli/run.js";

function leaves(prefix: string, table: Record<string, CommandEntry>): [string, CommandEntry][] {
  return Object.entries(table).flatMap(([name, e]) =>
    e.sub ? leaves(`${prefix}${name} `, e.sub) : [[`${prefix}${name}`, e] as [string, CommandEntry]],
  );
}

describe("parabft command table", () => {
  it("has the commands an operator expects", () => {
    for (const c of ["init", "keys", "testnet", "start", "cluster", "tx", "query", "sim", "bench", "demo"]) {
      assert.ok(commands[c], `missing command ${c}`);
    }
    assert.deepEqual(Object.keys(commands.bench!.sub ?? {}).sort(), ["cluster", "exec"]);
  });

  for (const [name, entry] of leaves("", commands)) {
    it(`loads '${name}' with a matching summary and a usage text`, async () => {
      const cmd = await entry.load!();
      assert.equal(cmd.name, name.split(" ").at(-1));
      assert.equal(cmd.summary, entry.summary);
      assert.match(cmd.usage, /Usage/);
      assert.equal(typeof cmd.run, "function");
    });
  }
});
