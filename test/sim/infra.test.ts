import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SimNetwork } from "../../src/sim/network.js";
import { Prng } from "../../src/sim/prng.js";
import { EventQueue } from "../../src/sim/queue.js";
import { StandInKeyRegistry } from "../../src/sim/signer.js";
import { TraceHash } from "../../src/sim/trace.js";
import { SimClient, statelessTxProblem } from "../../src/sim/workload.js";

describe("prng", () => {
  it("is a pure function of the seed", () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const xs = Array.from({ length: 20 }, () => a.nextU32());
    assert.deepEqual(
      Array.from({ length: 20 }, () => b.nextU32()),
      xs,
    );
    assert.notDeepEqual(
      Array.from({ length: 20 }, () => c.nextU32()),
      xs,
    );
  });

  it("draws bounded integers covering the whole range", () => {
    const r = new Prng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const x = r.int(7);
      assert.ok(x >= 0 && x < 7);
      seen.add(x);
    }
    assert.equal(seen.size, 7);
  });

  it("forks independent streams", () => {
    const root = new Prng(1);
    const a = root.fork(1).nextU32();
    const b = root.fork(1).nextU32();
    assert.notEqual(a, b);
  });
});

describe("event queue", () => {
  it("orders by time, then by scheduling order", () => {
    const q = new EventQueue<string>();
    q.schedule(10, "b");
    q.schedule(5, "a");
    q.schedule(10, "c");
    q.schedule(0, "z");
    const out: string[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(`${e.at}${e.item}`);
    assert.deepEqual(out, ["0z", "5a", "10b", "10c"]);
    assert.equal(q.now, 10);
  });

  it("never schedules into the past", () => {
    const q = new EventQueue<number>();
    q.schedule(100, 1);
    q.pop();
    q.scheduleAt(50, 2);
    assert.equal(q.pop()?.at, 100);
  });
});

describe("stand-in signatures", () => {
  it("verifies its own signatures and rejects forgeries", () => {
    const reg = new StandInKeyRegistry();
    const alice = reg.newSigner(new Uint8Array(32).fill(1));
    const mallory = reg.newSigner(new Uint8Array(32).fill(2));
    const msg = new TextEncoder().encode("hello");
    const sig = alice.sign(msg);
    assert.equal(sig.length, 64);
    assert.ok(reg.verify(alice.publicKey, msg, sig));
    assert.ok(!reg.verify(alice.publicKey, new TextEncoder().encode("hellO"), sig));
    assert.ok(!reg.verify(alice.publicKey, msg, mallory.sign(msg)));
    assert.ok(!reg.verify(new Uint8Array(32), msg, sig));
    const flipped = sig.slice();
    flipped[40]! ^= 1;
    assert.ok(!reg.verify(alice.publicKey, msg, flipped));
  });
});

describe("simulated transactions", () => {
  it("pass the stateless check and fail it with a forged signature or another chain", () => {
    const reg = new StandInKeyRegistry();
    const client = new SimClient("c", reg, (i) => new Uint8Array(32).fill(3 + i));
    const t = client.nextTransfer(new Prng(1));
    assert.equal(statelessTxProblem(t.tx, "c", reg), null);
    assert.equal(statelessTxProblem(t.tx, "other", reg), "wrong chain id");
    const forged = { ...t.tx, signature: new Uint8Array(64) };
    assert.equal(statelessTxProblem(forged, "c", reg), "bad signature");
    const next = client.nextTransfer(new Prng(1));
    assert.notEqual(next.senderHex, t.senderHex);
    assert.equal(statelessTxProblem(next.tx, "c", reg), null);
  });
});

describe("network", () => {
  it("drops across a partition and delivers again after healing", () => {
    const net = new SimNetwork(
      4,
      { minDelayMs: 5, jitterMs: 0, slowPerMille: 0, slowExtraMs: 0, lossPerMille: 0, dupPerMille: 0 },
      new Prng(1),
    );
    const b = new Uint8Array([1]);
    net.partition([
      [0, 1],
      [2, 3],
    ]);
    assert.equal(net.route(0, 2, b).length, 0);
    assert.equal(net.route(0, 1, b).length, 1);
    net.heal();
    assert.deepEqual(
      net.route(0, 2, b).map((d) => d.delayMs),
      [5],
    );
  });

  it("loses and duplicates at the configured rates", () => {
    const net = new SimNetwork(
      2,
      { minDelayMs: 1, jitterMs: 10, slowPerMille: 0, slowExtraMs: 0, lossPerMille: 500, dupPerMille: 500 },
      new Prng(9),
    );
    let delivered = 0;
    for (let i = 0; i < 1000; i++) delivered += net.route(0, 1, new Uint8Array(1)).length;
    assert.ok(net.dropped > 350 && net.dropped < 650, `dropped ${net.dropped}`);
    assert.ok(net.duplicated > 150, `duplicated ${net.duplicated}`);
    assert.equal(delivered, 1000 - net.dropped + net.duplicated);
  });
});

describe("trace hash", () => {
  it("differs when any event differs", () => {
    const a = new TraceHash();
    const b = new TraceHash();
    const c = new TraceHash();
    for (const t of [a, b]) t.record(1, 10, 2, new Uint8Array([1, 2]));
    c.record(1, 10, 2, new Uint8Array([1, 3]));
    const ha = a.digestHex();
    assert.equal(ha, b.digestHex());
    assert.notEqual(ha, c.digestHex());
  });
});
