// The schedule: what a transaction may ask for (program limits), the gas each call costs, and the
// fee it pays. One place, read by admission (src/mempool), by both executors (src/exec) and by the
// SDK when it fills in defaults, so a transaction admitted by one is priced the same by the others.
//
// Fees: TxBody.fee is the gas price the sender offers, a decimal integer of token units per gas
// ("" reads as 0). TxBody.gas_limit caps the gas it may use. A transaction pays gasUsed × price,
// credited to the fee collector account (FEE_COLLECTOR_ADDRESS), so the bank total including the
// fees collected is conserved. Admission requires price ≥ MIN_GAS_PRICE, a gas limit that covers the
// call (gasOf), and a balance that covers maxFee + the value the call moves (txValue).
// No node: imports (nor in codec.js): the browser SDK uses this file.
import type { ProgramCall, TxBody } from "../gen/parabft/v1/types_pb.js";
import { ADDRESS_LENGTH } from "../types/block.js";
import { U128_MAX } from "./codec.js";

export const LIMITS = {
  maxComputeIterations: 1_000_000,
  maxComputeSeedBytes: 64,
  maxKvKeyBytes: 256,
  maxKvValueBytes: 4096,
} as const;

/** Gas units per call. */
export const GAS = {
  base: 1000,
  transfer: 500,
  kvPut: 200,
  kvCas: 300,
  perByte: 4,
  ammSwap: 2000,
  computePerIteration: 10,
  /** Staking calls: base, per ballot entry, and evidence (two signature checks). */
  staking: 2000,
  stakingPerVote: 200,
  stakingEvidence: 6000,
} as const;

/** The lowest gas price admission accepts, in token units per gas. */
export const MIN_GAS_PRICE = 1n;

/** Fees are credited to this account: the all-zero address, which no key controls. */
export const FEE_COLLECTOR_ADDRESS = new Uint8Array(ADDRESS_LENGTH);

/** A decimal amount or price as transactions carry them: no sign, no leading zeros, ≤ 39 digits. */
export const DECIMAL_RE = /^(0|[1-9][0-9]{0,38})$/;

/** Gas a call needs, known before running it, so an out-of-gas call never runs. */
export function gasOf(call: ProgramCall["call"]): number {
  switch (call.case) {
    case "transfer":
      return GAS.base + GAS.transfer;
    case "kvPut":
      return GAS.base + GAS.kvPut + GAS.perByte * (call.value.key.length + call.value.value.length);
    case "kvCas":
      return (
        GAS.base +
        GAS.kvCas +
        GAS.perByte * (call.value.key.length + call.value.expected.length + call.value.value.length)
      );
    case "ammSwap":
      return GAS.base + GAS.ammSwap;
    case "compute":
      return (
        GAS.base + GAS.computePerIteration * Math.min(call.value.iterations, LIMITS.maxComputeIterations)
      );
    case "staking": {
      const c = call.value.call;
      if (c.case === "vote")
        return GAS.base + GAS.staking + GAS.stakingPerVote * Math.min(c.value.entries.length, 1000);
      if (c.case === "submitEvidence") return GAS.base + GAS.staking + GAS.stakingEvidence;
      return GAS.base + GAS.staking;
    }
    default:
      return GAS.base;
  }
}

/** The offered gas price, or null when TxBody.fee is not a decimal u128 ("" is 0). */
export function gasPrice(body: Pick<TxBody, "fee">): bigint | null {
  if (body.fee === "") return 0n;
  if (!DECIMAL_RE.test(body.fee)) return null;
  const v = BigInt(body.fee);
  return v > U128_MAX ? null : v;
}

/** The most this transaction can pay in fees: gas_limit × price (null when the price is malformed). */
export function maxFee(body: Pick<TxBody, "fee" | "gasLimit">): bigint | null {
  const price = gasPrice(body);
  return price === null ? null : body.gasLimit * price;
}
