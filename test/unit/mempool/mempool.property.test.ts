// Random operation sequences against the pool, checking its counters and ordering rules against a
// brute-force recomputation after every step. Signatures are stubbed: admission order is tested
// elsewhere; here only the pool's bookkeeping matters.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { type SignedTx, SignedTxSchema, TxBodySchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { Mempool } from "../../../src/mempool/index.js";
import { addressOf, toHex } from "../../../src/types/index.js";
import { CHAIN } from "./helpers.js";

const SENDERS = Array.from({ length: 4 }, (_, i) => new Uint8Array(32).fill(i + 1));

function tx(sender: number, nonce: number, variant: number): SignedTx {
  const body = toBinary(
    TxBodySchema,
    create(TxBodySchema, {
      chainId: CHAIN,
      sender: SENDERS[sender]!,
      nonce: BigInt(nonce),
      fee: String(variant),
    }),
  );
  return create(SignedTxSchema, { body, signature: new Uint8Array(64) });
}

type Op =
  | { kind: "add"; sender: number; nonce: number; variant: number }
  | { kind: "reapAndPropose"; max: number }
  | { kind: "commitReaped"; max: number }
  | { kind: "requeue" }
  | { kind: "executed" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      sender: fc.integer({ min: 0, max: SENDERS.length - 1 }),
      nonce: fc.integer({ min: 0, max: 12 }),
      variant: fc.integer({ min: 0, max: 1 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("reapAndPropose" as const),
      max: fc.integer({ min: 1, max: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("commitReaped" as const), max: fc.integer({ min: 1, max: 6 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "requeue" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "executed" as const }) },
);

describe("mempool properties", () => {
  it("keeps counters, nonce order and in-flight rules under random operations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        // The chain's view: next nonce per sender after execution.
        const executed = new Map<string, bigint>();
        const mp = new Mempool(
          {
            chainId: CHAIN,
            maxTxs: 30,
            maxBytes: 1 << 20,
            maxPerSender: 8,
            maxTxBytes: 4096,
            maxNonceGap: 6,
          },
          {
            verifyTxs: async (txs) => txs.map(() => true),
            nextNonce: (a) => executed.get(toHex(a)) ?? 0n,
            log: silentLogger(),
          },
        );
        const committed = new Map<string, bigint>();
        let height = 0n;
        for (const op of ops) {
          if (op.kind === "add") {
            await mp.add(tx(op.sender, op.nonce, op.variant), "api").catch(() => undefined);
          } else if (op.kind === "reapAndPropose") {
            mp.markProposed(mp.reap(op.max, 1 << 20).hashes);
          } else if (op.kind === "commitReaped") {
            const r = mp.reap(op.max, 1 << 20);
            height++;
            mp.removeCommitted(r.txs, height);
            for (const t of r.txs) {
              const body = fromBinary(TxBodySchema, t.body);
              committed.set(toHex(addressOf(body.sender)), body.nonce + 1n);
            }
          } else if (op.kind === "requeue") {
            mp.requeueInFlight();
          } else {
            for (const [k, v] of committed) executed.set(k, v);
            mp.markExecuted(height);
          }
          checkInvariants(mp, committed);
        }
      }),
      { seed: 20261126, numRuns: 150 },
    );
  });
});

function checkInvariants(mp: Mempool, committed: Map<string, bigint>): void {
  // Reap everything: each sender's nonces must be strictly consecutive and above what committed.
  const all = mp.reap(1_000, 1 << 30);
  const bySender = new Map<string, bigint[]>();
  for (const h of all.hashes) {
    const p = mp.get(h)!;
    const k = toHex(addressOf(p.sender));
    const list = bySender.get(k) ?? [];
    list.push(p.nonce);
    bySender.set(k, list);
  }
  for (const [k, nonces] of bySender) {
    for (let i = 1; i < nonces.length; i++)
      assert.equal(nonces[i], nonces[i - 1]! + 1n, `sender ${k} out of order`);
    const floor = committed.get(k);
    if (floor !== undefined) assert.ok(nonces[0]! >= floor, "reaped a nonce that already committed");
  }
  assert.equal(mp.pendingExecutable(), all.txs.length, "pendingExecutable matches what reap can take");
  assert.ok(mp.inFlightCount <= mp.size);
  assert.ok(mp.size <= 30);
  let bytes = 0;
  const seen = new Set<string>();
  for (const h of all.hashes) {
    const hex = toHex(h);
    assert.ok(!seen.has(hex), "reap returned a hash twice");
    seen.add(hex);
    bytes += mp.get(h)!.bytes;
  }
  assert.equal(all.bytes, bytes);
}
