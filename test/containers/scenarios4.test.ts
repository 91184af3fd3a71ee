// Fault scenarios in containers, part 4: the faults that need the validators' test-only hooks
// (src/node/testFaults.ts, switched on a running validator through <home>/test-faults.json):
// peer-link delay (the kernel has no netem), clock skew, and an equivocating primary (n = 4,
// f = 1). Skipped without a Docker engine unless CI=true (then it fails).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { DockerCluster } from "./lib/docker.js";
import { suiteGate } from "./lib/gate.js";
import { runScenario, type ScenarioCtx, summary, until } from "./lib/scenario.js";

const gate = await suiteGate();
const ALL = [0, 1, 2, 3];
const faulty = { cluster: { testFaults: true } };

describe("fault scenarios in containers: delay, clock skew, equivocation", {
  skip: gate.skip,
  timeout: 600_000,
}, () => {
  before(gate.before);

  it("delay: 250 ms on the primary's links, then 40-120 ms on every link", { timeout: 180_000 }, async () => {
    const r = await runScenario(
      "delay (250 ms primary, 40-120 ms all)",
      async (ctx) => {
        const c = ctx.cluster;
        const { primary } = await ctx.primary();
        const viewChanges = () =>
          Promise.all(ALL.map((i) => c.metric(i, "parabft_consensus_view_changes_total")));
        const vc0 = await viewChanges();
        const startMs = performance.now();
        // Everything the primary receives arrives 250-300 ms late (votes, gossip, status).
        await c.setFaults(primary, { peerDelayMs: 250, peerJitterMs: 50 });
        await ctx.moreAcks(5, 60_000);
        // Then every link: 40 ms + up to 80 ms, per envelope, order kept.
        for (const i of ALL) await c.setFaults(i, { peerDelayMs: 40, peerJitterMs: 80 });
        const from = await ctx.height(ALL);
        await ctx.moreAcks(5, 60_000);
        await ctx.waitHeight(ALL, from + 1n);
        const views = (await viewChanges()).map((v, i) => v - vc0[i]!);
        for (const i of ALL) await c.setFaults(i, null);
        ctx.note(
          `primary ${primary} delayed, then all links; view changes per node during it: ${views.join(",")}`,
        );
        return { startMs, healMs: performance.now(), maxFaulty: 1 };
      },
      faulty,
    );
    assert.ok(r.pass, summary(r));
  });

  it("clock skew: the primary 15 s ahead (beyond maxClockSkewMs), a backup 5 s behind", {
    timeout: 180_000,
  }, async () => {
    let skewed = 0;
    const r = await runScenario(
      "clock skew (+15 s primary, -5 s backup)",
      async (ctx) => {
        const c = ctx.cluster;
        const ignored = (nodes: number[]) =>
          Promise.all(
            nodes.map((i) => c.metric(i, "parabft_consensus_messages_total", /reason="TIMESTAMP_SKEW"/)),
          ).then((xs) => xs.reduce((a, b) => a + b, 0));
        const startMs = performance.now();
        // The primary's clock runs 15 s ahead: the others ignore its proposals (bound 10 s), and a
        // view change must replace it. Another validator 5 s behind: within the bound, harmless.
        const first = (await ctx.primary()).primary;
        const behind = ALL.find((i) => i !== first)!;
        await c.setFaults(behind, { clockOffsetMs: -5_000 });
        const held = await faultOnPrimary(ctx, {
          attempts: 6,
          what: "the skewed primary's proposals to be ignored",
          waitMs: 15_000,
          put: (i) => c.setFaults(i, { clockOffsetMs: 15_000 }),
          lift: (i) => c.setFaults(i, i === behind ? { clockOffsetMs: -5_000 } : null),
          signs: async (primary) => {
            const others = ALL.filter((i) => i !== primary);
            const before = await ignored(others);
            return async () => (await ignored(others)) - before;
          },
        });
        const ahead = held.holder;
        skewed = held.shown;
        await ctx.moreAcks(6, 60_000);
        // The skewed validator still follows the chain (commit certificates need no timestamps).
        await ctx.waitHeight([ahead], await ctx.height(ALL.filter((i) => i !== ahead)));
        for (const i of new Set([ahead, behind])) await c.setFaults(i, null);
        ctx.note(`skewed ${ahead} (+15 s), ${behind} (-5 s); PRE-PREPAREs ignored for skew: ${skewed}`);
        return { startMs, healMs: performance.now(), maxFaulty: 1 };
      },
      faulty,
    );
    assert.ok(r.pass, summary(r));
    assert.ok(skewed > 0, "the validators ignored the skewed primary's PRE-PREPAREs (TIMESTAMP_SKEW)");
  });

  it("an equivocating primary: conflicting PRE-PREPAREs and double votes, kept as evidence", {
    timeout: 180_000,
  }, async () => {
    let evidence: Record<string, number>[] = [];
    let byzantine = -1;
    const r = await runScenario(
      "equivocating primary",
      async (ctx) => {
        const c = ctx.cluster;
        const phases = ["prePrepare", "prepare", "commit"];
        const count = (i: number) =>
          Promise.all(
            phases.map((p) => c.metric(i, "parabft_consensus_evidence_total", new RegExp(`phase="${p}"`))),
          ).then((xs) => Object.fromEntries(phases.map((p, k) => [p, xs[k]!])));
        const startMs = performance.now();
        // Conflicting PRE-PREPAREs (half the peers see the other block first) and a second signed
        // PREPARE/COMMIT for another digest after each real one. Only a primary proposes: if the
        // view moved on before the equivocator proposed (CI once saw 0 PRE-PREPARE evidence on
        // every honest validator, all in view 1), the fault follows the new primary, one
        // equivocator at a time (faultOnPrimary).
        const held = await faultOnPrimary(ctx, {
          attempts: 4,
          what: "a conflicting PRE-PREPARE kept as evidence",
          waitMs: 20_000,
          put: (i) => c.setFaults(i, { equivocate: true }),
          lift: (i) => c.setFaults(i, { equivocate: false }),
          signs: async (primary) => async () =>
            (await Promise.all(ALL.filter((i) => i !== primary).map(count))).filter((e) => e.prePrepare! > 0)
              .length,
        });
        const primary = held.holder;
        const honest = ALL.filter((i) => i !== primary);
        byzantine = primary;
        await ctx.moreAcks(6, 60_000);
        await until(
          "every honest validator to keep vote evidence and 2 of 3 to keep PRE-PREPARE evidence",
          async () => {
            evidence = await Promise.all(honest.map(count));
            // Every honest validator sees the double votes (one pair per height). Conflicting
            // PRE-PREPAREs are rarer: the first one costs the equivocator its view (the honest
            // validators split between the blocks and the view changes), and it is primary again
            // only every n epochs. A validator that is behind its window or alone in another view
            // then ignores both blocks, as it should, so a quorum of the honest ones (2 of 3)
            // must keep PRE-PREPARE evidence, not all of them.
            return (
              evidence.every((e) => e.prepare! + e.commit! > 0) &&
              evidence.filter((e) => e.prePrepare! > 0).length >= honest.length - 1
            );
          },
          60_000,
        ).catch(async (err: unknown) => {
          // Say what each honest validator saw of the equivocator, so a failure can be diagnosed.
          const seen = await Promise.all(honest.map((i) => diagnose(c, i, primary)));
          throw new Error(
            `${String(err)}\nevidence (pre-prepare/prepare/commit) per honest validator ${honest.join(",")}: ${evidence
              .map((e) => `${e.prePrepare}/${e.prepare}/${e.commit}`)
              .join(", ")}\n${seen.join("\n")}`,
          );
        });
        await c.setFaults(primary, { equivocate: false });
        ctx.note(
          `validator ${primary} equivocated; evidence kept by ${honest.join(",")}: ${evidence
            .map((e) => `${e.prePrepare}/${e.prepare}/${e.commit}`)
            .join(", ")} (pre-prepare/prepare/commit)`,
        );
        return { startMs, healMs: performance.now(), maxFaulty: 1 };
      },
      faulty,
    );
    assert.ok(r.pass, summary(r));
    assert.ok(byzantine >= 0 && evidence.length === 3, "evidence was counted on three honest validators");
  });
});

