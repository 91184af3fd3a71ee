// mTLS for peer links. Every validator's certificate carries its consensus key (src/crypto/tls.ts)
// and is self-signed; the trust roots are exactly the validators' certificates. The server side is
// node:tls in front of grpc-js (GatedListener), so that a refused TLS handshake is counted and
// logged with its reason; the client side is grpc-js's own TLS channel credentials, whose server
// identity check is replaced by "the certificate carries the consensus key of the peer we dialed".
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { certificateBoundTo, splitPemBundle } from "../crypto/tls.js";
import type { PeerCredentials } from "./types.js";

export interface PeerTlsMaterial {
  /** This validator's certificate (PEM), whose key is its consensus key. */
  certPem: string;
  /** The consensus key as a PKCS#8 PEM private key. */
  keyPem: string;
  /** Every validator's certificate (PEM bundle): the only trust roots. */
  trustedPem: string;
}

export class TlsConfigError extends Error {}

/**
 * Peer credentials from PEM material. `onServerMismatch(publicKeyHex)` is told when a server we
 * dialed presented a valid certificate that is not the dialed validator's.
 */
export function peerCredentials(m: PeerTlsMaterial): PeerCredentials {
  const roots = splitPemBundle(m.trustedPem);
  if (roots.length === 0) throw new TlsConfigError("the trusted certificate bundle holds no certificate");
  const ca = `${roots.join("\n")}\n`;
  return {
    server: { cert: m.certPem, key: m.keyPem, ca },
    channelFor(publicKey, onMismatch) {
      return grpc.credentials.createSsl(Buffer.from(ca), Buffer.from(m.keyPem), Buffer.from(m.certPem), {
        // Replaces the hostname check: peers are identified by key, not by name.
        checkServerIdentity: (_host: string, cert: PeerCertificate) => {
          if (cert?.raw && certificateBoundTo(cert.raw, publicKey)) return undefined;
          onMismatch?.();
          return new Error("tls_key_mismatch: the server's certificate is not the dialed validator's key");
        },
      });
    },
    certificateMatches: (der, publicKey) => certificateBoundTo(der, publicKey),
  };
}
