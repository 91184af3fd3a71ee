// Chain parameters and presets (DESIGN §2, §6). `minimal` is the test preset.
import { ParabftError } from "../types/errors.js";

export interface ConsensusParams {
  /** Heights in flight at once between the low and high watermark. */
  window: number;
  checkpointInterval: number;
  /** Consensus stops proposing when execution falls this many heights behind. */
  maxExecLag: number;
  /** Base view-change timeout; doubles per consecutive failed view up to the cap. */
  viewTimeoutMs: number;
  viewTimeoutCapMs: number;
  maxBlockTxs: number;
  maxBlockBytes: number;
  /**
   * With `proposalDepth` ≥ 2: while some but fewer than `proposalDepth` heights are uncommitted,
   * a primary spaces its next proposal this long after its previous one (none uncommitted: at
   * once). No effect with depth 1.
   */
  maxBatchDelayMs: number;
  /**
   * Pipeline depth of the proposer: a primary proposes only while fewer than this many heights
   * below the one it would propose are uncommitted (a full batch still goes). The block rate then
   * follows the round time, not a clock: under load blocks grow instead of multiplying.
   */
  proposalDepth: number;
  /** Bound on |proposal timestamp − local clock| for fresh proposals. */
  maxClockSkewMs: number;
}

export interface StakingParams {
  epochLength: number;
  maxValidators: number;
  minValidators: number;
  unbondingEpochs: number;
  slashDoubleSignBps: number;
  slashDowntimeBps: number;
}

export interface LimitParams {
  maxTxBytes: number;
  /** Largest peer or API message accepted on the wire. */
  maxMessageBytes: number;
}

export interface ChainParams {
  consensus: ConsensusParams;
  staking: StakingParams;
  limits: LimitParams;
}

export const defaultParams: ChainParams = {
  consensus: {
    window: 16,
    checkpointInterval: 8,
    maxExecLag: 8,
    viewTimeoutMs: 1000,
    viewTimeoutCapMs: 16000,
    maxBlockTxs: 2000,
    maxBlockBytes: 2 * 1024 * 1024,
    maxBatchDelayMs: 20,
    proposalDepth: 1,
    maxClockSkewMs: 10_000,
  },
  staking: {
    epochLength: 200,
    maxValidators: 21,
    minValidators: 4,
    unbondingEpochs: 84,
    slashDoubleSignBps: 500,
    slashDowntimeBps: 100,
  },
  limits: { maxTxBytes: 16 * 1024, maxMessageBytes: 4 * 1024 * 1024 },
};

export const minimalParams: ChainParams = {
  consensus: {
    ...defaultParams.consensus,
    window: 10,
    checkpointInterval: 5,
    maxExecLag: 5,
    viewTimeoutMs: 300,
  },
  staking: { ...defaultParams.staking, epochLength: 20, maxValidators: 4, unbondingEpochs: 6 },
  limits: defaultParams.limits,
};

export const presets = { default: defaultParams, minimal: minimalParams } as const;

/** Whether `name` is a field of ConsensusParams (overrides by name: testnet, bench cluster --consensus). */
export function isConsensusParam(name: string): name is keyof ConsensusParams {
  return Object.hasOwn(defaultParams.consensus, name);
}
export type PresetName = keyof typeof presets;

export type ParamsErrorCode = "INVALID_PARAMS";

function invalid(field: string, why: string): never {
  throw new ParabftError<ParamsErrorCode, { field: string }>(
    "INVALID_PARAMS",
    { field },
    `invalid chain parameter ${field}: ${why}`,
  );
}

function positiveInt(field: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0)
    invalid(field, `must be a positive integer, got ${String(v)}`);
}

/** Validates cross-field rules at load time; throws INVALID_PARAMS naming the field. */
export function validateParams(p: ChainParams): ChainParams {
  const c = p.consensus;
  for (const [k, v] of Object.entries(c)) positiveInt(`consensus.${k}`, v);
  for (const [k, v] of Object.entries(p.staking)) {
    if (k.endsWith("Bps")) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 10_000)
        invalid(`staking.${k}`, "must be 0..10000");
    } else positiveInt(`staking.${k}`, v);
  }
  for (const [k, v] of Object.entries(p.limits)) positiveInt(`limits.${k}`, v);
  if (c.window < 2 * c.checkpointInterval) invalid("consensus.window", "must be ≥ 2 × checkpointInterval");
  if (c.maxExecLag > c.window) invalid("consensus.maxExecLag", "must be ≤ window");
  if (c.proposalDepth > c.window) invalid("consensus.proposalDepth", "must be ≤ window");
  if (p.staking.epochLength % c.checkpointInterval !== 0) {
    invalid("staking.epochLength", "must be a multiple of consensus.checkpointInterval");
  }
  if (c.viewTimeoutCapMs < c.viewTimeoutMs) invalid("consensus.viewTimeoutCapMs", "must be ≥ viewTimeoutMs");
  return p;
}
