// The SDK's chain of epoch sets (src/client/epochChain.ts): a light client holding only the
// genesis set learns the set of epoch 2 from the checkpoint certificate of B(0) plus B(0)'s write
// set (hashing to the certified state root, holding the election snapshot the executor's epoch
// hook wrote), then verifies a later epoch's commit certificate against that set. Tampered
// proofs and certificates of the wrong set are refused with a reason.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ed25519 } from "@noble/curves/ed25519.js";
import { EpochSetChain } from "../../../src/client/index.js";
import { ZERO_ROOT } from "../../../src/exec/result.js";
import { CheckpointCertificateSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { CommitCertificateSchema, ValidatorSetSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { nullBlockDigest } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";
import { checkpointSignBytes, commitSignBytes } from "../../../src/types/signing.js";
import { consensusKey } from "../../property/stakingGen.js";
import { chainWithCandidate } from "./candidateChain.js";

const CHAIN = "light";
const keys = [0, 1, 2, 3, 4].map(consensusKey);

async function setup() {
  const ex = chainWithCandidate(keys, 2);
  const r1 = await ex.executeBlock({ height: 1n, timestampMs: 1n, txs: [] }); // B(0): elects epoch 2
  const genesis = create(ValidatorSetSchema, {
    epoch: 0n,
    validators: keys.slice(0, 4).map((k) => ({ publicKey: k.publicKey, power: 1n })),
  });
  const checkpoint = (signers: number[], stateRoot = r1.stateRoot) =>
    create(CheckpointCertificateSchema, {
      epoch: 0n,
      height: 1n,
      chainHash: new Uint8Array(32).fill(7),
      stateRoot,
      signatures: signers.map((i) => ({
        validator: i,
        signature: ed25519.sign(
          checkpointSignBytes(CHAIN, 0n, 1n, new Uint8Array(32).fill(7), stateRoot),
          keys[i]!.secret,
        ),
      })),
    });
  return { genesis, r1, checkpoint };
}

function commitCert(epoch: bigint, height: bigint, signers: { index: number; key: number }[]) {
  const digest = nullBlockDigest(CHAIN, epoch, height);
  return create(CommitCertificateSchema, {
    epoch,
    height,
    view: 0n,
    blockDigest: digest,
    signatures: signers.map((s) => ({
      validator: s.index,
      signature: ed25519.sign(commitSignBytes(CHAIN, epoch, 0n, height, digest), keys[s.key]!.secret),
    })),
  });
}

describe("light client: a chain of epoch sets from genesis", () => {
  it("proves the set of epoch 2 from B(0)'s checkpoint and write set, then verifies epoch 2's blocks", async () => {
    const { genesis, r1, checkpoint } = await setup();
    const chain = new EpochSetChain(CHAIN, 2, genesis);
    assert.equal(chain.verify({ kind: "null", epoch: 2n, height: 4n }, commitCert(2n, 4n, [])).ok, false);
    const v = chain.addProof({
      epoch: 2n,
      checkpoint: checkpoint([0, 1, 2]),
      previousRoot: ZERO_ROOT,
      writeSet: r1.writeSet,
    });
    assert.ok(v.ok, v.ok ? "" : v.message);
    const set = chain.get(2n)!;
    assert.equal(toHex(set.validators[0]!.publicKey), toHex(keys[4]!.publicKey), "the fifth validator leads");
    assert.equal(set.validators.length, 4);
    // Epoch 2's quorum (the new set, by its own indices) verifies; the old set's signers do not.
    const idx = (k: number) =>
      set.validators.findIndex((m) => toHex(m.publicKey) === toHex(keys[k]!.publicKey));
    const members = [4, 3, 2, 1].filter((k) => idx(k) >= 0);
    const good = commitCert(
      2n,
      4n,
      members.slice(0, 3).map((k) => ({ index: idx(k), key: k })),
    );
    const r = chain.verify({ kind: "null", epoch: 2n, height: 4n }, good);
    assert.ok(r.ok, r.ok ? "" : r.message);
    const oldSigners = commitCert(
      2n,
      4n,
      [0, 1, 2].map((i) => ({ index: i, key: i })),
    );
    assert.equal(chain.verify({ kind: "null", epoch: 2n, height: 4n }, oldSigners).ok, false);
  });

  it("refuses tampered proofs with a reason", async () => {
    const { genesis, r1, checkpoint } = await setup();
    const chain = new EpochSetChain(CHAIN, 2, genesis);
    const base = { epoch: 2n, previousRoot: ZERO_ROOT, writeSet: r1.writeSet };
    const reason = (v: ReturnType<EpochSetChain["addProof"]>) => (v.ok ? "ok" : v.reason);
    assert.equal(reason(chain.addProof({ ...base, checkpoint: checkpoint([0, 1]) })), "BAD_CHECKPOINT");
    const forged = r1.writeSet.map((w, i) => (i === 0 ? { key: w.key, value: Uint8Array.of(1) } : w));
    assert.equal(
      reason(chain.addProof({ ...base, writeSet: forged, checkpoint: checkpoint([0, 1, 2]) })),
      "ROOT_MISMATCH",
    );
    assert.equal(
      reason(chain.addProof({ ...base, epoch: 5n, checkpoint: checkpoint([0, 1, 2]) })),
      "UNKNOWN_EPOCH",
    );
    assert.equal(
      reason(chain.addProof({ ...base, epoch: 3n, checkpoint: checkpoint([0, 1, 2]) })),
      "WRONG_HEIGHT",
    );
    assert.equal(chain.get(2n), undefined);
  });
});
