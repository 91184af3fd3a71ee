import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  BlockRequestSchema,
  BodyRequestSchema,
  BodyResponseSchema,
  NewViewSchema,
  StatusReportSchema,
  TxBatchSchema,
  ViewChangeSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import { blockDigest } from "../../../src/types/block.js";
import { bytesEqual } from "../../../src/types/bytes.js";
import { sha256 } from "../../../src/types/hash.js";
import {
  Cluster,
  checkpointFrom,
  commitFrom,
  makeBlock,
  prePrepareFrom,
  prepareFrom,
  sealFrom,
  sentOf,
} from "./harness.js";

const msg = (c: Cluster, to: number, bytes: Uint8Array) => c.step(to, { kind: "message", bytes }).verdict;
const ignore = (reason: string) => ({ kind: "ignore", reason });

/** Node 1 alone receives traffic; the others stay silent unless a test speaks for them. */
function isolated() {
  const c = new Cluster(4);
  c.filter = () => false;
  return c;
}

describe("replica message handlers", () => {
  it("PRE-PREPARE: prepares once, ignores duplicates, keeps conflicting ones as evidence", () => {
    const c = isolated();
    const b = makeBlock(c.set, 1n, 0, 1);
    const pp = prePrepareFrom(0, 0n, b);
    assert.deepEqual(msg(c, 1, pp.bytes), { kind: "accept" });
    const node = c.nodes[1]!;
    assert.equal(sentOf(node.actions, "prepare").length, 1);
    const persistIdx = node.actions.findIndex((a) => a.kind === "persist" && a.record.kind === "prepare");
    const sendIdx = node.actions.findIndex((a) => a.kind === "broadcast" && a.msg.kind === "prepare");
    assert.ok(persistIdx >= 0 && persistIdx < sendIdx, "persist before send");
    assert.deepEqual(msg(c, 1, pp.bytes), ignore("DUPLICATE"));
    const other = prePrepareFrom(0, 0n, makeBlock(c.set, 1n, 0, 2));
    assert.deepEqual(msg(c, 1, other.bytes), ignore("CONFLICT"));
    assert.equal(sentOf(node.actions, "prepare").length, 1, "never prepares the second proposal");
    const ev = node.actions.filter((a) => a.kind === "evidence");
    assert.equal(ev.length, 1);
    if (ev[0]?.kind === "evidence") {
      assert.equal(ev[0].evidence.phase, "prePrepare");
      assert.equal(ev[0].evidence.sender, 0);
      assert.ok(bytesEqual(ev[0].evidence.first, pp.bytes));
      assert.ok(bytesEqual(ev[0].evidence.second, other.bytes));
    }
  });

  it("PRE-PREPARE: rejects a block naming the wrong proposer or validator set, skips skewed clocks", () => {
    const c = isolated();
    const wrongProposer = makeBlock(c.set, 1n, 2);
    assert.deepEqual(msg(c, 1, prePrepareFrom(0, 0n, wrongProposer).bytes), {
      kind: "reject",
      reason: "BAD_BLOCK",
    });
    const wrongSet = makeBlock(c.set, 2n, 0);
    wrongSet.header!.validatorsHash = new Uint8Array(32);
    assert.deepEqual(msg(c, 1, prePrepareFrom(0, 0n, wrongSet).bytes), {
      kind: "reject",
      reason: "BAD_BLOCK",
    });
    const b = makeBlock(c.set, 3n, 0);
    const r = c.step(1, {
      kind: "message",
      bytes: prePrepareFrom(0, 0n, b).bytes,
      nowMs: 1_000_000n,
    }).verdict;
    assert.deepEqual(r, ignore("TIMESTAMP_SKEW"));
    const hooked = new Cluster(4, {
      cfg: { validateBlock: () => ({ kind: "reject", reason: "BAD_BLOCK" }) },
    });
    hooked.filter = () => false;
    assert.deepEqual(msg(hooked, 1, prePrepareFrom(0, 0n, makeBlock(c.set, 1n, 0)).bytes), {
      kind: "reject",
      reason: "BAD_BLOCK",
    });
  });

  it("PREPARE: duplicates are not double counted; a quorum of distinct ones leads to COMMIT", () => {
    const c = isolated();
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    msg(c, 1, prePrepareFrom(0, 0n, b).bytes);
    const p2 = prepareFrom(2, 0n, 1n, d);
    assert.deepEqual(msg(c, 1, p2.bytes), { kind: "accept" });
    assert.deepEqual(msg(c, 1, p2.bytes), ignore("DUPLICATE"));
    assert.equal(
      sentOf(c.nodes[1]!.actions, "commit").length,
      0,
      "own + one distinct prepare is not a quorum",
    );
    assert.deepEqual(msg(c, 1, prepareFrom(0, 0n, 1n, d).bytes), { kind: "accept" });
    assert.equal(sentOf(c.nodes[1]!.actions, "commit").length, 1);
    const rec = c.nodes[1]!.actions.find((a) => a.kind === "persist" && a.record.kind === "commit");
    assert.ok(
      rec?.kind === "persist" && rec.record.kind === "commit" && rec.record.prepared?.prepares.length === 3,
    );
    // Equivocating prepare from validator 2: evidence, not counted.
    assert.deepEqual(msg(c, 1, prepareFrom(2, 0n, 1n, new Uint8Array(32)).bytes), ignore("CONFLICT"));
    assert.ok(c.nodes[1]!.actions.some((a) => a.kind === "evidence" && a.evidence.phase === "prepare"));
  });

  it("COMMIT: a quorum delivers with the certificate; duplicates and conflicts are not counted", () => {
    const c = isolated();
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    msg(c, 1, prePrepareFrom(0, 0n, b).bytes);
    const c0 = commitFrom(0, 0n, 1n, d);
    assert.deepEqual(msg(c, 1, c0.bytes), { kind: "accept" });
    assert.deepEqual(msg(c, 1, c0.bytes), ignore("DUPLICATE"));
    // The view is signed: a COMMIT of view 3 is another vote, counted only with view 3's.
    assert.deepEqual(msg(c, 1, commitFrom(0, 3n, 1n, d).bytes), { kind: "accept" });
    assert.deepEqual(msg(c, 1, commitFrom(2, 0n, 1n, d).bytes), { kind: "accept" });
    assert.deepEqual(msg(c, 1, commitFrom(3, 3n, 1n, d).bytes), { kind: "accept" });
    assert.equal(c.nodes[1]!.delivered.length, 0, "0, 2 in view 0 and 0, 3 in view 3: no view has a quorum");
    // A conflicting COMMIT of another view is not equivocation: no evidence.
    assert.deepEqual(msg(c, 1, commitFrom(2, 4n, 1n, new Uint8Array(32)).bytes), { kind: "accept" });
    assert.ok(!c.nodes[1]!.actions.some((a) => a.kind === "evidence"));
    assert.deepEqual(msg(c, 1, commitFrom(0, 0n, 1n, new Uint8Array(32)).bytes), ignore("CONFLICT"));
    assert.ok(c.nodes[1]!.actions.some((a) => a.kind === "evidence" && a.evidence.phase === "commit"));
    assert.deepEqual(msg(c, 1, commitFrom(3, 0n, 1n, d).bytes), { kind: "accept" });
    assert.equal(c.nodes[1]!.delivered.length, 1);
    const del = c.nodes[1]!.delivered[0]!;
    assert.deepEqual(
      del.cert.signatures.map((s) => s.validator),
      [0, 2, 3],
    );
    assert.ok(bytesEqual(del.digest, d));
    assert.equal(del.cert.view, 0n, "the certificate carries its view");
    assert.deepEqual(msg(c, 1, commitFrom(1, 0n, 1n, d).bytes), ignore("FROM_SELF"));
  });

  it("COMMIT without the body fetches it by digest, then delivers", () => {
    const c = isolated();
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    for (const i of [0, 2, 3]) msg(c, 1, commitFrom(i, 0n, 1n, d).bytes);
    const node = c.nodes[1]!;
    assert.equal(node.delivered.length, 0);
    assert.ok(node.actions.some((a) => a.kind === "fetchBody" && bytesEqual(a.digest, d)));
    assert.equal(sentOf(node.actions, "bodyRequest").length, 1);
    const resp = sealFrom(2, {
      case: "bodyResponse",
      value: create(BodyResponseSchema, { blockDigest: d, block: b }),
    });
    assert.deepEqual(msg(c, 1, resp.bytes), { kind: "accept" });
    assert.equal(node.delivered.length, 1);
    assert.deepEqual(msg(c, 1, resp.bytes), ignore("UNSOLICITED"));
  });

  it("watermarks: ignores at low and above high, accepts low+1 and high", () => {
    const c = isolated();
    const d = new Uint8Array(32).fill(1);
    const at = (h: bigint) => msg(c, 1, prepareFrom(2, 0n, h, d).bytes);
    assert.deepEqual(at(0n), ignore("BELOW_WATERMARK"));
    assert.deepEqual(at(1n), { kind: "accept" });
    assert.deepEqual(at(10n), { kind: "accept" });
    assert.deepEqual(at(11n), ignore("ABOVE_WATERMARK"));
    // A stable checkpoint at 5 from a quorum of others moves the window to (5, 15].
    const ch = new Uint8Array(32).fill(2);
    const root = new Uint8Array(32).fill(3);
    for (const i of [0, 2, 3])
      assert.deepEqual(msg(c, 1, checkpointFrom(i, 5n, ch, root).bytes), { kind: "accept" });
    const node = c.nodes[1]!;
    assert.equal(node.replica.stableHeight, 5n);
    assert.equal(node.replica.status, "syncing");
    assert.ok(node.actions.some((a) => a.kind === "fetchBlocks" && a.from === 1n && a.to === 5n));
    const p3 = (h: bigint) => msg(c, 1, prepareFrom(3, 0n, h, d).bytes);
    assert.deepEqual(p3(5n), ignore("BELOW_WATERMARK"));
    assert.deepEqual(p3(6n), { kind: "accept" });
    assert.deepEqual(p3(15n), { kind: "accept" });
    assert.deepEqual(p3(16n), ignore("ABOVE_WATERMARK"));
    assert.deepEqual(msg(c, 1, checkpointFrom(0, 5n, ch, root).bytes), ignore("BELOW_WATERMARK"));
  });

  it("CHECKPOINT: duplicates ignored, off-interval heights rejected", () => {
    const c = isolated();
    const ch = new Uint8Array(32).fill(2);
    const cp = checkpointFrom(0, 5n, ch, ch);
    assert.deepEqual(msg(c, 1, cp.bytes), { kind: "accept" });
    assert.deepEqual(msg(c, 1, cp.bytes), ignore("DUPLICATE"));
    assert.deepEqual(msg(c, 1, checkpointFrom(0, 5n, ch, new Uint8Array(32)).bytes), ignore("CONFLICT"));
    assert.deepEqual(msg(c, 1, checkpointFrom(0, 7n, ch, ch).bytes), { kind: "reject", reason: "MALFORMED" });
    msg(c, 1, checkpointFrom(2, 5n, ch, ch).bytes);
    assert.equal(c.nodes[1]!.replica.stableHeight, 0n, "two of four is not stable");
  });

  it("STATUS, BlockRequest, BodyRequest and TxBatch", () => {
    const c = new Cluster(4);
    c.setWork(1, [0]);
    c.run();
    c.filter = () => false;
    const st = sealFrom(2, {
      case: "status",
      value: create(StatusReportSchema, {
        committedHeight: 1n,
        view: 0n,
        stableCheckpoint: 0n,
        executedHeight: 1n,
      }),
    });
    assert.deepEqual(msg(c, 1, st.bytes), { kind: "accept" });
    const req = sealFrom(2, {
      case: "blockRequest",
      value: create(BlockRequestSchema, { fromHeight: 1n, toHeight: 9n }),
    });
    assert.deepEqual(msg(c, 1, req.bytes), { kind: "accept" });
    assert.ok(
      c.nodes[1]!.actions.some(
        (a) => a.kind === "serveBlocks" && a.to === 2 && a.from === 1n && a.toHeight === 1n,
      ),
    );
    assert.ok(
      sentOf(c.nodes[1]!.actions, "blockResponse").length === 1,
      "driver answer becomes a signed BlockResponse",
    );
    const tooHigh = sealFrom(2, {
      case: "blockRequest",
      value: create(BlockRequestSchema, { fromHeight: 5n, toHeight: 9n }),
    });
    assert.deepEqual(msg(c, 1, tooHigh.bytes), ignore("NOT_HANDLED"));
    const d = c.nodes[1]!.delivered[0]!.digest;
    const body = sealFrom(2, { case: "bodyRequest", value: create(BodyRequestSchema, { blockDigest: d }) });
    assert.deepEqual(msg(c, 1, body.bytes), { kind: "accept" });
    assert.equal(sentOf(c.nodes[1]!.actions, "bodyResponse").length, 1);
    const unknown = sealFrom(2, {
      case: "bodyRequest",
      value: create(BodyRequestSchema, { blockDigest: sha256(d) }),
    });
    assert.deepEqual(msg(c, 1, unknown.bytes), ignore("NOT_HANDLED"));
    const tx = sealFrom(2, { case: "txBatch", value: create(TxBatchSchema, { txs: [] }) });
    assert.deepEqual(msg(c, 1, tx.bytes), ignore("NOT_HANDLED"));
    c.tick([1]);
    assert.equal(sentOf(c.nodes[1]!.actions, "status").length, 1);
  });

  it("VIEW-CHANGE: duplicates ignored; more than 1/3 of power for a higher view makes a replica join", () => {
    const c = isolated();
    const vc = (from: number, v: bigint) =>
      sealFrom(from, { case: "viewChange", value: create(ViewChangeSchema, { newView: v }) });
    assert.deepEqual(msg(c, 1, vc(2, 2n).bytes), { kind: "accept" });
    assert.deepEqual(msg(c, 1, vc(2, 2n).bytes), ignore("DUPLICATE"));
    assert.equal(c.nodes[1]!.replica.view, 0n, "one of four is not a weak certificate");
    assert.deepEqual(msg(c, 1, vc(3, 3n).bytes), { kind: "accept" });
    const r = c.nodes[1]!.replica;
    assert.equal(r.view, 2n, "joins the smallest of the higher views");
    assert.equal(r.viewActive, false);
    assert.equal(sentOf(c.nodes[1]!.actions, "viewChange").length, 1);
    assert.deepEqual(msg(c, 1, vc(0, 1n).bytes), ignore("STALE_VIEW"));
  });

  it("NEW-VIEW: accepted once (duplicate ignored); PRE-PREPAREs of the old view are then stale", () => {
    const c = isolated();
    const vcs = [0, 2, 3].map(
      (i) => sealFrom(i, { case: "viewChange", value: create(ViewChangeSchema, { newView: 1n }) }).bytes,
    );
    const nv = sealFrom(1, {
      case: "newView",
      value: create(NewViewSchema, { view: 1n, viewChanges: vcs, proposals: [] }),
    });
    assert.deepEqual(msg(c, 2, nv.bytes), { kind: "accept" });
    assert.equal(c.nodes[2]!.replica.view, 1n);
    assert.deepEqual(msg(c, 2, nv.bytes), ignore("DUPLICATE"));
    assert.deepEqual(msg(c, 2, prePrepareFrom(0, 0n, makeBlock(c.set, 1n, 0)).bytes), ignore("STALE_VIEW"));
    assert.deepEqual(msg(c, 2, prePrepareFrom(1, 1n, makeBlock(c.set, 1n, 1)).bytes), { kind: "accept" });
  });

  it("a future-view PRE-PREPARE is buffered and handled once the NEW-VIEW arrives", () => {
    const c = isolated();
    const pp = prePrepareFrom(1, 1n, makeBlock(c.set, 1n, 1));
    assert.deepEqual(msg(c, 2, pp.bytes), ignore("FUTURE_VIEW"));
    assert.equal(sentOf(c.nodes[2]!.actions, "prepare").length, 0);
    const vcs = [0, 1, 3].map(
      (i) => sealFrom(i, { case: "viewChange", value: create(ViewChangeSchema, { newView: 1n }) }).bytes,
    );
    msg(
      c,
      2,
      sealFrom(1, { case: "newView", value: create(NewViewSchema, { view: 1n, viewChanges: vcs }) }).bytes,
    );
    assert.equal(sentOf(c.nodes[2]!.actions, "prepare").length, 1);
  });

  it("n = 5: three commits (2f+1) do not commit; four (> 2/3) do", () => {
    const c = new Cluster(5);
    c.filter = () => false;
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    msg(c, 1, prePrepareFrom(0, 0n, b).bytes);
    for (const i of [0, 2, 3]) msg(c, 1, commitFrom(i, 0n, 1n, d).bytes);
    assert.equal(c.nodes[1]!.delivered.length, 0);
    msg(c, 1, commitFrom(4, 0n, 1n, d).bytes);
    assert.equal(c.nodes[1]!.delivered.length, 1);
    assert.equal(c.nodes[1]!.delivered[0]!.cert.signatures.length, 4);
  });

  it("weighted: one validator holding > 2/3 of power commits alone with its own vote", () => {
    const c = new Cluster(4, { powers: [1n, 10n, 1n, 1n] });
    c.filter = () => false;
    const b = makeBlock(c.set, 1n, 0);
    msg(c, 1, prePrepareFrom(0, 0n, b).bytes);
    assert.equal(c.nodes[1]!.delivered.length, 1, "prepared and committed on power 10 of 13");
  });

  it("test-only acceptSecondPrePrepare votes for both conflicting proposals", () => {
    const c = new Cluster(4, { cfg: { testOnlyFaults: { acceptSecondPrePrepare: true } } });
    c.filter = () => false;
    const b1 = makeBlock(c.set, 1n, 0, 1);
    const b2 = makeBlock(c.set, 1n, 0, 2);
    msg(c, 1, prePrepareFrom(0, 0n, b1).bytes);
    assert.deepEqual(msg(c, 1, prePrepareFrom(0, 0n, b2).bytes), { kind: "accept" });
    assert.equal(sentOf(c.nodes[1]!.actions, "prepare").length, 2);
    for (const b of [b1, b2]) {
      const d = blockDigest(b.header!);
      for (const i of [0, 2]) msg(c, 1, prepareFrom(i, 0n, 1n, d).bytes);
    }
    assert.equal(sentOf(c.nodes[1]!.actions, "commit").length, 2, "commits both: the lock is ignored");
  });

  it("buffers future messages per sender: a flood from one peer does not push out another's", () => {
    const c = isolated();
    const node = c.nodes[1]!;
    const b = makeBlock(c.set, 1n, 2, 5);
    // The primary of view 2 proposes before node 1 is in view 2: buffered.
    assert.deepEqual(msg(c, 1, prePrepareFrom(2, 2n, b).bytes), ignore("FUTURE_VIEW"));
    // Validator 3 floods 300 correctly signed future votes (more than the whole buffer of 256).
    for (let i = 0; i < 300; i++) {
      const d = sha256(Uint8Array.of(i & 0xff, i >> 8));
      assert.deepEqual(msg(c, 1, prepareFrom(3, 2n, 2n, d).bytes), ignore("FUTURE_VIEW"));
    }
    const vcs = [0, 2, 3].map(
      (i) => sealFrom(i, { case: "viewChange", value: create(ViewChangeSchema, { newView: 2n }) }).bytes,
    );
    const nv = sealFrom(2, {
      case: "newView",
      value: create(NewViewSchema, { view: 2n, viewChanges: vcs, proposals: [] }),
    });
    assert.deepEqual(msg(c, 1, nv.bytes), { kind: "accept" });
    // The buffered PRE-PREPARE was replayed: node 1 PREPAREs it in view 2.
    const prepares = sentOf(node.actions, "prepare");
    assert.equal(prepares.length, 1);
  });

  it("forwards its NEW-VIEW to a peer that restarted inside the view without it", () => {
    const c = isolated();
    const vcs = [0, 1, 3].map(
      (i) => sealFrom(i, { case: "viewChange", value: create(ViewChangeSchema, { newView: 1n }) }).bytes,
    );
    const nv = sealFrom(1, {
      case: "newView",
      value: create(NewViewSchema, { view: 1n, viewChanges: vcs, proposals: [] }),
    });
    assert.deepEqual(msg(c, 2, nv.bytes), { kind: "accept" });
    // Node 0 reports view 1 (restored from its signing state) but no NEW-VIEW: node 2 (one of the
    // two replicas after 0, which forward besides the primary) sends it.
    const status = (missingNewView: boolean) =>
      sealFrom(0, {
        case: "status",
        value: create(StatusReportSchema, { view: 1n, committedHeight: 0n, missingNewView }),
      }).bytes;
    const before = sentOf(c.nodes[2]!.actions, "newView").length;
    msg(c, 2, status(false));
    assert.equal(sentOf(c.nodes[2]!.actions, "newView").length, before, "same view, has it: nothing to send");
    msg(c, 2, status(true));
    assert.equal(sentOf(c.nodes[2]!.actions, "newView").length, before + 1);
  });
});
