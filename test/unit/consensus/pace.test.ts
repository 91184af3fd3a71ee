import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  PACE_FACTOR,
  PACE_MEMORY_MS,
  Pace,
  PRIMARY_TIMEOUT_FACTOR,
  paceCeilingMs,
} from "../../../src/consensus/pbft/pace.js";
import { Cluster, makeBlock, timing } from "./harness.js";

// Issue 14 overload: the request timeout follows the time the cluster recently needed between two
// progress events, on the events' own clock, between viewTimeoutMs and a ceiling.
const params = { ...timing, viewTimeoutMs: 100, viewTimeoutCapMs: 800, maxClockSkewMs: 1_000_000 };
const ceiling = paceCeilingMs(params); // min(800, 4 × 100)

/**
 * A 4-node cluster on a fake clock whose primary (0) takes `delayOf(its committed height)` ms per
 * message it sends (the others 1 ms). Like the node's driver (proposalDepth 1), a primary proposes
 * a height only once the one below is committed.
 */
function slowPrimary(delayOf: (committed: number) => number): Cluster {
  const c = new Cluster(4, { cfg: { params } });
  c.nowMs = 1_000n;
  c.proposalFor = (node, h) =>
    node.replica.committedHeight === h - 1n ? makeBlock(c.set, h, node.index, Number(h)) : null;
  c.msgDelayMs = (m) => (m.from === 0 ? delayOf(Number(c.nodes[0]!.replica.committedHeight)) : 1);
  c.setWork(1);
  return c;
}

/** Offers view 0's primary one height at a time until `heights` are committed or the view changed. */
function drive(c: Cluster, heights: number): void {
  const p = c.nodes[0]!;
  for (let k = 0; k < heights && p.replica.view === 0n && p.replica.committedHeight < BigInt(heights); k++) {
    c.step(0, { kind: "pendingWork", count: 1 });
    c.run();
  }
}

/** Every request timeout node `i` armed before it first changed view. */
function timeoutsBeforeViewChange(c: Cluster, i: number): number[] {
  const out: number[] = [];
  for (const a of c.nodes[i]!.actions) {
    if (a.kind === "persist" && a.record.kind === "view") break;
    if (a.kind === "setTimer") out.push(a.afterMs);
  }
  return out;
}

