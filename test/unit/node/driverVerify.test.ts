// Issue 14 at the driver: a vote the core will not use is judged NOT_NEEDED without a verify and
// never reaches the core; a status skips its signature check but must come from its sender's stream.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { Event, StepResult, VoteKind, VoteQuery } from "../../../src/consensus/pbft/types.js";
import { StatusReportSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { ConsensusDriver, type DriverOpts } from "../../../src/node/driver.js";
import { CHAIN, envCtx, makeSets, prepareFrom, sealFrom, testVerifier } from "../consensus/harness.js";
import { stubDriverModules } from "./driverStubs.js";

function setup(needed: boolean) {
  const { sets } = makeSets(4);
  const events: Event[] = [];
  const verdicts: string[] = [];
  const asked: VoteKind[] = [];
  let verifies = 0;
  const verifier = {
    verify: (pk: Uint8Array, m: Uint8Array, s: Uint8Array) => {
      verifies++;
      return testVerifier.verify(pk, m, s);
    },
  };
  const mod = stubDriverModules({
    replica: {
      handle: (e: Event): StepResult => {
        events.push(e);
        return { actions: [], verdict: null, sender: null };
      },
      voteNeeded: ({ kind }: VoteQuery) => {
        asked.push(kind);
        return needed;
      },
      committedHeight: 0n,
    },
    envelopeContext: { ...envCtx(sets), verifier },
    metrics: { verdict: (kind: string, reason: string) => verdicts.push(`${kind} ${reason}`) },
  });
  const driver = new ConsensusDriver({ chainId: CHAIN, self: 0, tickMs: 500 } as DriverOpts, mod);
  return { driver, events, verdicts, asked, verifies: () => verifies };
}

const forged = (bytes: Uint8Array) => {
  const out = bytes.slice();
  out[out.length - 1]! ^= 1;
  return out;
};

describe("driver: verifies skipped (issue 14)", () => {
  it("a vote the core will not use is NOT_NEEDED: no verify, never handed to the core", () => {
    const d = setup(false);
    d.driver.onEnvelope(2, forged(prepareFrom(2, 0n, 1n, new Uint8Array(32)).bytes));
    assert.deepEqual(d.asked, ["prepare"]);
    assert.equal(d.verifies(), 0);
    assert.deepEqual(d.verdicts, ["ignore NOT_NEEDED"]);
    assert.equal(d.events.length, 0);
    // When the core needs it, the same forged vote is verified and rejected.
    const e = setup(true);
    e.driver.onEnvelope(2, forged(prepareFrom(2, 0n, 1n, new Uint8Array(32)).bytes));
    assert.equal(e.verifies(), 1);
    assert.deepEqual(e.verdicts, ["reject BAD_SIGNATURE"]);
    assert.equal(e.events.length, 0);
  });

  it("a status skips its signature check on its sender's stream only", () => {
    const d = setup(true);
    const status = forged(
      sealFrom(2, { case: "status", value: create(StatusReportSchema, { committedHeight: 5n }) }).bytes,
    );
    d.driver.onEnvelope(2, status);
    assert.equal(d.verifies(), 0);
    assert.equal(d.events.length, 1);
    assert.equal(d.events[0]?.kind, "checked");
    // The same bytes from another peer's stream: rejected, never handed on.
    d.driver.onEnvelope(3, status);
    assert.deepEqual(d.verdicts.at(-1), "reject UNKNOWN_SENDER");
    assert.equal(d.events.length, 1);
  });
});
