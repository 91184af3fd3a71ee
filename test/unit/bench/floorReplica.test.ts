// The stack floor's PBFT normal case (bench/floor/replica.ts) and its frame (bench/floor/wire.ts):
// four cores wired in memory commit every proposal with the message pattern the floor measures,
// and votes the core would not use are not needed (the floor's process skips verifying them).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type FloorAction,
  FloorKind,
  type FloorMessage,
  FloorReplica,
} from "../../../bench/floor/replica.js";
import { decodeFrame, encodeUnsigned, HEADER_BYTES, setSignature } from "../../../bench/floor/wire.js";

const D1 = new Uint8Array(32).fill(1);
const D2 = new Uint8Array(32).fill(2);

/** Four cores; delivers every broadcast to every other replica, in FIFO order. */
function cluster() {
  const replicas = [0, 1, 2, 3].map((i) => new FloorReplica(i, 4));
  const queue: { to: number; m: FloorMessage }[] = [];
  const sent = new Map<FloorKind, number>();
  const commits: { id: number; height: bigint; digest: Uint8Array }[] = [];
  const requests: Uint8Array[] = [];
  const take = (id: number, actions: FloorAction[]) => {
    for (const a of actions) {
      if (a.type === "committed") {
        commits.push({ id, height: a.height, digest: a.digest });
        if (a.request) requests.push(a.request);
      } else
        for (const m of a.messages) {
          sent.set(m.kind, (sent.get(m.kind) ?? 0) + 1);
          for (let to = 0; to < 4; to++) if (to !== id) queue.push({ to, m });
        }
    }
  };
  const drain = () => {
    let ignored = 0;
    while (queue.length > 0) {
      const { to, m } = queue.shift()!;
      const r = replicas[to]!;
      if (!r.needed(m)) ignored++;
      take(to, r.receive(m));
    }
    return ignored;
  };
  return { replicas, take, drain, sent, commits, requests };
}

