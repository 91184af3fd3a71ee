// The bench client's submit path (bench/cluster/submitter.ts) and signing threads
// (bench/cluster/signPool.ts): batches carry each transaction's own answer back to it, a batch
// goes when full, at once when no call is in flight, else after its delay or the call's answer,
// and the threads sign what the node would accept.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Connection } from "../../../bench/cluster/load.js";
import { SignPool } from "../../../bench/cluster/signPool.js";
import { Submitter } from "../../../bench/cluster/submitter.js";
import {
  decodeTxBody,
  type ParabftClient,
  RpcError,
  type TxSubmitOutcome,
  verifyTxSignature,
} from "../../../src/client/node.js";
import { generateKeyPair } from "../../../src/crypto/keys.js";
import type { SignedTx } from "../../../src/gen/parabft/v1/types_pb.js";
import { toHex, txHash } from "../../../src/types/index.js";

/** A client whose SubmitTxs refuses every transaction whose signature starts with an odd byte. */
function fakeClient(calls: { unary: number; batches: number[] }, failCall = false): ParabftClient {
  const answer = (tx: SignedTx): TxSubmitOutcome =>
    tx.signature[0]! % 2 === 0
      ? { ok: true, txHash: txHash(tx) }
      : { ok: false, error: new RpcError(8, "submitTxs", "OVERLOADED: node overloaded; retry after 250 ms") };
  return {
    submitTx: async (tx: SignedTx) => {
      calls.unary++;
      const a = answer(tx);
      if (!a.ok) throw a.error;
      return a.txHash;
    },
    submitTxs: async (txs: SignedTx[]) => {
      calls.batches.push(txs.length);
      if (failCall) throw new RpcError(14, "submitTxs", "connection dropped");
      return txs.map(answer);
    },
  } as unknown as ParabftClient;
}

/** A client whose SubmitTxs calls each answer (all ok) only when the test opens their gate, in order. */
function gatedClient(): { client: ParabftClient; batches: number[]; gates: (() => void)[] } {
  const batches: number[] = [];
  const gates: (() => void)[] = [];
  const client = {
    submitTxs: (txs: SignedTx[]) => {
      batches.push(txs.length);
      return new Promise<TxSubmitOutcome[]>((resolve) =>
        gates.push(() => resolve(txs.map((t) => ({ ok: true, txHash: txHash(t) })))),
      );
    },
  } as unknown as ParabftClient;
  return { client, batches, gates };
}

const tx = (first: number, k: number): SignedTx =>
  ({ body: Uint8Array.of(k), signature: Uint8Array.of(first, k) }) as unknown as SignedTx;

async function settle(p: Promise<unknown>[]): Promise<string[]> {
  const r = await Promise.allSettled(p);
  return r.map((x) =>
    x.status === "fulfilled" ? "ok" : (x.reason as RpcError).serverMessage.split(":")[0]!,
  );
}

