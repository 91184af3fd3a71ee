// Deterministic synthetic workloads for the executor's tests and benchmarks: accounts, and
// unsigned-but-well-formed transactions (execution never verifies signatures: consensus did).
// Not used on the node's path.

import { hash as nodeHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  type ProgramCall,
  ProgramCallSchema,
  type SignedTx,
  SignedTxSchema,
  TxBodySchema,
} from "../gen/parabft/v1/types_pb.js";
import { accountKey, ammHoldingKey, ammPoolKey, computeKey, kvKey } from "../types/stateKeys.js";
import { gasOf, MIN_GAS_PRICE } from "./fees.js";
import type { GenesisSpec } from "./genesis.js";

/** A small fast PRNG (mulberry32): workloads must be reproducible from a seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export interface TestAccount {
  publicKey: Uint8Array;
  address: Uint8Array;
}

export function makeAccounts(n: number, seed = 1): TestAccount[] {
  const out: TestAccount[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const pk = new Uint8Array(32);
    const dv = new DataView(pk.buffer);
    dv.setUint32(0, seed >>> 0);
    dv.setUint32(4, i);
    pk[31] = 0xa5;
    // addressOf(pk) (first 20 bytes of SHA-256), via node:crypto: 200k accounts must be quick.
    out[i] = { publicKey: pk, address: new Uint8Array(nodeHash("sha256", pk, "buffer").subarray(0, 20)) };
  }
  return out;
}

export function genesisFor(
  accounts: readonly TestAccount[],
  balance = 1_000_000_000n,
  pools: string[] = [],
): GenesisSpec {
  return {
    pools: pools.map((id) => ({ id, reserveA: 10n ** 12n, reserveB: 10n ** 12n, feeBps: 30 })),
    accounts: accounts.map((a) => ({
      address: a.address,
      balance,
      holdings: Object.fromEntries(pools.map((p) => [p, 1_000_000_000n])),
    })),
  };
}

export interface TxSpec {
  sender: TestAccount;
  nonce: bigint;
  call: ProgramCall["call"];
  reads?: Uint8Array[];
  writes?: Uint8Array[];
  /** Default: gasOf(call), as the SDK fills it in. */
  gasLimit?: bigint;
  /** Gas price. Default: MIN_GAS_PRICE, so the transaction is admissible and pays a fee. */
  price?: bigint;
  /** TxBody.fee verbatim (overrides price): for malformed-fee tests. */
  rawFee?: string;
}

const NO_SIGNATURE = new Uint8Array(64);

export function buildTx(s: TxSpec): SignedTx {
  const body = create(TxBodySchema, {
    chainId: "bench",
    sender: s.sender.publicKey,
    nonce: s.nonce,
    gasLimit: s.gasLimit ?? BigInt(gasOf(s.call)),
    fee: s.rawFee ?? (s.price ?? MIN_GAS_PRICE).toString(),
    access: { reads: s.reads ?? [], writes: s.writes ?? [] },
    call: create(ProgramCallSchema, { call: s.call }),
  });
  return create(SignedTxSchema, { body: toBinary(TxBodySchema, body), signature: NO_SIGNATURE });
}

/** The access list an honest client declares for each program. */
export function transferTx(
  from: TestAccount,
  nonce: bigint,
  to: Uint8Array,
  amount: bigint,
  price?: bigint,
): SignedTx {
  return buildTx({
    sender: from,
    nonce,
    price,
    call: {
      case: "transfer",
      value: { $typeName: "parabft.v1.BankTransfer", to, amount: amount.toString() },
    },
    writes: [accountKey(from.address), accountKey(to)],
  });
}

export function swapTx(
  from: TestAccount,
  nonce: bigint,
  pool: string,
  aToB: boolean,
  amountIn: bigint,
  price?: bigint,
): SignedTx {
  return buildTx({
    sender: from,
    nonce,
    price,
    call: {
      case: "ammSwap",
      value: {
        $typeName: "parabft.v1.AmmSwap",
        pool,
        aToB,
        amountIn: amountIn.toString(),
        minAmountOut: "1",
      },
    },
    writes: [accountKey(from.address), ammPoolKey(pool), ammHoldingKey(pool, from.address)],
  });
}

export function computeTx(from: TestAccount, nonce: bigint, iterations: number, price?: bigint): SignedTx {
  return buildTx({
    sender: from,
    nonce,
    price,
    call: { case: "compute", value: { $typeName: "parabft.v1.ComputeWork", iterations, seed: from.address } },
    writes: [computeKey(from.address)],
  });
}

export function kvPutTx(
  from: TestAccount,
  nonce: bigint,
  key: Uint8Array,
  value: Uint8Array,
  price?: bigint,
): SignedTx {
  return buildTx({
    sender: from,
    nonce,
    price,
    call: { case: "kvPut", value: { $typeName: "parabft.v1.KvPut", key, value } },
    writes: [kvKey(key)],
  });
}

/** Tracks the next nonce per sender while generating a sequence of blocks. */
export class NonceBook {
  private readonly next = new Map<TestAccount, bigint>();
  take(a: TestAccount): bigint {
    const n = this.next.get(a) ?? 0n;
    this.next.set(a, n + 1n);
    return n;
  }
}
