// Random block generation for the executor's differential property tests: fast-check draws
// "intents" (shrinkable plain data) and blocksFromIntents turns them into signed blocks over a
// universe of accounts, with hot spots, failures, access violations and duplicates.
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { buildGenesis } from "../../src/exec/genesis.js";
import { stateMap } from "../../src/exec/reference.js";
import type { ExecutableBlock, ExecutionResult } from "../../src/exec/types.js";
import {
  buildTx,
  computeTx,
  genesisFor,
  kvPutTx,
  makeAccounts,
  swapTx,
  type TestAccount,
  transferTx,
} from "../../src/exec/workload.js";
import { type SignedTx, SignedTxSchema } from "../../src/gen/parabft/v1/types_pb.js";
import { accountKey, ammPoolKey, kvKey } from "../../src/types/stateKeys.js";

export const UNIVERSES = [2, 10, 100, 10_000, 200_000] as const;
export const POOLS = ["hot", "cold"];

export interface Universe {
  accounts: TestAccount[];
  genesis: ExecutionResult;
  /** The genesis state as a map, so that each run's executors copy it cheaply. */
  state: Map<string, Uint8Array | null>;
}

const universes = new Map<number, Universe>();

/** Accounts and genesis per size, built once per process (200k accounts take a second). */
export function universe(size: number): Universe {
  let u = universes.get(size);
  if (!u) {
    const accounts = makeAccounts(size, size);
    const spec = genesisFor(accounts, 1_000_000n, POOLS);
    // Pool-token holdings for the first accounts only: enough for b_to_a swaps, and it keeps
    // the 200k-account genesis at 200k entries.
    spec.accounts.forEach((a, i) => {
      if (i >= 1000) delete a.holdings;
    });
    const genesis = buildGenesis(spec);
    u = { accounts, genesis, state: stateMap(genesis.writeSet) };
    universes.set(size, u);
  }
  return u;
}

export type Kind =
  | "transfer"
  | "kvPut"
  | "kvCas"
  | "swap"
  | "compute"
  | "malformed"
  | "duplicate"
  | "violation"
  | "badNonce"
  | "poor"
  | "outOfGas"
  | "staking";

export interface Intent {
  kind: Kind;
  /** Sender pick; `hot` concentrates on account 0. */
  sender: number;
  hot: boolean;
  other: number;
  amount: number;
  flag: boolean;
  /** Gas price offered; the large one cannot be paid (INSUFFICIENT_FEE), 0 pays nothing. */
  price: bigint;
}

const kindArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Kind>("transfer") },
  { weight: 2, arbitrary: fc.constant<Kind>("kvPut") },
  { weight: 2, arbitrary: fc.constant<Kind>("kvCas") },
  { weight: 2, arbitrary: fc.constant<Kind>("swap") },
  { weight: 1, arbitrary: fc.constant<Kind>("compute") },
  { weight: 1, arbitrary: fc.constant<Kind>("malformed") },
  { weight: 2, arbitrary: fc.constant<Kind>("duplicate") },
  { weight: 1, arbitrary: fc.constant<Kind>("violation") },
  { weight: 1, arbitrary: fc.constant<Kind>("badNonce") },
  { weight: 1, arbitrary: fc.constant<Kind>("poor") },
  { weight: 1, arbitrary: fc.constant<Kind>("outOfGas") },
  { weight: 1, arbitrary: fc.constant<Kind>("staking") },
);

export const intentArb: fc.Arbitrary<Intent> = fc.record({
  kind: kindArb,
  sender: fc.nat(),
  hot: fc.boolean(),
  other: fc.nat(),
  amount: fc.integer({ min: 0, max: 2_000 }),
  flag: fc.boolean(),
  price: fc.oneof(
    { weight: 6, arbitrary: fc.constant(1n) },
    { weight: 1, arbitrary: fc.constant(0n) },
    { weight: 2, arbitrary: fc.constantFrom(3n, 50n) },
    { weight: 1, arbitrary: fc.constant(100_000n) },
  ),
});

export const scenarioArb = (sizes: readonly number[], maxTxs: number) =>
  fc.record({
    size: fc.constantFrom(...sizes),
    blocks: fc.array(fc.array(intentArb, { minLength: 0, maxLength: maxTxs }), {
      minLength: 1,
      maxLength: 3,
    }),
  });

