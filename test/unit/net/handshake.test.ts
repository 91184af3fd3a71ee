import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { EnvelopeSchema, PeerMessageSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import {
  challengeFrame,
  checkChallenge,
  checkDialerProof,
  checkServerProof,
  decodeFrame,
  dialerProofFrame,
  envelopeSender,
  FrameKind,
  type HandshakeIdentity,
  makeHello,
  newNonce,
  serverProofFrame,
  type Transcript,
} from "../../../src/net/handshake.js";
import { CHAIN, envelope, makeKeys, payload, status, verifier } from "./helpers.js";

const keys = makeKeys(3);
const idOf = (localIndex: number, localEpoch = 5n): HandshakeIdentity => ({
  chainId: CHAIN,
  localIndex,
  localEpoch,
  epochSlack: 1,
  publicKeyOf: (i) => keys[i]?.publicKey,
  verifier,
});

/** A full, honest exchange between dialer 2 and server 0; returns every frame. */
function exchange() {
  const nonceD = newNonce();
  const challenge = challengeFrame(CHAIN, 2, 0, 5n, nonceD);
  const c = checkChallenge(challenge, idOf(0));
  assert.ok(c.ok);
  const t: Transcript = {
    chainId: CHAIN,
    dialer: 2,
    server: 0,
    dialerEpoch: c.epoch,
    serverEpoch: 5n,
    dialerNonce: c.nonce,
    serverNonce: newNonce(),
  };
  const serverProof = serverProofFrame(t, keys[0]!.signer);
  const sp = checkServerProof(serverProof, idOf(2), { server: 0, dialerNonce: nonceD });
  assert.ok(sp.ok, sp.ok ? "" : sp.reason);
  const dialerProof = dialerProofFrame(sp.transcript, keys[2]!.signer);
  return { nonceD, challenge, serverProof, dialerProof, t };
}

describe("handshake (challenge–response)", () => {
  it("an honest exchange verifies on both sides", () => {
    const { dialerProof, t } = exchange();
    assert.deepEqual(checkDialerProof(dialerProof, idOf(0), t), { ok: true });
  });

  it("a replayed dialer proof is refused: the new stream's server nonce differs", () => {
    const recorded = exchange();
    // The attacker replays the recorded challenge; the server answers with a fresh nonce.
    const c = checkChallenge(recorded.challenge, idOf(0));
    assert.ok(c.ok);
    const fresh: Transcript = { ...recorded.t, serverNonce: newNonce() };
    assert.deepEqual(checkDialerProof(recorded.dialerProof, idOf(0), fresh), {
      ok: false,
      reason: "handshake_bad_proof",
    });
  });

  it("a replayed server proof is refused by a dialer with a fresh nonce", () => {
    const recorded = exchange();
    const r = checkServerProof(recorded.serverProof, idOf(2), { server: 0, dialerNonce: newNonce() });
    assert.deepEqual(r, { ok: false, reason: "handshake_bad_proof" });
  });

  it("a server's proof never serves as a dialer's (role is signed), and the signer must match", () => {
    const { serverProof, t } = exchange();
    const f = decodeFrame(serverProof, FrameKind.ServerProof)!;
    // Same signature bytes in a DIALER_PROOF frame from 0 to 2 (roles swapped).
    const swapped = dialerProofFrame({ ...t }, { publicKey: keys[0]!.publicKey, sign: () => f.signature });
    assert.deepEqual(checkDialerProof(swapped, idOf(0), t), { ok: false, reason: "handshake_bad_proof" });
    const wrongKey = dialerProofFrame(t, keys[1]!.signer);
    assert.deepEqual(checkDialerProof(wrongKey, idOf(0), t), { ok: false, reason: "handshake_bad_proof" });
    // A proof from another server than the one dialed.
    const other = serverProofFrame({ ...t, server: 1 }, keys[1]!.signer);
    assert.deepEqual(checkServerProof(other, idOf(2), { server: 0, dialerNonce: t.dialerNonce }), {
      ok: false,
      reason: "handshake_unexpected_peer",
    });
  });

  it("refuses each kind of bad challenge with its own reason, before any signature work", () => {
    const n = newNonce();
    const cases: [string, Uint8Array][] = [
      ["handshake_malformed", new Uint8Array([0xff, 0xff, 0xff, 0xff])],
      ["handshake_malformed", makeHello(CHAIN, 2, status, keys[2]!.signer)],
      ["handshake_malformed", challengeFrame(CHAIN, 2, 0, 5n, n).subarray(1)],
      ["handshake_malformed", new Uint8Array([...challengeFrame(CHAIN, 2, 0, 5n, n), 0])],
      ["handshake_chain", challengeFrame("other-chain", 2, 0, 5n, n)],
      ["handshake_unexpected_peer", challengeFrame(CHAIN, 2, 1, 5n, n)],
      ["handshake_epoch", challengeFrame(CHAIN, 2, 0, 7n, n)],
      ["handshake_unknown_sender", challengeFrame(CHAIN, 9, 0, 5n, n)],
      // A node never accepts its own identity from the wire.
      ["handshake_unknown_sender", challengeFrame(CHAIN, 0, 0, 5n, n)],
    ];
    for (const [reason, bytes] of cases) {
      assert.deepEqual(checkChallenge(bytes, idOf(0)), { ok: false, reason }, reason);
    }
  });

  it("the status hello payload is a StatusReport carrying the local status", () => {
    const env = fromBinary(EnvelopeSchema, makeHello(CHAIN, 1, { ...status, epoch: 5n }, keys[1]!.signer));
    const msg = fromBinary(PeerMessageSchema, env.payload);
    assert.equal(msg.kind.case, "status");
    assert.equal(msg.kind.case === "status" && msg.kind.value.committedHeight, status.committedHeight);
  });

  it("envelopeSender reads the sender field and returns null for non-envelopes", () => {
    assert.equal(envelopeSender(envelope(2, keys[2]!, payload("x"))), 2);
    assert.equal(envelopeSender(new Uint8Array([0xff, 0xff, 0xff])), null);
  });
});
