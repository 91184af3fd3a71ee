// The driver sends an unchanged status only every STATUS_REPEAT_TICKS ticks (idle CPU, issue 14);
// a changed one, another epoch's, and every other broadcast go out at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { sealMessage } from "../../../src/consensus/envelope.js";
import type { Action } from "../../../src/consensus/pbft/types.js";
import { PeerMessageSchema, StatusReportSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { ConsensusDriver, type DriverOpts, STATUS_REPEAT_TICKS } from "../../../src/node/driver.js";
import { CHAIN, testSigner } from "../consensus/harness.js";
import { noop, stubDriverModules } from "./driverStubs.js";

const TICK_MS = 500;

function setup() {
  let clock = 1_000_000;
  const sent: string[] = [];
  const mod = stubDriverModules({
    net: {
      broadcast: (b: Uint8Array) => sent.push(`broadcast ${b.length}`),
      send: noop,
      penalize: noop,
    },
    now: () => clock,
  });
  const driver = new ConsensusDriver({ chainId: CHAIN, self: 0, tickMs: TICK_MS } as DriverOpts, mod);
  const perform = (actions: Action[]) =>
    (driver as unknown as { perform(a: Action[]): void }).perform(actions);
  const advance = (ms: number) => {
    clock += ms;
  };
  return { perform, sent, advance };
}

function status(committedHeight: bigint, epoch = 0n) {
  return sealMessage(
    CHAIN,
    epoch,
    0,
    testSigner(0),
    create(PeerMessageSchema, {
      kind: { case: "status", value: create(StatusReportSchema, { committedHeight }) },
    }),
  );
}

const settle = () => new Promise((r) => setImmediate(r));

describe("status repeat", () => {
  it("sends an unchanged status every STATUS_REPEAT_TICKS ticks, a changed one at once", async () => {
    const d = setup();
    const count = async (actions: Action[]) => {
      const before = d.sent.length;
      d.perform(actions);
      await settle();
      return d.sent.length - before;
    };
    assert.equal(await count([{ kind: "broadcast", msg: status(3n) }]), 1, "the first goes out");
    for (let t = 1; t < STATUS_REPEAT_TICKS; t++) {
      d.advance(TICK_MS);
      // Re-signed each tick (a fresh envelope), same report: held back.
      assert.equal(await count([{ kind: "broadcast", msg: status(3n) }]), 0, `tick ${t}`);
    }
    d.advance(TICK_MS);
    assert.equal(await count([{ kind: "broadcast", msg: status(3n) }]), 1, "repeated after the interval");
    d.advance(TICK_MS);
    assert.equal(
      await count([{ kind: "broadcast", msg: status(4n) }]),
      1,
      "a change goes out at the next tick",
    );
    assert.equal(await count([{ kind: "broadcast", msg: status(4n, 1n) }]), 1, "another epoch's own status");
    d.advance(TICK_MS);
    assert.equal(await count([{ kind: "broadcast", msg: status(4n) }]), 0);
    assert.equal(await count([{ kind: "broadcast", msg: status(4n, 1n) }]), 0);
    // Other kinds are never held back.
    const other = sealMessage(
      CHAIN,
      0n,
      0,
      testSigner(0),
      create(PeerMessageSchema, { kind: { case: "blockRequest", value: { fromHeight: 1n, toHeight: 1n } } }),
    );
    assert.equal(
      await count([
        { kind: "broadcast", msg: other },
        { kind: "broadcast", msg: other },
      ]),
      2,
    );
  });
});
