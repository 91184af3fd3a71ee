// Equivocation evidence from the node to the chain (issue 11): the core records two conflicting
// signed envelopes (its `evidence` action); the node turns a PREPARE or COMMIT pair into a
// SubmitEvidence transaction signed by its own account and admits it to its mempool, once per
// offender key. The staking program verifies the signatures, slashes at the offence epoch's stake
// and tombstones; evidence against a tombstoned validator is a no-op there, so a resubmission
// (after a restart, or by another node) changes nothing.
import { fromBinary } from "@bufbuild/protobuf";
import { signTx } from "../client/signer.js";
import { submitEvidenceTx } from "../client/txBuilder.js";
import type { EvidenceRecord } from "../consensus/pbft/types.js";
import type { EpochSets } from "../consensus/valset/index.js";
import { decodeAccount } from "../exec/codec.js";
import { EnvelopeSchema, PeerMessageSchema } from "../gen/parabft/v1/consensus_pb.js";
import type { SignedTx } from "../gen/parabft/v1/types_pb.js";
import { stakingKeys } from "../staking/keys.js";
import { addressOf } from "../types/block.js";
import { bytesEqual, toHex } from "../types/bytes.js";
import type { MessageSigner } from "../types/signing.js";
import { accountKey } from "../types/stateKeys.js";

export interface EvidenceFields {
  consensusKey: Uint8Array;
  phase: "prepare" | "commit";
  epoch: bigint;
  view: bigint;
  height: bigint;
  digestA: Uint8Array;
  signatureA: Uint8Array;
  digestB: Uint8Array;
  signatureB: Uint8Array;
}

function vote(bytes: Uint8Array) {
  const env = fromBinary(EnvelopeSchema, bytes);
  const msg = fromBinary(PeerMessageSchema, env.payload);
  if (msg.kind.case !== "prepare" && msg.kind.case !== "commit") return null;
  return { env, phase: msg.kind.case, v: msg.kind.value };
}

/**
 * The SubmitEvidence fields of a recorded conflict, or null when it is not a PREPARE/COMMIT pair
 * over different digests by one known validator (a conflicting PRE-PREPARE is not slashable
 * evidence in the staking program).
 */
export function evidenceFields(e: EvidenceRecord, sets: EpochSets): EvidenceFields | null {
  let a: ReturnType<typeof vote>;
  let b: ReturnType<typeof vote>;
  try {
    a = vote(e.first);
    b = vote(e.second);
  } catch {
    return null;
  }
  if (a === null || b === null || a.phase !== b.phase) return null;
  if (a.env.epoch !== b.env.epoch || a.env.sender !== b.env.sender) return null;
  if (a.v.height !== b.v.height || bytesEqual(a.v.blockDigest, b.v.blockDigest)) return null;
  if (a.phase === "prepare" && a.v.view !== b.v.view) return null;
  const member = sets.get(a.env.epoch)?.members[a.env.sender];
  if (member === undefined) return null;
  return {
    consensusKey: member.publicKey,
    phase: a.phase,
    epoch: a.env.epoch,
    view: a.v.view,
    height: a.v.height,
    digestA: a.v.blockDigest,
    signatureA: a.v.voteSignature,
    digestB: b.v.blockDigest,
    signatureB: b.v.voteSignature,
  };
}

export interface EvidenceSubmitterModules {
  chainId: string;
  signer: MessageSigner;
  sets: EpochSets;
  getState(key: Uint8Array): Promise<Uint8Array | undefined | null>;
  /** Admits a transaction to the local mempool (gossiped from there). */
  admit(tx: SignedTx): Promise<Uint8Array>;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

/** Submits each offender's evidence once; later conflicts by the same key are ignored. */
export class EvidenceSubmitter {
  private readonly submitted = new Set<string>();
  private nextNonce = -1n;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly mod: EvidenceSubmitterModules) {}

  /** Resolves with the tx hash (hex), or null when nothing was submitted. */
  submit(e: EvidenceRecord): Promise<string | null> {
    const next = this.chain.then(() => this.submitOne(e));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async submitOne(e: EvidenceRecord): Promise<string | null> {
    const f = evidenceFields(e, this.mod.sets);
    if (f === null) return null;
    const k = toHex(f.consensusKey);
    if (this.submitted.has(k)) return null;
    const operator = await this.mod.getState(stakingKeys.consensusKey(f.consensusKey));
    if (operator === undefined || operator === null) {
      this.mod.log.warn({ key: k }, "evidence: no registered validator for the key; not submitted");
      return null;
    }
    const raw = await this.mod.getState(accountKey(addressOf(this.mod.signer.publicKey)));
    const stateNonce = decodeAccount(raw ?? null).nonce;
    const nonce = stateNonce > this.nextNonce ? stateNonce : this.nextNonce;
    const body = submitEvidenceTx(
      { chainId: this.mod.chainId, sender: this.mod.signer.publicKey, nonce },
      f,
      operator,
    );
    const { tx } = signTx(body, this.mod.signer);
    const hash = toHex(await this.mod.admit(tx));
    this.submitted.add(k);
    this.nextNonce = nonce + 1n;
    this.mod.log.info(
      { offender: k.slice(0, 16), phase: f.phase, height: String(f.height), tx: hash },
      "equivocation evidence submitted",
    );
    return hash;
  }
}
