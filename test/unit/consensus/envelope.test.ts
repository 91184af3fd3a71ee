import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { checkEnvelope, sealGossip } from "../../../src/consensus/envelope.js";
import { computeNewViewProposals } from "../../../src/consensus/pbft/newView.js";
import {
  BlockResponseSchema,
  BodyResponseSchema,
  CommittedBlockSchema,
  EnvelopeSchema,
  NewViewProposalSchema,
  NewViewSchema,
  PreparedCertificateSchema,
  StatusReportSchema,
  TxBatchSchema,
  ViewChangeSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import {
  BlockSchema,
  CommitCertificateSchema,
  VoteSignatureSchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { blockDigest, nullBlockDigest } from "../../../src/types/block.js";
import { bytesEqual } from "../../../src/types/bytes.js";
import { commitSignBytes, prepareSignBytes } from "../../../src/types/signing.js";
import {
  CHAIN,
  commitFrom,
  envCtx,
  makeBlock,
  makeSets,
  prePrepareFrom,
  prepareFrom,
  sealFrom,
  testSigner,
} from "./harness.js";

const { set, sets } = makeSets(4);
const ctx = envCtx(sets);
const status = () => ({
  case: "status" as const,
  value: create(StatusReportSchema, {
    committedHeight: 1n,
    view: 0n,
    stableCheckpoint: 0n,
    executedHeight: 1n,
  }),
});
const verdict = (bytes: Uint8Array) => checkEnvelope(bytes, ctx).verdict;
const reencode = (bytes: Uint8Array, patch: (e: ReturnType<typeof decodeEnv>) => void) => {
  const e = decodeEnv(bytes);
  patch(e);
  return toBinary(EnvelopeSchema, e);
};

import { fromBinary } from "@bufbuild/protobuf";

const decodeEnv = (b: Uint8Array) => fromBinary(EnvelopeSchema, b);

function preparedCert(view: bigint, height: bigint, digest: Uint8Array, signers: number[]) {
  return create(PreparedCertificateSchema, {
    view,
    height,
    blockDigest: digest,
    prepares: signers.map((i) =>
      create(VoteSignatureSchema, {
        validator: i,
        signature: testSigner(i).sign(prepareSignBytes(CHAIN, 0n, view, height, digest)),
      }),
    ),
  });
}

describe("envelope check", () => {
  it("accepts a well-formed signed message and a vote", () => {
    assert.deepEqual(verdict(sealFrom(1, status()).bytes), { kind: "accept" });
    const d = new Uint8Array(32).fill(7);
    const r = checkEnvelope(prepareFrom(2, 0n, 1n, d).bytes, ctx);
    assert.equal(r.verdict.kind, "accept");
    assert.equal(r.msg?.sender, 2);
    assert.equal(r.msg?.message.kind.case, "prepare");
  });

  it("rejects malformed bytes, oversize, bad version, wrong chain, unknown sender, bad signature", () => {
    const good = sealFrom(1, status()).bytes;
    assert.deepEqual(verdict(Uint8Array.of(0xff, 0xff, 0xff)), { kind: "reject", reason: "MALFORMED" });
    assert.deepEqual(checkEnvelope(good, { ...ctx, maxMessageBytes: 8 }).verdict, {
      kind: "reject",
      reason: "OVERSIZED",
    });
    assert.deepEqual(verdict(reencode(good, (e) => (e.version = 9))), {
      kind: "reject",
      reason: "BAD_VERSION",
    });
    // Protocol version 1 (view-less COMMITs) peers are refused, not read.
    assert.deepEqual(verdict(reencode(good, (e) => (e.version = 1))), {
      kind: "reject",
      reason: "BAD_VERSION",
    });
    assert.deepEqual(verdict(sealFrom(1, status(), "other-chain").bytes), {
      kind: "reject",
      reason: "WRONG_CHAIN",
    });
    assert.deepEqual(verdict(reencode(good, (e) => (e.sender = 9))), {
      kind: "reject",
      reason: "UNKNOWN_SENDER",
    });
    assert.deepEqual(verdict(reencode(good, (e) => (e.sender = 2))), {
      kind: "reject",
      reason: "BAD_SIGNATURE",
    });
    assert.deepEqual(verdict(reencode(good, (e) => (e.payload = Uint8Array.of(0xff)))), {
      kind: "reject",
      reason: "BAD_SIGNATURE",
    });
    const vote = prepareFrom(2, 0n, 1n, new Uint8Array(32)).bytes;
    assert.deepEqual(verdict(reencode(vote, (e) => (e.signature = Uint8Array.of(1)))), {
      kind: "reject",
      reason: "BAD_SIGNATURE",
    });
    const unsigned = reencode(good, (e) => (e.signature = new Uint8Array(0)));
    assert.deepEqual(verdict(unsigned), { kind: "reject", reason: "BAD_SIGNATURE" });
    assert.deepEqual(verdict(reencode(vote, (e) => (e.sender = 3))), {
      kind: "reject",
      reason: "BAD_SIGNATURE",
    });
  });

  it("accepts a TxBatch unsigned (sealGossip: the stream names its sender) but no other kind", () => {
    const batch = { case: "txBatch" as const, value: create(TxBatchSchema, { txs: [] }) };
    const gossip = sealGossip(CHAIN, 0n, 2, create(PeerMessageSchema, { kind: batch }));
    assert.equal(gossip.envelope.signature.length, 0);
    const c = checkEnvelope(gossip.bytes, ctx);
    assert.deepEqual(c.verdict, { kind: "accept" });
    assert.equal(c.msg?.sender, 2);
    assert.equal(c.msg?.message.kind.case, "txBatch");
    // Signed, as older nodes send it, still verifies; a bad signature is still rejected.
    assert.deepEqual(verdict(sealFrom(2, batch).bytes), { kind: "accept" });
    assert.deepEqual(verdict(reencode(sealFrom(2, batch).bytes, (e) => (e.sender = 3))), {
      kind: "reject",
      reason: "BAD_SIGNATURE",
    });
    // Status (and every other signed kind) cannot be sealed or sent unsigned.
    assert.throws(() => sealGossip(CHAIN, 0n, 2, create(PeerMessageSchema, { kind: status() })));
    const statusUnsigned = reencode(sealFrom(2, status()).bytes, (e) => (e.signature = new Uint8Array(0)));
    assert.deepEqual(verdict(statusUnsigned), { kind: "reject", reason: "BAD_SIGNATURE" });
  });

  it("ignores an unknown future epoch instead of rejecting it", () => {
    const good = sealFrom(1, status()).bytes;
    assert.deepEqual(verdict(reencode(good, (e) => (e.epoch = 5n))), {
      kind: "ignore",
      reason: "FUTURE_EPOCH",
    });
  });

  it("rejects a PRE-PREPARE from a non-primary or with a digest that does not match its block", () => {
    const b = makeBlock(set, 1n, 1);
    assert.deepEqual(verdict(prePrepareFrom(1, 0n, b).bytes), { kind: "reject", reason: "NOT_PRIMARY" });
    assert.equal(verdict(prePrepareFrom(1, 1n, b).bytes).kind, "accept");
    const wrong = makeBlock(set, 1n, 0);
    const pp = prePrepareFrom(0, 0n, wrong);
    wrong.header!.timestampMs = 5n; // header changed after the digest was taken
    const forged = sealFrom(0, {
      case: "prePrepare",
      value: { ...(pp.envelope && fromBinaryPP(pp.bytes)), block: wrong },
    });
    assert.deepEqual(verdict(forged.bytes), { kind: "reject", reason: "BAD_DIGEST" });
  });

  it("rejects a block whose transactions or last commit do not match its header (digest covers only the header)", () => {
    const honest = makeBlock(set, 1n, 0, 1);
    const swapped = makeBlock(set, 1n, 0, 2);
    // Same header (so the same digest), other transactions: a primary or a body server lying.
    const lying = create(BlockSchema, { header: honest.header, txs: swapped.txs });
    assert.deepEqual(verdict(prePrepareFrom(0, 0n, lying).bytes), { kind: "reject", reason: "BAD_BLOCK" });
    const body = sealFrom(2, {
      case: "bodyResponse",
      value: create(BodyResponseSchema, { blockDigest: blockDigest(honest.header!), block: lying }),
    });
    assert.deepEqual(verdict(body.bytes), { kind: "reject", reason: "BAD_BLOCK" });
    const withCert = create(BlockSchema, {
      header: honest.header,
      txs: honest.txs,
      lastCommit: create(CommitCertificateSchema, { epoch: 0n, height: 0n, blockDigest: new Uint8Array(32) }),
    });
    assert.deepEqual(verdict(prePrepareFrom(0, 0n, withCert).bytes), { kind: "reject", reason: "BAD_BLOCK" });
    assert.equal(verdict(prePrepareFrom(0, 0n, honest).bytes).kind, "accept");
  });

  it("verifies certificates nested in VIEW-CHANGE and BlockResponse", () => {
    const d = new Uint8Array(32).fill(3);
    const okVc = sealFrom(1, {
      case: "viewChange",
      value: create(ViewChangeSchema, { newView: 1n, prepared: [preparedCert(0n, 1n, d, [0, 1, 2])] }),
    });
    assert.equal(verdict(okVc.bytes).kind, "accept");
    const shortVc = sealFrom(1, {
      case: "viewChange",
      value: create(ViewChangeSchema, { newView: 1n, prepared: [preparedCert(0n, 1n, d, [0, 1])] }),
    });
    assert.deepEqual(verdict(shortVc.bytes), { kind: "reject", reason: "BAD_CERTIFICATE" });
    const dupVc = sealFrom(1, {
      case: "viewChange",
      value: create(ViewChangeSchema, { newView: 1n, prepared: [preparedCert(0n, 1n, d, [0, 1, 1])] }),
    });
    assert.deepEqual(verdict(dupVc.bytes), { kind: "reject", reason: "BAD_CERTIFICATE" });

    const b = makeBlock(set, 1n, 0);
    const digest = blockDigest(b.header!);
    const cert = (signers: number[], dg = digest) =>
      create(CommitCertificateSchema, {
        epoch: 0n,
        height: 1n,
        blockDigest: dg,
        signatures: signers.map((i) =>
          create(VoteSignatureSchema, {
            validator: i,
            signature: testSigner(i).sign(commitSignBytes(CHAIN, 0n, 0n, 1n, dg)),
          }),
        ),
      });
    const resp = (cb: ReturnType<typeof create<typeof CommittedBlockSchema>>) =>
      sealFrom(2, { case: "blockResponse", value: create(BlockResponseSchema, { blocks: [cb] }) }).bytes;
    assert.equal(
      verdict(resp(create(CommittedBlockSchema, { height: 1n, block: b, certificate: cert([0, 1, 3]) })))
        .kind,
      "accept",
    );
    assert.deepEqual(
      verdict(resp(create(CommittedBlockSchema, { height: 1n, block: b, certificate: cert([0, 1]) }))),
      {
        kind: "reject",
        reason: "BAD_CERTIFICATE",
      },
    );
    const nd = nullBlockDigest(CHAIN, 0n, 1n);
    assert.equal(
      verdict(resp(create(CommittedBlockSchema, { height: 1n, certificate: cert([0, 1, 2], nd) }))).kind,
      "accept",
    );
    assert.deepEqual(
      verdict(resp(create(CommittedBlockSchema, { height: 1n, certificate: cert([0, 1, 2]) }))),
      {
        kind: "reject",
        reason: "BAD_DIGEST",
      },
    );
  });

  it("accepts a NEW-VIEW only when its proposals follow from its VIEW-CHANGEs", () => {
    const d = new Uint8Array(32).fill(3);
    const vcs = [0, 2, 3].map((i) =>
      sealFrom(i, {
        case: "viewChange",
        value: create(ViewChangeSchema, {
          newView: 1n,
          prepared: i === 2 ? [preparedCert(0n, 2n, d, [0, 1, 2])] : [],
        }),
      }),
    );
    const expected = computeNewViewProposals(
      CHAIN,
      0n,
      vcs.map((v) => {
        const m = checkEnvelope(v.bytes, ctx).msg!.message;
        return m.kind.case === "viewChange" ? m.kind.value : create(ViewChangeSchema);
      }),
    ).proposals;
    assert.equal(expected.length, 2);
    assert.equal(expected[0]!.isNull, true, "gap at height 1 becomes a null block");
    assert.ok(bytesEqual(expected[0]!.blockDigest, nullBlockDigest(CHAIN, 0n, 1n)));
    assert.ok(bytesEqual(expected[1]!.blockDigest, d));
    const nv = (proposals: typeof expected, from = 1, vcBytes = vcs.map((v) => v.bytes)) =>
      sealFrom(from, {
        case: "newView",
        value: create(NewViewSchema, { view: 1n, viewChanges: vcBytes, proposals }),
      }).bytes;
    assert.equal(verdict(nv(expected)).kind, "accept");
    const forged = [
      expected[0]!,
      create(NewViewProposalSchema, { height: 2n, blockDigest: new Uint8Array(32), isNull: false }),
    ];
    assert.deepEqual(verdict(nv(forged)), { kind: "reject", reason: "BAD_NEW_VIEW" });
    assert.deepEqual(verdict(nv(expected, 2)), { kind: "reject", reason: "NOT_PRIMARY" });
    assert.deepEqual(
      verdict(
        nv(
          expected,
          1,
          vcs.slice(0, 2).map((v) => v.bytes),
        ),
      ),
      {
        kind: "reject",
        reason: "BAD_NEW_VIEW",
      },
    );
    const commit = commitFrom(0, 0n, 1n, d).bytes;
    assert.deepEqual(verdict(nv(expected, 1, [commit, ...vcs.map((v) => v.bytes)])), {
      kind: "reject",
      reason: "BAD_NEW_VIEW",
    });
  });
});

import { PeerMessageSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";

function fromBinaryPP(envBytes: Uint8Array) {
  const m = fromBinary(PeerMessageSchema, decodeEnv(envBytes).payload);
  if (m.kind.case !== "prePrepare") throw new Error("not a pre-prepare");
  return m.kind.value;
}
