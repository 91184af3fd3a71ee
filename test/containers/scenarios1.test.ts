// Fault scenarios in containers, part 1 (baseline and crashes). See lib/scenario.ts for the
// phases and test/containers/README.md for the matrix. Needs a Docker engine: skipped without
// one, except with CI=true, where a missing engine fails the run.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { suiteGate } from "./lib/gate.js";
import { runScenario, summary } from "./lib/scenario.js";

const gate = await suiteGate();

describe("fault scenarios in containers: baseline and crashes", { skip: gate.skip, timeout: 900_000 }, () => {
  before(gate.before);

  it("baseline", { timeout: 150_000 }, async () => {
    const r = await runScenario("baseline", async (ctx) => {
      const startMs = performance.now();
      await ctx.moreAcks(20);
      return { startMs, healMs: performance.now(), maxFaulty: 0 };
    });
    assert.ok(r.pass, summary(r));
  });
});
