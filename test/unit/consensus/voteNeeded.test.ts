// Issue 14: a PREPARE/COMMIT the core cannot use is ignored before its signature is verified
// (ConsensusCore.voteNeeded + checkEnvelope's VoteFilter). Never counted, stored or evidence; a
// differing vote is still verified and judged; certificates keep a quorum of valid signatures.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  checkCommitCertificate,
  checkEnvelope,
  checkPreparedCertificate,
  type VoteFilter,
} from "../../../src/consensus/envelope.js";
import type { Replica } from "../../../src/consensus/pbft/replica.js";
import {
  BlockRequestSchema,
  EnvelopeSchema,
  PeerMessageSchema,
  StatusReportSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import { blockDigest } from "../../../src/types/block.js";
import { PROTOCOL_VERSION, type SignatureVerifier } from "../../../src/types/signing.js";
import {
  CHAIN,
  Cluster,
  checkpointFrom,
  commitFrom,
  envCtx,
  makeBlock,
  makeSets,
  prePrepareFrom,
  prepareFrom,
  sealFrom,
  testVerifier,
} from "./harness.js";

const ignore = (reason: string) => ({ kind: "ignore", reason });

/** Node 1 alone receives traffic; the others stay silent unless a test speaks for them. */
function isolated() {
  const c = new Cluster(4);
  c.filter = () => false;
  return c;
}

function counting(): SignatureVerifier & { calls: number } {
  const v = {
    calls: 0,
    verify(pk: Uint8Array, m: Uint8Array, s: Uint8Array) {
      v.calls++;
      return testVerifier.verify(pk, m, s);
    },
  };
  return v;
}

/** What the driver does: the envelope check with the core's filter, then the core if accepted. */
function receive(c: Cluster, to: number, bytes: Uint8Array, verifier = counting()) {
  const replica: Replica = c.nodes[to]!.replica;
  const filter: VoteFilter = (q) => replica.voteNeeded(q);
  const check = checkEnvelope(bytes, { ...envCtx(c.sets), verifier }, undefined, { voteNeeded: filter });
  if (check.msg === undefined) return { verdict: check.verdict, verifies: verifier.calls };
  const r = c.step(to, { kind: "checked", msg: check.msg });
  return { verdict: r.verdict, verifies: verifier.calls };
}

/** Flips the last byte of a vote envelope's signature: only a verify would notice. */
function forged(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out[out.length - 1]! ^= 1;
  return out;
}

describe("votes the core will not use are not verified (voteNeeded)", () => {
  it("PREPARE after prepared for the same digest: NOT_NEEDED, unverified, never counted", () => {
    const c = isolated();
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    const node = c.nodes[1]!;
    receive(c, 1, prePrepareFrom(0, 0n, b).bytes);
    // Before the quorum, every vote is verified and counted.
    assert.deepEqual(receive(c, 1, prepareFrom(0, 0n, 1n, d).bytes), {
      verdict: { kind: "accept" },
      verifies: 1,
    });
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "prepare", sender: 3, view: 0n, height: 1n, digest: d }),
      true,
      "not prepared yet",
    );
    assert.deepEqual(receive(c, 1, prepareFrom(2, 0n, 1n, d).bytes), {
      verdict: { kind: "accept" },
      verifies: 1,
    });
    const commitPersist = node.actions.find((a) => a.kind === "persist" && a.record.kind === "commit");
    assert.ok(commitPersist !== undefined, "prepared (self + 0 + 2) and committed");
    // The late third PREPARE: ignored without a verify, even with a bad signature.
    const late = prepareFrom(3, 0n, 1n, d).bytes;
    assert.deepEqual(receive(c, 1, forged(late)), { verdict: ignore("NOT_NEEDED"), verifies: 0 });
    assert.deepEqual(receive(c, 1, late), { verdict: ignore("NOT_NEEDED"), verifies: 0 });
    // Never counted: validator 3 is in no PREPARE set; the certificate has 3 valid signatures.
    const prepared = node.actions
      .filter((a) => a.kind === "persist" && a.record.kind === "commit")
      .map((a) => (a.kind === "persist" && a.record.kind === "commit" ? a.record.prepared : undefined))[0];
    assert.ok(prepared !== undefined);
    assert.deepEqual(
      prepared.prepares.map((s) => s.validator),
      [0, 1, 2],
    );
    assert.ok(checkPreparedCertificate(prepared, 0n, envCtx(c.sets)));
    // Another view, or another digest, is still verified.
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "prepare", sender: 3, view: 1n, height: 1n, digest: d }),
      true,
    );
    assert.equal(
      node.replica.voteNeeded({
        epoch: 0n,
        kind: "prepare",
        sender: 3,
        view: 0n,
        height: 1n,
        digest: new Uint8Array(32),
      }),
      true,
    );
    assert.equal(
      node.replica.voteNeeded({ epoch: 1n, kind: "prepare", sender: 3, view: 0n, height: 1n, digest: d }),
      true,
      "another epoch",
    );
  });

  it("a vote differing from its sender's seen vote is verified and becomes evidence", () => {
    const c = isolated();
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    const other = new Uint8Array(32).fill(7);
    const node = c.nodes[1]!;
    receive(c, 1, prePrepareFrom(0, 0n, b).bytes);
    // Validator 3 votes for another digest first (verified, kept as its seen vote).
    const first = receive(c, 1, prepareFrom(3, 0n, 1n, other).bytes);
    assert.deepEqual(first, { verdict: { kind: "accept" }, verifies: 1 });
    receive(c, 1, prepareFrom(0, 0n, 1n, d).bytes);
    receive(c, 1, prepareFrom(2, 0n, 1n, d).bytes);
    // Prepared for d now, but 3's vote for d differs from its seen one: verified, CONFLICT, evidence.
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "prepare", sender: 3, view: 0n, height: 1n, digest: d }),
      true,
    );
    assert.deepEqual(receive(c, 1, forged(prepareFrom(3, 0n, 1n, d).bytes)), {
      verdict: { kind: "reject", reason: "BAD_SIGNATURE" },
      verifies: 1,
    });
    assert.deepEqual(receive(c, 1, prepareFrom(3, 0n, 1n, d).bytes), {
      verdict: ignore("CONFLICT"),
      verifies: 1,
    });
    const ev = node.actions.filter((a) => a.kind === "evidence");
    assert.equal(ev.length, 1);
    assert.ok(
      ev[0]?.kind === "evidence" && ev[0].evidence.phase === "prepare" && ev[0].evidence.sender === 3,
    );
    // Same for COMMITs: 3 commits another digest after the block committed, then d.
    receive(c, 1, commitFrom(0, 0n, 1n, d).bytes);
    receive(c, 1, commitFrom(2, 0n, 1n, d).bytes);
    assert.equal(node.delivered.length, 1);
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "commit", sender: 3, view: 0n, height: 1n, digest: other }),
      true,
      "other digest: verified",
    );
    assert.deepEqual(receive(c, 1, commitFrom(3, 0n, 1n, other).bytes), {
      verdict: ignore("ALREADY_COMMITTED"),
      verifies: 1,
    });
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "commit", sender: 3, view: 0n, height: 1n, digest: d }),
      true,
      "differs from 3's seen COMMIT",
    );
    assert.deepEqual(receive(c, 1, commitFrom(3, 0n, 1n, d).bytes), {
      verdict: ignore("CONFLICT"),
      verifies: 1,
    });
    assert.ok(node.actions.some((a) => a.kind === "evidence" && a.evidence.phase === "commit"));
  });

  it("COMMIT after committed for the same digest: NOT_NEEDED; the certificate has 2f+1 valid signatures", () => {
    const c = isolated();
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    const node = c.nodes[1]!;
    receive(c, 1, prePrepareFrom(0, 0n, b).bytes);
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "commit", sender: 0, view: 0n, height: 1n, digest: d }),
      true,
      "nothing committed yet",
    );
    // COMMITs before the quorum are verified and counted even before prepared.
    assert.deepEqual(receive(c, 1, commitFrom(0, 0n, 1n, d).bytes), {
      verdict: { kind: "accept" },
      verifies: 1,
    });
    assert.deepEqual(receive(c, 1, commitFrom(2, 0n, 1n, d).bytes), {
      verdict: { kind: "accept" },
      verifies: 1,
    });
    assert.deepEqual(receive(c, 1, commitFrom(3, 0n, 1n, d).bytes), {
      verdict: { kind: "accept" },
      verifies: 1,
    });
    assert.equal(node.delivered.length, 1, "0, 2, 3: a quorum without our own COMMIT");
    // Late COMMITs for the committed digest (any view, any sender not seen otherwise): unverified.
    assert.deepEqual(receive(c, 1, forged(commitFrom(0, 5n, 1n, d).bytes)), {
      verdict: ignore("NOT_NEEDED"),
      verifies: 0,
    });
    assert.deepEqual(receive(c, 1, commitFrom(3, 0n, 1n, d).bytes), {
      verdict: ignore("NOT_NEEDED"),
      verifies: 0,
    });
    const cert = node.delivered[0]!.cert;
    assert.deepEqual(
      cert.signatures.map((s) => s.validator),
      [0, 2, 3],
    );
    assert.ok(checkCommitCertificate(cert, envCtx(c.sets)), "every signature verifies");
    // A PREPARE for a committed height is only skipped once prepared (not here: no PREPAREs came).
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "prepare", sender: 2, view: 0n, height: 1n, digest: d }),
      true,
    );
  });

  it("CHECKPOINT at or below the stable checkpoint: NOT_NEEDED; above it, verified", () => {
    const c = new Cluster(4);
    c.blocksLeft = 12;
    c.setWork(100, [0]);
    c.run();
    const node = c.nodes[1]!;
    assert.equal(node.replica.stableHeight, 10n);
    const h = new Uint8Array(32).fill(3);
    // Stale checkpoints (any content: no divergence check happens below the stable one).
    for (const height of [5n, 10n])
      assert.deepEqual(receive(c, 1, forged(checkpointFrom(2, height, h, h).bytes)), {
        verdict: ignore("NOT_NEEDED"),
        verifies: 0,
      });
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "checkpoint", sender: 2, view: 0n, height: 15n, digest: h }),
      true,
      "above stable",
    );
    assert.equal(
      node.replica.voteNeeded({ epoch: 0n, kind: "checkpoint", sender: 2, view: 0n, height: 7n, digest: h }),
      true,
      "off the grid: MALFORMED",
    );
    assert.deepEqual(receive(c, 1, forged(checkpointFrom(2, 15n, h, h).bytes)), {
      verdict: { kind: "reject", reason: "BAD_SIGNATURE" },
      verifies: 1,
    });
  });

  it("skipUnneededVotes: the core's own message path skips them too (the simulator's switch)", () => {
    const c = new Cluster(4, { cfg: { skipUnneededVotes: true } });
    c.filter = () => false;
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    const step = (bytes: Uint8Array) => c.step(1, { kind: "message", bytes }).verdict;
    step(prePrepareFrom(0, 0n, b).bytes);
    for (const i of [0, 2]) assert.deepEqual(step(prepareFrom(i, 0n, 1n, d).bytes), { kind: "accept" });
    assert.deepEqual(step(forged(prepareFrom(3, 0n, 1n, d).bytes)), ignore("NOT_NEEDED"));
    // Without the switch the same forged vote is verified and rejected.
    const plain = isolated();
    plain.step(1, { kind: "message", bytes: prePrepareFrom(0, 0n, b).bytes });
    for (const i of [0, 2]) plain.step(1, { kind: "message", bytes: prepareFrom(i, 0n, 1n, d).bytes });
    assert.deepEqual(
      plain.step(1, { kind: "message", bytes: forged(prepareFrom(3, 0n, 1n, d).bytes) }).verdict,
      {
        kind: "reject",
        reason: "BAD_SIGNATURE",
      },
    );
  });

  it("with a test-only fault on, every vote is verified", () => {
    const c = new Cluster(4, { cfg: { testOnlyFaults: { acceptSecondPrePrepare: true } } });
    c.filter = () => false;
    const b = makeBlock(c.set, 1n, 0);
    const d = blockDigest(b.header!);
    receive(c, 1, prePrepareFrom(0, 0n, b).bytes);
    for (const i of [0, 2, 3]) receive(c, 1, commitFrom(i, 0n, 1n, d).bytes);
    assert.equal(c.nodes[1]!.delivered.length, 1);
    assert.equal(
      c.nodes[1]!.replica.voteNeeded({
        epoch: 0n,
        kind: "commit",
        sender: 3,
        view: 0n,
        height: 1n,
        digest: d,
      }),
      true,
    );
  });
});

