// The staking queries end to end over gRPC: a fake node serves executed state (built by real
// staking transactions) and the SDK reads validators of an epoch and an address's delegations.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiServer } from "../../../src/api/index.js";
import { ParabftClient } from "../../../src/client/node.js";
import type { TestAccount } from "../../../src/exec/workload.js";
import { TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { toHex } from "../../../src/types/bytes.js";
import {
  consensusKey,
  delegate,
  MiniChain,
  register,
  testRules,
  undelegate,
  vote,
} from "../../property/stakingGen.js";
import { FakeNode } from "../api/fakeNode.js";

function strToHex(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) out += s.charCodeAt(i).toString(16).padStart(2, "0");
  return out;
}

describe("staking: API and SDK queries", () => {
  it("serves validators (power, status, epoch range) and delegations from executed state", async () => {
    const c = new MiniChain(6, 1_000_000n, testRules({ minValidators: 2, maxValidators: 2 }));
    const [a, b, v3, d1] = c.accounts as [TestAccount, TestAccount, TestAccount, TestAccount];
    const ok = (s: TxStatus) => assert.equal(s, TxStatus.OK);
    ok(c.submit(a, register(consensusKey(1).publicKey, 1000n, "127.0.0.1:7001")).status);
    ok(c.submit(b, register(consensusKey(2).publicKey, 2000n, "127.0.0.1:7002")).status);
    ok(c.submit(v3, register(consensusKey(3).publicKey, 1500n, "127.0.0.1:7003")).status);
    ok(c.submit(d1, delegate(5000n)).status);
    ok(c.submit(d1, vote([{ validator: a.address, amount: 4000n }])).status);
    ok(c.submit(d1, undelegate(1000n)).status);
    c.endEpoch(); // elects epoch 2: a (5000), b (2000)

    const node = new FakeNode();
    for (const [k, v] of c.state) node.state.set(strToHex(k), v);
    const server = new ApiServer({ address: "127.0.0.1:0" }, { backend: node, log: silentLogger() });
    let client: ParabftClient | null = null;
    try {
      await server.start();
      client = new ParabftClient(`127.0.0.1:${server.port}`);
      const e2 = await client.getStakingValidators(2n);
      assert.equal(e2.setKnown, true);
      assert.equal(e2.firstHeight, 40n);
      assert.equal(e2.lastHeight, 59n);
      assert.deepEqual(
        e2.validators.map((v) => [toHex(v.operator), v.status, v.power]),
        [
          [toHex(a.address), "active", "5000"],
          [toHex(b.address), "active", "2000"],
          [toHex(v3.address), "candidate", "1500"],
        ],
      );
      assert.equal(e2.validators[0]!.peerAddress, "127.0.0.1:7001");
      const current = await client.getStakingValidators();
      assert.equal(current.epoch, 1n);
      assert.equal(current.setKnown, true, "genesis wrote the (empty) sets of epochs 0 and 1");
      const d = await client.getDelegations(d1.address);
      assert.equal(d.free, "0");
      assert.deepEqual(
        d.ballot.map((x) => [toHex(x.validator), x.value]),
        [[toHex(a.address), "4000"]],
      );
      assert.deepEqual(
        d.unbonding.map((u) => [u.amount, u.matureEpoch]),
        [["1000", BigInt(testRules().unbondingEpochs)]],
      );
      await assert.rejects(client.getDelegations(new Uint8Array(3)), /INVALID_ARGUMENT/);
    } finally {
      client?.close();
      await server.stop();
    }
  });
});
