// Staking failure codes. A program failure is control flow inside a transaction (the executor
// turns it into a FAILED receipt "CODE: detail"); StakingError is for callers outside execution
// (decoding stored records, building transactions).
import { ParabftError } from "../types/errors.js";

export type StakingFailureCode =
  | "MALFORMED"
  | "INSUFFICIENT_FUNDS"
  | "OVERFLOW"
  | "ALREADY_REGISTERED"
  | "DUPLICATE_CONSENSUS_KEY"
  | "SELF_STAKE_TOO_LOW"
  | "UNKNOWN_VALIDATOR"
  | "VALIDATOR_TOMBSTONED"
  | "NOT_JAILED"
  | "STILL_JAILED"
  | "BALLOT_EXCEEDS_STAKE"
  | "BAD_EVIDENCE"
  | "EVIDENCE_TOO_OLD"
  | "CORRUPT_STATE";

/** Thrown inside a staking program; the executor catches it and reverts the transaction. */
export class StakingFailure {
  constructor(
    readonly code: StakingFailureCode,
    readonly detail = "",
  ) {}
}

export const stakingFail = (code: StakingFailureCode, detail = ""): never => {
  throw new StakingFailure(code, detail);
};

export class StakingError extends ParabftError<StakingFailureCode, { detail: string }> {
  constructor(code: StakingFailureCode, detail: string) {
    super(code, { detail }, `${code}: ${detail}`);
    this.name = "StakingError";
  }
}
