import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { emptyPersistedState } from "../../../src/consensus/pbft/persist.js";
import { SafetyRules } from "../../../src/consensus/pbft/safetyRules.js";
import { PreparedCertificateSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { commitSignBytes } from "../../../src/types/signing.js";
import { CHAIN, testSigner, testVerifier } from "./harness.js";

const X = new Uint8Array(32).fill(1);
const Y = new Uint8Array(32).fill(2);
const pc = (view: bigint, height: bigint, d: Uint8Array) =>
  create(PreparedCertificateSchema, { view, height, blockDigest: d, prepares: [] });
const rules = (opts: { silent?: boolean; commitLock?: boolean } = {}) =>
  new SafetyRules(
    CHAIN,
    0n,
    testSigner(1),
    opts.commitLock ? { commitLock: true } : undefined,
    opts.silent ?? false,
  );

describe("SafetyRules", () => {
  it("signs one PREPARE per (view, height); the same digest again is not fresh", () => {
    const s = rules();
    assert.equal(s.prepare(0n, 5n, X)?.fresh, true);
    assert.equal(s.prepare(0n, 5n, X)?.fresh, false);
    assert.equal(s.prepare(0n, 5n, Y), null);
    assert.equal(s.prepare(1n, 5n, Y)?.fresh, true, "another view is another vote");
  });

  it("signs COMMIT(v) only with a prepared certificate of view v for that digest; no lock across views", () => {
    const s = rules();
    assert.equal(s.commit(1n, 5n, X, { prepared: pc(0n, 5n, X) }), null, "certificate of another view");
    assert.equal(s.commit(1n, 5n, X, { prepared: pc(1n, 5n, Y) }), null, "certificate of another digest");
    const sig = s.commit(1n, 5n, X, { prepared: pc(1n, 5n, X) });
    assert.ok(sig !== null);
    assert.ok(testVerifier.verify(testSigner(1).publicKey, commitSignBytes(CHAIN, 0n, 1n, 5n, X), sig));
    assert.equal(s.commit(1n, 5n, Y, { certified: true }), null, "one COMMIT per view");
    assert.ok(
      s.commit(2n, 5n, Y, { prepared: pc(2n, 5n, Y) }) !== null,
      "a later view may COMMIT another digest",
    );
  });

  it("commitLock (test-only) refuses a second digest at a height in any view", () => {
    const s = rules({ commitLock: true });
    assert.ok(s.commit(1n, 5n, X, { prepared: pc(1n, 5n, X) }) !== null);
    assert.equal(s.commit(2n, 5n, Y, { prepared: pc(2n, 5n, Y) }), null);
  });

  it("signs nothing but CHECKPOINTs while silent (amnesia), everything after rejoin", () => {
    const s = rules({ silent: true });
    assert.equal(s.prepare(0n, 5n, X), null);
    assert.equal(s.commit(0n, 5n, X, { prepared: pc(0n, 5n, X) }), null);
    assert.equal(s.prePrepare(0n, 5n, "aa"), false);
    assert.equal(s.viewChange(), false);
    assert.equal(s.checkpoint(5n, X, Y).length > 0, true);
    s.rejoin();
    assert.equal(s.prepare(0n, 5n, X)?.fresh, true);
  });

  it("restores what was signed before a crash and forgets it at a stable checkpoint", () => {
    const p = emptyPersistedState();
    p.prepares.push({ epoch: 0n, view: 0n, height: 5n, digest: X });
    p.commits.push({ epoch: 0n, view: 0n, height: 5n, digest: X, prepared: pc(0n, 5n, X) });
    const s = rules();
    s.restore(p, () => true);
    assert.equal(s.prepare(0n, 5n, Y), null);
    assert.equal(s.commit(0n, 5n, Y, { certified: true }), null);
    s.prune(5n);
    assert.equal(s.signedIn("prepare", 5n, 0n), undefined);
  });
});
