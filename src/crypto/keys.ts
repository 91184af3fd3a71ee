// Ed25519 keys: generation and the validator key file (DESIGN §3). Keys are generated and encoded
// with @noble/curves so the SDK and the node agree byte for byte; the node signs and verifies with
// node:crypto (see node.ts), which yields identical signatures because Ed25519 is deterministic.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { addressOf, PUBLIC_KEY_LENGTH } from "../types/block.js";
import { bytesEqual, fromHex, toHex } from "../types/bytes.js";
import { CryptoError } from "./errors.js";

export const SECRET_KEY_LENGTH = 32;

export interface KeyPair {
  /** The 32-byte RFC 8032 seed. Never log it. */
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** addressOf(publicKey): first 20 bytes of SHA-256 of the public key. */
  readonly address: Uint8Array;
}

export function keyPairFromSecret(secretKey: Uint8Array): KeyPair {
  if (secretKey.length !== SECRET_KEY_LENGTH) {
    throw new CryptoError(
      "KEY_LENGTH",
      { field: "secretKey" },
      `secret key must be ${SECRET_KEY_LENGTH} bytes`,
    );
  }
  const sk = Uint8Array.from(secretKey);
  const publicKey = ed25519.getPublicKey(sk);
  return { secretKey: sk, publicKey, address: addressOf(publicKey) };
}

export function generateKeyPair(): KeyPair {
  return keyPairFromSecret(new Uint8Array(randomBytes(SECRET_KEY_LENGTH)));
}

/** Signs with @noble/curves: what the SDK does. Nodes use NodeSigner (same output, faster). */
export function nobleSign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretKey);
}

/** Strict RFC 8032 verification with noble, as the SDK does it for commit certificates. */
export function nobleVerifyStrict(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

interface KeyFileJson {
  publicKey: string;
  secretKey: string;
  address: string;
}

export function encodeKeyFile(kp: KeyPair): string {
  const json: KeyFileJson = {
    publicKey: toHex(kp.publicKey),
    secretKey: toHex(kp.secretKey),
    address: toHex(kp.address),
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** Parses and validates key file contents; `where` names the file in errors. */
export function decodeKeyFile(text: string, where = "<key file>"): KeyPair {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CryptoError("KEY_FILE_MALFORMED", { path: where }, `${where}: not valid JSON`);
  }
  if (typeof raw !== "object" || raw === null) {
    throw new CryptoError("KEY_FILE_MALFORMED", { path: where }, `${where}: expected a JSON object`);
  }
  const obj = raw as Record<string, unknown>;
  const field = (name: keyof KeyFileJson, len: number): Uint8Array => {
    const v = obj[name];
    if (typeof v !== "string") {
      throw new CryptoError(
        "KEY_FILE_MALFORMED",
        { path: where, field: name },
        `${where}: missing "${name}"`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = fromHex(v);
    } catch {
      throw new CryptoError(
        "KEY_FILE_MALFORMED",
        { path: where, field: name },
        `${where}: "${name}" is not hex`,
      );
    }
    if (bytes.length !== len) {
      throw new CryptoError(
        "KEY_LENGTH",
        { path: where, field: name },
        `${where}: "${name}" must be ${len} bytes, got ${bytes.length}`,
      );
    }
    return bytes;
  };
  const secretKey = field("secretKey", SECRET_KEY_LENGTH);
  const publicKey = field("publicKey", PUBLIC_KEY_LENGTH);
  const kp = keyPairFromSecret(secretKey);
  if (!bytesEqual(kp.publicKey, publicKey)) {
    throw new CryptoError(
      "KEY_MISMATCH",
      { path: where, field: "publicKey" },
      `${where}: publicKey does not match secretKey`,
    );
  }
  if (obj.address !== undefined) {
    const address = field("address", kp.address.length);
    if (!bytesEqual(address, kp.address)) {
      throw new CryptoError(
        "KEY_MISMATCH",
        { path: where, field: "address" },
        `${where}: address does not match`,
      );
    }
  }
  return kp;
}

/**
 * Writes the key file with mode 0600: the secret never exists on disk with wider permissions,
 * because the temp file is created 0600 and then renamed into place.
 */
export async function writeKeyFile(
  file: string,
  kp: KeyPair,
  opts: { overwrite?: boolean } = {},
): Promise<void> {
  if (!opts.overwrite) {
    const exists = await fs.stat(file).then(
      () => true,
      () => false,
    );
    if (exists) throw new CryptoError("KEY_FILE_EXISTS", { path: file }, `${file}: key file already exists`);
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, encodeKeyFile(kp), 0o600);
}

export async function readKeyFile(file: string): Promise<KeyPair> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new CryptoError("KEY_FILE_MISSING", { path: file }, `${file}: key file not found`);
    }
    throw err;
  }
  return decodeKeyFile(text, file);
}

/** temp file (mode) -> fsync -> rename -> fsync dir. Shared with the signing state store. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fh = await fs.open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

export async function fsyncDir(dir: string): Promise<void> {
  const dh = await fs.open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
