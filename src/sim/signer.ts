// The stand-in signature scheme (DESIGN §2 "Pure core"): a keyed hash instead of Ed25519, so
// thousands of seeds fit in a CI budget. It keeps the one property consensus relies on: only
// the holder of the secret can produce a signature that verifies under its public key.
import { hash } from "node:crypto";
import { SIGNATURE_LENGTH } from "../types/block.js";
import { bytesEqual, toHex } from "../types/bytes.js";
import type { MessageSigner, SignatureVerifier } from "../types/signing.js";

function keyedHash(secret: Uint8Array, message: Uint8Array): Uint8Array {
  const buf = Buffer.allocUnsafe(secret.length + message.length);
  buf.set(secret, 0);
  buf.set(message, secret.length);
  return hash("sha256", buf, "buffer");
}

function publicKeyOf(secret: Uint8Array): Uint8Array {
  return keyedHash(new TextEncoder().encode("PARABFT/SIM/PK\0"), secret);
}

/**
 * Maps public keys to secrets. Verification recomputes the keyed hash, so a signature made
 * with any other secret (a forger's) fails. Signatures are 64 bytes like Ed25519 so that
 * length checks in the envelope code behave exactly as they do on the node.
 */
export class StandInKeyRegistry implements SignatureVerifier {
  private readonly secrets = new Map<string, Uint8Array>();
  /** Validator keys are the same objects on every call: skip the hex lookup for them. */
  private readonly byObject = new WeakMap<Uint8Array, Uint8Array>();
  verifications = 0;

  /** Creates a key pair from a deterministic secret (e.g. derived from the seed). */
  newSigner(secret: Uint8Array): StandInSigner {
    const pk = publicKeyOf(secret);
    this.secrets.set(toHex(pk), secret);
    return new StandInSigner(secret, pk);
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    this.verifications++;
    if (signature.length !== SIGNATURE_LENGTH) return false;
    let secret = this.byObject.get(publicKey);
    if (secret === undefined) {
      secret = this.secrets.get(toHex(publicKey));
      if (secret === undefined) return false;
      this.byObject.set(publicKey, secret);
    }
    const h = keyedHash(secret, message);
    return bytesEqual(h, signature.subarray(0, 32)) && bytesEqual(h, signature.subarray(32));
  }
}

export class StandInSigner implements MessageSigner {
  constructor(
    private readonly secret: Uint8Array,
    readonly publicKey: Uint8Array,
  ) {}

  sign(message: Uint8Array): Uint8Array {
    const h = keyedHash(this.secret, message);
    const sig = new Uint8Array(SIGNATURE_LENGTH);
    sig.set(h, 0);
    sig.set(h, 32);
    return sig;
  }
}