describe("paced request timeout", () => {
  it("Pace: 2 × the longest recent wait, clamped to [base, ceiling]; only waits that ended in progress count", () => {
    const p = new Pace();
    assert.equal(p.timeoutMs(params), 100, "no samples: the base");
    p.observe(0n);
    p.armed(false);
    p.observe(70n);
    p.armed(true); // waited 70 ms for progress
    assert.equal(p.timeoutMs(params), 140);
    p.observe(60n); // time never moves back
    p.armed(true);
    assert.equal(p.longestWaitMs(), 70, "a wait of 0 ms, not −10");
    p.observe(1_000n);
    p.disarmed(); // fired or cancelled: that wait is not a sample
    p.armed(true);
    assert.equal(p.longestWaitMs(), 70);
    p.observe(1_900n);
    p.armed(true); // 900 ms
    assert.equal(p.timeoutMs(params), ceiling, "capped at the ceiling");
    // Many short waits do not push the 900 ms one out: the pace remembers a stretch of time.
    let t = 1_900n;
    for (let i = 0; i < 1_000; i++) {
      t += 10n;
      p.observe(t);
      p.armed(true);
    }
    assert.equal(p.longestWaitMs(), 900, "1,000 later waits of 10 ms: the 900 ms one is still remembered");
    // It ages out PACE_MEMORY_MS after it ended.
    t = 1_900n + BigInt(PACE_MEMORY_MS);
    p.observe(t);
    assert.equal(p.longestWaitMs(), 900, "exactly PACE_MEMORY_MS after it ended: still remembered");
    p.observe(t + 1n);
    assert.equal(p.longestWaitMs(), 10, "old waits age out by event time");
    assert.equal(p.timeoutMs(params), 100);
    assert.equal(PACE_FACTOR * 10 < 100, true);
  });

  it("Pace: the longest remembered wait is the longest of the memory's window, whatever the order", () => {
    // Against a plain list of (end, wait): a pseudo-random run of arms, progress and disarms.
    const p = new Pace();
    const all: { end: bigint; ms: number }[] = [];
    let now = 0n;
    let armedAt: bigint | null = null;
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    for (let i = 0; i < 5_000; i++) {
      now += BigInt(rnd(400));
      p.observe(now);
      const r = rnd(10);
      if (r === 0) {
        p.disarmed();
        armedAt = null;
      } else {
        const progress = r > 2;
        if (progress && armedAt !== null) all.push({ end: now, ms: Number(now - armedAt) });
        p.armed(progress);
        armedAt = now;
      }
      let want = 0;
      for (const w of all) if (w.end >= now - BigInt(PACE_MEMORY_MS) && w.ms > want) want = w.ms;
      assert.equal(p.longestWaitMs(), want, `step ${i}`);
    }
  });

  it("a primary that slows down while it keeps committing keeps its view", () => {
    // Message delay from the primary grows 20 % per height from 5 ms to 30 ms: late heights wait
    // well over the 100 ms base between progress events.
    const c = slowPrimary((h) => Math.min(30, 5 * 1.2 ** h));
    drive(c, 24);
    for (const n of c.nodes) {
      assert.equal(n.replica.committedHeight, 24n, `node ${n.index} committed every height`);
      assert.equal(n.replica.view, 0n, `node ${n.index} kept view 0`);
    }
    const armed = timeoutsBeforeViewChange(c, 2);
    assert.ok(Math.max(...armed) > 150, `the timeout followed the pace: ${Math.max(...armed)} ms`);
    assert.ok(Math.max(...armed) <= ceiling);

    // Control: the same slow primary at once, before the pace could learn it: the base timeout
    // fires (the phases above do outlast it, so the test above has teeth).
    const cold = slowPrimary(() => 30);
    drive(cold, 24);
    assert.ok(
      cold.nodes.some((n) => n.replica.view > 0n),
      "a 30 ms-per-message primary outlasts the 100 ms base",
    );
  });

  it("a silent primary is still replaced within the ceiling, however slow it was before", () => {
    const c = slowPrimary((h) => Math.min(30, 5 * 1.2 ** h));
    drive(c, 24);
    assert.ok(c.nodes.every((n) => n.replica.view === 0n && n.replica.committedHeight === 24n));
    assert.ok(c.nodes[2]!.replica.requestTimeoutMs > 150, "the pace is up");
    // The primary now has work and says nothing.
    c.filter = (m) => m.from !== 0;
    c.setWork(1);
    c.run();
    c.advance(ceiling);
    for (const i of [1, 2, 3])
      assert.equal(c.nodes[i]!.replica.view, 1n, `node ${i} left view 0 in ≤ ${ceiling} ms`);
    c.run();
    c.advance(1);
    c.run();
    for (const i of [1, 2, 3]) {
      assert.equal(c.nodes[i]!.replica.view, 1n);
      assert.ok(c.nodes[i]!.replica.committedHeight > 24n, `node ${i}: view 1 commits`);
    }
  });

  it("a primary that stretches every phase cannot stretch the timeout past the ceiling", () => {
    // Each height 40 % slower than the last, without bound: the pace follows up to the ceiling,
    // then the primary is replaced.
    const c = slowPrimary((h) => 5 * 1.4 ** h);
    drive(c, 200);
    assert.ok(
      [1, 2, 3].every((i) => c.nodes[i]!.replica.view >= 1n),
      "the stretching primary was replaced",
    );
    const armed = timeoutsBeforeViewChange(c, 2);
    assert.ok(Math.max(...armed) > 200, "the pace followed it first");
    assert.ok(Math.max(...armed) <= ceiling, `never past the ceiling: ${Math.max(...armed)}`);
  });

  it("pacer: reads the armed request timeout and the pace behind it, then the view-change timer", () => {
    const c = slowPrimary((h) => Math.min(30, 5 * 1.2 ** h));
    drive(c, 24);
    const n = c.nodes[2]!;
    c.filter = (m) => m.from !== 0;
    c.setWork(1);
    c.run();
    const lastArmed = () => {
      const timers = n.actions.filter((a) => a.kind === "setTimer");
      return timers[timers.length - 1]!;
    };
    const armed = n.replica.pacer;
    assert.equal(armed.armedForRequests, true, "work is pending: the request timer runs");
    assert.equal(armed.armedTimeoutMs, lastArmed().afterMs, "the timeout the driver was asked to arm");
    assert.ok(armed.longestWaitMs > 50, `the pace saw the slow heights: ${armed.longestWaitMs} ms`);
    assert.equal(
      armed.armedTimeoutMs,
      Math.min(ceiling, Math.max(params.viewTimeoutMs, PACE_FACTOR * armed.longestWaitMs)),
      "the armed timeout is the paced one",
    );
    assert.equal(armed.requestTimeoutMs, armed.armedTimeoutMs);
    c.advance(ceiling);
    const after = n.replica.pacer;
    assert.equal(n.replica.view >= 1n, true, "the silent primary was replaced");
    assert.equal(after.armedForRequests, false, "now the view-change (or the next view's) timer");
  });

  it("stall: names what the lowest uncommitted height waits for in the view, with the votes held", () => {
    // Node 2 after 3 heights, with `pass` deciding which messages still reach it for height 4.
    const at = (pass: (kind: string) => boolean) => {
      const c = slowPrimary(() => 1);
      drive(c, 3);
      assert.equal(c.nodes[2]!.replica.committedHeight, 3n);
      c.filter = (m) => m.to !== 2 || pass(m.msg.kind);
      drive(c, 4);
      return c.nodes[2]!.replica.pacer.stall;
    };
    const quorum = 3;
    const silent = at(() => false);
    assert.deepEqual(silent, { height: 4n, phase: "proposal", votes: 0 }, "nothing from the primary");
    const noPrepares = at((k) => k === "prePrepare");
    assert.equal(noPrepares.phase, "prepare", "the proposal is held, the PREPAREs are not");
    assert.ok(noPrepares.votes >= 1 && noPrepares.votes < quorum, `its own only: ${noPrepares.votes}`);
    const noCommits = at((k) => k !== "commit");
    assert.equal(noCommits.phase, "commit", "prepared, the COMMITs missing");
    assert.ok(noCommits.votes >= 1 && noCommits.votes < quorum, `its own only: ${noCommits.votes}`);
    assert.equal(at(() => true).height, 5n, "everything delivered: height 4 committed, 5 is next");
  });

  it("a primary whose proposal is out suspects itself last: twice its backups' timeout", () => {
    // Issue 14 overload: the primary's own timer fired while its backups were slow to prepare,
    // and it left its view alone. It still has one (with nothing proposed, or when its backups
    // know of no work, its VIEW-CHANGE is needed), only later than theirs.
    const c = slowPrimary(() => 1);
    drive(c, 2);
    const primary = c.nodes[0]!;
    c.filter = (m) => m.msg.kind === "prePrepare"; // the proposal goes out, no vote comes back
    c.step(0, { kind: "pendingWork", count: 1 });
    c.run();
    assert.equal(primary.replica.pacer.stall.phase, "prepare", "height 3 is proposed, not prepared");
    const own = primary.replica.pacer;
    assert.equal(own.armedForRequests, true);
    assert.equal(
      own.armedTimeoutMs,
      Math.min(params.viewTimeoutCapMs, PRIMARY_TIMEOUT_FACTOR * own.requestTimeoutMs),
    );
    for (const i of [1, 2, 3]) {
      const backup = c.nodes[i]!.replica.pacer;
      assert.equal(backup.armedTimeoutMs, backup.requestTimeoutMs, `backup ${i}: the paced timeout`);
      assert.ok(backup.armedTimeoutMs < own.armedTimeoutMs, `backup ${i} suspects the primary first`);
    }
    // At the backups' timeout they start a view change; the primary is still in its view.
    c.advance(Math.max(...[1, 2, 3].map((i) => c.nodes[i]!.replica.pacer.armedTimeoutMs)));
    assert.equal(primary.replica.view, 0n);
    for (const i of [1, 2, 3]) assert.ok(c.nodes[i]!.replica.view >= 1n, `backup ${i} moved on`);
  });
});
