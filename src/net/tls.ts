// mTLS for peer links. Every validator's certificate carries its consensus key (src/crypto/tls.ts)
// and is self-signed; the trust roots are exactly the validators' certificates. The server side is
// node:tls in front of grpc-js (GatedListener), so that a refused TLS handshake is counted and
// logged with its reason; the client side is grpc-js's own TLS channel credentials, whose server
// identity check is replaced by "the certificate carries the consensus key of the peer we dialed".

import { readFile } from "node:fs/promises";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import {
  certificateBoundTo,
  certificatePublicKey,
  ed25519PrivateKeyPem,
  splitPemBundle,
} from "../crypto/tls.js";
import { ParabftError } from "../types/errors.js";
import type { PeerCredentials } from "./types.js";

export interface PeerTlsMaterial {
  /** This validator's certificate (PEM), whose key is its consensus key. */
  certPem: string;
  /** The consensus key as a PKCS#8 PEM private key. */
  keyPem: string;
  /** Every validator's certificate (PEM bundle): the only trust roots. */
  trustedPem: string;
}

/** Unusable TLS files: missing, unparsable, or a certificate not bound to the validator key. */
export class TlsConfigError extends ParabftError<"TLS_CONFIG", { path?: string }> {
  constructor(message: string, path?: string) {
    super("TLS_CONFIG", { path }, message);
  }
}

/**
 * Reads the node's certificate and the validators' bundle and checks them: the certificate must
 * carry this validator's consensus key, and every certificate in the bundle must parse as an
 * Ed25519 certificate.
 */
export async function loadPeerCredentials(opts: {
  certFile: string;
  trustedFile: string;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}): Promise<PeerCredentials> {
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file, "utf8");
    } catch (err) {
      throw new TlsConfigError(
        `${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code}); generate it with \`parabft testnet\`/\`init\`, or set net.insecure for local debugging`,
        file,
      );
    }
  };
  const certPem = await read(opts.certFile, "TLS certificate");
  const trustedPem = await read(opts.trustedFile, "trusted validator certificates");
  if (!certificateBoundTo(certPem, opts.publicKey)) {
    throw new TlsConfigError(`${opts.certFile} does not carry this validator's consensus key`, opts.certFile);
  }
  const roots = splitPemBundle(trustedPem);
  for (const [i, c] of roots.entries()) {
    if (certificatePublicKey(c) === null) {
      throw new TlsConfigError(
        `certificate ${i} in ${opts.trustedFile} is not an Ed25519 certificate`,
        opts.trustedFile,
      );
    }
  }
  if (roots.length === 0)
    throw new TlsConfigError(`${opts.trustedFile} holds no certificate`, opts.trustedFile);
  return peerCredentials({ certPem, keyPem: ed25519PrivateKeyPem(opts.secretKey), trustedPem });
}

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
