// bench/cluster/txStages.ts: a transaction's client-side times joined with the primary's trace log
// by height, on synthetic logs whose stages are known.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { type StageRow, txStages } from "../../../bench/cluster/txStages.js";

/** Node 0's log: height h proposed at 1000 + 100 h, PRE-PREPARE out +5, PREPAREs +20/+25, COMMIT
 *  out +30, delivered +40; the commit batch of a height is logged after the next proposal. */
function primaryLog(heights: number[]): string {
  const lines: object[] = [];
  for (const h of heights) {
    const t = 1000 + 100 * h;
    lines.push({ time: t, msg: "proposing", height: String(h) });
    lines.push({ time: t + 4, msg: "trace persisted", ms: "4.00" });
    lines.push({ time: t + 5, msg: "trace broadcast", kind: "prePrepare" });
    lines.push({ time: t + 20, msg: "trace in", kind: "prepare" });
    lines.push({ time: t + 25, msg: "trace in", kind: "prepare" });
    lines.push({ time: t + 30, msg: "trace broadcast", kind: "commit" });
    lines.push({ time: t + 40, msg: "delivered", height: String(h) });
  }
  for (const h of heights)
    lines.push({ time: 1000 + 100 * h + 150, msg: "commit batch durable", height: String(h) });
  return `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
}

const row = (rows: StageRow[], prefix: string) => rows.find((r) => r.stage.startsWith(prefix))!;

describe("bench txStages", () => {
  it("splits each transaction's time by stage and counts missed proposals by entry node", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "txstages-"));
    try {
      mkdirSync(path.join(dir, "node0"));
      writeFileSync(path.join(dir, "node0", "node.log"), primaryLog([1, 2, 3]));
      const txs = [
        // sent at 1190: the next proposal (height 2, 1200) takes it.
        { i: 0, sched: 1180, sent: 1190, acked: 1195, seen: 1250, entry: 0, height: 2 },
        // sent at 1190 too, but misses height 2 and lands in height 3 (1300).
        { i: 1, sched: 1185, sent: 1190, acked: 1250, seen: 1350, entry: 1, height: 3 },
      ];
      const { rows, notes } = txStages(txs, dir);
      assert.match(notes[0]!, /^2 of 2 transactions joined/);
      assert.equal(row(rows, "gather").p50, 10); // 10 and 5: p50 is the upper of two
      assert.equal(row(rows, "to proposal (").p99, 110);
      assert.equal(row(rows, "  wait").p50, 10);
      assert.equal(row(rows, "  missed").p99, 100);
      assert.equal(row(rows, "PRE-PREPARE").p50, 5);
      assert.equal(row(rows, "prepare").p50, 20);
      assert.equal(row(rows, "commit").p50, 15);
      // Durable is taken by height even though it was logged after the next proposal.
      assert.equal(row(rows, "durable").p50, 110);
      assert.equal(row(rows, "delivered on primary -> seen").p50, 10);
      assert.equal(row(rows, "missed > 0 share, entry = primary").p50, 0);
      assert.equal(row(rows, "missed > 0 share, entry = backup").p50, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