/**
 * Puts a fault that only a primary can show (a skewed proposal, a conflicting one) on the current
 * primary, and waits up to `waitMs` for `signs` to count its effect. If the view moved on before
 * that validator proposed, the fault never shows: it is lifted and follows the new primary, one
 * faulty validator at a time. Returns the validator left holding the fault and the count it showed
 * (0 when no attempt showed it; the caller asserts).
 */
async function faultOnPrimary(
  ctx: ScenarioCtx,
  opts: {
    attempts: number;
    what: string;
    waitMs: number;
    put(i: number): Promise<void>;
    lift(i: number): Promise<void>;
    /** Called before the fault is put on `primary`; the function it returns counts the effect since. */
    signs(primary: number): Promise<() => Promise<number>>;
  },
): Promise<{ holder: number; shown: number }> {
  let holder = -1;
  let shown = 0;
  for (let attempt = 0; attempt < opts.attempts && shown === 0; attempt++) {
    const { primary } = await ctx.primary();
    if (holder >= 0 && holder !== primary) await opts.lift(holder);
    holder = primary;
    const counted = await opts.signs(primary);
    await opts.put(primary);
    await until(opts.what, async () => (await counted()) > 0, opts.waitMs).catch(() => null);
    shown = await counted();
  }
  return { holder, shown };
}

/** Validator i's status and its metric lines about the peer `suspect` (verdicts, penalties, bans). */
async function diagnose(c: DockerCluster, i: number, suspect: number): Promise<string> {
  const status = await c
    .client(i)
    .getStatus()
    .then((s) => `height ${s.committedHeight} view ${s.view} primary ${s.primary}`)
    .catch((err: unknown) => `no status (${String(err)})`);
  const text = await fetch(`http://${c.metricsAddress(i)}/metrics`)
    .then((r) => r.text())
    .catch(() => "");
  const lines = text
    .split("\n")
    .filter(
      (l) =>
        /^parabft_(consensus_evidence_total|consensus_messages_total|consensus_view_changes_total|net_bans_total|net_penalties_total|net_connected_peers)/.test(
          l,
        ) &&
        (!/peer="/.test(l) || l.includes(`peer="${suspect}"`)),
    );
  return `--- validator ${i}: ${status}\n${lines.join("\n")}`;
}
