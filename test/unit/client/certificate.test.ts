import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { verifyCommitCertificate } from "../../../src/client/index.js";
import {
  type BlockHeader,
  BlockHeaderSchema,
  type CommitCertificate,
  CommitCertificateSchema,
  type ValidatorSet,
  ValidatorSetSchema,
  VoteSignatureSchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { blockDigest, commitSignBytes, nullBlockDigest } from "../../../src/types/index.js";
import { seededSigner } from "./helpers.js";

const chainId = "cert-test";
const keys = [0, 1, 2, 3, 4].map((i) => seededSigner(1000 + i));

function valset(powers: bigint[], epoch = 0n): ValidatorSet {
  return create(ValidatorSetSchema, {
    epoch,
    validators: powers.map((power, i) => ({ publicKey: keys[i]!.publicKey, power, name: `v${i}` })),
  });
}

function header(over: { timestampMs?: bigint; txsRoot?: Uint8Array } = {}): BlockHeader {
  return create(BlockHeaderSchema, {
    chainId,
    height: 42n,
    epoch: 0n,
    txsRoot: new Uint8Array(32).fill(1),
    validatorsHash: new Uint8Array(32).fill(2),
    proposer: 1,
    timestampMs: 1_700_000_000_000n,
    ...over,
  });
}

function certify(
  digest: Uint8Array,
  signers: number[],
  at = { epoch: 0n, height: 42n },
  signChain = chainId,
  view = 3n,
): CommitCertificate {
  const msg = commitSignBytes(signChain, at.epoch, view, at.height, digest);
  return create(CommitCertificateSchema, {
    epoch: at.epoch,
    height: at.height,
    view,
    blockDigest: digest,
    signatures: signers.map((i) => ({ validator: i, signature: keys[i]!.sign(msg) })),
  });
}

const equal4 = valset([1n, 1n, 1n, 1n]);

describe("verifyCommitCertificate", () => {
  it("accepts a real certificate signed by a quorum (3 of 4)", () => {
    const h = header();
    const v = verifyCommitCertificate(h, certify(blockDigest(h), [0, 2, 3]), equal4, chainId);
    assert.equal(v.ok, true);
    if (v.ok) {
      assert.equal(v.signedPower, 3n);
      assert.equal(v.totalPower, 4n);
    }
  });

  it("binds the view: COMMITs of two views do not make one certificate, and the view cannot be edited", () => {
    const h = header();
    const d = blockDigest(h);
    // Two signers in view 3 and one in view 4: each signature is valid on its own view only.
    const stitched = certify(d, [0, 1], undefined, chainId, 3n);
    stitched.signatures.push(...certify(d, [2], undefined, chainId, 4n).signatures);
    const v = verifyCommitCertificate(h, stitched, equal4, chainId);
    assert.equal(!v.ok && v.reason, "BAD_SIGNATURE");
    const relabelled = certify(d, [0, 1, 2], undefined, chainId, 3n);
    relabelled.view = 4n;
    const w = verifyCommitCertificate(h, relabelled, equal4, chainId);
    assert.equal(!w.ok && w.reason, "BAD_SIGNATURE");
  });

  it("accepts a null-block certificate against the null digest", () => {
    const d = nullBlockDigest(chainId, 0n, 42n);
    const v = verifyCommitCertificate(
      { kind: "null", epoch: 0n, height: 42n },
      certify(d, [0, 1, 2]),
      equal4,
      chainId,
    );
    assert.equal(v.ok, true);
    const wrong = verifyCommitCertificate(
      { kind: "null", epoch: 0n, height: 42n },
      certify(blockDigest(header()), [0, 1, 2]),
      equal4,
      chainId,
    );
    assert.equal(!wrong.ok && wrong.reason, "DIGEST_MISMATCH");
  });

  it("rejects a tampered block: any header change breaks the digest", () => {
    const h = header();
    const cert = certify(blockDigest(h), [0, 1, 2, 3]);
    const tampered = header({ timestampMs: h.timestampMs + 1n });
    const v = verifyCommitCertificate(tampered, cert, equal4, chainId);
    assert.equal(!v.ok && v.reason, "DIGEST_MISMATCH");
    const otherTxs = header({ txsRoot: new Uint8Array(32).fill(9) });
    const w = verifyCommitCertificate(otherTxs, cert, equal4, chainId);
    assert.equal(!w.ok && w.reason, "DIGEST_MISMATCH");
  });

  it("rejects a forged signature even when the others form a quorum with it", () => {
    const h = header();
    const cert = certify(blockDigest(h), [0, 1, 2]);
    cert.signatures[1]!.signature = Uint8Array.from(cert.signatures[1]!.signature);
    cert.signatures[1]!.signature[5]! ^= 0x40;
    const v = verifyCommitCertificate(h, cert, equal4, chainId);
    assert.equal(!v.ok && v.reason, "BAD_SIGNATURE");
    // A signature by a key outside the set, claimed for index 3.
    const msg = commitSignBytes(chainId, 0n, 3n, 42n, blockDigest(h));
    const impostor = certify(blockDigest(h), [0, 1]);
    impostor.signatures.push(create(VoteSignatureSchema, { validator: 3, signature: keys[4]!.sign(msg) }));
    const w = verifyCommitCertificate(h, impostor, equal4, chainId);
    assert.equal(!w.ok && w.reason, "BAD_SIGNATURE");
  });

  it("rejects a duplicate signer instead of counting its power twice", () => {
    const h = header();
    const cert = certify(blockDigest(h), [0, 1, 1]);
    const v = verifyCommitCertificate(h, cert, equal4, chainId);
    assert.equal(!v.ok && v.reason, "DUPLICATE_SIGNER");
  });

  it("rejects insufficient quorum: exactly 2/3 is not enough, and 2f+1 is not the rule for n = 6", () => {
    const h = header();
    const d = blockDigest(h);
    const two = verifyCommitCertificate(h, certify(d, [0, 1]), equal4, chainId);
    assert.equal(!two.ok && two.reason, "INSUFFICIENT_QUORUM");
    // n = 6, f = 1: 2f+1 = 3 signers hold exactly 1/2, and 4 hold exactly 2/3 — both short.
    const six = create(ValidatorSetSchema, {
      epoch: 0n,
      validators: [0, 1, 2, 3, 4, 5].map((i) => ({ publicKey: seededSigner(1000 + i).publicKey, power: 1n })),
    });
    const sign6 = (signers: number[]) => {
      const msg = commitSignBytes(chainId, 0n, 0n, 42n, d);
      return create(CommitCertificateSchema, {
        epoch: 0n,
        height: 42n,
        view: 0n,
        blockDigest: d,
        signatures: signers.map((i) => ({ validator: i, signature: seededSigner(1000 + i).sign(msg) })),
      });
    };
    const four = verifyCommitCertificate(h, sign6([0, 1, 2, 3]), six, chainId);
    assert.equal(!four.ok && four.reason, "INSUFFICIENT_QUORUM");
    assert.equal(verifyCommitCertificate(h, sign6([0, 1, 2, 3, 4]), six, chainId).ok, true);
  });

  it("weighs signers by voting power", () => {
    const h = header();
    const d = blockDigest(h);
    const weighted = valset([10n, 1n, 1n, 1n]);
    // 10 of 13 > 2/3 with a single signer.
    assert.equal(verifyCommitCertificate(h, certify(d, [0]), weighted, chainId).ok, true);
    const v = verifyCommitCertificate(h, certify(d, [1, 2, 3]), weighted, chainId);
    assert.equal(!v.ok && v.reason, "INSUFFICIENT_QUORUM");
  });

  it("rejects the wrong chain: a foreign block, and signatures made for another chain id", () => {
    const h = header();
    const cert = certify(blockDigest(h), [0, 1, 2]);
    const v = verifyCommitCertificate(h, cert, equal4, "other-chain");
    assert.equal(!v.ok && v.reason, "WRONG_CHAIN");
    const foreign = certify(blockDigest(h), [0, 1, 2], { epoch: 0n, height: 42n }, "other-chain");
    const w = verifyCommitCertificate(h, foreign, equal4, chainId);
    assert.equal(!w.ok && w.reason, "BAD_SIGNATURE");
  });

  it("rejects mismatched height, epoch, and signer indices outside the set", () => {
    const h = header();
    const d = blockDigest(h);
    const wrongHeight = certify(d, [0, 1, 2], { epoch: 0n, height: 43n });
    assert.equal(
      (verifyCommitCertificate(h, wrongHeight, equal4, chainId) as { reason: string }).reason,
      "HEIGHT_MISMATCH",
    );
    const wrongEpoch = certify(d, [0, 1, 2], { epoch: 1n, height: 42n });
    assert.equal(
      (verifyCommitCertificate(h, wrongEpoch, equal4, chainId) as { reason: string }).reason,
      "EPOCH_MISMATCH",
    );
    const setForOtherEpoch = valset([1n, 1n, 1n, 1n], 1n);
    assert.equal(
      (verifyCommitCertificate(h, certify(d, [0, 1, 2]), setForOtherEpoch, chainId) as { reason: string })
        .reason,
      "EPOCH_MISMATCH",
    );
    const outside = certify(d, [0, 1, 2]);
    outside.signatures[2]!.validator = 7;
    assert.equal(
      (verifyCommitCertificate(h, outside, equal4, chainId) as { reason: string }).reason,
      "UNKNOWN_VALIDATOR",
    );
  });
});
