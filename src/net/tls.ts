// mTLS for peer links. Every validator's certificate carries its consensus key (src/crypto/tls.ts)
// and is self-signed. The server side is node:tls in front of grpc-js (GatedListener): a client
// certificate is required and judged by its key (a known validator's), so that a refused one is
// counted and logged with its reason, and a validator elected later connects without anyone's
// trust bundle changing. The client side is grpc-js's own TLS channel credentials: pinned to the
// dialed validator's certificate when the trust bundle holds it (its identity check replaced by
// "the certificate carries the consensus key of the peer we dialed"), otherwise without a CA
// check, the handshake's proof over our nonce authenticating the server (see PeerCredentials).

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
  /**
   * Validators' certificates known in advance (PEM bundle; may be empty): dialing one of them
   * pins its certificate. Validators not in it are authenticated by key in the handshake.
   */
  trustedPem: string;
}

/** Unusable TLS files: missing, unparsable, or a certificate not bound to the validator key. */
export class TlsConfigError extends ParabftError<"TLS_CONFIG", { path?: string }> {
  constructor(message: string, path?: string) {
    super("TLS_CONFIG", { path }, message);
  }
}

/**
 * Reads the node's certificate and the validators' bundle (optional: missing = empty) and checks
 * them: the certificate must carry this validator's consensus key, and every certificate in the
 * bundle must parse as an Ed25519 certificate.
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
  // Optional: a validator made by `parabft init` knows no one's certificate yet.
  const trustedPem = await readFile(opts.trustedFile, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return "";
    throw new TlsConfigError(
      `trusted validator certificates ${opts.trustedFile} cannot be read (${err.code})`,
      opts.trustedFile,
    );
  });
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
  return peerCredentials({ certPem, keyPem: ed25519PrivateKeyPem(opts.secretKey), trustedPem });
}

/**
 * Peer credentials from PEM material. `onMismatch` is told when a server we dialed presented a
 * bundle certificate that is not the dialed validator's (validators in the bundle only).
 */
export function peerCredentials(m: PeerTlsMaterial): PeerCredentials {
  const roots = splitPemBundle(m.trustedPem);
  const ca = Buffer.from(`${roots.join("\n")}\n`);
  const key = Buffer.from(m.keyPem);
  const cert = Buffer.from(m.certPem);
  return {
    server: { cert: m.certPem, key: m.keyPem },
    channelFor(publicKey, onMismatch) {
      if (!roots.some((c) => certificateBoundTo(c, publicKey))) {
        // Not in our bundle (elected after it was written): the handshake authenticates it.
        return grpc.credentials.createSsl(null, key, cert, { rejectUnauthorized: false });
      }
      // The bundle's certificates as roots, and the one presented must carry the dialed key.
      return grpc.credentials.createSsl(ca, key, cert, {
        // Replaces the hostname check: peers are identified by key, not by name.
        checkServerIdentity: (_host: string, peerCert: PeerCertificate) => {
          if (peerCert?.raw && certificateBoundTo(peerCert.raw, publicKey)) return undefined;
          onMismatch?.();
          return new Error("tls_key_mismatch: the server's certificate is not the dialed validator's key");
        },
      });
    },
    certificateMatches: (der, publicKey) => certificateBoundTo(der, publicKey),
  };
}
