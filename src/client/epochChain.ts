// A light client's chain of validator sets (DPoS, issue 11). It holds only the genesis set
// (epochs 0 and 1) and learns the set of epoch e + 2 from an EpochSetProof: the old set's
// checkpoint certificate for B(e) (the last height of epoch e, always a checkpoint), the state
// root before B(e) and B(e)'s write set. The write set hashes to the certified state root
// (stateRoot(h) = H(tag ‖ stateRoot(h−1) ‖ writeSetHash(h)), DESIGN §5) and contains the
// election snapshot the epoch hook wrote for e + 2: full sets, never diffs. With the chain a
// client verifies a block of any later epoch's commit certificate against its own epoch's set.
import { create } from "@bufbuild/protobuf";
import type { CheckpointCertificate } from "../gen/parabft/v1/consensus_pb.js";
import {
  type BlockHeader,
  type CommitCertificate,
  ValidatorSchema,
  type ValidatorSet,
  ValidatorSetSchema,
} from "../gen/parabft/v1/types_pb.js";
import { decodeSnapshot } from "../staking/codec.js";
import { stakingKeys } from "../staking/keys.js";
import { bytesEqual, concatBytes, toHex, utf8Bytes } from "../types/bytes.js";
import { type Hash, sha256 } from "../types/hash.js";
import { checkpointSignBytes } from "../types/signing.js";
import { type CertificateVerdict, type CertifiedSubject, verifyCommitCertificate } from "./certificate.js";
import { strictVerify } from "./signer.js";

/** One state write as the executor hashes it (value null = deleted). */
export interface ProofWrite {
  key: Uint8Array;
  value: Uint8Array | null;
}

export interface EpochSetProof {
  /** The epoch whose set this proves (e + 2). */
  epoch: bigint;
  /** The set of epoch e's checkpoint certificate for B(e). */
  checkpoint: CheckpointCertificate;
  /** State root after height B(e) − 1. */
  previousRoot: Hash;
  /** B(e)'s whole write set, sorted by key (as the executor wrote it). */
  writeSet: ProofWrite[];
}

export type EpochChainRejectReason =
  | "WRONG_EPOCH"
  | "UNKNOWN_EPOCH"
  | "WRONG_HEIGHT"
  | "BAD_CHECKPOINT"
  | "ROOT_MISMATCH"
  | "NO_SNAPSHOT";

export type EpochChainVerdict =
  | { ok: true; set: ValidatorSet }
  | { ok: false; reason: EpochChainRejectReason; message: string };

const TAG_WRITE_SET = utf8Bytes("PARABFT/WRITESET/V1\0");
const TAG_STATE_ROOT = utf8Bytes("PARABFT/STATEROOT/V1\0");

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** writeSetHash of src/exec/result.ts, browser-safe. */
export function proofWriteSetHash(writeSet: readonly ProofWrite[]): Hash {
  const parts: Uint8Array[] = [TAG_WRITE_SET, u32(writeSet.length)];
  for (const w of writeSet) {
    parts.push(u32(w.key.length), w.key);
    if (w.value === null) parts.push(Uint8Array.of(0));
    else parts.push(Uint8Array.of(1), u32(w.value.length), w.value);
  }
  return sha256(concatBytes(...parts));
}

export function proofStateRoot(previous: Hash, writeSet: readonly ProofWrite[]): Hash {
  return sha256(concatBytes(TAG_STATE_ROOT, previous, proofWriteSetHash(writeSet)));
}

const no = (reason: EpochChainRejectReason, message: string): EpochChainVerdict => ({
  ok: false,
  reason,
  message,
});

/** More than 2/3 of `set`'s power signed the checkpoint (strict Ed25519, distinct signers). */
export function verifyCheckpointCertificate(
  cert: CheckpointCertificate,
  set: ValidatorSet,
  chainId: string,
): boolean {
  if (cert.epoch !== set.epoch) return false;
  const msg = checkpointSignBytes(chainId, cert.epoch, cert.height, cert.chainHash, cert.stateRoot);
  let total = 0n;
  for (const v of set.validators) total += v.power;
  const seen = new Set<string>();
  let signed = 0n;
  for (const s of cert.signatures) {
    const m = set.validators[s.validator];
    if (m === undefined) return false;
    const k = toHex(m.publicKey);
    if (seen.has(k)) return false;
    seen.add(k);
    if (!strictVerify(s.signature, msg, m.publicKey)) return false;
    signed += m.power;
  }
  return total > 0n && 3n * signed > 2n * total;
}

export class EpochSetChain {
  private readonly sets = new Map<bigint, ValidatorSet>();

