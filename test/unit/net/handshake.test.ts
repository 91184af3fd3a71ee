import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EnvelopeSchema, PeerMessageSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { envelopeSender, type HelloContext, makeHello, verifyHello } from "../../../src/net/handshake.js";
import { PROTOCOL_VERSION } from "../../../src/types/signing.js";
import { CHAIN, envelope, makeKeys, payload, status, verifier } from "./helpers.js";

const keys = makeKeys(3);
const ctx: HelloContext = {
  chainId: CHAIN,
  localIndex: 0,
  localEpoch: 5n,
  epochSlack: 1,
  publicKeyOf: (i) => keys[i]?.publicKey,
  verifier,
};
const at = (epoch: bigint) => ({ ...status, epoch });

function reencode(bytes: Uint8Array, patch: Record<string, unknown>): Uint8Array {
  const env = fromBinary(EnvelopeSchema, bytes);
  return toBinary(EnvelopeSchema, create(EnvelopeSchema, { ...env, ...patch }));
}

describe("handshake", () => {
  it("accepts a signed StatusReport from a known validator within the epoch slack", () => {
    for (const epoch of [4n, 5n, 6n]) {
      const r = verifyHello(makeHello(CHAIN, 2, at(epoch), keys[2]!.signer), ctx);
      assert.deepEqual(r, { ok: true, peer: 2, epoch });
    }
  });

  it("rejects each kind of bad handshake with its own reason", () => {
    const good = makeHello(CHAIN, 2, at(5n), keys[2]!.signer);
    const cases: [string, Uint8Array][] = [
      ["handshake_malformed", new Uint8Array([0xff, 0xff, 0xff, 0xff])],
      ["handshake_malformed", envelope(2, keys[2]!, payload("not a status"), 5n)],
      ["handshake_version", reencode(good, { version: PROTOCOL_VERSION + 1 })],
      ["handshake_chain", makeHello("other-chain", 2, at(5n), keys[2]!.signer)],
      ["handshake_epoch", makeHello(CHAIN, 2, at(7n), keys[2]!.signer)],
      ["handshake_unknown_sender", makeHello(CHAIN, 9, at(5n), keys[2]!.signer)],
      // A node never accepts its own identity from the wire.
      ["handshake_unknown_sender", makeHello(CHAIN, 0, at(5n), keys[0]!.signer)],
      ["handshake_bad_signature", makeHello(CHAIN, 2, at(5n), keys[1]!.signer)],
      ["handshake_bad_signature", reencode(good, { signature: new Uint8Array() })],
      // The signature covers the sender index: relabelling a valid hello breaks it.
      ["handshake_bad_signature", reencode(good, { sender: 1 })],
    ];
    for (const [reason, bytes] of cases) {
      assert.deepEqual(verifyHello(bytes, ctx), { ok: false, reason }, reason);
    }
  });

  it("the hello payload is a StatusReport carrying the local status", () => {
    const env = fromBinary(EnvelopeSchema, makeHello(CHAIN, 1, at(5n), keys[1]!.signer));
    const msg = fromBinary(PeerMessageSchema, env.payload);
    assert.equal(msg.kind.case, "status");
    assert.equal(msg.kind.case === "status" && msg.kind.value.committedHeight, status.committedHeight);
  });

  it("envelopeSender reads the sender field and returns null for non-envelopes", () => {
    assert.equal(envelopeSender(envelope(2, keys[2]!, payload("x"))), 2);
    assert.equal(envelopeSender(new Uint8Array([0xff, 0xff, 0xff])), null);
  });
});
