import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import type { ReplicaConfig } from "../../../src/consensus/pbft/types.js";
import {
  BodyRequestSchema,
  EnvelopeSchema,
  NewViewSchema,
  PeerMessageSchema,
  ViewChangeSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import { blockDigest } from "../../../src/types/block.js";
import { bytesEqual, toHex } from "../../../src/types/bytes.js";
import { Cluster, makeBlock, prePrepareFrom, prepareFrom, sealFrom, sentOf } from "./harness.js";

const kindOf = (bytes: Uint8Array) =>
  fromBinary(PeerMessageSchema, fromBinary(EnvelopeSchema, bytes).payload).kind;

/** All four prepare height 1 and sign COMMIT, but no COMMIT is delivered; then node 2 crashes and restarts. */
function lockedThenRestarted(cfg: Partial<ReplicaConfig> = {}) {
  const c = new Cluster(4, { cfg });
  c.filter = (m) => m.msg.kind !== "commit";
  c.setWork(1, [0]);
  c.run();
  const first = c.nodes[2]!.actions.find((a) => a.kind === "broadcast" && a.msg.kind === "commit");
  assert.ok(first?.kind === "broadcast");
  const k = kindOf(first.msg.bytes);
  assert.ok(k.case === "commit");
  const locked = k.value.blockDigest;
  c.crash(2);
  const node = c.restart(2, { cfg });
  c.filter = () => false;
  return { c, node, locked };
}

/** A valid NEW-VIEW for view 1 from VIEW-CHANGEs of 0, 1, 3 that prepared nothing. */
function emptyNewView() {
  const vcs = [0, 1, 3].map(
    (i) => sealFrom(i, { case: "viewChange", value: create(ViewChangeSchema, { newView: 1n }) }).bytes,
  );
  return sealFrom(1, {
    case: "newView",
    value: create(NewViewSchema, { view: 1n, viewChanges: vcs, proposals: [] }),
  });
}

describe("restart from signing state", () => {
  it("keeps its prepared certificate and body; never votes a conflicting block in the same view; no commit lock", () => {
    const { c, node, locked } = lockedThenRestarted();
    assert.equal(node.persisted.commits.length, 1);
    // The body it PREPAREd for was made durable with the PREPARE, and is served after the restart.
    assert.ok(node.persisted.bodies.some((b) => bytesEqual(b.digest, locked)));
    const served = c.step(2, {
      kind: "message",
      bytes: sealFrom(0, { case: "bodyRequest", value: create(BodyRequestSchema, { blockDigest: locked }) })
        .bytes,
    });
    assert.deepEqual(served.verdict, { kind: "accept" });
    assert.equal(sentOf(node.actions, "bodyResponse").length, 1);
    // The same primary equivocates after our crash: no second PREPARE for (view 0, height 1).
    const other = makeBlock(c.set, 1n, 0, 99);
    c.step(2, { kind: "message", bytes: prePrepareFrom(0, 0n, other).bytes });
    assert.equal(sentOf(node.actions, "prepare").length, 0);
    // Its VIEW-CHANGE still proves what it prepared before the crash.
    c.step(2, { kind: "pendingWork", count: 1 });
    c.fireTimer(2);
    const vc = sentOf(node.actions, "viewChange")[0]!;
    const k = kindOf(vc.bytes);
    assert.ok(k.case === "viewChange");
    assert.equal(k.value.prepared.length, 1);
    assert.ok(bytesEqual(k.value.prepared[0]!.blockDigest, locked));
    // A new view whose quorum (legally) lacks that certificate re-uses height 1 for another block.
    // COMMITs are view-bound, so node 2 PREPAREs and COMMITs it in view 1 (a commit lock would
    // refuse, and f Byzantine replicas could then deadlock the chain).
    assert.deepEqual(c.step(2, { kind: "message", bytes: emptyNewView().bytes }).verdict, { kind: "accept" });
    const fresh = makeBlock(c.set, 1n, 1, 7);
    const d = blockDigest(fresh.header!);
    c.step(2, { kind: "message", bytes: prePrepareFrom(1, 1n, fresh).bytes });
    for (const i of [0, 1, 3]) c.step(2, { kind: "message", bytes: prepareFrom(i, 1n, 1n, d).bytes });
    assert.equal(sentOf(node.actions, "prepare").length, 1);
    const commits = sentOf(node.actions, "commit").map((m) => kindOf(m.bytes));
    assert.equal(commits.length, 1);
    const ck = commits[0]!;
    assert.ok(ck.case === "commit" && ck.value.view === 1n && bytesEqual(ck.value.blockDigest, d));
    assert.ok(node.persisted.commits.some((r) => r.view === 1n && bytesEqual(r.digest, d)));
  });

  it("test-only commitLock refuses the new view's block at a height it COMMITted before", () => {
    const { c, node } = lockedThenRestarted({ testOnlyFaults: { commitLock: true } });
    c.step(2, { kind: "pendingWork", count: 1 });
    c.fireTimer(2);
    c.step(2, { kind: "message", bytes: emptyNewView().bytes });
    const fresh = makeBlock(c.set, 1n, 1, 7);
    const d = blockDigest(fresh.header!);
    c.step(2, { kind: "message", bytes: prePrepareFrom(1, 1n, fresh).bytes });
    for (const i of [0, 1, 3]) c.step(2, { kind: "message", bytes: prepareFrom(i, 1n, 1n, d).bytes });
    assert.equal(sentOf(node.actions, "commit").length, 0);
  });

  it("test-only skipPreparedCertPersist forgets the prepared certificate, so its VIEW-CHANGE proves nothing", () => {
    const { c, node } = lockedThenRestarted({ testOnlyFaults: { skipPreparedCertPersist: true } });
    assert.equal(node.persisted.commits.length, 0);
    c.step(2, { kind: "pendingWork", count: 1 });
    c.fireTimer(2);
    const k = kindOf(sentOf(node.actions, "viewChange")[0]!.bytes);
    assert.ok(k.case === "viewChange" && k.value.prepared.length === 0);
    c.step(2, { kind: "message", bytes: emptyNewView().bytes });
    const fresh = makeBlock(c.set, 1n, 1, 7);
    const d = blockDigest(fresh.header!);
    c.step(2, { kind: "message", bytes: prePrepareFrom(1, 1n, fresh).bytes });
    for (const i of [0, 1, 3]) c.step(2, { kind: "message", bytes: prepareFrom(i, 1n, 1n, d).bytes });
    const commits = sentOf(node.actions, "commit").map((m) => kindOf(m.bytes));
    assert.ok(commits.some((ck) => ck.case === "commit" && bytesEqual(ck.value.blockDigest, d)));
  });

  it("a whole cluster restarted with a prepared, uncommitted height and no client work changes view and commits it", () => {
    // All four prepared height 1 and made their COMMIT durable, none was delivered; all four
    // crash. After the restart no replica has the block's proposal in its view and nobody has
    // executable work (in a real cluster: every client's next tx is gapped against the executed
    // state, which lost the prepared height). The prepared slot itself must arm the view timer,
    // or the chain stops there for good (found by CI in test/cluster/wedge.test.ts).
    const c = new Cluster(4);
    c.filter = (m) => m.msg.kind !== "commit";
    c.setWork(1, [0]);
    c.run();
    const locked = c.nodes[0]!.persisted.commits[0]?.digest;
    assert.ok(locked !== undefined, "node 0 made its COMMIT durable");
    for (const i of [0, 1, 2, 3]) c.crash(i);
    for (const i of [0, 1, 2, 3]) c.restart(i);
    c.filter = () => true;
    c.tick();
    c.run();
    for (const i of [0, 1, 2, 3]) {
      assert.equal(c.heights(i).length, 0, `node ${i} delivered nothing before the view change`);
      assert.ok(c.nodes[i]!.timer !== null, `node ${i} armed its view timer for the prepared height`);
    }
    for (const i of [0, 1, 2, 3]) c.fireTimer(i);
    c.run();
    for (const i of [0, 1, 2, 3]) {
      assert.equal(c.nodes[i]!.replica.view, 1n);
      assert.deepEqual(c.heights(i), [1n], `node ${i} committed height 1`);
      assert.ok(
        bytesEqual(c.nodes[i]!.delivered[0]!.digest, locked),
        `node ${i} committed the prepared block`,
      );
    }
  });

  it("restarted while waiting for a NEW-VIEW, resumes the view change and re-sends its VIEW-CHANGE", () => {
    const c = new Cluster(4);
    c.filter = () => false;
    c.step(2, { kind: "pendingWork", count: 1 });
    c.fireTimer(2);
    c.crash(2);
    const node = c.restart(2);
    assert.equal(node.replica.view, 1n);
    assert.equal(node.replica.viewActive, false);
    for (let k = 0; k < 3; k++) c.tick([2]);
    const vcs = sentOf(node.actions, "viewChange").map((m) => kindOf(m.bytes));
    assert.equal(vcs.length, 1);
    assert.ok(vcs[0]!.case === "viewChange" && vcs[0]!.value.newView === 1n);
  });

  it("without signing state, stays silent until past a quorum's height + window and view + 1 (amnesia rule)", () => {
    const c = new Cluster(4);
    c.setWork(1, [0]);
    c.run();
    c.crash(3);
    const node = c.restart(3, { persisted: null });
    assert.equal(node.replica.status, "recovering");
    const amnesia = () => node.actions.filter((a) => a.kind === "amnesia");
    // A quorum's status reports fix the target: height 1 + window 10, view 0 + 1.
    c.tick([0, 1, 2]);
    c.run();
    assert.deepEqual(
      amnesia().map((a) => a.kind === "amnesia" && [a.reason, a.height, a.view]),
      [
        ["quorum", 0n, 0n],
        ["height", 11n, 1n],
      ],
    );
    c.blocksLeft = 12;
    c.setWork(12, [0]);
    c.run();
    assert.equal(c.heights(3).length, 13, "follows the chain by counting others' commits");
    assert.equal(node.replica.status, "recovering", "past the height, but not yet past the view");
    assert.equal(amnesia().at(-1)?.kind === "amnesia" && amnesia().at(-1)!.reason, "view");
    // CHECKPOINTs stay allowed: their content is determined by the chain it executed, so the
    // previous life cannot have signed a different one for the same height.
    const votes = () =>
      (["prePrepare", "prepare", "commit", "viewChange", "newView"] as const).flatMap((k) =>
        sentOf(node.actions, k),
      );
    assert.equal(votes().length, 0, "signs nothing while it could conflict with its previous life");
    // Two view changes (the primaries' proposals are dropped): view 1 is not enough, view 2 is.
    c.filter = (m) => m.msg.kind !== "prePrepare";
    for (const target of [1n, 2n]) {
      c.setWork(1, [0, 1, 2]);
      c.run();
      for (const i of [0, 1, 2]) if (c.nodes[i]!.timer !== null) c.fireTimer(i);
      c.run();
      assert.equal(node.replica.view, target);
      assert.equal(node.replica.status === "recovering", target === 1n);
    }
    assert.equal(amnesia().at(-1)?.kind === "amnesia" && amnesia().at(-1)!.reason, "rejoined");
    assert.equal(votes().length, 0);
    c.filter = () => true;
    c.blocksLeft = 1;
    c.setWork(1, [0, 1, 2]);
    c.run();
    assert.ok(sentOf(node.actions, "prepare").length > 0, "votes again");
  });

  it("catches up by state transfer after missing blocks", () => {
    const c = new Cluster(4);
    c.crash(3);
    c.blocksLeft = 7;
    c.setWork(7, [0]);
    c.run();
    assert.equal(c.heights(0).length, 7);
    assert.equal(c.nodes[0]!.replica.stableHeight, 5n);
    const node = c.restart(3);
    c.tick([0, 1, 2]);
    c.run();
    c.tick([3]);
    c.run();
    assert.deepEqual(c.heights(3), [1n, 2n, 3n, 4n, 5n, 6n, 7n]);
    assert.ok(bytesEqual(node.replica.chainHash, c.nodes[0]!.replica.chainHash));
    assert.ok(node.actions.some((a) => a.kind === "fetchBlocks"));
  });
});

describe("backpressure, checkpoints and divergence", () => {
  it("the primary stops proposing when execution lags maxExecLag behind, and resumes", () => {
    const c = new Cluster(4);
    c.nodes[0]!.autoExecute = false;
    c.blocksLeft = 20;
    c.setWork(20, [0]);
    c.run();
    // The first window (10 heights) was in flight before anything committed; afterwards the
    // backups' checkpoint at 10 opened the window to 20, but the primary has executed nothing.
    assert.equal(c.nodes[1]!.replica.stableHeight, 10n);
    assert.equal(c.heights(1).length, 10);
    const maxRequested = () =>
      c.nodes[0]!.actions.reduce((m, a) => (a.kind === "requestProposal" && a.height > m ? a.height : m), 0n);
    assert.equal(maxRequested(), 10n);
    c.execute(0, 1n, 3n);
    assert.equal(maxRequested(), 10n, "lag 7 is still at least maxExecLag");
    c.nodes[0]!.autoExecute = true;
    c.execute(0, 4n, 10n);
    c.run();
    assert.equal(c.heights(1).length, 20);
    assert.equal(c.nodes[0]!.replica.status, "validating");
  });

  it("a stable checkpoint prunes the signing state and ignores messages at or below it", () => {
    const c = new Cluster(4);
    c.blocksLeft = 12;
    c.setWork(12, [0]);
    c.run();
    const n = c.nodes[1]!;
    assert.equal(n.replica.stableHeight, 10n);
    assert.ok(n.persisted.prepares.every((p) => p.height > 10n));
    assert.ok(n.persisted.commits.every((p) => p.height > 10n));
    assert.equal(n.persisted.stableHeight, 10n);
    const d = n.delivered[9]!.digest;
    assert.deepEqual(c.step(1, { kind: "message", bytes: prepareFrom(2, 0n, 10n, d).bytes }).verdict, {
      kind: "ignore",
      reason: "BELOW_WATERMARK",
    });
  });

  it("a replica whose checkpoint differs from a stable one reports divergence and stops", () => {
    const c = new Cluster(4);
    c.nodes[1]!.rootFor = () => new Uint8Array(32).fill(9);
    c.blocksLeft = 6;
    c.setWork(6, [0]);
    c.run();
    const n = c.nodes[1]!;
    assert.equal(n.replica.status, "diverged");
    assert.ok(n.actions.some((a) => a.kind === "diverged" && a.height === 5n));
    assert.equal(c.nodes[0]!.replica.stableHeight, 5n);
    assert.deepEqual(c.step(1, { kind: "tick" }).actions, []);
  });
});

describe("determinism", () => {
  it("the same events produce byte-identical actions", () => {
    const run = () => {
      const c = new Cluster(4);
      c.blocksLeft = 4;
      c.filter = (m) => m.msg.kind !== "commit";
      c.setWork(4, [0]);
      c.run();
      c.crash(0);
      c.filter = () => true;
      for (const i of [1, 2, 3]) c.fireTimer(i);
      c.run();
      const out: string[] = [];
      for (const n of c.nodes)
        for (const a of n.actions) {
          if (a.kind === "broadcast" || a.kind === "send") out.push(toHex(a.msg.bytes));
          else out.push(a.kind);
        }
      return out;
    };
    const a = run();
    const b = run();
    assert.ok(a.length > 50);
    assert.deepEqual(a, b);
  });
});
