// The fault suite's checkers must have teeth: each is fed known-good and known-bad histories
// (a lost acknowledgement, a duplicate, a stale read, a diverging digest...). No Docker needed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkAgreement,
  checkBank,
  checkExactlyOnce,
  checkLinearizable,
  checkLiveness,
  checkReadsAtHeight,
  cutByInvocation,
  type KvCall,
  type KvOp,
  linearizable,
  type ReceiptInfo,
} from "./lib/checkers.js";

const chain = (node: number, digests: string[]) => ({
  node,
  digests: new Map(digests.map((d, i) => [BigInt(i + 1), d])),
});

describe("S1 agreement", () => {
  it("passes when every node has the same digests (shorter chains are a prefix)", () => {
    const r = checkAgreement(
      [chain(0, ["a", "b", "c"]), chain(1, ["a", "b", "c"]), chain(2, ["a", "b"])],
      [
        { node: 0, executedHeight: 3n, stateRoot: "r3" },
        { node: 1, executedHeight: 3n, stateRoot: "r3" },
      ],
    );
    assert.ok(r.ok, r.violations.join("\n"));
  });
  it("fails on a diverging digest", () => {
    const r = checkAgreement([chain(0, ["a", "b", "c"]), chain(1, ["a", "x", "c"])], []);
    assert.equal(r.ok, false);
    assert.match(r.violations[0]!, /height 2: digests differ/);
  });
  it("fails on diverging state roots at the same executed height", () => {
    const r = checkAgreement(
      [chain(0, ["a"]), chain(1, ["a"])],
      [
        { node: 0, executedHeight: 1n, stateRoot: "r1" },
        { node: 1, executedHeight: 1n, stateRoot: "zz" },
      ],
    );
    assert.equal(r.ok, false);
    assert.match(r.violations[0]!, /state root/);
  });
});

describe("S2 exactly once", () => {
  const inc = [
    { hash: "t1", height: 1n },
    { hash: "t2", height: 2n },
  ];
  const rec = [
    { hash: "t1", height: 1n, status: "ok" as const },
    { hash: "t2", height: 2n, status: "ok" as const },
  ];
  it("passes when every acknowledged tx is in the chain once, at its acknowledged height", () => {
    const r = checkExactlyOnce(
      [
        { hash: "t1", outcome: "ok", ackHeight: 1n },
        { hash: "t2", outcome: "info" },
        { hash: "t3", outcome: "info" },
        { hash: "t4", outcome: "fail" },
      ],
      inc,
      rec,
    );
    assert.ok(r.ok, r.violations.join("\n"));
  });
  it("fails on a lost acknowledgement", () => {
    const r = checkExactlyOnce([{ hash: "t9", outcome: "ok", ackHeight: 3n }], inc, rec);
    assert.equal(r.ok, false);
    assert.match(r.violations[0]!, /lost/);
  });
  it("fails on a duplicate effect", () => {
    const r = checkExactlyOnce(
      [{ hash: "t1", outcome: "ok", ackHeight: 1n }],
      [...inc, { hash: "t1", height: 3n }],
      [...rec, { hash: "t1", height: 3n, status: "ok" }],
    );
    assert.equal(r.ok, false);
    assert.match(r.violations.join("\n"), /took effect 2 times/);
  });
  it("accepts a re-inclusion answered DUPLICATE by execution", () => {
    const r = checkExactlyOnce(
      [{ hash: "t1", outcome: "ok", ackHeight: 1n }],
      [...inc, { hash: "t1", height: 3n }],
      [...rec, { hash: "t1", height: 3n, status: "duplicate" }],
    );
    assert.ok(r.ok, r.violations.join("\n"));
  });
  it("fails when the acknowledgement names another height than the chain", () => {
    const r = checkExactlyOnce([{ hash: "t2", outcome: "ok", ackHeight: 1n }], inc, rec);
    assert.equal(r.ok, false);
  });
  it("fails when a definitely failed tx took effect", () => {
    const r = checkExactlyOnce([{ hash: "t2", outcome: "fail" }], inc, rec);
    assert.equal(r.ok, false);
  });
});

describe("S3 bank", () => {
  it("passes when the total holds", () => {
    assert.ok(checkBank(100n, [{ node: 0, height: 5n, balances: [40n, 60n] }]).ok);
  });
  it("fails on a changed total, a negative balance, or no snapshot at all", () => {
    assert.equal(checkBank(100n, [{ node: 0, height: 5n, balances: [40n, 61n] }]).ok, false);
    assert.equal(checkBank(100n, [{ node: 0, height: 5n, balances: [110n, -10n] }]).ok, false);
    assert.equal(checkBank(100n, []).ok, false);
  });
});