const KV_KEYS = ["a", "b", "c", "d"].map((s) => new TextEncoder().encode(s));

/** Deterministic: the same intents always give the same blocks. */
export function blocksFromIntents(u: Universe, intents: Intent[][]): ExecutableBlock[] {
  const accts = u.accounts;
  const nonces = new Map<TestAccount, bigint>();
  const take = (a: TestAccount) => {
    const n = nonces.get(a) ?? 0n;
    nonces.set(a, n + 1n);
    return n;
  };
  const history: SignedTx[] = [];
  return intents.map((block, bi) => {
    const txs: SignedTx[] = [];
    for (const it of block) {
      const from = it.hot ? accts[0]! : accts[it.sender % accts.length]!;
      const to = accts[it.other % accts.length]!;
      const key = KV_KEYS[it.other % KV_KEYS.length]!;
      let tx: SignedTx;
      switch (it.kind) {
        case "transfer":
          tx = transferTx(from, take(from), to.address, BigInt(it.amount), it.price);
          break;
        case "kvPut":
          tx = kvPutTx(from, take(from), key, Uint8Array.of(it.amount & 255), it.price);
          break;
        case "kvCas":
          tx = buildTx({
            sender: from,
            nonce: take(from),
            price: it.price,
            call: {
              case: "kvCas",
              value: {
                $typeName: "parabft.v1.KvCas",
                key,
                expected: Uint8Array.of(it.amount & 3),
                expectAbsent: it.flag,
                value: Uint8Array.of(it.amount & 255),
              },
            },
            reads: it.flag ? [] : [kvKey(key)],
            writes: [kvKey(key)],
          });
          break;
        case "swap":
          tx = swapTx(from, take(from), POOLS[it.other % 2]!, it.flag, BigInt(it.amount * 1000), it.price);
          break;
        case "compute":
          tx = computeTx(from, take(from), it.amount % 50, it.price);
          break;
        case "malformed":
          tx = create(SignedTxSchema, {
            body: Uint8Array.of(0xff, 0xff, 0xff, it.amount & 255),
            signature: new Uint8Array(64),
          });
          break;
        case "duplicate":
          tx =
            history.length > 0
              ? history[it.other % history.length]!
              : transferTx(from, take(from), to.address, 1n);
          break;
        case "violation":
          // Declares the wrong key: the recipient (or pool) is missing from the access list.
          tx = buildTx({
            sender: from,
            nonce: take(from),
            call: it.flag
              ? {
                  case: "transfer",
                  value: { $typeName: "parabft.v1.BankTransfer", to: to.address, amount: "1" },
                }
              : {
                  case: "ammSwap",
                  value: {
                    $typeName: "parabft.v1.AmmSwap",
                    pool: "hot",
                    aToB: true,
                    amountIn: "10",
                    minAmountOut: "1",
                  },
                },
            reads: it.flag ? [ammPoolKey("hot")] : [accountKey(to.address)],
            writes: [],
          });
          break;
        case "badNonce": {
          const n = nonces.get(from) ?? 0n;
          tx = transferTx(from, it.flag ? n + 3n : n > 0n ? n - 1n : n + 7n, to.address, 1n);
          break;
        }
        case "poor":
          tx = transferTx(from, take(from), to.address, 10n ** 30n, it.price);
          break;
        case "outOfGas":
          tx = buildTx({
            sender: from,
            nonce: take(from),
            gasLimit: 10n,
            price: it.price,
            call: {
              case: "transfer",
              value: { $typeName: "parabft.v1.BankTransfer", to: to.address, amount: "1" },
            },
            writes: [accountKey(from.address), accountKey(to.address)],
          });
          break;
        case "staking":
          tx = buildTx({
            sender: from,
            nonce: take(from),
            // Half of them also offer a fee that is not a number (MALFORMED, nonce consumed).
            ...(it.flag ? { rawFee: "1e3" } : {}),
            call: {
              case: "staking",
              value: {
                $typeName: "parabft.v1.StakingCall",
                call: { case: "unjail", value: { $typeName: "parabft.v1.Unjail" } },
              },
            },
          });
          break;
      }
      txs.push(tx);
      history.push(tx);
    }
    return { height: BigInt(bi + 1), timestampMs: BigInt(1000 * (bi + 1)), txs };
  });
}
