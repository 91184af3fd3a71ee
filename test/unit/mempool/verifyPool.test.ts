// The mempool with the node's real verifier (src/crypto VerifyPool, inline mode): the wiring the
// node uses, so a contract drift between the two shows up here.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VerifyPool } from "../../../src/crypto/index.js";
import { silentLogger } from "../../../src/logger/index.js";
import { Mempool, MempoolError } from "../../../src/mempool/index.js";
import { CHAIN, newKey, signedTx } from "./helpers.js";

describe("mempool with the crypto verify pool", () => {
  it("admits valid signatures, rejects forged ones, and leaves verdicts cached", async () => {
    const pool = new VerifyPool({ size: 0 });
    await pool.start();
    try {
      const mp = new Mempool(
        { chainId: CHAIN, maxTxs: 10, maxBytes: 1 << 20, maxPerSender: 10, maxTxBytes: 4096, maxNonceGap: 5 },
        { verifyTxs: (txs, hashes) => pool.verifyTxs(txs, hashes), nextNonce: () => 0n, log: silentLogger() },
      );
      const key = newKey();
      const good = signedTx(key, { nonce: 0n });
      const forged = signedTx(key, { nonce: 1n });
      forged.signature = Uint8Array.from(forged.signature);
      forged.signature[0]! ^= 0x80;
      const res = await mp.addBatch([good, forged], "peer");
      assert.equal(res[0]!.ok, true);
      assert.ok(
        !res[1]!.ok && res[1]!.error instanceof MempoolError && res[1]!.error.code === "BAD_SIGNATURE",
      );
      assert.ok(pool.hasVerdict(good), "a block carrying this tx will not be verified again");
    } finally {
      await pool.stop();
    }
  });
});
