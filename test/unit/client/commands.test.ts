// `parabft tx` and `parabft query` run in-process against the real ApiServer over a fake node:
// JSON output, exit codes, and usage errors that name the flag.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { UsageError } from "../../../src/cli/command.js";
import { queryCommand } from "../../../src/cli/commands/query.js";
import { txCommand } from "../../../src/cli/commands/tx.js";
import type { KeyPair } from "../../../src/crypto/keys.js";
import { toHex } from "../../../src/types/index.js";
import { capture, type FakeServer, startFakeServer } from "../api/fakeServer.js";

describe("tx and query commands", () => {
  let fx: FakeServer;
  let api: string;
  let keyFile: string;
  let kp: KeyPair;

  before(async () => {
    fx = await startFakeServer("parabft-sdk-cli-");
    ({ api, keyFile, kp } = fx);
  });

  after(async () => {
    await fx?.stop();
  });

  it("sends a transfer, waits for its receipt, and finds it again with query tx", async () => {
    const to = "11".repeat(20);
    const sent = await capture(() =>
      txCommand.run([
        "transfer",
        "--api",
        api,
        "--key",
        keyFile,
        "--to",
        to,
        "--amount",
        "5",
        "--wait",
        "--json",
      ]),
    );
    assert.equal(sent.code, 0);
    const tx = JSON.parse(sent.out);
    assert.equal(tx.sender, toHex(kp.address));
    assert.equal(tx.nonce, "0");
    assert.equal(tx.receipt.status, "OK");
    const q = await capture(() => queryCommand.run(["tx", "--api", api, "--hash", tx.txHash, "--json"]));
    assert.equal(q.code, 0);
    const got = JSON.parse(q.out);
    assert.equal(got.height, tx.height);
    assert.equal(got.call, "transfer");
    assert.equal(got.receipt.status, "OK");

    // The next transaction picks up the account's next nonce from the chain.
    const second = await capture(() =>
      txCommand.run([
        "kv-put",
        "--api",
        api,
        "--key",
        keyFile,
        "--kv-key",
        "k",
        "--value",
        "0x0102",
        "--wait",
        "--json",
      ]),
    );
    assert.equal(JSON.parse(second.out).nonce, "1");
    const acct = await capture(() =>
      queryCommand.run(["account", "--api", api, "--address", toHex(kp.address), "--json"]),
    );
    assert.equal(JSON.parse(acct.out).nonce, "2");
  });

  it("flags a block whose commit certificate does not verify (the fake node signs nothing)", async () => {
    const status = JSON.parse(
      (await capture(() => queryCommand.run(["status", "--api", api, "--json"]))).out,
    );
    assert.equal(status.state, "validating");
    const b = await capture(() =>
      queryCommand.run(["block", "--api", api, "--height", status.committedHeight, "--json"]),
    );
    assert.equal(b.code, 1);
    assert.match(JSON.parse(b.out).certificate, /^INVALID: /);
    const skip = await capture(() =>
      queryCommand.run(["block", "--api", api, "--height", status.committedHeight, "--no-verify", "--json"]),
    );
    assert.equal(skip.code, 0);
    const missing = await capture(() => queryCommand.run(["block", "--api", api, "--height", "99999"]));
    assert.equal(missing.code, 1);
  });

  it("rejects bad flags with a usage error naming the flag, before any network call", async () => {
    const cases: [string[], string][] = [
      [["transfer", "--api", api, "--key", keyFile, "--to", "abc", "--amount", "1"], "--to"],
      [["transfer", "--api", api, "--key", keyFile, "--to", "11".repeat(20), "--amount", "-1"], "--amount"],
      [["transfer", "--key", keyFile, "--to", "11".repeat(20), "--amount", "1"], "--api"],
      [["kv-cas", "--api", api, "--key", keyFile, "--kv-key", "k", "--value", "v"], "--expect"],
      [["mint", "--api", api], "action"],
    ];
    for (const [argv, field] of cases) {
      await assert.rejects(
        txCommand.run(argv),
        (e: unknown) => e instanceof UsageError && e.detail.field === field,
        argv.join(" "),
      );
    }
    await assert.rejects(
      queryCommand.run(["block", "--api", api]),
      (e: unknown) => e instanceof UsageError && e.detail.field === "--height",
    );
    await assert.rejects(
      queryCommand.run(["tx", "--api", api, "--hash", "12"]),
      (e: unknown) => e instanceof UsageError && e.detail.field === "--hash",
    );
    // DPoS light-client queries: epoch-proof needs --epoch; --verify-from-genesis needs a height.
    await assert.rejects(
      queryCommand.run(["epoch-proof", "--api", api]),
      (e: unknown) => e instanceof UsageError && e.detail.field === "--epoch",
    );
    await assert.rejects(
      queryCommand.run(["block", "--api", api, "--digest", "ab".repeat(32), "--verify-from-genesis"]),
      (e: unknown) => e instanceof UsageError && e.detail.field === "--verify-from-genesis",
    );
    // A node without epochs (the fake) refuses the proof with its code; the command exits 1.
    const errs: string[] = [];
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => errs.push(String(chunk)) > 0) as typeof process.stderr.write;
    let code: number;
    try {
      code = await queryCommand.run(["epoch-proof", "--api", api, "--epoch", "2"]);
    } finally {
      process.stderr.write = writeErr;
    }
    assert.equal(code, 1);
    assert.match(errs.join(""), /NO_EPOCHS/);
  });
});
