// Client-side finality check: a block is final when more than 2/3 of its epoch's voting power
// signed commitSignBytes(chainId, epoch, view, height, digest) for the one view the certificate
// carries (DESIGN §2, §3). A light client needs
// only the validator set for the epoch, not the chain.
import type { BlockHeader, CommitCertificate, ValidatorSet } from "../gen/parabft/v1/types_pb.js";
import { blockDigest, nullBlockDigest } from "../types/block.js";
import { bytesEqual, toHex } from "../types/bytes.js";
import { commitSignBytes } from "../types/signing.js";
import { strictVerify } from "./signer.js";

export type CertificateRejectReason =
  | "DIGEST_MISMATCH"
  | "HEIGHT_MISMATCH"
  | "EPOCH_MISMATCH"
  | "WRONG_CHAIN"
  | "UNKNOWN_VALIDATOR"
  | "DUPLICATE_SIGNER"
  | "BAD_SIGNATURE"
  | "INSUFFICIENT_QUORUM"
  | "EMPTY_VALIDATOR_SET";

export type CertificateVerdict =
  | { ok: true; digest: Uint8Array; signedPower: bigint; totalPower: bigint }
  | { ok: false; reason: CertificateRejectReason; message: string };

/** What the certificate claims to finalise: a real block's header, or a null block. */
export type CertifiedSubject =
  | { kind: "block"; header: BlockHeader }
  | { kind: "null"; epoch: bigint; height: bigint };

const reject = (reason: CertificateRejectReason, message: string): CertificateVerdict => ({
  ok: false,
  reason,
  message,
});

/**
 * Verifies that `cert` finalises `subject` under `validatorSet` on `chainId`. Each check names
 * its reason: a tampered header changes the digest, a forged signature fails strict Ed25519,
 * a validator counted twice is a DUPLICATE_SIGNER, and the power must exceed 2/3 of the total
 * (3 × signed > 2 × total, in integers), never "2f+1".
 */
export function verifyCommitCertificate(
  subject: CertifiedSubject | BlockHeader,
  cert: CommitCertificate,
  validatorSet: ValidatorSet,
  chainId: string,
): CertificateVerdict {
  const s: CertifiedSubject = "kind" in subject ? subject : { kind: "block", header: subject };
  let digest: Uint8Array;
  let epoch: bigint;
  let height: bigint;
  if (s.kind === "block") {
    if (s.header.chainId !== chainId) {
      return reject("WRONG_CHAIN", `block is for chain '${s.header.chainId}', expected '${chainId}'`);
    }
    digest = blockDigest(s.header);
    epoch = s.header.epoch;
    height = s.header.height;
  } else {
    digest = nullBlockDigest(chainId, s.epoch, s.height);
    epoch = s.epoch;
    height = s.height;
  }
  if (cert.height !== height) {
    return reject("HEIGHT_MISMATCH", `certificate is for height ${cert.height}, block is at ${height}`);
  }
  if (cert.epoch !== epoch) {
    return reject("EPOCH_MISMATCH", `certificate is for epoch ${cert.epoch}, block is in epoch ${epoch}`);
  }
  if (validatorSet.epoch !== epoch) {
    return reject("EPOCH_MISMATCH", `validator set is for epoch ${validatorSet.epoch}, block is in ${epoch}`);
  }
  if (!bytesEqual(cert.blockDigest, digest)) {
    return reject(
      "DIGEST_MISMATCH",
      `certificate digest ${toHex(cert.blockDigest).slice(0, 16)}… does not match the block's ${toHex(digest).slice(0, 16)}…`,
    );
  }
  const members = validatorSet.validators;
  if (members.length === 0) return reject("EMPTY_VALIDATOR_SET", "validator set is empty");
  let total = 0n;
  for (const v of members) total += v.power;
  if (total <= 0n) return reject("EMPTY_VALIDATOR_SET", "validator set has no voting power");

  // Every signer COMMITted in the certificate's view: signatures of other views do not verify.
  const message = commitSignBytes(chainId, epoch, cert.view, height, digest);
  // Distinct by index and by key: a set that lists one key twice must not count it twice.
  const seen = new Set<number>();
  const seenKeys = new Set<string>();
  let signed = 0n;
  for (const vote of cert.signatures) {
    const member = members[vote.validator];
    if (member === undefined) {
      return reject("UNKNOWN_VALIDATOR", `signer index ${vote.validator} is not in the epoch's set`);
    }
    const keyHex = toHex(member.publicKey);
    if (seen.has(vote.validator) || seenKeys.has(keyHex)) {
      return reject("DUPLICATE_SIGNER", `validator ${vote.validator} signed more than once`);
    }
    seen.add(vote.validator);
    seenKeys.add(keyHex);
    if (!strictVerify(vote.signature, message, member.publicKey)) {
      return reject("BAD_SIGNATURE", `signature of validator ${vote.validator} does not verify`);
    }
    signed += member.power;
  }
  if (3n * signed <= 2n * total) {
    return reject("INSUFFICIENT_QUORUM", `signed power ${signed} is not more than 2/3 of total ${total}`);
  }
  return { ok: true, digest, signedPower: signed, totalPower: total };
}
