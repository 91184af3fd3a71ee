import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CryptoError,
  decodeKeyFile,
  encodeKeyFile,
  generateKeyPair,
  keyPairFromSecret,
  readKeyFile,
  writeKeyFile,
} from "../../../src/crypto/index.js";
import { addressOf } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";

const code = (c: string) => (err: unknown) => err instanceof CryptoError && err.code === c;

describe("key files", () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "parabft-keys-"));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("generates distinct keys whose address is addressOf(publicKey)", () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    assert.notDeepEqual(a.secretKey, b.secretKey);
    assert.equal(a.publicKey.length, 32);
    assert.deepEqual(a.address, addressOf(a.publicKey));
  });

  it("writes the key file with mode 0600, leaves no temp file, and reads it back", async () => {
    const kp = generateKeyPair();
    const file = path.join(dir, "v1", "validator_key.json");
    await writeKeyFile(file, kp);
    const st = await fs.stat(file);
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(await fs.readdir(path.dirname(file)), ["validator_key.json"]);
    const back = await readKeyFile(file);
    assert.deepEqual(back.secretKey, kp.secretKey);
    assert.deepEqual(back.publicKey, kp.publicKey);
    assert.deepEqual(back.address, kp.address);
    const json = JSON.parse(await fs.readFile(file, "utf8"));
    assert.deepEqual(Object.keys(json).sort(), ["address", "publicKey", "secretKey"]);
  });

  it("refuses to overwrite an existing key file unless asked", async () => {
    const file = path.join(dir, "exists.json");
    await writeKeyFile(file, generateKeyPair());
    await assert.rejects(writeKeyFile(file, generateKeyPair()), code("KEY_FILE_EXISTS"));
    const kp = generateKeyPair();
    await writeKeyFile(file, kp, { overwrite: true });
    assert.deepEqual((await readKeyFile(file)).publicKey, kp.publicKey);
  });

  it("reports a missing file, bad JSON, wrong lengths and mismatched keys with typed codes", async () => {
    await assert.rejects(readKeyFile(path.join(dir, "nope.json")), code("KEY_FILE_MISSING"));
    const kp = keyPairFromSecret(new Uint8Array(32).fill(9));
    const other = keyPairFromSecret(new Uint8Array(32).fill(8));
    const good = JSON.parse(encodeKeyFile(kp));
    assert.throws(() => decodeKeyFile("{not json"), code("KEY_FILE_MALFORMED"));
    assert.throws(() => decodeKeyFile("[]"), code("KEY_FILE_MALFORMED"));
    assert.throws(
      () => decodeKeyFile(JSON.stringify({ ...good, secretKey: undefined })),
      code("KEY_FILE_MALFORMED"),
    );
    assert.throws(
      () => decodeKeyFile(JSON.stringify({ ...good, secretKey: "zz" })),
      code("KEY_FILE_MALFORMED"),
    );
    assert.throws(() => decodeKeyFile(JSON.stringify({ ...good, secretKey: "abcd" })), code("KEY_LENGTH"));
    assert.throws(() => decodeKeyFile(JSON.stringify({ ...good, publicKey: "00" })), code("KEY_LENGTH"));
    assert.throws(
      () => decodeKeyFile(JSON.stringify({ ...good, publicKey: toHex(other.publicKey) })),
      code("KEY_MISMATCH"),
    );
    assert.throws(
      () => decodeKeyFile(JSON.stringify({ ...good, address: toHex(other.address) })),
      code("KEY_MISMATCH"),
    );
  });

  it("error messages never contain the secret key", () => {
    const kp = keyPairFromSecret(new Uint8Array(32).fill(5));
    const other = keyPairFromSecret(new Uint8Array(32).fill(6));
    const text = JSON.stringify({ ...JSON.parse(encodeKeyFile(kp)), publicKey: toHex(other.publicKey) });
    try {
      decodeKeyFile(text, "k.json");
      assert.fail("expected an error");
    } catch (err) {
      assert.ok(err instanceof CryptoError);
      assert.ok(!err.message.includes(toHex(kp.secretKey)));
      assert.ok(!JSON.stringify(err.detail).includes(toHex(kp.secretKey)));
    }
  });
});
