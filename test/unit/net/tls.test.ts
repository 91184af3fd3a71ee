// mTLS bound to the consensus key: validators connect over TLS, also when neither has the other's
// certificate in its bundle; a certificate that is not a validator's, a missing one, and a
// validator's certificate (or key) used under another validator's identity are each refused with
// a reason in logs and metrics.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  certificateBoundTo,
  certificatePublicKey,
  createValidatorCertificate,
  ed25519PrivateKeyPem,
  generateKeyPair,
} from "../../../src/crypto/index.js";
import { challengeFrame, newNonce } from "../../../src/net/handshake.js";
import { type PeerTlsMaterial, peerCredentials } from "../../../src/net/tls.js";
import {
  capturingLogger,
  envelope,
  makeKeys,
  makeNet,
  payload,
  payloadsFrom,
  peerList,
  RawPeer,
  type TestNet,
  waitFor,
} from "./helpers.js";

const keys = makeKeys(3);
let certs: string[] = [];
let material: PeerTlsMaterial[] = [];

/** TLS channel credentials presenting `certPem`/`keyPem`, trusting every validator. */
function clientCreds(certPem: string | null, keyPem: string | null): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(material[0]!.trustedPem),
    keyPem ? Buffer.from(keyPem) : null,
    certPem ? Buffer.from(certPem) : null,
    { checkServerIdentity: () => undefined },
  );
}