describe("bench submitter", () => {
  it("batches up to the bound and settles each transaction with its own answer", async () => {
    const calls = { unary: 0, batches: [] as number[] };
    const s = new Submitter([new Connection(fakeClient(calls))], 4, 1_000);
    const p = Array.from({ length: 10 }, (_, k) => s.submit(tx(k % 3 === 0 ? 1 : 0, k), k));
    assert.equal(s.waiting, 2, "two full batches went at once, two wait for the delay");
    s.flush();
    const out = await settle(p);
    assert.deepEqual(calls.batches, [4, 4, 2]);
    assert.equal(calls.unary, 0);
    assert.deepEqual(
      out,
      Array.from({ length: 10 }, (_, k) => (k % 3 === 0 ? "OVERLOADED" : "ok")),
    );
    assert.equal(s.calls, 3);
  });

  it("sends a partial batch after its delay without a flush", async () => {
    const calls = { unary: 0, batches: [] as number[] };
    const s = new Submitter([new Connection(fakeClient(calls))], 64, 5);
    const out = await settle([s.submit(tx(0, 1), 0), s.submit(tx(0, 2), 1)]);
    assert.deepEqual(out, ["ok", "ok"]);
    assert.deepEqual(calls.batches, [2]);
  });

  it("reports each call's transactions and connection as it leaves (the per-tx stage log)", async () => {
    const calls = { unary: 0, batches: [] as number[] };
    const conns = [new Connection(fakeClient(calls)), new Connection(fakeClient(calls))];
    const s = new Submitter(conns, 2, 5);
    const sent: { txs: number[]; conn: number }[] = [];
    s.onSend = (txs, conn) => sent.push({ txs: txs.map((t) => t.body[0]!), conn });
    await settle([1, 2, 3].map((k) => s.submit(tx(0, k), k === 3 ? 0 : 1)));
    // Senders 1 and 2 share connection 1 (their hints) and fill its batch; the third goes alone
    // on connection 0.
    assert.deepEqual(sent, [
      { txs: [1, 2], conn: 1 },
      { txs: [3], conn: 0 },
    ]);
  });

  it("keeps each sender on its connection, so its nonces reach one node in order", async () => {
    // Connection c's client records the bodies it was sent; each call answers only when opened.
    const seen: number[][] = [[], [], []];
    const gates: (() => void)[] = [];
    const conns = seen.map(
      (log) =>
        new Connection({
          submitTxs: (txs: SignedTx[]) => {
            for (const t of txs) log.push(t.body[0]!);
            return new Promise<TxSubmitOutcome[]>((resolve) =>
              gates.push(() => resolve(txs.map((t) => ({ ok: true, txHash: txHash(t) })))),
            );
          },
        } as unknown as ParabftClient),
    );
    const s = new Submitter(conns, 64, 600_000);
    // Sender k % 3 sends body k: six sends over three senders, then six more while calls wait.
    const p = Array.from({ length: 6 }, (_, k) => s.submit(tx(0, k), k % 3));
    await new Promise<void>((r) => setImmediate(r));
    const q = Array.from({ length: 6 }, (_, k) => s.submit(tx(0, 6 + k), (6 + k) % 3));
    assert.equal(s.waiting, 6, "each connection has a call in flight: the later sends gather on theirs");
    while (gates.length > 0 || s.waiting > 0) {
      gates.shift()?.();
      await new Promise<void>((r) => setImmediate(r));
    }
    const conns_ = await Promise.all([...p, ...q]);
    assert.deepEqual(
      conns_,
      Array.from({ length: 12 }, (_, k) => k % 3),
    );
    assert.deepEqual(seen, [
      [0, 3, 6, 9],
      [1, 4, 7, 10],
      [2, 5, 8, 11],
    ]);
  });

  it("gathers for the wait set at the time, so a run can raise it (overload) and restore it", async () => {
    const { client, batches, gates } = gatedClient();
    const s = new Submitter([new Connection(client)], 64, 5);
    const held = s.submit(tx(0, 1), 0);
    await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(batches, [1], "idle: sent at once");
    // A call in flight and a wait no test sits out: only the bound or an answer sends these.
    s.maxDelayMs = 600_000;
    const p = [2, 3, 4].map((k) => s.submit(tx(0, k), k));
    await new Promise<void>((r) => setTimeout(r, 50));
    assert.deepEqual(batches, [1], "the raised wait held the batch past the 5 ms one");
    assert.equal(s.waiting, 3);
    gates.shift()!();
    await held;
    await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(batches, [1, 3], "the answer released it");
    s.maxDelayMs = 5;
    const q = [5, 6].map((k) => s.submit(tx(0, k), k));
    await new Promise<void>((r) => setTimeout(r, 50));
    assert.deepEqual(batches, [1, 3, 2], "restored: the 5 ms wait sent the next batch with a call in flight");
    while (gates.length > 0) gates.shift()!();
    assert.deepEqual(await settle([...p, ...q]), ["ok", "ok", "ok", "ok", "ok"]);
  });

  it("sends at once when no call is in flight, and gathers only while one is", async () => {
    // A delay no test would sit out: every send below must come from the in-flight rule.
    const { client, batches, gates } = gatedClient();
    const s = new Submitter([new Connection(client)], 64, 600_000);
    const turn = () => new Promise<void>((r) => setImmediate(r));
    const first = s.submit(tx(0, 1), 0);
    const sameTurn = s.submit(tx(0, 2), 0);
    await turn();
    assert.deepEqual(batches, [2], "idle: the submits of one turn left together, without the delay");
    const p = [3, 4, 5].map((k) => s.submit(tx(0, k), k));
    await turn();
    assert.deepEqual(batches, [2], "a call in flight: the next ones gather");
    assert.equal(s.waiting, 3);
    gates.shift()!();
    await Promise.all([first, sameTurn]);
    await turn();
    assert.deepEqual(batches, [2, 3], "the answer released the gathered batch");
    gates.shift()!();
    assert.deepEqual(await settle(p), ["ok", "ok", "ok"]);
    const last = s.submit(tx(0, 6), 0);
    await turn();
    assert.deepEqual(batches, [2, 3, 1], "idle again: sent at once");
    gates.shift()!();
    await last;
    assert.equal(s.waiting, 0);
  });

  it("rejects every transaction of a call that failed as a whole", async () => {
    const calls = { unary: 0, batches: [] as number[] };
    const s = new Submitter([new Connection(fakeClient(calls, true))], 3, 1_000);
    const p = [0, 1, 2].map((k) => s.submit(tx(0, k), k));
    assert.deepEqual(await settle(p), Array<string>(3).fill("connection dropped"));
  });

  it("resolves each transaction with the connection that admitted it", async () => {
    const calls = { unary: 0, batches: [] as number[] };
    const conns = [new Connection(fakeClient(calls)), new Connection(fakeClient(calls))];
    const batched = new Submitter(conns, 2, 1_000);
    // A batch goes on its senders' connection (the hint modulo the connections).
    assert.deepEqual(await Promise.all([1, 2, 4, 5].map((k) => batched.submit(tx(0, k), k))), [1, 0, 0, 1]);
    // A unary submit keeps its sender's connection (the hint modulo the connections).
    const unary = new Submitter(conns, 1);
    assert.deepEqual(await Promise.all([1, 2, 4].map((k) => unary.submit(tx(0, k), k))), [1, 0, 0]);
  });

  it("roundRobin (the overload run): one gathering lane whatever the senders, calls round-robin", async () => {
    const calls = { unary: 0, batches: [] as number[] };
    const conns = [new Connection(fakeClient(calls)), new Connection(fakeClient(calls))];
    const s = new Submitter(conns, 2, 1_000);
    s.roundRobin = true;
    const sent: { txs: number[]; conn: number }[] = [];
    s.onSend = (txs, conn) => sent.push({ txs: txs.map((t) => t.body[0]!), conn });
    // Four senders, two full batches: the first pair through connection 0, the next through 1.
    assert.deepEqual(await Promise.all([1, 2, 4, 5].map((k) => s.submit(tx(0, k), k))), [0, 0, 1, 1]);
    assert.deepEqual(sent, [
      { txs: [1, 2], conn: 0 },
      { txs: [4, 5], conn: 1 },
    ]);
    // Back to a lane per connection: sender 3 on connection 1.
    s.roundRobin = false;
    assert.equal(await s.submit(tx(0, 7), 3), 1);
  });

  it("with batch 1 makes one SubmitTx per transaction (the old path)", async () => {
    const calls = { unary: 0, batches: [] as number[] };
    const s = new Submitter([new Connection(fakeClient(calls))], 1);
    const out = await settle([s.submit(tx(0, 1), 0), s.submit(tx(1, 2), 1)]);
    assert.deepEqual(out, ["ok", "OVERLOADED"]);
    assert.equal(calls.unary, 2);
    assert.deepEqual(calls.batches, []);
  });
});

describe("bench signing threads", () => {
  it("sign transfers in job order with the asked sender and nonce, each one distinct", async () => {
    const keys = [generateKeyPair(), generateKeyPair()];
    const pool = new SignPool(
      "chain-x",
      keys.map((k) => k.secretKey),
      2,
    );
    try {
      const jobs = Array.from({ length: 600 }, (_, k) => ({ sender: k % 2, nonce: BigInt(k), recipient: k }));
      const signed = await pool.sign(jobs);
      assert.equal(signed.length, 600);
      const bodies = new Set<string>();
      for (let k = 0; k < signed.length; k++) {
        const p = signed[k]!;
        const body = decodeTxBody(p.tx);
        assert.equal(body.chainId, "chain-x");
        assert.equal(body.nonce, BigInt(k));
        assert.equal(toHex(body.sender), toHex(keys[k % 2]!.publicKey));
        assert.equal(toHex(p.hash), toHex(txHash(p.tx)));
        assert.equal(p.hex, toHex(p.hash));
        assert.ok(verifyTxSignature(p.tx), `tx ${k} verifies`);
        bodies.add(toHex(p.tx.body));
      }
      assert.equal(bodies.size, 600, "every transfer distinct");
    } finally {
      await pool.close();
    }
  });
});
