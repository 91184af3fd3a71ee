// Staking properties (fast-check, fixed seeds): the election is a deterministic function of the
// records (input order, restart, replay), no tie oscillation over 1,000 epochs of random stake
// moves, stake is conserved through every program and slash, and a consensus key is never
// registered twice.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { TestAccount } from "../../src/exec/workload.js";
import { TxStatus } from "../../src/gen/parabft/v1/types_pb.js";
import {
  compareCandidates,
  decodeValidator,
  type EpochSnapshot,
  elect,
  encodeSnapshot,
  encodeValidator,
  isEligible,
  memberOf,
  type ValidatorRecord,
  ValidatorStatus,
} from "../../src/staking/index.js";
import { toHex } from "../../src/types/bytes.js";
import {
  consensusKey,
  delegate,
  equivocation,
  MiniChain,
  register,
  testRules,
  undelegate,
  unjail,
  vote,
} from "./stakingGen.js";

const SEED = Number(process.env.PARABFT_PROP_SEED ?? 0x57a4e);
const RUNS = Number(process.env.PARABFT_PROP_RUNS ?? 50);

const AMOUNTS = [0n, 100n, 200n, 300n, 1000n];

const recordArb = fc
  .record({
    op: fc.integer({ min: 0, max: 40 }),
    status: fc.constantFrom(
      ValidatorStatus.candidate,
      ValidatorStatus.candidate,
      ValidatorStatus.jailed,
      ValidatorStatus.tombstoned,
    ),
    selfStake: fc.constantFrom(...AMOUNTS),
    tokens: fc.constantFrom(...AMOUNTS),
  })
  .map(
    (r): ValidatorRecord => ({
      operator: new Uint8Array(20).fill(r.op),
      consensusKey: new Uint8Array(32).fill(r.op),
      commissionBps: 0,
      selfStake: r.selfStake,
      peerAddress: `127.0.0.1:${7000 + r.op}`,
      status: r.status,
      jailedUntil: 0n,
      registeredEpoch: 0n,
      tokens: r.tokens,
      shares: r.tokens,
      doubleSign: null,
      lateSlashed: 0n,
    }),
  );

const recordsArb = fc.uniqueArray(recordArb, { selector: (r) => r.operator[0], maxLength: 30 });

/** An independent oracle: the top maxValidators eligible by (power desc, operator asc). */
function oracle(vs: readonly ValidatorRecord[], rules = testRules(), current: EpochSnapshot["members"] = []) {
  const eligible = vs.filter((v) => isEligible(v, rules)).map(memberOf);
  if (eligible.length < rules.minValidators) return current.map((m) => toHex(m.operator));
  // Selection, not sort: repeatedly take the best remaining one.
  const out: string[] = [];
  const left = [...eligible];
  while (out.length < rules.maxValidators && left.length > 0) {
    let best = 0;
    for (let i = 1; i < left.length; i++) if (compareCandidates(left[i]!, left[best]!) < 0) best = i;
    out.push(toHex(left[best]!.operator));
    left.splice(best, 1);
  }
  return out;
}