let t = 0;
const op = (
  process: number,
  call: KvCall,
  result: KvOp["result"],
  invokeMs: number,
  completeMs: number,
  outcome: KvOp["outcome"] = "ok",
): KvOp => ({ process, key: "k", call, result, invokeMs, completeMs, outcome });
const put = (v: string) => ({ f: "put" as const, value: v });
const read = { f: "read" as const };
const cas = (e: string | null, v: string) => ({ f: "cas" as const, expected: e, value: v });

describe("S4 linearizability (WGL)", () => {
  it("accepts a sequential history and reads concurrent with a write seeing either value", () => {
    const h = [
      op(0, put("1"), undefined, 0, 10),
      op(0, put("2"), undefined, 20, 30),
      op(1, read, "2", 40, 50),
      op(0, put("3"), undefined, 60, 80),
      op(1, read, "2", 61, 70), // concurrent with put 3: may see 2
      op(2, read, "3", 62, 75), // ...or 3
    ];
    assert.equal(linearizable(h), "ok");
  });
  it("rejects a stale read", () => {
    const h = [
      op(0, put("1"), undefined, 0, 10),
      op(0, put("2"), undefined, 20, 30),
      op(1, read, "1", 40, 50),
    ];
    assert.equal(linearizable(h), "violation");
    assert.equal(checkLinearizable(h).ok, false);
  });
  it("rejects a read that goes back in time after another process saw the new value", () => {
    const h = [
      op(0, put("2"), undefined, 0, 100),
      op(1, read, "2", 10, 20),
      op(2, read, null, 30, 40), // absent after someone already read 2
    ];
    assert.equal(linearizable(h), "violation");
  });
  it("rejects two successful CAS from the same expected value", () => {
    const h = [op(0, cas(null, "a"), true, 0, 10), op(1, cas(null, "b"), true, 20, 30)];
    assert.equal(linearizable(h), "violation");
  });
  it("accepts a failed CAS when the value differs, rejects it when the value matched", () => {
    assert.equal(
      linearizable([op(0, put("a"), undefined, 0, 10), op(1, cas("b", "c"), false, 20, 30)]),
      "ok",
    );
    assert.equal(
      linearizable([op(0, put("a"), undefined, 0, 10), op(1, cas("a", "c"), false, 20, 30)]),
      "violation",
    );
  });
  it("lets an unknown (info) write take effect late or never, but not invent values", () => {
    const h = [op(0, put("x"), undefined, 0, 0, "info"), op(1, read, null, 10, 20), op(1, read, "x", 30, 40)];
    assert.equal(linearizable(h), "ok");
    assert.equal(linearizable([op(0, put("x"), undefined, 0, 0, "info"), op(1, read, null, 10, 20)]), "ok");
    assert.equal(
      linearizable([op(0, put("x"), undefined, 0, 0, "info"), op(1, read, "y", 10, 20)]),
      "violation",
    );
    // A value read before the write was even invoked is impossible.
    assert.equal(
      linearizable([op(1, read, "x", 0, 5), op(0, put("x"), undefined, 10, 0, "info")]),
      "violation",
    );
  });
  it("ignores definitely failed writes", () => {
    const h = [op(0, put("x"), undefined, 0, 10, "fail"), op(1, read, "x", 20, 30)];
    assert.equal(linearizable(h), "violation");
  });
  it("cuts a long history soundly: an op in flight across the cut may depend on one left out", () => {
    // The recorder's order (writes at invocation, reads at completion), as in a kill-primary run:
    // the CAS is in flight across the cut and fails because of the put invoked after the cut.
    const h = [
      op(0, put("a"), undefined, 0, 10),
      op(1, cas("a", "b"), false, 20, 60),
      op(2, read, "a", 25, 30),
      op(0, put("x"), undefined, 40, 50),
      op(2, read, "x", 55, 58),
    ];
    assert.equal(linearizable(h), "ok");
    // Cutting by list position kept the CAS and dropped the put it failed against.
    assert.equal(linearizable(h.slice(0, 3)), "violation");
    assert.deepEqual(
      cutByInvocation(h, 3).map((o) => o.call.f),
      ["put", "read"],
    );
    assert.ok(checkLinearizable(h, { maxOpsPerKey: 3 }).ok);
    // A put in flight across the cut stays, as info: a read after the cut may or may not see it.
    const p = cutByInvocation(
      [op(0, put("a"), undefined, 0, 80), op(1, read, null, 10, 20), op(1, read, "a", 60, 70)],
      2,
    );
    assert.deepEqual(
      p.map((o) => o.outcome),
      ["info", "ok"],
    );
    assert.equal(linearizable(p), "ok");
    // A violation inside the cut is still found.
    const bad = [op(0, put("a"), undefined, 0, 10), op(1, read, "zz", 12, 15), ...h.slice(1)];
    assert.equal(checkLinearizable(bad, { maxOpsPerKey: 3 }).ok, false);
  });
  it("accepts random histories generated from a real register, with random overlap", () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let trial = 0; trial < 30; trial++) {
      let value: string | null = null;
      const h: KvOp[] = [];
      t = 0;
      for (let i = 0; i < 60; i++) {
        // The op takes effect at time t; its invocation and completion straddle t.
        t += 10;
        const inv = t - rnd(25);
        const done = t + rnd(25);
        const k = rnd(3);
        if (k === 0) {
          value = `v${i}`;
          h.push(op(i % 4, put(value), undefined, inv, done));
        } else if (k === 1) {
          const expected = rnd(2) === 0 ? value : "nope";
          const swapped = expected === value;
          if (swapped) value = `c${i}`;
          h.push(op(i % 4, cas(expected, `c${i}`), swapped, inv, done));
        } else h.push(op(i % 4, read, value, inv, done));
      }
      assert.equal(linearizable(h), "ok", `trial ${trial}`);
      // Any cut of a linearizable history is linearizable (ops straddle the cuts: ±25 around steps of 10).
      for (let n = 5; n < h.length; n += 7)
        assert.equal(linearizable(cutByInvocation(h, n)), "ok", `trial ${trial}, cut at ${n}`);
      // Corrupt one read to a value never written: must be caught.
      const reads = h.filter((o) => o.call.f === "read");
      if (reads.length > 0) {
        reads[rnd(reads.length)]!.result = "never-written";
        assert.equal(linearizable(h), "violation", `corrupted trial ${trial}`);
      }
    }
  });
});

