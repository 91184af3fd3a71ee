// Validator TLS certificates bound to the consensus key: the certificate's key IS the validator's
// Ed25519 consensus key, self-signed, so a peer proves in the TLS handshake that it holds that key.
// Certificates are made with @peculiar/x509 (node:crypto can parse X.509 but not issue it) and
// parsed with node:crypto's X509Certificate.
import { createPrivateKey, createPublicKey, webcrypto, X509Certificate } from "node:crypto";
import { bytesEqual, toHex } from "../types/bytes.js";
import { CryptoError } from "./errors.js";
import { keyPairFromSecret } from "./keys.js";

// RFC 8410: PrivateKeyInfo for Ed25519 is this fixed prefix followed by the 32-byte seed.
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
// SubjectPublicKeyInfo for Ed25519: this prefix followed by the 32-byte public key.
const SPKI_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

function pkcs8(secretKey: Uint8Array): Buffer {
  return Buffer.concat([PKCS8_ED25519_PREFIX, secretKey]);
}

/** The consensus key as a PKCS#8 PEM private key, for TLS. Never log it. */
export function ed25519PrivateKeyPem(secretKey: Uint8Array): string {
  keyPairFromSecret(secretKey); // length check
  return createPrivateKey({ key: pkcs8(secretKey), format: "der", type: "pkcs8" })
    .export({ format: "pem", type: "pkcs8" })
    .toString();
}

/**
 * The raw Ed25519 public key a certificate (PEM or DER) carries, or null when it does not parse
 * or is not an Ed25519 certificate.
 */
export function certificatePublicKey(cert: string | Uint8Array): Uint8Array | null {
  try {
    const x = new X509Certificate(typeof cert === "string" ? cert : Buffer.from(cert));
    if (x.publicKey.asymmetricKeyType !== "ed25519") return null;
    const spki = x.publicKey.export({ format: "der", type: "spki" });
    if (spki.length !== SPKI_ED25519_PREFIX.length + 32) return null;
    return new Uint8Array(spki.subarray(SPKI_ED25519_PREFIX.length));
  } catch {
    return null;
  }
}

/** Whether a certificate is bound to `publicKey` (its key is that consensus key). */
export function certificateBoundTo(cert: string | Uint8Array, publicKey: Uint8Array): boolean {
  const k = certificatePublicKey(cert);
  return k !== null && bytesEqual(k, publicKey);
}

/** Splits a PEM bundle into its certificates. */
export function splitPemBundle(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * A self-signed X.509 certificate whose key is the validator's consensus key (PEM). It is its
 * own CA (basicConstraints cA, keyCertSign): peers list it as a trust root, one per validator.
 */
export async function createValidatorCertificate(
  secretKey: Uint8Array,
  opts: { commonName?: string; notAfter?: Date } = {},
): Promise<string> {
  const kp = keyPairFromSecret(secretKey);
  // @peculiar/x509 resolves its services through tsyringe, which needs the Reflect polyfill.
  // Loaded only here: running nodes read certificates, they never issue them.
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: "Ed25519" };
  const privateKey = await webcrypto.subtle.importKey("pkcs8", pkcs8(secretKey), alg, false, ["sign"]);
  const spki = createPublicKey(
    createPrivateKey({ key: pkcs8(secretKey), format: "der", type: "pkcs8" }),
  ).export({ format: "der", type: "spki" });
  const publicKey = await webcrypto.subtle.importKey("spki", spki, alg, true, ["verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: toHex(kp.publicKey.subarray(0, 16)),
    name: `CN=${opts.commonName ?? `parabft-validator-${toHex(kp.publicKey).slice(0, 16)}`}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 10 * 365 * 24 * 3600_000),
    signingAlgorithm: alg,
    keys: { privateKey, publicKey } as unknown as Parameters<
      typeof x509.X509CertificateGenerator.createSelfSigned
    >[0]["keys"],
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
    ],
  });
  const pem = cert.toString("pem");
  if (!certificateBoundTo(pem, kp.publicKey)) {
    throw new CryptoError(
      "KEY_MISMATCH",
      { field: "certificate" },
      "generated certificate does not carry the key",
    );
  }
  return `${pem}\n`;
}