describe("FloorReplica", () => {
  it("commits each proposal at every replica with 1 PRE-PREPARE, 4 PREPAREs and 4 COMMITs sent", () => {
    const c = cluster();
    for (let h = 1n; h <= 3n; h++) {
      const digest = new Uint8Array(32).fill(Number(h));
      c.take(0, c.replicas[0]!.propose(new Uint8Array([Number(h)]), digest));
      c.drain();
      const at = c.commits.filter((x) => x.height === h);
      assert.deepEqual(at.map((x) => x.id).sort(), [0, 1, 2, 3], `height ${h} committed at every replica`);
      for (const x of at) assert.deepEqual(x.digest, digest);
    }
    assert.equal(c.sent.get(FloorKind.PrePrepare), 3);
    assert.equal(c.sent.get(FloorKind.Prepare), 12);
    assert.equal(c.sent.get(FloorKind.Commit), 12);
    for (const r of c.replicas) assert.equal(r.openHeights, 0, `replica ${r.id} forgot committed heights`);
  });

  it("does not need votes past the quorum, repeats, old heights, or a PRE-PREPARE from a backup", () => {
    const c = cluster();
    c.take(0, c.replicas[0]!.propose(new Uint8Array([1]), D1));
    // Every replica gets 3 PREPAREs and 3 COMMITs; once committed, what is left is not needed.
    const ignored = c.drain();
    assert.ok(ignored > 0, "some votes arrived after their replica had a quorum");
    const r1 = c.replicas[1]!;
    assert.equal(r1.needed({ kind: FloorKind.Commit, from: 2, height: 1n, digest: D1 }), false);
    assert.equal(r1.needed({ kind: FloorKind.Prepare, from: 1, height: 2n, digest: D1 }), false, "own id");
    assert.equal(r1.needed({ kind: FloorKind.Prepare, from: 7, height: 2n, digest: D1 }), false, "unknown");
    assert.equal(
      r1.needed({ kind: FloorKind.PrePrepare, from: 2, height: 2n, digest: D1, request: new Uint8Array(1) }),
      false,
    );
    assert.equal(r1.needed({ kind: FloorKind.Prepare, from: 2, height: 2n, digest: D1 }), true);
    r1.receive({ kind: FloorKind.Prepare, from: 2, height: 2n, digest: D1 });
    assert.equal(r1.needed({ kind: FloorKind.Prepare, from: 2, height: 2n, digest: D1 }), false, "repeat");
  });

  it("counts a vote only for the digest the primary proposed", () => {
    const r1 = new FloorReplica(1, 4);
    // PREPAREs for another digest arrive before the proposal.
    assert.deepEqual(r1.receive({ kind: FloorKind.Prepare, from: 2, height: 1n, digest: D2 }), []);
    assert.deepEqual(r1.receive({ kind: FloorKind.Prepare, from: 3, height: 1n, digest: D2 }), []);
    const actions = r1.receive({
      kind: FloorKind.PrePrepare,
      from: 0,
      height: 1n,
      digest: D1,
      request: new Uint8Array([9]),
    });
    // Its own PREPARE only: the primary's and its own make 2 of 3 for D1.
    assert.equal(actions.length, 1);
    assert.deepEqual(actions[0]?.type === "broadcast" ? actions[0].messages.map((m) => m.kind) : [], [
      FloorKind.Prepare,
    ]);
    assert.equal(r1.needed({ kind: FloorKind.Prepare, from: 2, height: 1n, digest: D2 }), false);
  });

  it("has a height in flight from its proposal to its commit, and reports what the height ordered", () => {
    const c = cluster();
    const primary = c.replicas[0]!;
    assert.equal(primary.inFlight, false);
    const block = new Uint8Array([1, 2, 3]);
    c.take(0, primary.propose(block, D1));
    assert.equal(primary.inFlight, true);
    c.drain();
    assert.equal(primary.inFlight, false);
    assert.equal(c.requests.length, 4);
    for (const r of c.requests) assert.deepEqual(r, block);
  });

  it("refuses a cluster too small for a Byzantine quorum and a proposal from a backup", () => {
    assert.throws(() => new FloorReplica(0, 3), /n = 3f \+ 1 ≥ 4/);
    assert.throws(() => new FloorReplica(0, 5), /n = 3f \+ 1/);
    assert.equal(new FloorReplica(0, 7).quorum, 5);
    assert.throws(() => new FloorReplica(1, 4).propose(new Uint8Array(1), D1), /not the primary/);
  });
});

describe("floor frames", () => {
  it("round-trips a PRE-PREPARE and a vote, signature last", () => {
    const request = new Uint8Array(184).fill(7);
    for (const m of [
      { kind: FloorKind.PrePrepare, from: 0, height: 42n, digest: D1, request },
      { kind: FloorKind.Commit, from: 3, height: 2n ** 40n, digest: D2 },
    ] as FloorMessage[]) {
      const frame = encodeUnsigned(m);
      setSignature(frame, new Uint8Array(64).fill(5));
      const d = decodeFrame(frame);
      assert.ok(d);
      assert.equal(d.message.kind, m.kind);
      assert.equal(d.message.from, m.from);
      assert.equal(d.message.height, m.height);
      assert.deepEqual(new Uint8Array(d.message.digest), m.digest);
      assert.deepEqual(d.message.request && new Uint8Array(d.message.request), m.request);
      assert.equal(d.signed.length, HEADER_BYTES);
      assert.deepEqual(new Uint8Array(d.signature), new Uint8Array(64).fill(5));
    }
  });

  it("rejects short frames, unknown kinds, lengths that disagree and a PRE-PREPARE without its request", () => {
    const vote = encodeUnsigned({ kind: FloorKind.Prepare, from: 1, height: 1n, digest: D1 });
    assert.equal(decodeFrame(vote.subarray(0, vote.length - 1)), null);
    const bad = Buffer.from(vote);
    bad[0] = 9;
    assert.equal(decodeFrame(bad), null);
    const long = Buffer.from(vote);
    long.writeUInt32BE(5, 42);
    assert.equal(decodeFrame(long), null);
    const pp = Buffer.from(vote);
    pp[0] = FloorKind.PrePrepare;
    assert.equal(decodeFrame(pp), null);
  });
});
