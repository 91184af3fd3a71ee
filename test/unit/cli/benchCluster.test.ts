// `parabft bench cluster`'s flag checks: combinations that mean nothing are refused with a
// UsageError naming the flag, before any cluster starts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../../src/cli/command.js";
import { benchClusterCommand } from "../../../src/cli/commands/benchCluster.js";

// Were a check missing, the command would run: keep that run small and write nothing.
const SMALL = ["--validators", "1", "--duration", "1", "--drain", "1", "--no-write", "--quiet"];

async function refusal(argv: string[]): Promise<string> {
  try {
    await benchClusterCommand.run([...SMALL, ...argv]);
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err));
    return err.detail.field;
  }
  assert.fail(`accepted: ${argv.join(" ")}`);
}

describe("parabft bench cluster flags", () => {
  it("takes --warmup with one open-loop rate or a closed loop, never with a sweep or the overload run", async () => {
    assert.equal(await refusal(["--sweep", "--warmup", "5"]), "--warmup");
    assert.equal(await refusal(["--overload", "--warmup", "5"]), "--warmup");
    assert.equal(await refusal(["--rate", "100", "--warmup=soon"]), "--warmup");
  });

  it("takes --warmup-ramp only with --warmup and one open-loop rate", async () => {
    assert.equal(await refusal(["--rate", "100", "--warmup-ramp"]), "--warmup-ramp");
    assert.equal(await refusal(["--sweep", "--warmup-ramp"]), "--warmup-ramp");
    assert.equal(await refusal(["--closed-loop", "1", "--warmup", "2", "--warmup-ramp"]), "--warmup-ramp");
  });

  it("refuses a closed loop with a sweep or a rate", async () => {
    assert.equal(await refusal(["--closed-loop", "1", "--sweep"]), "--closed-loop");
    assert.equal(await refusal(["--closed-loop", "1", "--rate", "5"]), "--closed-loop");
  });
});
