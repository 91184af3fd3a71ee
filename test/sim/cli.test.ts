// The `parabft sim` command: exit codes 0 (clean), 1 (violation), usage errors (exit 2 via the dispatcher).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import { simCommand } from "../../src/cli/commands/sim.js";

async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log;
  const write = process.stdout.write.bind(process.stdout);
  console.log = () => {};
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await fn();
  } finally {
    console.log = log;
    process.stdout.write = write;
  }
}

describe("parabft sim", () => {
  it("exits 0 when a few seeds run clean", async () => {
    assert.equal(await quietly(() => simCommand.run(["--seeds", "4", "--workers", "1"])), 0);
  });

  it("exits 1 and reports a violation when the core is broken on purpose", async () => {
    const code = await quietly(() =>
      simCommand.run([
        "--seed",
        "4",
        "--validators",
        "4",
        "--faults",
        "delay,equivocate,doublevote",
        "--test-only-faults",
        "quorumOneShort",
        "--json",
      ]),
    );
    assert.equal(code, 1);
  });

  it("rejects bad usage with a UsageError naming the flag", async () => {
    await assert.rejects(() => simCommand.run([]), UsageError);
    await assert.rejects(() => simCommand.run(["--seeds", "2", "--seed", "3"]), UsageError);
    await assert.rejects(() => simCommand.run(["--seeds", "2", "--faults", "nonsense"]), /unknown fault/);
    await assert.rejects(
      () => simCommand.run(["--seed", "1", "--validators", "4", "--byzantine", "4"]),
      UsageError,
    );
    await assert.rejects(() => simCommand.run(["--seeds", "0"]), UsageError);
  });
});
