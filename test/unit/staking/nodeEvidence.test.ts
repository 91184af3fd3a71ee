// Node-side evidence (src/node/evidence.ts): a recorded pair of conflicting COMMIT envelopes
// becomes one SubmitEvidence transaction signed by the node's account (nonce from state, then
// counted up), once per offender; the call it carries is accepted by the staking program, which
// slashes and tombstones the offender; a second submission of the same offence is a no-op there.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ed25519 } from "@noble/curves/ed25519.js";
import { ValidatorSet } from "../../../src/consensus/valset/index.js";
import { encodeAccount } from "../../../src/exec/codec.js";
import { EnvelopeSchema, PeerMessageSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { type SignedTx, TxBodySchema, TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { EvidenceSubmitter, evidenceFields } from "../../../src/node/evidence.js";
import { stakingKeys, ValidatorStatus } from "../../../src/staking/index.js";
import { addressOf } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";
import { commitSignBytes, txSignBytes } from "../../../src/types/signing.js";
import { accountKey } from "../../../src/types/stateKeys.js";
import { CHAIN_ID, consensusKey, MiniChain, register, testRules } from "../../property/stakingGen.js";

const offender = consensusKey(1);
const keys = [0, 1, 2, 3].map((i) => consensusKey(i).publicKey);
const sets = { get: (e: bigint) => (e === 0n ? ValidatorSet.uniform(0n, keys) : undefined) };

function commitEnvelope(digestByte: number, height = 7n): Uint8Array {
  const digest = new Uint8Array(32).fill(digestByte);
  const voteSignature = ed25519.sign(commitSignBytes(CHAIN_ID, 0n, 0n, height, digest), offender.secret);
  const payload = toBinary(
    PeerMessageSchema,
    create(PeerMessageSchema, {
      kind: { case: "commit", value: { view: 0n, height, blockDigest: digest, voteSignature } },
    }),
  );
  return toBinary(
    EnvelopeSchema,
    create(EnvelopeSchema, {
      version: 1,
      chainId: CHAIN_ID,
      epoch: 0n,
      sender: 1,
      payload,
      signature: new Uint8Array(64),
    }),
  );
}

const record = (a: number, b: number, height = 7n) => ({
  sender: 1,
  epoch: 0n,
  phase: "commit" as const,
  view: 0n,
  height,
  first: commitEnvelope(a, height),
  second: commitEnvelope(b, height),
});

describe("node evidence: recorded conflicts become SubmitEvidence transactions", () => {
  it("extracts the offender's key and both votes; rejects pairs that are not equivocation", () => {
    const f = evidenceFields(record(1, 2), sets)!;
    assert.equal(toHex(f.consensusKey), toHex(offender.publicKey));
    assert.equal(f.phase, "commit");
    assert.equal(f.height, 7n);
    assert.equal(evidenceFields(record(1, 1), sets), null, "same digest: no conflict");
    assert.equal(evidenceFields({ ...record(1, 2), second: Uint8Array.of(1, 2, 3) }, sets), null);
    assert.equal(evidenceFields({ ...record(1, 2), first: record(1, 2, 8n).first }, sets), null);
  });

  it("submits once per offender, signed by the node's account, and the program slashes and tombstones", async () => {
    const chain = new MiniChain(4, 1_000_000n, testRules());
    const [op] = chain.accounts;
    assert.equal(chain.submit(op!, register(offender.publicKey, 5000n)).status, TxStatus.OK);
    const node = consensusKey(0);
    const state = new Map<string, Uint8Array>([
      [toHex(stakingKeys.consensusKey(offender.publicKey)), op!.address],
      [toHex(accountKey(addressOf(node.publicKey))), encodeAccount({ nonce: 4n, balance: 10n ** 12n })],
    ]);
    const admitted: SignedTx[] = [];
    const sub = new EvidenceSubmitter({
      chainId: CHAIN_ID,
      signer: { publicKey: node.publicKey, sign: (m) => ed25519.sign(m, node.secret) },
      sets,
      getState: async (k) => state.get(toHex(k)),
      admit: async (tx) => {
        admitted.push(tx);
        return new Uint8Array(32);
      },
      log: { info() {}, warn() {} },
    });
    assert.notEqual(await sub.submit(record(1, 2)), null);
    assert.equal(await sub.submit(record(3, 4)), null, "one submission per offender");
    assert.equal(admitted.length, 1);
    const body = fromBinary(TxBodySchema, admitted[0]!.body);
    assert.equal(toHex(body.sender), toHex(node.publicKey));
    assert.equal(body.nonce, 4n);
    assert.ok(ed25519.verify(admitted[0]!.signature, txSignBytes(admitted[0]!.body), node.publicKey));
    const call = body.call?.call;
    assert.equal(call?.case, "staking");
    const staking = call!.value as Parameters<MiniChain["submit"]>[1];
    const before = chain.store().validator(op!.address)!;
    assert.equal(chain.submit(chain.accounts[2]!, staking).status, TxStatus.OK);
    const after = chain.store().validator(op!.address)!;
    assert.equal(after.status, ValidatorStatus.tombstoned);
    assert.ok(after.selfStake < before.selfStake, "slashed");
    // Resubmitted (another node, or after a restart): a no-op.
    const again = chain.submit(chain.accounts[3]!, staking);
    assert.equal(again.status, TxStatus.OK);
    assert.equal(chain.store().validator(op!.address)!.selfStake, after.selfStake);
  });
});