describe("PeerNetwork over mTLS bound to the consensus key", () => {
  before(async () => {
    certs = await Promise.all(keys.map((k) => createValidatorCertificate(k.secretKey)));
    material = keys.map((k, i) => ({
      certPem: certs[i]!,
      keyPem: ed25519PrivateKeyPem(k.secretKey),
      trustedPem: certs.join(""),
    }));
  });

  it("a validator certificate carries exactly its consensus key", () => {
    assert.deepEqual(certificatePublicKey(certs[1]!), keys[1]!.publicKey);
    assert.equal(certificateBoundTo(certs[1]!, keys[1]!.publicKey), true);
    assert.equal(certificateBoundTo(certs[1]!, keys[2]!.publicKey), false);
    assert.equal(certificatePublicKey("not a certificate"), null);
  });

  it("validators connect and exchange envelopes over TLS", async () => {
    const nets: TestNet[] = [0, 1].map((i) =>
      makeNet(i, keys, {}, { credentials: peerCredentials(material[i]!) }),
    );
    try {
      for (const n of nets) await n.net.start();
      for (const n of nets) n.net.setPeers(peerList(keys, [nets[0]!, nets[1]!, null]));
      await waitFor("connected", () => nets.every((n) => n.net.connectedCount === 1));
      nets[1]!.net.send(0, envelope(1, keys[1]!, payload("over tls")));
      await waitFor("delivered", () => payloadsFrom(nets[0]!.inbox, 1).includes("over tls"));
      assert.equal(nets[0]!.metrics.rejects.size, 0, [...nets[0]!.metrics.rejects.keys()].join(","));
    } finally {
      for (const n of nets) await n.net.stop();
    }
  });

  it("refuses a certificate that is not a validator's, and a missing one, at the TLS layer", async () => {
    const { log, records } = capturingLogger();
    const a = makeNet(0, keys, {}, { credentials: peerCredentials(material[0]!), log });
    const stranger = generateKeyPair();
    const strangerCert = await createValidatorCertificate(stranger.secretKey);
    const raws: RawPeer[] = [];
    try {
      await a.net.start();
      a.net.setPeers(peerList(keys, [a, null, null]));
      const wrong = new RawPeer(
        a.net.port,
        clientCreds(strangerCert, ed25519PrivateKeyPem(stranger.secretKey)),
      );
      const none = new RawPeer(a.net.port, clientCreds(null, null));
      raws.push(wrong, none);
      wrong.write(challengeFrame("net-test", 2, 0, 0n, newNonce()));
      none.write(challengeFrame("net-test", 2, 0, 0n, newNonce()));
      await waitFor("both refused", () => wrong.status !== null && none.status !== null);
      for (const r of [wrong, none]) {
        assert.equal(r.status!.code, grpc.status.UNAVAILABLE);
        assert.equal(r.received.length, 0);
      }
      assert.equal(a.metrics.rejects.get("tls_unknown_key"), 1);
      assert.equal(a.metrics.rejects.get("tls_no_certificate"), 1);
      assert.ok(
        records.some(
          (r) =>
            r.msg === "peer TLS refused" &&
            (r.reason === "tls_unknown_key" || r.reason === "tls_no_certificate"),
        ),
        "logged with its reason",
      );
      assert.equal(a.net.connectedCount, 0);
    } finally {
      for (const r of raws) r.close();
      await a.net.stop();
    }
  });

  it("validators in no one's trust bundle connect by key (a validator elected after the bundles were written)", async () => {
    // Each knows only its own certificate, as `parabft init` writes it: the server accepts a
    // client certificate carrying a peer's key, and the dialer authenticates the server by its
    // handshake proof over a fresh nonce.
    const alone = material.map((m) => ({ ...m, trustedPem: m.certPem }));
    const nets: TestNet[] = [0, 1].map((i) =>
      makeNet(i, keys, {}, { credentials: peerCredentials(alone[i]!) }),
    );
    try {
      for (const n of nets) await n.net.start();
      for (const n of nets) n.net.setPeers(peerList(keys, [nets[0]!, nets[1]!, null]));
      await waitFor("connected", () => nets.every((n) => n.net.connectedCount === 1));
      nets[0]!.net.send(1, envelope(0, keys[0]!, payload("no bundle")));
      await waitFor("delivered", () => payloadsFrom(nets[1]!.inbox, 0).includes("no bundle"));
    } finally {
      for (const n of nets) await n.net.stop();
    }
  });

  it("a dialer without the server's certificate still refuses a server holding another validator's key", async () => {
    const alone = material.map((m) => ({ ...m, trustedPem: m.certPem }));
    const nets: TestNet[] = [1, 2].map((i) =>
      makeNet(i, keys, {}, { credentials: peerCredentials(alone[i]!) }),
    );
    try {
      for (const n of nets) await n.net.start();
      // Validator 1 is told that validator 0 lives at validator 2's address. Validator 2 knows the
      // validators' keys (so its TLS layer lets validator 1 in) but dials no one.
      const fake = `127.0.0.1:${nets[1]!.net.port}`;
      nets[0]!.net.setPeers(
        keys.map((k, i) => ({ index: i, publicKey: k.publicKey, address: i === 0 ? fake : "" })),
      );
      nets[1]!.net.setPeers(keys.map((k, i) => ({ index: i, publicKey: k.publicKey, address: "" })));
      const handshakeRejects = () =>
        nets.flatMap((n) => [...n.metrics.rejects.keys()].filter((r) => r.startsWith("handshake_")));
      await waitFor("refused in the handshake", () => handshakeRejects().length > 0);
      assert.equal(nets[0]!.net.connectedCount, 0, `rejects: ${handshakeRejects().join(",")}`);
      assert.equal(nets[1]!.net.connectedCount, 0);
    } finally {
      for (const n of nets) await n.net.stop();
    }
  });

  it("refuses a validator's certificate presented under another validator's identity", async () => {
    const { log, records } = capturingLogger();
    const a = makeNet(0, keys, {}, { credentials: peerCredentials(material[0]!), log });
    const raws: RawPeer[] = [];
    try {
      await a.net.start();
      a.net.setPeers(peerList(keys, [a, null, null]));
      // Validator 2's genuine certificate, but the challenge claims to be validator 1.
      const impostor = new RawPeer(a.net.port, clientCreds(certs[2]!, material[2]!.keyPem));
      raws.push(impostor);
      impostor.write(challengeFrame("net-test", 1, 0, 0n, newNonce()));
      await waitFor("refused", () => impostor.status !== null);
      assert.equal(impostor.status!.code, grpc.status.UNAUTHENTICATED);
      assert.match(impostor.status!.details, /tls_key_mismatch/);
      assert.equal(impostor.received.length, 0, "no proof is signed for an impostor");
      assert.equal(a.metrics.rejects.get("tls_key_mismatch"), 1);
      assert.ok(records.some((r) => r.msg === "peer stream rejected" && r.reason === "tls_key_mismatch"));
      // The same certificate under its own identity is accepted.
      const honest = new RawPeer(a.net.port, clientCreds(certs[2]!, material[2]!.keyPem));
      raws.push(honest);
      await honest.handshake(2, keys[2]!, 0, keys);
      await waitFor("connected", () => a.net.connectedCount === 1);
    } finally {
      for (const r of raws) r.close();
      await a.net.stop();
    }
  });

  it("a dialer refuses a server whose certificate is another validator's", async () => {
    const nets: TestNet[] = [1, 2].map((i) =>
      makeNet(i, keys, {}, { credentials: peerCredentials(material[i]!) }),
    );
    try {
      for (const n of nets) await n.net.start();
      // Validator 1 is told that validator 0 lives at validator 2's address.
      const fake = `127.0.0.1:${nets[1]!.net.port}`;
      nets[0]!.net.setPeers(
        keys.map((k, i) => ({ index: i, publicKey: k.publicKey, address: i === 0 ? fake : "" })),
      );
      await waitFor("mismatch counted", () => (nets[0]!.metrics.rejects.get("tls_key_mismatch") ?? 0) >= 1);
      assert.equal(nets[0]!.net.connectedCount, 0);
    } finally {
      for (const n of nets) await n.net.stop();
    }
  });
});
