// `parabft tx stake ...` and `parabft query delegations|validators` in-process against the real
// ApiServer over a fake node: the transactions carry the staking call and the access list the
// executor will enforce; the queries read staking state; bad flags are usage errors.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { UsageError } from "../../../src/cli/command.js";
import { queryCommand } from "../../../src/cli/commands/query.js";
import { txCommand } from "../../../src/cli/commands/tx.js";
import type { KeyPair } from "../../../src/crypto/keys.js";
import { TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";
import {
  encodeDelegator,
  encodeValidator,
  stakingKeys,
  ValidatorStatus,
} from "../../../src/staking/index.js";
import { toHex } from "../../../src/types/index.js";
import type { FakeNode } from "../api/fakeNode.js";
import { capture, type FakeServer, startFakeServer } from "../api/fakeServer.js";

describe("tx stake and staking queries", () => {
  let fx: FakeServer;
  let node: FakeNode;
  let api: string;
  let keyFile: string;
  let kp: KeyPair;
  const validator = new Uint8Array(20).fill(0x42);

  before(async () => {
    fx = await startFakeServer("parabft-stake-cli-");
    ({ node, api, keyFile, kp } = fx);
  });

  after(async () => {
    await fx?.stop();
  });

  const lastBody = () => fromBinary(TxBodySchema, node.blocks.at(-1)!.block!.txs.at(-1)!.body);
  const keys = (ks: Uint8Array[]) => ks.map(toHex).sort();

  it("register and vote build the staking call with the executor's access list", async () => {
    const ck = "ab".repeat(32);
    const reg = await capture(() =>
      txCommand.run([
        "stake",
        "register",
        ...["--api", api, "--key", keyFile, "--consensus-key", ck, "--self-stake", "5000"],
        ...["--peer-address", "127.0.0.1:7005", "--commission-bps", "250", "--wait", "--json"],
      ]),
    );
    assert.equal(reg.code, 0, reg.out);
    let body = lastBody();
    assert.equal(body.call?.call.case, "staking");
    const call = body.call?.call.case === "staking" ? body.call.call.value.call : undefined;
    assert.equal(call?.case, "registerValidator");
    if (call?.case === "registerValidator") {
      assert.equal(toHex(call.value.consensusKey), ck);
      assert.equal(call.value.peerAddress, "127.0.0.1:7005");
      assert.equal(call.value.commissionBps, 250);
    }
    assert.ok(keys(body.access!.writes).includes(toHex(stakingKeys.validator(kp.address))));
    assert.ok(keys(body.access!.writes).includes(toHex(stakingKeys.registry())));

    // The current ballot (asked from the node) is declared too, so the vote may withdraw from it.
    const old = new Uint8Array(20).fill(0x07);
    node.state.set(
      toHex(stakingKeys.delegator(kp.address)),
      encodeDelegator({
        free: 10n,
        ballot: [{ validator: old, shares: 5n }],
        unbonding: [],
        exposures: [{ validator: new Uint8Array(20).fill(0x09), amount: 3n, sinceEpoch: 0n }],
      }),
    );
    const v = await capture(() =>
      txCommand.run([
        "stake",
        "vote",
        "--api",
        api,
        "--key",
        keyFile,
        "--ballot",
        `${toHex(validator)}=7`,
        "--wait",
        "--json",
      ]),
    );
    assert.equal(v.code, 0, v.out);
    body = lastBody();
    const w = keys(body.access!.writes);
    assert.ok(w.includes(toHex(stakingKeys.validator(old))), "old ballot declared");
    assert.ok(w.includes(toHex(stakingKeys.validator(new Uint8Array(20).fill(0x09)))), "exposures declared");
    assert.ok(w.includes(toHex(stakingKeys.validator(validator))), "new ballot declared");
    assert.ok(w.includes(toHex(stakingKeys.delegator(kp.address))));
  });

  it("query delegations and validators read staking state", async () => {
    node.state.set(
      toHex(stakingKeys.validator(validator)),
      encodeValidator({
        operator: validator,
        consensusKey: new Uint8Array(32).fill(1),
        commissionBps: 0,
        selfStake: 900n,
        peerAddress: "127.0.0.1:7009",
        status: ValidatorStatus.jailed,
        jailedUntil: 4n,
        registeredEpoch: 0n,
        tokens: 100n,
        shares: 100n,
        doubleSign: null,
        lateSlashed: 0n,
      }),
    );
    const d = await capture(() =>
      queryCommand.run(["delegations", "--api", api, "--address", toHex(kp.address), "--json"]),
    );
    assert.equal(d.code, 0);
    const got = JSON.parse(d.out);
    assert.equal(got.bondedFree, "10");
    assert.deepEqual(got.ballot, [{ validator: "07".repeat(20), value: "0", shares: "5" }]);
    // No validator set is known for epoch 9: exit 1 with a message, not a crash.
    const none = await capture(() => queryCommand.run(["validators", "--api", api, "--epoch", "9"]));
    assert.equal(none.code, 1);
  });

  it("rejects bad stake flags with usage errors naming the flag", async () => {
    await assert.rejects(txCommand.run(["stake", "bogus", "--api", api, "--key", keyFile]), UsageError);
    await assert.rejects(
      txCommand.run(["stake", "vote", "--api", api, "--key", keyFile, "--ballot", "zz=1"]),
      (e: unknown) => e instanceof UsageError && /--ballot/.test(e.message),
    );
    await assert.rejects(
      txCommand.run([
        "stake",
        "register",
        "--api",
        api,
        "--key",
        keyFile,
        "--consensus-key",
        "12",
        "--self-stake",
        "1",
        "--peer-address",
        "a:1",
      ]),
      (e: unknown) => e instanceof UsageError && /--consensus-key/.test(e.message),
    );
    await assert.rejects(
      txCommand.run(["stake", "delegate", "--api", api, "--key", keyFile, "--amount", "-3"]),
      (e: unknown) => e instanceof UsageError && /--amount/.test(e.message),
    );
  });
});
