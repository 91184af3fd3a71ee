// Epoch handoff in the pure core (issue 11): the arithmetic, the per-epoch signing-state fold,
// and EpochReplica's switch rules on a one-validator chain (a single member is its own quorum, so
// every step is synchronous and the test needs no network).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  epochFloor,
  epochLengthProblem,
  epochOfHeight,
  isLastHeightOfEpoch,
  lastHeightOfEpoch,
} from "../../../src/consensus/epochs.js";
import {
  committedBlockOf,
  EpochReplica,
  persistedForEpoch,
} from "../../../src/consensus/pbft/epochReplica.js";
import { emptyPersistedState, foldSigningRecords } from "../../../src/consensus/pbft/persist.js";
import type { Action, ReplicaConfig } from "../../../src/consensus/pbft/types.js";
import { StaticEpochSets, ValidatorSet } from "../../../src/consensus/valset/index.js";
import { CommittedBlockSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { BlockHeaderSchema, BlockSchema, SignedTxSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { nextChainHash, txHash, txsRoot } from "../../../src/types/block.js";
import { u32be } from "../../../src/types/bytes.js";
import { CHAIN, testSigner, testVerifier, timing } from "./harness.js";

const L = 5;
const A = testSigner(0);
const B = testSigner(1);

function setOf(epoch: bigint, ...keys: Uint8Array[]): ValidatorSet {
  return ValidatorSet.uniform(epoch, keys);
}

function config(sets: StaticEpochSets, signer = A, extra: Partial<ReplicaConfig> = {}): ReplicaConfig {
  return {
    chainId: CHAIN,
    epoch: 0n,
    self: 0,
    publicKey: signer.publicKey,
    sets,
    signer,
    verifier: testVerifier,
    params: timing,
    maxMessageBytes: 1 << 20,
    epochLength: L,
    ...extra,
  };
}

/** Drives a one-member chain: each requested proposal is answered with a one-tx block. */
function run(r: EpochReplica, actions: Action[], steps = 200): Action[] {
  const seen: Action[] = [];
  let queue = actions;
  for (let i = 0; i < steps && queue.length > 0; i++) {
    const next: Action[] = [];
    for (const a of queue) {
      seen.push(a);
      if (a.kind === "requestProposal") {
        const tx = create(SignedTxSchema, { body: u32be(Number(a.height)), signature: new Uint8Array(0) });
        const block = create(BlockSchema, {
          header: create(BlockHeaderSchema, {
            chainId: CHAIN,
            height: a.height,
            epoch: r.epoch,
            txsRoot: txsRoot([txHash(tx)]),
            validatorsHash: r.set.hash,
            proposer: r.selfIndex ?? -1,
            timestampMs: 1000n,
          }),
          txs: [tx],
        });
        next.push(...r.step({ kind: "proposal", height: a.height, block }));
      } else if (a.kind === "deliver") {
        next.push(...r.step({ kind: "executed", height: a.height, stateRoot: new Uint8Array(32).fill(7) }));
      }
    }
    queue = next;
  }
  return seen;
}

/** The chain hash after `h` of the given committed blocks (heights 1..). */
function chainHashAt(
  blocks: { height: bigint; certificate?: { blockDigest: Uint8Array } }[],
  h: bigint,
): Uint8Array {
  let c: Uint8Array = new Uint8Array(32);
  for (const b of blocks) if (b.height <= h) c = nextChainHash(c, b.certificate!.blockDigest);
  return c;
}

describe("epoch arithmetic", () => {
  it("epoch e covers floor(h / L) == e; B(e) is its last height and the floor of e + 1", () => {
    assert.equal(epochOfHeight(0n, L), 0n);
    assert.equal(epochOfHeight(4n, L), 0n);
    assert.equal(epochOfHeight(5n, L), 1n);
    assert.equal(lastHeightOfEpoch(0n, L), 4n);
    assert.equal(lastHeightOfEpoch(2n, L), 14n);
    assert.ok(isLastHeightOfEpoch(14n, L) && !isLastHeightOfEpoch(15n, L));
    assert.equal(epochFloor(0n, L), 0n);
    assert.equal(epochFloor(3n, L), lastHeightOfEpoch(2n, L));
    assert.equal(epochFloor(3n, undefined), 0n);
    assert.equal(epochLengthProblem(10, 5), null);
    assert.match(epochLengthProblem(12, 5) ?? "", /multiple/);
    assert.match(epochLengthProblem(1, 1) ?? "", />= 2/);
  });
});

describe("signing state per epoch", () => {
  it("a view record of a later epoch restarts the view at 0; each instance sees only its epoch", () => {
    const d = new Uint8Array(32).fill(1);
    const s = foldSigningRecords([
      { kind: "view", view: 7n },
      { kind: "viewChange", epoch: 0n, newView: 8n },
      { kind: "prepare", epoch: 0n, view: 7n, height: 4n, digest: d },
      { kind: "view", view: 0n, epoch: 1n },
      { kind: "prepare", epoch: 1n, view: 0n, height: 5n, digest: d },
      { kind: "view", view: 3n },
    ]);
    assert.equal(s.epoch, 1n);
    assert.equal(s.view, 0n, "an epoch-0 view record after the switch does not move epoch 1's view");
    assert.equal(s.viewChangeSent, 0n);
    const e0 = persistedForEpoch(s, 0n);
    assert.deepEqual(
      e0.prepares.map((p) => p.height),
      [4n],
    );
    assert.equal(e0.view, 0n);
    const e1 = persistedForEpoch(s, 1n);
    assert.deepEqual(
      e1.prepares.map((p) => p.height),
      [5n],
    );
    // Records without epochs fold exactly as before (no epoch field appears).
    const old = foldSigningRecords([{ kind: "view", view: 2n }]);
    assert.deepEqual(old, { ...emptyPersistedState(), view: 2n });
  });
});

describe("EpochReplica", () => {
  it("orders nothing above B(0), waits for the next set, switches on setsChanged", () => {
    const sets = new StaticEpochSets([setOf(0n, A.publicKey)]);
    const r = new EpochReplica(config(sets));
    assert.deepEqual(r.startActions, []);
    const seen = run(r, r.step({ kind: "pendingWork", count: 1 }));
    const delivered = seen.filter((a) => a.kind === "deliver").map((a) => a.height);
    assert.deepEqual(delivered, [1n, 2n, 3n, 4n], "the set of epoch 0 stops at B(0) = 4");
    assert.ok(!seen.some((a) => a.kind === "requestProposal" && a.height > 4n));
    assert.ok(!seen.some((a) => a.kind === "epochChanged"));
    assert.ok(
      seen.some((a) => a.kind === "stableCheckpoint" && a.height === 4n),
      "B(0) is a checkpoint",
    );
    assert.equal(r.epoch, 0n);
    // The election result arrives: A and B, A now at index 1.
    sets.add(
      new ValidatorSet(1n, [
        { publicKey: B.publicKey, power: 1n },
        { publicKey: A.publicKey, power: 3n },
      ]),
    );
    const after = r.step({ kind: "setsChanged" });
    const ch = after.find((a) => a.kind === "epochChanged");
    assert.ok(ch !== undefined && ch.kind === "epochChanged");
    assert.equal(ch.epoch, 1n);
    assert.equal(ch.self, 1);
    assert.equal(ch.boundary, 4n);
    assert.ok(
      ch.proof !== undefined && ch.proof.height === 4n && ch.proof.epoch === 0n,
      "the old set's checkpoint certificate",
    );
    assert.equal(r.epoch, 1n);
    assert.equal(r.selfIndex, 1);
    // A holds 3 of 4: a quorum alone; it goes on at B(0) + 1 with certificates of epoch 1.
    const more = run(r, after);
    const certs = more.filter((a) => a.kind === "deliver");
    assert.ok(certs.length > 0);
    for (const d of certs) {
      if (d.kind !== "deliver") continue;
      assert.ok(d.height > 4n && d.height <= 9n);
      assert.equal(d.certificate.epoch, 1n);
      assert.equal(d.epoch, 1n);
    }
  });

  it("restarted at a boundary whose next set is known, it starts in the next epoch", () => {
    const sets = new StaticEpochSets([setOf(0n, A.publicKey), setOf(1n, A.publicKey)]);
    const r = new EpochReplica(
      config(sets, A, { start: { committedHeight: 4n, chainHash: new Uint8Array(32), executedHeight: 4n } }),
    );
    assert.equal(r.epoch, 1n);
    assert.equal(r.committedHeight, 4n);
  });

  it("a replica outside the set follows: it verifies each certificate against its height's epoch", () => {
    // Chain of A alone; B follows it (not in either set), then joins in epoch 2.
    const sets = new StaticEpochSets([setOf(0n, A.publicKey), setOf(1n, A.publicKey)]);
    const a = new EpochReplica(config(sets));
    const seen = run(a, a.step({ kind: "pendingWork", count: 1 }));
    const blocks = seen.flatMap((x) => (x.kind === "deliver" ? [committedBlockOf(x)] : []));
    assert.ok(blocks.length >= 9, `A committed ${blocks.length}`);
    const b = new EpochReplica(config(sets, B, { self: -1 }));
    assert.equal(b.selfIndex, null);
    assert.equal(b.status, "following");
    // A block whose certificate claims another epoch than its height's is not taken.
    const forged = create(CommittedBlockSchema, {
      ...blocks[0]!,
      certificate: { ...blocks[0]!.certificate!, epoch: 1n },
    });
    assert.deepEqual(b.step({ kind: "followBlocks", blocks: [forged] }), []);
    assert.equal(b.committedHeight, 0n);
    const out = b.step({ kind: "followBlocks", blocks });
    const got = out.filter((x) => x.kind === "deliver").map((x) => x.height);
    assert.deepEqual(
      got,
      blocks.map((x) => x.height),
    );
    assert.ok(out.some((x) => x.kind === "epochChanged" && x.epoch === 1n && x.self === null));
    assert.ok(
      !out.some((x) => x.kind === "broadcast" || x.kind === "send" || x.kind === "persist"),
      "a follower never signs",
    );
  });

  it("a member restarted epochs behind catches up from fetched blocks across boundaries (issue 11 restart)", () => {
    // A (power 3 of 4: a quorum alone) runs epochs 0..3 while B (a member of every set) is down.
    // Ordered so that A is the primary of view 0 in each epoch (B is down: no view changes here).
    const setAB = (e: bigint) => {
      const ab = [
        { publicKey: A.publicKey, power: 3n },
        { publicKey: B.publicKey, power: 1n },
      ];
      const s = new ValidatorSet(e, ab);
      return s.primary(0n) === 0 ? s : new ValidatorSet(e, [ab[1]!, ab[0]!]);
    };
    const sets = new StaticEpochSets([setAB(0n), setAB(1n), setAB(2n), setAB(3n)]);
    const a = new EpochReplica(config(sets));
    const seen = run(a, a.step({ kind: "pendingWork", count: 1 }), 400);
    const blocks = seen.flatMap((x) => (x.kind === "deliver" ? [committedBlockOf(x)] : []));
    assert.ok(blocks.length >= 3 * L + 2, `A committed ${blocks.length}`);
    // B restarts at height 2 (epoch 0) with its signing state: a validating member, not a follower.
    const b = new EpochReplica(
      config(sets, B, {
        self: sets.get(0n)!.indexOf(B.publicKey)!,
        start: { committedHeight: 2n, chainHash: chainHashAt(blocks, 2n), executedHeight: 2n },
        persisted: emptyPersistedState(),
      }),
    );
    assert.equal(b.epoch, 0n);
    assert.notEqual(b.status, "following");
    assert.equal(b.lagging, false);
    // A peer's envelope of a later epoch tells B it lags.
    const later = [...seen].reverse().find((x) => x.kind === "broadcast" && x.msg.envelope.epoch === 3n);
    assert.ok(later !== undefined && later.kind === "broadcast");
    b.step({ kind: "message", bytes: later.msg.bytes });
    assert.equal(b.lagging, true);
    // A forged certificate epoch is not taken.
    const forged = create(CommittedBlockSchema, {
      ...blocks[2]!,
      certificate: { ...blocks[2]!.certificate!, epoch: 1n },
    });
    assert.deepEqual(
      b.step({ kind: "followBlocks", blocks: [forged] }).filter((x) => x.kind === "deliver"),
      [],
    );
    // The fetched blocks carry B across the boundaries into A's epoch.
    const out: Action[] = [];
    for (let i = 0; i < 8 && b.committedHeight < blocks.at(-1)!.height; i++) {
      const got = b.step({
        kind: "followBlocks",
        blocks: blocks.filter((x) => x.height > b.committedHeight),
      });
      out.push(...got);
      for (const d of got)
        if (d.kind === "deliver")
          b.step({ kind: "executed", height: d.height, stateRoot: new Uint8Array(32).fill(7) });
    }
    const got = out.filter((x) => x.kind === "deliver").map((x) => x.height);
    assert.deepEqual(
      got,
      blocks.filter((x) => x.height > 2n).map((x) => x.height),
    );
    assert.equal(b.epoch, a.epoch);
    assert.ok(
      out.some(
        (x) => x.kind === "epochChanged" && x.epoch === 1n && x.self === sets.get(1n)!.indexOf(B.publicKey),
      ),
    );
    assert.equal(b.lagging, false);
  });
});