describe("staking: elect", () => {
  it("is a function of the records: input order and an encode/decode restart do not matter", () => {
    fc.assert(
      fc.property(recordsArb, fc.array(fc.nat()), (vs, swaps) => {
        const rules = testRules();
        const base = encodeSnapshot(elect({ validators: vs, current: [] }, rules, 5n));
        const shuffled = [...vs];
        for (const [i, s] of swaps.entries()) {
          if (shuffled.length < 2) break;
          const a = i % shuffled.length;
          const b = s % shuffled.length;
          [shuffled[a], shuffled[b]] = [shuffled[b]!, shuffled[a]!];
        }
        assert.deepEqual(encodeSnapshot(elect({ validators: shuffled, current: [] }, rules, 5n)), base);
        const restarted = vs.map((v) => decodeValidator(encodeValidator(v)));
        assert.deepEqual(encodeSnapshot(elect({ validators: restarted, current: [] }, rules, 5n)), base);
        const got = elect({ validators: vs, current: [] }, rules, 5n);
        assert.deepEqual(
          got.members.map((m) => toHex(m.operator)),
          oracle(vs, rules),
        );
        assert.ok(got.members.length <= rules.maxValidators);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it("keeps the current set when fewer than minValidators are eligible", () => {
    fc.assert(
      fc.property(recordsArb, (vs) => {
        const rules = testRules({ minValidators: 4 });
        const current = vs.length > 0 ? [memberOf(vs[0]!)] : [];
        const got = elect({ validators: vs, current }, rules, 3n);
        const eligible = vs.filter((v) => isEligible(v, rules)).length;
        assert.equal(got.kept, eligible < 4);
        if (got.kept) assert.deepEqual(got.members, current);
      }),
      { seed: SEED + 1, numRuns: 300 },
    );
  });
});

type Op =
  | { k: "register"; who: number; key: number; stake: number }
  | { k: "delegate"; who: number; amount: number }
  | { k: "undelegate"; who: number; amount: number }
  | { k: "vote"; who: number; picks: number[]; amount: number }
  | { k: "unjail"; who: number }
  | { k: "evidence"; who: number; key: number; back: number }
  | { k: "epoch"; missing: number };

const N_ACCOUNTS = 12;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constant("register" as const),
    who: fc.nat(5),
    key: fc.nat(7),
    stake: fc.integer({ min: 50, max: 400 }),
  }),
  fc.record({
    k: fc.constant("delegate" as const),
    who: fc.nat(N_ACCOUNTS - 1),
    amount: fc.integer({ min: 0, max: 3000 }),
  }),
  fc.record({
    k: fc.constant("undelegate" as const),
    who: fc.nat(N_ACCOUNTS - 1),
    amount: fc.integer({ min: 0, max: 3000 }),
  }),
  fc.record({
    k: fc.constant("vote" as const),
    who: fc.nat(N_ACCOUNTS - 1),
    picks: fc.uniqueArray(fc.nat(5), { maxLength: 3 }),
    amount: fc.constantFrom(100, 200, 500, 1000),
  }),
  fc.record({ k: fc.constant("unjail" as const), who: fc.nat(5) }),
  fc.record({
    k: fc.constant("evidence" as const),
    who: fc.nat(N_ACCOUNTS - 1),
    key: fc.nat(7),
    back: fc.nat(3),
  }),
  fc.record({ k: fc.constant("epoch" as const), missing: fc.nat(7) }),
);

/** Applies one op; returns whether a transaction changed staking state. */
function applyOp(c: MiniChain, op: Op): TxStatus | "epoch" {
  const acct = (i: number): TestAccount => c.accounts[i % c.accounts.length]!;
  switch (op.k) {
    case "register":
      // Mostly each operator's own key (so votes and evidence find validators), sometimes a
      // key another operator may use too.
      return c.submit(
        acct(op.who),
        register(consensusKey(op.key < 6 ? op.who : op.key).publicKey, BigInt(op.stake)),
      ).status;
    case "delegate":
      return c.submit(acct(op.who), delegate(BigInt(op.amount))).status;
    case "undelegate":
      return c.submit(acct(op.who), undelegate(BigInt(op.amount))).status;
    case "vote":
      return c.submit(
        acct(op.who),
        vote(op.picks.map((p) => ({ validator: acct(p).address, amount: BigInt(op.amount) }))),
      ).status;
    case "unjail":
      return c.submit(acct(op.who), unjail()).status;
    case "evidence": {
      const epoch = c.store().meta().epoch;
      const at = epoch >= BigInt(op.back) ? epoch - BigInt(op.back) : 0n;
      return c.submit(acct(op.who), equivocation(consensusKey(op.key % 6), at, at * 20n + 3n)).status;
    }
    case "epoch": {
      const signed = new Map<string, number>();
      for (let i = 0; i < 8; i++) if (i !== op.missing) signed.set(toHex(consensusKey(i).publicKey), 20);
      c.endEpoch({ total: 20, signed });
      return "epoch";
    }
  }
}

const sortedState = (c: MiniChain) => [...c.state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

describe("staking: programs over random histories", () => {
  it("conserve liquid + bonded + unbonding + slashed through every op", () => {
    let slashes = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 60, maxLength: 120 }), (ops) => {
        const c = new MiniChain(N_ACCOUNTS, 10_000n);
        for (const [i, op] of ops.entries()) {
          const before = c.totals().slashed;
          applyOp(c, op);
          const t = c.totals();
          assert.equal(
            t.sum,
            c.initialLiquid,
            `op ${i} ${op.k}: ${JSON.stringify(t, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
          );
          if (t.slashed > before) slashes++;
        }
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
    assert.ok(slashes > 0, "the histories must include slashes for the property to mean anything");
  });

  it("stake that left a validator after its offence is charged in full, wherever it went", () => {
    let charged = 0;
    fc.assert(
      fc.property(
        fc.record({
          stake: fc.integer({ min: 1000, max: 50_000 }),
          allocatedPct: fc.integer({ min: 10, max: 100 }),
          leftPct: fc.integer({ min: 1, max: 100 }),
          epochsBefore: fc.nat(2),
          move: fc.constantFrom("free", "undelegate", "revote"),
          back: fc.nat(1),
          epochsAfter: fc.nat(8),
        }),
        (p) => {
          const rules = testRules();
          const c = new MiniChain(N_ACCOUNTS, 100_000n, rules);
          const [x, y, d, r] = c.accounts as [TestAccount, TestAccount, TestAccount, TestAccount];
          const ok = (o: { status: TxStatus; error: string }) => assert.equal(o.status, TxStatus.OK, o.error);
          ok(c.submit(x, register(consensusKey(0).publicKey, 1000n)));
          ok(c.submit(y, register(consensusKey(1).publicKey, 1000n)));
          ok(c.submit(d, delegate(BigInt(p.stake))));
          const allocated = (BigInt(p.stake) * BigInt(p.allocatedPct)) / 100n;
          ok(c.submit(d, vote([{ validator: x.address, amount: allocated }])));
          for (let i = 0; i < p.epochsBefore; i++) c.endEpoch();
          const left = (allocated * BigInt(p.leftPct)) / 100n;
          const leftEpoch = c.store().meta().epoch;
          ok(
            c.submit(
              d,
              vote(allocated - left > 0n ? [{ validator: x.address, amount: allocated - left }] : []),
            ),
          );
          if (p.move === "undelegate") ok(c.submit(d, undelegate(c.store().delegator(d.address).free)));
          if (p.move === "revote") {
            // The whole new ballot: what stayed on x, and everything free on y.
            const free = c.store().delegator(d.address).free;
            const keep = allocated - left;
            ok(
              c.submit(
                d,
                vote([
                  ...(keep > 0n ? [{ validator: x.address, amount: keep }] : []),
                  { validator: y.address, amount: free },
                ]),
              ),
            );
          }
          const offence = leftEpoch >= BigInt(p.back) ? leftEpoch - BigInt(p.back) : 0n;
          ok(c.submit(r, equivocation(consensusKey(0), offence, offence * 20n + 1n)));
          for (let i = 0; i < p.epochsAfter; i++) c.endEpoch();
          const before = c.totals();
          const o = c.submit(d, delegate(1n));
          ok(o);
          const settled = o.events.find((e) => e.kind === "staking.slash_settled");
          const owed = left === 0n ? 0n : (left * BigInt(rules.slashDoubleSignBps)) / 10_000n;
          if (owed > 0n) {
            // The offence is at or before the epoch the stake left, and nothing is released
            // before the exposure is settled: the full amount is always collected.
            assert.ok(settled, "settled");
            assert.equal(settled.attrs.find(([k]) => k === "amount")![1], owed.toString());
            assert.equal(settled.attrs.find(([k]) => k === "uncollected")![1], "0");
            charged++;
          }
          const after = c.totals();
          assert.equal(after.sum, before.sum);
          assert.equal(after.slashed - before.slashed, owed);
        },
      ),
      { seed: SEED + 6, numRuns: RUNS * 2 },
    );
    assert.ok(charged > 0);
  });

  it("replay and restart give byte-identical state and elected sets", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.nat(), (ops, cutAt) => {
        const a = new MiniChain(N_ACCOUNTS, 10_000n);
        for (const op of ops) applyOp(a, op);
        const b = new MiniChain(N_ACCOUNTS, 10_000n);
        for (const op of ops) applyOp(b, op);
        assert.deepEqual(sortedState(b), sortedState(a));
        // Restart: stop after `cut` ops, rebuild from the persisted bytes, continue.
        const cut = cutAt % (ops.length + 1);
        const first = new MiniChain(N_ACCOUNTS, 10_000n);
        for (const op of ops.slice(0, cut)) applyOp(first, op);
        const restarted = first.restart();
        for (const op of ops.slice(cut)) applyOp(restarted, op);
        assert.deepEqual(sortedState(restarted), sortedState(a));
      }),
      { seed: SEED + 3, numRuns: RUNS },
    );
  });

  it("never registers a consensus key twice (not even after a tombstone)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const c = new MiniChain(N_ACCOUNTS, 10_000n);
        const keysUsed = new Set<number>();
        for (const op of ops) {
          const status = applyOp(c, op);
          if (op.k !== "register") continue;
          const key = op.key < 6 ? op.who : op.key;
          if (status === TxStatus.OK) {
            assert.ok(!keysUsed.has(key), `key ${key} registered twice`);
            keysUsed.add(key);
          } else if (!keysUsed.has(key)) {
            // A fresh key only fails for another reason: the operator is already registered, or
            // the stake is below the minimum.
            assert.ok(c.store().validator(c.accounts[op.who]!.address) !== null || op.stake < 100);
          }
        }
        const keys = c.validators().map((v) => toHex(v.consensusKey));
        assert.equal(new Set(keys).size, keys.length);
        assert.equal(keys.length, keysUsed.size);
      }),
      { seed: SEED + 4, numRuns: RUNS },
    );
  });

  it("no tie oscillation over 1,000 epochs of random stake moves", () => {
    let changes = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.option(
            fc.record({
              who: fc.nat(N_ACCOUNTS - 1),
              picks: fc.uniqueArray(fc.nat(7), { maxLength: 3 }),
              amount: fc.constantFrom(100, 200),
            }),
            { freq: 2 },
          ),
          { minLength: 1000, maxLength: 1000 },
        ),
        (moves) => {
          const rules = testRules({ maxValidators: 4, minValidators: 2 });
          const c = new MiniChain(N_ACCOUNTS, 1_000_000n, rules);
          // Eight candidates with equal self stake: ties everywhere, especially at the cutoff.
          for (let i = 0; i < 8; i++) {
            assert.equal(
              c.submit(c.accounts[i]!, register(consensusKey(i).publicKey, 100n)).status,
              TxStatus.OK,
            );
          }
          for (const a of c.accounts) c.submit(a, delegate(100_000n));
          let previous = c.endEpoch().snapshot;
          for (const [e, m] of moves.entries()) {
            if (m !== null) {
              const ballot = m.picks.map((p) => ({
                validator: c.accounts[p]!.address,
                amount: BigInt(m.amount),
              }));
              c.submit(c.accounts[m.who]!, vote(ballot));
            }
            const snap = c.endEpoch().snapshot;
            const ids = snap.members.map((x) => toHex(x.operator));
            assert.deepEqual(
              ids,
              oracle(c.validators(), rules, previous.members),
              `epoch ${e}: not the election order`,
            );
            if (m === null) {
              assert.deepEqual(
                ids,
                previous.members.map((x) => toHex(x.operator)),
                `epoch ${e}: set changed without a stake move`,
              );
            }
            if (ids.join() !== previous.members.map((x) => toHex(x.operator)).join()) changes++;
            previous = snap;
          }
        },
      ),
      { seed: SEED + 5, numRuns: 3 },
    );
    assert.ok(changes > 0, "stake moves must change the set sometimes");
  });
});