describe("statuses on an authenticated stream are not verified (senderAuthenticated)", () => {
  const statusFrom = (from: number) =>
    sealFrom(from, { case: "status", value: create(StatusReportSchema, { committedHeight: 9n, view: 2n }) });
  /** Flips a byte of the envelope signature (the envelope's last field). */
  const badSig = (bytes: Uint8Array) => forged(bytes);

  it("a status with a bad signature is accepted only when the caller authenticated its sender", () => {
    const { sets } = makeSets(4);
    const ctx = { ...envCtx(sets), verifier: counting() };
    const bytes = badSig(statusFrom(2).bytes);
    const trusted = checkEnvelope(bytes, ctx, undefined, { senderAuthenticated: true });
    assert.deepEqual(trusted.verdict, { kind: "accept" });
    assert.equal(trusted.msg?.sender, 2);
    assert.equal(trusted.msg?.message.kind.case, "status");
    assert.equal(ctx.verifier.calls, 0);
    assert.deepEqual(checkEnvelope(bytes, ctx).verdict, { kind: "reject", reason: "BAD_SIGNATURE" });
    assert.equal(ctx.verifier.calls, 1);
  });

  it("every other kind is still verified, also a payload that starts as a status but is not one", () => {
    const { sets } = makeSets(4);
    const ctx = { ...envCtx(sets), verifier: counting() };
    const opts = { senderAuthenticated: true };
    const req = sealFrom(1, {
      case: "blockRequest",
      value: create(BlockRequestSchema, { fromHeight: 1n, toHeight: 2n }),
    });
    assert.deepEqual(checkEnvelope(badSig(req.bytes), ctx, undefined, opts).verdict, {
      kind: "reject",
      reason: "BAD_SIGNATURE",
    });
    // status field first, then a blockRequest field: the oneof's last field wins, so it is no status.
    const status = toBinary(
      PeerMessageSchema,
      create(PeerMessageSchema, { kind: { case: "status", value: create(StatusReportSchema, {}) } }),
    );
    const request = toBinary(
      PeerMessageSchema,
      create(PeerMessageSchema, {
        kind: { case: "blockRequest", value: create(BlockRequestSchema, { fromHeight: 1n, toHeight: 1n }) },
      }),
    );
    const payload = new Uint8Array([...status, ...request]);
    assert.equal(fromBinary(PeerMessageSchema, payload).kind.case, "blockRequest");
    const env = create(EnvelopeSchema, {
      version: PROTOCOL_VERSION,
      chainId: CHAIN,
      epoch: 0n,
      sender: 1,
      payload,
      signature: new Uint8Array(64).fill(1),
    });
    const calls = ctx.verifier.calls;
    assert.deepEqual(checkEnvelope(toBinary(EnvelopeSchema, env), ctx, undefined, opts).verdict, {
      kind: "reject",
      reason: "BAD_SIGNATURE",
    });
    assert.equal(ctx.verifier.calls, calls + 1);
  });
});
