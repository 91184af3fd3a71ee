// The genesis file: chain id, start time, chain parameters (a preset or a full ChainParams),
// the epoch-0 validator set, funded accounts and AMM pools. Parsed strictly (unknown fields
// rejected, errors name the field) into typed values: bytes as Uint8Array, amounts as bigint.
import { promises as fs, readFileSync } from "node:fs";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { U128_MAX } from "../exec/codec.js";
import { isValidPoolId } from "../exec/programs.js";
import { ValidatorSchema, type ValidatorSet, ValidatorSetSchema } from "../gen/parabft/v1/types_pb.js";
import { type ChainParams, type PresetName, presets, validateParams } from "../params/index.js";
import { isValidPeerAddress } from "../staking/programs.js";
import { ADDRESS_LENGTH, PUBLIC_KEY_LENGTH } from "../types/block.js";
import { bytesEqual, fromHex, toHex } from "../types/bytes.js";
import { ParabftError } from "../types/errors.js";
import type { NodeConfig } from "./config.js";
import { transportIndexOf } from "./membership.js";

export type GenesisErrorCode = "GENESIS_INVALID";

export class GenesisError extends ParabftError<GenesisErrorCode, { field: string }> {
  constructor(field: string, message: string) {
    super("GENESIS_INVALID", { field }, `invalid genesis: ${field}: ${message}`);
  }
}

export interface GenesisValidator {
  /** Operator name; unique. */
  name: string;
  publicKey: Uint8Array;
  power: bigint;
  /**
   * DPoS (issue 11): the genesis validator is a registered validator bonding this self stake
   * (default: `power`, which stays below minSelfStake for old files: their set is then kept).
   */
  selfStake?: bigint;
  /** Operator account (20-byte hex); default addressOf(publicKey), the node's own account. */
  operator?: Uint8Array;
  /** Advertised peer address (host:port), as RegisterValidator's peer_address. */
  peerAddress?: string;
}

export interface GenesisAccount {
  address: Uint8Array;
  balance: bigint;
  /** Token-B holdings by AMM pool id (token A is the balance); absent when none. */
  holdings?: Record<string, bigint>;
}

export interface GenesisAmmPool {
  id: string;
  reserveA: bigint;
  reserveB: bigint;
  feeBps: number;
}

export interface Genesis {
  chainId: string;
  genesisTimeMs: bigint;
  /** Set when the file named a preset rather than full params. */
  preset: PresetName | null;
  /** Always the full, validated parameters (the preset expanded). */
  params: ChainParams;
  validators: GenesisValidator[];
  accounts: GenesisAccount[];
  ammPools: GenesisAmmPool[];
}

/** The JSON shape on disk. */
export interface GenesisJson {
  chainId: string;
  genesisTimeMs: number;
  preset?: PresetName;
  params?: ChainParams;
  validators: {
    name: string;
    publicKey: string;
    power: number | string;
    selfStake?: string;
    operator?: string;
    peerAddress?: string;
  }[];
  accounts: { address: string; balance: string; holdings?: Record<string, string> }[];
  ammPools: { id: string; reserveA: string; reserveB: string; feeBps: number }[];
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  return typeof v === "string" ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

function obj(field: string, v: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new GenesisError(field, `must be an object, got ${describe(v)}`);
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      throw new GenesisError(field ? `${field}.${k}` : k, `unknown field (allowed: ${allowed.join(", ")})`);
    }
  }
  return o;
}

function arr(field: string, v: unknown): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new GenesisError(field, `must be an array, got ${describe(v)}`);
  return v;
}

function str(field: string, v: unknown): string {
  if (typeof v !== "string" || v === "")
    throw new GenesisError(field, `must be a non-empty string, got ${describe(v)}`);
  return v;
}

function hex(field: string, v: unknown, len: number): Uint8Array {
  const s = str(field, v);
  let b: Uint8Array;
  try {
    b = fromHex(s);
  } catch {
    throw new GenesisError(field, "must be a hex string");
  }
  if (b.length !== len) throw new GenesisError(field, `must be ${len} bytes, got ${b.length}`);
  return b;
}

/** A non-negative integer amount: a decimal string (or a safe-integer number). */
function amount(field: string, v: unknown, min = 0n): bigint {
  let n: bigint;
  if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === "string" && /^\d{1,78}$/.test(v)) n = BigInt(v);
  else
    throw new GenesisError(field, `must be a non-negative integer as a decimal string, got ${describe(v)}`);
  if (n < min) throw new GenesisError(field, `must be ≥ ${min}`);
  if (n >= 1n << 64n && field.endsWith(".power")) throw new GenesisError(field, "must fit in 64 bits");
  // Execution keeps amounts as u128 (src/exec/codec.ts).
  if (n > U128_MAX) throw new GenesisError(field, "must fit in 128 bits");
  return n;
}