describe("S5 reads at their height", () => {
  const w = (tx: string, call: KvCall, result?: boolean): KvOp => ({ ...op(0, call, result, 0, 1), tx });
  const r = (value: string | null, height: bigint): KvOp => ({
    ...op(1, read, value, 0, 1),
    node: 2,
    height,
  });
  // Block 2 holds a then b (a CAS that failed), block 3 holds c; the receipts say what took effect.
  const inclusions = [
    { hash: "a", height: 2n },
    { hash: "b", height: 2n },
    { hash: "c", height: 3n },
    { hash: "d", height: 3n },
  ];
  const receipts: ReceiptInfo[] = [
    { hash: "a", height: 2n, status: "ok" },
    { hash: "b", height: 2n, status: "failed" },
    { hash: "c", height: 3n, status: "ok" },
    { hash: "d", height: 3n, status: "ok" },
  ];
  const writes = [
    w("a", put("1")),
    w("b", cas("0", "2"), false),
    w("c", put("3")),
    w("d", cas("3", "4"), true),
  ];
  it("passes when every read is the chain's value at its height (block order inside a height)", () => {
    const v = checkReadsAtHeight(
      [...writes, r(null, 1n), r("1", 2n), r("4", 3n), r("4", 9n)],
      inclusions,
      receipts,
    );
    assert.ok(v.ok, v.violations.join("; "));
    assert.equal(v.checked, 4);
  });
  it("fails on a stale value, a failed CAS's value, or a value from inside a block", () => {
    for (const bad of [r("1", 3n), r("2", 2n), r("3", 3n), r(null, 2n)]) {
      const v = checkReadsAtHeight([...writes, bad], inclusions, receipts);
      assert.equal(v.ok, false, JSON.stringify(bad.result));
      assert.match(v.violations[0]!, /S5 key k: node 2 read/);
    }
  });
});

describe("liveness", () => {
  it("passes with a commit inside the bound and fails without one", () => {
    assert.ok(checkLiveness([100, 1500, 2000], 1000, 5000).ok);
    assert.equal(checkLiveness([100, 900], 1000, 5000).ok, false);
    assert.equal(checkLiveness([100, 9000], 1000, 5000).ok, false);
  });
});