  constructor(
    readonly chainId: string,
    readonly epochLength: number,
    genesis: ValidatorSet,
  ) {
    for (const e of [0n, 1n])
      this.sets.set(e, create(ValidatorSetSchema, { epoch: e, validators: genesis.validators }));
  }

  get(epoch: bigint): ValidatorSet | undefined {
    return this.sets.get(epoch);
  }

  /** Checks `p` against the set of epoch p.epoch − 2 and, when it holds, adds the set of p.epoch. */
  addProof(p: EpochSetProof): EpochChainVerdict {
    const e = p.epoch - 2n;
    if (e < 0n) return no("WRONG_EPOCH", `epochs 0 and 1 are the genesis set`);
    const old = this.sets.get(e);
    if (old === undefined) return no("UNKNOWN_EPOCH", `the set of epoch ${e} is not known yet`);
    const boundary = (e + 1n) * BigInt(this.epochLength) - 1n;
    if (p.checkpoint.height !== boundary || p.checkpoint.epoch !== e) {
      return no("WRONG_HEIGHT", `the proof must certify B(${e}) = ${boundary} in epoch ${e}`);
    }
    if (!verifyCheckpointCertificate(p.checkpoint, old, this.chainId)) {
      return no("BAD_CHECKPOINT", `the checkpoint of ${boundary} is not certified by the set of epoch ${e}`);
    }
    if (!bytesEqual(proofStateRoot(p.previousRoot, p.writeSet), p.checkpoint.stateRoot)) {
      return no("ROOT_MISMATCH", "the write set does not hash to the certified state root");
    }
    const key = stakingKeys.epochSet(p.epoch);
    const w = p.writeSet.find((x) => bytesEqual(x.key, key));
    if (w === undefined || w.value === null)
      return no("NO_SNAPSHOT", `B(${e}) wrote no set for epoch ${p.epoch}`);
    let snap: ReturnType<typeof decodeSnapshot>;
    try {
      snap = decodeSnapshot(w.value);
    } catch (err) {
      return no("NO_SNAPSHOT", `B(${e}) wrote an undecodable set for epoch ${p.epoch}: ${String(err)}`);
    }
    // An empty or powerless snapshot keeps the previous set, as the node does (LiveEpochSets.add).
    const prev = this.sets.get(p.epoch - 1n);
    const keep = snap.members.length === 0 || snap.members.some((m) => m.power <= 0n);
    if (keep && prev === undefined)
      return no("UNKNOWN_EPOCH", `the set of epoch ${p.epoch - 1n} is not known yet`);
    const set = create(ValidatorSetSchema, {
      epoch: p.epoch,
      validators:
        keep && prev !== undefined
          ? prev.validators
          : snap.members.map((m) => create(ValidatorSchema, { publicKey: m.consensusKey, power: m.power })),
    });
    this.sets.set(p.epoch, set);
    return { ok: true, set };
  }

  /** The highest epoch whose set is known (1 holding only the genesis set). */
  get latest(): bigint {
    let top = 1n;
    for (const e of this.sets.keys()) if (e > top) top = e;
    return top;
  }

  /** The epoch of `height` (⌊height / epochLength⌋). */
  epochOf(height: bigint): bigint {
    return height / BigInt(this.epochLength);
  }

  /**
   * Proves every set up to `epoch` not known yet, in order (each from the one two epochs before),
   * with proofs from `fetch` (e.g. ParabftClient.getEpochSetProof). Stops at the first refused
   * proof and returns its verdict; fetch errors propagate. The chain keeps what it proved.
   */
  async syncTo(epoch: bigint, fetch: (epoch: bigint) => Promise<EpochSetProof>): Promise<EpochChainVerdict> {
    for (let e = 2n; e <= epoch; e++) {
      if (this.sets.has(e)) continue;
      const proof = await fetch(e);
      if (proof.epoch !== e) return no("WRONG_EPOCH", `asked for the set of epoch ${e}, got ${proof.epoch}`);
      const v = this.addProof(proof);
      if (!v.ok) return v;
    }
    const set = this.sets.get(epoch < 0n ? 0n : epoch);
    return set === undefined ? no("UNKNOWN_EPOCH", `no set for epoch ${epoch}`) : { ok: true, set };
  }

  /** verifyCommitCertificate against the set of the certificate's own epoch, from this chain. */
  verify(subject: CertifiedSubject | BlockHeader, cert: CommitCertificate): CertificateVerdict {
    const set = this.sets.get(cert.epoch);
    if (set === undefined) {
      return { ok: false, reason: "EPOCH_MISMATCH", message: `no proven set for epoch ${cert.epoch}` };
    }
    return verifyCommitCertificate(subject, cert, set, this.chainId);
  }
}