function parseParams(v: unknown): ChainParams {
  const p = obj("params", v, ["consensus", "staking", "limits"]);
  const sections = {
    consensus: presets.default.consensus,
    staking: presets.default.staking,
    limits: presets.default.limits,
  };
  const out: Record<string, unknown> = {};
  for (const [name, dflt] of Object.entries(sections)) {
    const s = obj(`params.${name}`, p[name], Object.keys(dflt));
    for (const k of Object.keys(dflt)) {
      if (s[k] === undefined)
        throw new GenesisError(`params.${name}.${k}`, "missing (params must be complete)");
    }
    out[name] = { ...s };
  }
  const params = out as unknown as ChainParams;
  try {
    return validateParams(params);
  } catch (err) {
    if (err instanceof ParabftError && err.code === "INVALID_PARAMS") {
      const field = (err.detail as { field?: string }).field ?? "?";
      throw new GenesisError(`params.${field}`, err.message);
    }
    throw err;
  }
}

const TOP = [
  "$comment",
  "chainId",
  "genesisTimeMs",
  "preset",
  "params",
  "validators",
  "accounts",
  "ammPools",
];

/** Validates a parsed genesis JSON value; throws GenesisError naming the field. */
export function parseGenesis(input: unknown): Genesis {
  const g = obj("", input, TOP);
  const chainId = str("chainId", g.chainId);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(chainId)) {
    throw new GenesisError("chainId", "must be 1-64 characters of [A-Za-z0-9._-]");
  }
  const t = g.genesisTimeMs;
  if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
    throw new GenesisError("genesisTimeMs", `must be a non-negative integer (unix ms), got ${describe(t)}`);
  }
  let preset: PresetName | null = null;
  let params: ChainParams;
  if (g.preset !== undefined && g.params !== undefined) {
    throw new GenesisError("preset", "give either preset or params, not both");
  }
  if (g.params !== undefined) params = parseParams(g.params);
  else {
    const name = g.preset ?? "default";
    if (typeof name !== "string" || !Object.hasOwn(presets, name)) {
      throw new GenesisError(
        "preset",
        `must be one of ${Object.keys(presets).join(", ")}, got ${describe(name)}`,
      );
    }
    preset = name as PresetName;
    params = validateParams(structuredClone(presets[preset]));
  }

  const names = new Set<string>();
  const keys = new Set<string>();
  const validators = arr("validators", g.validators).map((v, i) => {
    const f = `validators[${i}]`;
    const o = obj(f, v, ["name", "publicKey", "power", "selfStake", "operator", "peerAddress"]);
    const name = str(`${f}.name`, o.name);
    if (names.has(name))
      throw new GenesisError(`${f}.name`, `duplicate validator name ${JSON.stringify(name)}`);
    names.add(name);
    const publicKey = hex(`${f}.publicKey`, o.publicKey, PUBLIC_KEY_LENGTH);
    const k = toHex(publicKey);
    if (keys.has(k)) throw new GenesisError(`${f}.publicKey`, "duplicate validator public key");
    keys.add(k);
    const out: GenesisValidator = { name, publicKey, power: amount(`${f}.power`, o.power, 1n) };
    if (o.selfStake !== undefined) out.selfStake = amount(`${f}.selfStake`, o.selfStake, 1n);
    if (o.operator !== undefined) out.operator = hex(`${f}.operator`, o.operator, ADDRESS_LENGTH);
    if (o.peerAddress !== undefined) {
      const a = str(`${f}.peerAddress`, o.peerAddress);
      if (!isValidPeerAddress(a)) throw new GenesisError(`${f}.peerAddress`, "must be host:port");
      out.peerAddress = a;
    }
    return out;
  });
  if (validators.length === 0) throw new GenesisError("validators", "at least one validator is required");
  if (validators.length > params.staking.maxValidators) {
    throw new GenesisError(
      "validators",
      `${validators.length} validators exceed params.staking.maxValidators (${params.staking.maxValidators})`,
    );
  }

  const poolIds = new Set<string>();
  const ammPools = arr("ammPools", g.ammPools).map((p, i) => {
    const f = `ammPools[${i}]`;
    const o = obj(f, p, ["id", "reserveA", "reserveB", "feeBps"]);
    const id = str(`${f}.id`, o.id);
    if (!isValidPoolId(id)) throw new GenesisError(`${f}.id`, "must match [A-Za-z0-9._-]{1,64}");
    if (poolIds.has(id)) throw new GenesisError(`${f}.id`, `duplicate pool id ${JSON.stringify(id)}`);
    poolIds.add(id);
    const feeBps = o.feeBps;
    if (typeof feeBps !== "number" || !Number.isInteger(feeBps) || feeBps < 0 || feeBps >= 10_000) {
      throw new GenesisError(`${f}.feeBps`, `must be an integer in [0, 9999], got ${describe(feeBps)}`);
    }
    return {
      id,
      reserveA: amount(`${f}.reserveA`, o.reserveA, 1n),
      reserveB: amount(`${f}.reserveB`, o.reserveB, 1n),
      feeBps,
    };
  });

  const addrs = new Set<string>();
  const accounts = arr("accounts", g.accounts).map((a, i) => {
    const f = `accounts[${i}]`;
    const o = obj(f, a, ["address", "balance", "holdings"]);
    const address = hex(`${f}.address`, o.address, ADDRESS_LENGTH);
    const k = toHex(address);
    if (addrs.has(k)) throw new GenesisError(`${f}.address`, "duplicate account address");
    addrs.add(k);
    const account: GenesisAccount = { address, balance: amount(`${f}.balance`, o.balance) };
    if (o.holdings !== undefined) {
      const h = obj(`${f}.holdings`, o.holdings, [...poolIds]);
      account.holdings = Object.fromEntries(
        Object.entries(h).map(([pool, v]) => [pool, amount(`${f}.holdings.${pool}`, v)]),
      );
    }
    return account;
  });

  return { chainId, genesisTimeMs: BigInt(t), preset, params, validators, accounts, ammPools };
}

