import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import {
  EnvelopeSchema,
  PeerMessageSchema,
  ViewChangeSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import { nullBlockDigest } from "../../../src/types/block.js";
import { bytesEqual } from "../../../src/types/bytes.js";
import { CHAIN, Cluster, sealFrom, sentOf } from "./harness.js";

function kindOf(bytes: Uint8Array) {
  const m = fromBinary(PeerMessageSchema, fromBinary(EnvelopeSchema, bytes).payload);
  return m.kind;
}

describe("view change", () => {
  it("carries a prepared block into the new view with the same digest", () => {
    const c = new Cluster(4);
    // Everyone prepares height 1, but no COMMIT gets through.
    c.filter = (m) => m.msg.kind !== "commit";
    c.setWork(1, [0]);
    c.run();
    const proposed = c.nodes[0]!.actions.find((a) => a.kind === "broadcast" && a.msg.kind === "prePrepare");
    assert.ok(proposed?.kind === "broadcast");
    const pp = kindOf(proposed.msg.bytes);
    assert.ok(pp.case === "prePrepare");
    for (const n of c.nodes) assert.equal(n.delivered.length, 0);
    c.crash(0);
    c.filter = () => true;
    for (const i of [1, 2, 3]) c.fireTimer(i);
    c.run();
    for (const i of [1, 2, 3]) {
      const n = c.nodes[i]!;
      assert.equal(n.replica.view, 1n);
      assert.equal(n.replica.viewActive, true);
      assert.equal(n.delivered.length, 1);
      assert.ok(bytesEqual(n.delivered[0]!.digest, pp.value.blockDigest), "re-proposal keeps its digest");
      assert.equal(n.delivered[0]!.isNull, false);
    }
    const nv = sentOf(c.nodes[1]!.actions, "newView");
    assert.equal(nv.length, 1, "the primary of view 1 sent NEW-VIEW");
    // Every replica's view record names its epoch: a fold in epoch >= 1 ignores one without it, so
    // a new primary restarted there would not know it had sent its NEW-VIEW.
    for (const i of [1, 2, 3]) {
      const views = c.nodes[i]!.actions.flatMap((a) =>
        a.kind === "persist" && a.record.kind === "view" ? [a.record] : [],
      );
      assert.ok(views.length > 0, `replica ${i} recorded view 1`);
      for (const r of views) assert.deepEqual(r, { kind: "view", view: 1n, epoch: 0n });
    }
  });

  it("a new primary that already pre-prepared another digest in the view abstains from NEW-VIEW", () => {
    const c = new Cluster(4);
    c.filter = (m) => m.msg.kind !== "commit";
    c.setWork(1, [0]);
    c.run();
    // Node 1, the primary of view 1, restarts holding a PRE-PREPARE of view 1 for another digest at
    // height 1 but no view record: the state a lost view record would leave.
    const other = new Uint8Array(32).fill(7);
    const old = c.nodes[1]!.persisted;
    c.crash(1);
    const node = c.restart(1, {
      persisted: {
        ...old,
        prePrepares: [...old.prePrepares, { epoch: 0n, view: 1n, height: 1n, digest: other }],
      },
    });
    c.crash(0);
    c.filter = () => true;
    c.step(1, { kind: "pendingWork", count: 1 });
    for (const i of [1, 2, 3]) c.fireTimer(i);
    c.run();
    // Its VIEW-CHANGE went out and a quorum changed to view 1, but the NEW-VIEW would re-propose the
    // block prepared in view 0 at height 1: a second PRE-PREPARE at (1, 1).
    assert.equal(sentOf(node.actions, "viewChange").length, 1);
    assert.equal(sentOf(node.actions, "newView").length, 0, "no NEW-VIEW conflicting with what it signed");
    for (const i of [1, 2, 3]) {
      assert.equal(c.nodes[i]!.replica.viewActive, false);
      assert.equal(c.nodes[i]!.delivered.length, 0);
    }
  });

  it("fills a gap below a prepared height with a null block", () => {
    const c = new Cluster(4);
    c.blocksLeft = 2;
    // Height 1 never prepares anywhere (its PREPAREs are lost); height 2 prepares but does not commit.
    c.filter = (m) => {
      if (m.msg.kind === "commit") return false;
      if (m.msg.kind === "prepare") {
        const k = kindOf(m.msg.bytes);
        return !(k.case === "prepare" && k.value.height === 1n);
      }
      return true;
    };
    c.setWork(2, [0]);
    c.run();
    for (const n of c.nodes) assert.equal(n.delivered.length, 0);
    c.crash(0);
    c.filter = () => true;
    for (const i of [1, 2, 3]) c.fireTimer(i);
    c.run();
    for (const i of [1, 2, 3]) {
      const got = c.nodes[i]!.delivered;
      assert.deepEqual(
        got.map((d) => [d.height, d.isNull]),
        [
          [1n, true],
          [2n, false],
        ],
      );
      assert.ok(bytesEqual(got[0]!.digest, nullBlockDigest(CHAIN, 0n, 1n)));
      assert.equal(got[0]!.block, null);
    }
  });

  it("new primary proposes fresh heights after the view change; stale messages are ignored", () => {
    const c = new Cluster(4);
    c.setWork(1, [0]);
    c.run();
    c.crash(0);
    for (const i of [1, 2, 3]) c.step(i, { kind: "pendingWork", count: 1 });
    for (const i of [1, 2, 3]) c.fireTimer(i);
    c.blocksLeft = 1;
    c.run();
    for (const i of [1, 2, 3]) {
      assert.deepEqual(c.heights(i), [1n, 2n]);
      assert.equal(c.nodes[i]!.delivered[1]!.block?.header?.proposer, 1);
    }
    // A PREPARE from view 0 is now stale.
    const old = c.nodes[0]!.actions.find((a) => a.kind === "broadcast" && a.msg.kind === "prepare");
    assert.ok(old?.kind === "broadcast");
    assert.deepEqual(c.step(2, { kind: "message", bytes: old.msg.bytes }).verdict, {
      kind: "ignore",
      reason: "STALE_VIEW",
    });
  });

  it("arms the next view's timer only after a quorum of VIEW-CHANGEs, and backs off up to the cap", () => {
    const c = new Cluster(4);
    c.blocksLeft = 1000; // primaries keep work, their proposals are lost
    c.filter = () => false; // nobody hears anybody
    c.step(2, { kind: "pendingWork", count: 1 });
    const n = c.nodes[2]!;
    assert.equal(n.timer?.afterMs, 100);
    c.fireTimer(2);
    assert.equal(n.replica.view, 1n);
    assert.equal(n.timer, null, "alone: no timer for view 2 yet");
    // Let VIEW-CHANGEs flow, but nobody's NEW-VIEW (primaries are silent).
    c.filter = (m) => m.msg.kind === "viewChange" && m.from !== 1;
    for (const i of [0, 3]) {
      c.step(i, { kind: "pendingWork", count: 1 });
      c.fireTimer(i);
    }
    c.run();
    const timeouts: number[] = [];
    for (let k = 0; k < 6; k++) {
      const t = n.timer as { afterMs: number } | null;
      assert.ok(t !== null, `timer armed in round ${k}`);
      timeouts.push(t.afterMs);
      for (const i of [0, 2, 3]) if (c.nodes[i]!.timer) c.fireTimer(i);
      c.run();
    }
    assert.deepEqual(timeouts, [200, 400, 800, 800, 800, 800]);
  });

  it("a height prepared in this view re-arms the backups' request timers; a PRE-PREPARE only once", () => {
    // Issue 14 overload: heights that outlast the timeout while the primary still makes progress
    // must not cost a view change. Progress: committed, prepared (a quorum), or the view's first
    // PRE-PREPARE for the next height (at most once per view: the height moves only by a commit).
    const alone = new Cluster(4);
    alone.filter = (m) => m.msg.kind === "prePrepare";
    alone.setWork(1);
    const lone = alone.nodes[2]!;
    const before = lone.timer?.token;
    assert.ok(before !== undefined, "a backup with work arms its timer");
    const pp = alone.queue.find((m) => m.to === 2 && m.msg.kind === "prePrepare");
    assert.ok(pp !== undefined);
    alone.run();
    assert.equal(lone.replica.committedHeight, 0n);
    const rearmed = lone.timer?.token;
    assert.ok(rearmed !== undefined && rearmed > before, "the next height's PRE-PREPARE re-arms");
    // The same PRE-PREPARE again (a faulty primary repeating itself) buys nothing.
    alone.step(2, { kind: "message", bytes: pp.msg.bytes, from: 0 });
    assert.equal(lone.timer?.token, rearmed, "no second re-arm in this view");
    alone.fireTimer(2);
    assert.equal(lone.replica.view, 1n, "without a quorum the timer still fires");

    const c = new Cluster(4);
    c.filter = (m) => m.msg.kind !== "commit"; // prepares everywhere, commits nowhere
    c.setWork(1);
    const n = c.nodes[2]!;
    // The PRE-PREPARE first (one re-arm), then the PREPAREs: prepared re-arms again.
    const k = c.queue.findIndex((m) => m.to === 2 && m.msg.kind === "prePrepare");
    const [first] = c.queue.splice(k, 1);
    c.step(2, { kind: "message", bytes: first!.msg.bytes, from: 0 });
    const armed = n.timer?.token;
    assert.ok(armed !== undefined);
    c.run();
    assert.equal(n.replica.committedHeight, 0n, "nothing committed");
    assert.ok(n.timer !== null && n.timer.token > armed, "prepared: the timer was re-armed");
    assert.equal(n.timer.afterMs, 100, "with the base timeout");
    // Without further progress the re-armed timer still fires and changes the view.
    for (const i of [1, 2, 3]) c.fireTimer(i);
    c.filter = () => true;
    c.run();
    assert.equal(n.replica.view, 1n);
  });

  it("keeps a failed view's longer timeout until commits earn it back, a step per checkpoint interval", () => {
    const c = new Cluster(4);
    c.blocksLeft = 0;
    c.filter = (m) => m.from !== 0; // primary 0 is silent
    c.setWork(1);
    for (const i of [1, 2, 3]) c.fireTimer(i);
    c.run();
    const n = c.nodes[2]!;
    assert.equal(n.replica.view, 1n);
    const timerAfter = (heights: number) => {
      c.blocksLeft = heights;
      c.setWork(1, [1]);
      c.run();
      c.setWork(1, [2]);
      return (n.timer as { afterMs: number } | null)?.afterMs;
    };
    assert.equal(timerAfter(1), 200, "one commit in the new view: still twice the base timeout");
    assert.equal(n.replica.committedHeight, 1n);
    assert.equal(timerAfter(3), 200);
    assert.equal(timerAfter(1), 100, "a checkpoint interval (5) of commits: back to the base");
    assert.equal(n.replica.committedHeight, 5n);
  });

  it("a quorum split between views w and w+1 still arms the timer, so nobody waits forever", () => {
    const c = new Cluster(4);
    c.filter = () => false;
    c.step(2, { kind: "pendingWork", count: 1 });
    c.fireTimer(2);
    assert.equal(c.nodes[2]!.timer, null);
    const vc = (from: number, v: bigint) =>
      sealFrom(from, { case: "viewChange", value: create(ViewChangeSchema, { newView: v }) }).bytes;
    c.step(2, { kind: "message", bytes: vc(0, 1n) });
    assert.equal(c.nodes[2]!.timer, null, "two of four at view 1");
    c.step(2, { kind: "message", bytes: vc(3, 2n) });
    assert.equal(c.nodes[2]!.replica.view, 1n, "one replica at view 2 is not enough to join");
    assert.notEqual(c.nodes[2]!.timer, null, "but with it a quorum is at view 1 or beyond");
  });

  it("a replica that missed NEW-VIEW gets it forwarded", () => {
    const c = new Cluster(4);
    c.setWork(1, [0]);
    c.run();
    c.crash(0);
    // Node 2 hears nothing of the view change; node 3 misses only the NEW-VIEW.
    c.filter = (m) =>
      !(m.to === 2 && m.msg.kind === "viewChange") && !(m.to >= 2 && m.msg.kind === "newView");
    for (const i of [1, 3]) c.step(i, { kind: "pendingWork", count: 1 });
    for (const i of [1, 3]) c.fireTimer(i);
    c.run();
    assert.equal(c.nodes[2]!.replica.view, 0n);
    assert.equal(c.nodes[3]!.replica.view, 1n);
    assert.equal(c.nodes[3]!.replica.viewActive, false);
    c.step(2, { kind: "pendingWork", count: 1 });
    c.fireTimer(2);
    c.run();
    assert.equal(c.nodes[1]!.replica.viewActive, true);
    assert.equal(c.nodes[2]!.replica.viewActive, false);
    c.filter = () => true;
    // Both repeat their VIEW-CHANGE every third tick; replicas in view 1 answer with the NEW-VIEW.
    for (let k = 0; k < 3; k++) c.tick([2, 3]);
    c.run();
    for (const i of [1, 2, 3]) {
      assert.equal(c.nodes[i]!.replica.view, 1n);
      assert.equal(c.nodes[i]!.replica.viewActive, true, `node ${i} active`);
    }
  });
});
