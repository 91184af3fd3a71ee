// Issue 9, seed 7237: random bytes in a correctly signed envelope sometimes decode to a
// well-formed message. Its sender really signed it, so an honest replica may accept it; the
// simulator's expectation was wrong, not the core. Undecodable or kindless payloads are rejected.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Replica } from "../../src/consensus/pbft/replica.js";
import { StaticEpochSets, ValidatorSet } from "../../src/consensus/valset/index.js";
import {
  EnvelopeSchema,
  PeerMessageSchema,
  StatusReportSchema,
} from "../../src/gen/parabft/v1/consensus_pb.js";
import { signedGarbageExpectation } from "../../src/sim/byzantine.js";
import { SIM_TIMING } from "../../src/sim/config.js";
import { StandInKeyRegistry } from "../../src/sim/signer.js";
import { envelopeSignBytes, PROTOCOL_VERSION } from "../../src/types/signing.js";

const reg = new StandInKeyRegistry();
const signers = [0, 1, 2, 3].map((i) => reg.newSigner(new Uint8Array(32).fill(i + 1)));
const sets = new StaticEpochSets([
  ValidatorSet.uniform(
    0n,
    signers.map((s) => s.publicKey),
  ),
]);

function verdictFor(payload: Uint8Array) {
  const r = new Replica({
    chainId: "c",
    epoch: 0n,
    self: 1,
    sets,
    signer: signers[1]!,
    verifier: reg,
    params: SIM_TIMING,
    maxMessageBytes: 1 << 20,
  });
  const env = create(EnvelopeSchema, {
    version: PROTOCOL_VERSION,
    chainId: "c",
    epoch: 0n,
    sender: 0,
    payload,
    signature: signers[0]!.sign(envelopeSignBytes("c", 0n, 0, payload)),
  });
  return r.handle({ kind: "message", bytes: toBinary(EnvelopeSchema, env) }).verdict;
}

describe("signed garbage payloads (seed 7237)", () => {
  it("a payload that decodes to a well-formed message is judged as that message, not expected rejected", () => {
    // The bytes seed 7237's garbage produced: a StatusReport with default fields (plus unknown ones).
    const status = toBinary(
      PeerMessageSchema,
      create(PeerMessageSchema, { kind: { case: "status", value: create(StatusReportSchema, {}) } }),
    );
    const withUnknown = Uint8Array.of(...status, 0xcd, 0x0f, 1, 2, 3, 4);
    for (const p of [status, withUnknown]) {
      assert.equal(signedGarbageExpectation(p), undefined);
      assert.deepEqual(verdictFor(p), { kind: "accept" });
    }
  });

  it("a payload with no kind, or that does not decode, must be rejected, and is", () => {
    for (const p of [
      Uint8Array.of(0x08, 0x01),
      Uint8Array.of(0xff, 0xff, 0xff),
      Uint8Array.of(0x0a, 0x05, 1),
    ]) {
      assert.equal(signedGarbageExpectation(p), "reject");
      assert.equal(verdictFor(p)?.kind, "reject");
    }
  });
});