/** The JSON form: a preset stays a preset name; amounts are decimal strings. */
export function genesisToJson(g: Genesis): GenesisJson {
  const out: GenesisJson = {
    chainId: g.chainId,
    genesisTimeMs: Number(g.genesisTimeMs),
    validators: g.validators.map((v) => ({
      name: v.name,
      publicKey: toHex(v.publicKey),
      power: v.power <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.power) : v.power.toString(),
      ...(v.selfStake !== undefined ? { selfStake: v.selfStake.toString() } : {}),
      ...(v.operator !== undefined ? { operator: toHex(v.operator) } : {}),
      ...(v.peerAddress !== undefined ? { peerAddress: v.peerAddress } : {}),
    })),
    accounts: g.accounts.map((a) =>
      a.holdings
        ? {
            address: toHex(a.address),
            balance: a.balance.toString(),
            holdings: Object.fromEntries(Object.entries(a.holdings).map(([k, v]) => [k, v.toString()])),
          }
        : { address: toHex(a.address), balance: a.balance.toString() },
    ),
    ammPools: g.ammPools.map((p) => ({
      id: p.id,
      reserveA: p.reserveA.toString(),
      reserveB: p.reserveB.toString(),
      feeBps: p.feeBps,
    })),
  };
  if (g.preset) out.preset = g.preset;
  else out.params = g.params;
  return out;
}

export function loadGenesis(file: string): Genesis {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new GenesisError("genesisFile", `cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new GenesisError("genesisFile", `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseGenesis(raw);
}

/** Validates (round-trips through parseGenesis) and writes the genesis file. */
export async function writeGenesis(file: string, g: Genesis): Promise<void> {
  const json = genesisToJson(g);
  parseGenesis(json);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o644 });
}

/** The epoch-0 validator set, in genesis order (index i = validators[i]). */
export function genesisValidatorSet(g: Genesis): ValidatorSet {
  return create(ValidatorSetSchema, {
    epoch: 0n,
    validators: g.validators.map((v) =>
      create(ValidatorSchema, { publicKey: v.publicKey, power: v.power, name: v.name }),
    ),
  });
}

/**
 * Checks a node config against the genesis it names: same chain, an index inside the set,
 * peers inside the set, and (when given) the node's key is the validator at its index.
 */
export function checkConfigAgainstGenesis(cfg: NodeConfig, g: Genesis, publicKey?: Uint8Array): void {
  // A ConfigError would be the natural type, but genesis.ts must not depend on config.ts at run
  // time (config.ts is imported by tools that never touch genesis); GenesisError names the field.
  if (cfg.chainId !== g.chainId) {
    throw new GenesisError(
      "chainId",
      `config chainId ${cfg.chainId} differs from genesis chainId ${g.chainId}`,
    );
  }
  const n = g.validators.length;
  // DPoS joiner (issue 11): a validator outside the genesis set runs with its transport index
  // (src/node/membership.ts, derived from its key) and joins when elected.
  const joiner =
    publicKey !== undefined &&
    !g.validators.some((v) => bytesEqual(v.publicKey, publicKey)) &&
    cfg.validatorIndex ===
      transportIndexOf(
        publicKey,
        g.validators.map((v) => v.publicKey),
      );
  if (cfg.validatorIndex >= n && !joiner) {
    throw new GenesisError(
      "validatorIndex",
      `${cfg.validatorIndex} is outside the genesis set of ${n} validators`,
    );
  }
  cfg.peers.forEach((p, i) => {
    if (p.index >= n)
      throw new GenesisError(`peers[${i}].index`, `${p.index} is outside the genesis set of ${n}`);
  });
  if (publicKey && !joiner && !bytesEqual(publicKey, g.validators[cfg.validatorIndex]!.publicKey)) {
    throw new GenesisError(
      "keyFile",
      `the key's public key is not genesis validator ${cfg.validatorIndex} (${g.validators[cfg.validatorIndex]!.name})`,
    );
  }
}
