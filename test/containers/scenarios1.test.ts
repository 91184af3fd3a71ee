// Fault scenarios in containers, part 1: baseline and crashes (n = 4, f = 1). Each scenario runs
// on its own docker network and cluster (lib/scenario.ts: load, fault, heal, quiesce, then S1-S4
// and liveness). Needs a Docker engine: skipped without one, except with CI=true, where a missing
// engine fails the run.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { suiteGate } from "./lib/gate.js";
import { runScenario, summary, until } from "./lib/scenario.js";

const gate = await suiteGate();
const ALL = [0, 1, 2, 3];

describe("fault scenarios in containers: baseline and crashes", { skip: gate.skip, timeout: 900_000 }, () => {
  before(gate.before);

  it("baseline", { timeout: 150_000 }, async () => {
    const r = await runScenario("baseline", async (ctx) => {
      const startMs = performance.now();
      await ctx.moreAcks(12);
      return { startMs, healMs: performance.now(), maxFaulty: 0 };
    });
    assert.ok(r.pass, summary(r));
  });

  it("a node that acknowledges before commit (test-only switch) is caught by S2", {
    timeout: 150_000,
  }, async () => {
    const r = await runScenario(
      "ack-before-commit switch (must fail S2)",
      async (ctx) => {
        const startMs = performance.now();
        await ctx.moreAcks(8);
        return { startMs, healMs: performance.now(), maxFaulty: 0 };
      },
      { cluster: { env: { PARABFT_TEST_ACK_BEFORE_COMMIT: "1" } } },
    );
    assert.equal(r.pass, false, `S2 missed premature acknowledgements: ${summary(r)}`);
    assert.equal(r.checks.S2?.ok, false, summary(r));
    assert.ok(
      r.violations.some((v) => /^S2 acknowledged tx .* (at \d+ but first included|is lost)/.test(v)),
      r.violations.join("\n"),
    );
  });

  it("crash f (kill -9 a backup), then restart: commits continue, it catches up", {
    timeout: 150_000,
  }, async () => {
    const r = await runScenario("crash f + restart", async (ctx) => {
      const { primary } = await ctx.primary();
      const victim = ALL.find((i) => i !== primary)!;
      ctx.history.avoid(victim);
      const startMs = performance.now();
      await ctx.cluster.kill(victim);
      await ctx.moreAcks(6); // three validators are still a quorum
      await ctx.cluster.startNode(victim);
      const healMs = performance.now();
      const target = await ctx.height(ALL.filter((i) => i !== victim));
      await ctx.waitHeight([victim], target);
      ctx.note(
        `node ${victim} caught up ${target} heights ${((performance.now() - healMs) / 1000).toFixed(1)} s after restart`,
      );
      return { startMs, healMs, maxFaulty: 1 };
    });
    assert.ok(r.pass, summary(r));
  });

  it("crash f+1: commits stop (5 s), then resume after restart with nothing lost", {
    timeout: 150_000,
  }, async () => {
    const r = await runScenario("crash f+1 + restart", async (ctx) => {
      const { primary } = await ctx.primary();
      const victims = ALL.filter((i) => i !== primary).slice(0, 2);
      const survivors = ALL.filter((i) => !victims.includes(i));
      for (const v of victims) ctx.history.avoid(v);
      const startMs = performance.now();
      await Promise.all(victims.map((v) => ctx.cluster.kill(v)));
      // Heights already certified before the kill may still arrive; then nothing more commits.
      await sleep(2000);
      const stalledAt = await ctx.height(survivors);
      await sleep(5000);
      const after = await ctx.height(survivors);
      assert.equal(after, stalledAt, `the ${survivors.length} survivors committed without a quorum`);
      ctx.note(`no commit for 5 s with 2 of 4 down (height ${stalledAt})`);
      await Promise.all(victims.map((v) => ctx.cluster.startNode(v)));
      const healMs = performance.now();
      await until("a commit after the restart", async () => (await ctx.height(ALL)) > stalledAt, 60_000);
      ctx.note(`first commit ${((performance.now() - healMs) / 1000).toFixed(1)} s after the restart`);
      return { startMs, healMs, maxFaulty: 2 };
    });
    assert.ok(r.pass, summary(r));
  });

  it("kill the primary repeatedly: a view change each time, commits resume", {
    timeout: 180_000,
  }, async () => {
    const r = await runScenario("kill primary x2", async (ctx) => {
      const startMs = performance.now();
      let healMs = startMs;
      for (let round = 0; round < 2; round++) {
        const before = await ctx.primary();
        const p = before.primary;
        const others = ALL.filter((i) => i !== p);
        ctx.history.avoid(p);
        const killedAt = performance.now();
        await ctx.cluster.kill(p);
        const after = await until(
          "the survivors to agree on a higher view",
          async () => {
            const v = await ctx.primary(others);
            return v.view > before.view ? v : null;
          },
          60_000,
        );
        assert.notEqual(after.primary, p);
        await ctx.moreAcks(2);
        ctx.note(
          `round ${round}: primary ${p} killed, view ${before.view} -> ${after.view}, commits after ${Math.round(performance.now() - killedAt)} ms`,
        );
        await ctx.cluster.startNode(p);
        healMs = performance.now();
        await ctx.waitHeight([p], await ctx.height(others));
        ctx.history.allow(p);
      }
      return { startMs, healMs, maxFaulty: 1 };
    });
    assert.ok(r.pass, summary(r));
  });
});
