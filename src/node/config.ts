// The per-node configuration file `<home>/config.json` (DESIGN §8): defaults, PARABFT_*
// environment overrides, strict validation naming the offending field, and path resolution
// relative to the node's home. Every field and its default is documented in docs/CONFIG.md.
import { promises as fs, readFileSync } from "node:fs";
import path from "node:path";
import { ParabftError } from "../types/errors.js";

export const CONFIG_FILE_NAME = "config.json";

export type ConfigErrorCode = "CONFIG_INVALID";

/** Invalid or unreadable configuration; `field` is the dotted path (or env var) at fault. */
export class ConfigError extends ParabftError<ConfigErrorCode, { field: string }> {
  constructor(field: string, message: string) {
    super("CONFIG_INVALID", { field }, `invalid config: ${field}: ${message}`);
  }
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface PeerConfig {
  /** The peer's index in the genesis validator set (its public key comes from genesis). */
  index: number;
  /** "host:port" of the peer's peer (consensus) port. */
  address: string;
  /**
   * "host:port" of the peer's public API: where this node fetches committed blocks while it
   * follows the chain outside the validator set (DPoS, src/node/follower.ts). Optional.
   */
  api?: string;
}

export interface NodeConfig {
  chainId: string;
  validatorIndex: number;
  /** Relative paths are resolved against the node home. */
  keyFile: string;
  /** Beside the key file and never inside dataDir, so wiping data cannot cause equivocation. */
  signingStateFile: string;
  dataDir: string;
  genesisFile: string;
  listen: {
    peer: string;
    api: string;
    /** Empty string disables the metrics endpoint. */
    metrics: string;
  };
  peers: PeerConfig[];
  log: { level: LogLevel };
  mempool: {
    maxTxs: number;
    maxBytes: number;
    maxPerSender: number;
    /** OVERLOADED backpressure: API submissions are refused past this much of recent commits (0 = off). */
    backlogMs: number;
    /** ... and at least this many executable transactions. */
    minBacklog: number;
  };
  verify: { workers: number };
  execution: { workers: number };
  /** Public API resource limits (src/api ApiServerOpts; docs/CONFIG.md, docs/SECURITY.md). */
  api: ApiLimitsConfig;
  /** Peer links (src/net; docs/CONFIG.md, docs/SECURITY.md). */
  net: NetConfig;
}

export interface NetConfig {
  /**
   * Peer links without TLS: for local debugging only (the node logs a warning). The handshake
   * still proves identity and freshness, but traffic is readable and can be cut.
   */
  insecure: boolean;
  /** This validator's TLS certificate (PEM); its key must be the consensus key. */
  tlsCertFile: string;
  /** Every validator's certificate (PEM bundle): the only TLS trust roots for peer links. */
  tlsTrustedCertsFile: string;
}

export interface ApiLimitsConfig {
  /** Serve gRPC server reflection. Off unless set. */
  reflection: boolean;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxInFlightPerConnection: number;
  maxInFlightPerAddress: number;
  maxStreams: number;
  maxStreamsPerAddress: number;
  streamStallMs: number;
  /** New connections from an address are closed at accept this long after one was closed for abuse. */
  abuseCooldownMs: number;
  /** Repeated abuse doubles that cool-down up to this. */
  abuseCooldownMaxMs: number;
}

export const DEFAULT_KEY_FILE = "keys/validator.json";
// The name src/storage gives the signing-state snapshot (its log is signing_state.bin beside it);
// test/unit/cli/config.test.ts keeps the two equal.
export const SIGNING_STATE_FILE_NAME = "signing_state.json";

/** The defaults; `signingStateFile` defaults to `signing_state.json` beside `keyFile`. */
export const configDefaults = {
  keyFile: DEFAULT_KEY_FILE,
  dataDir: "data",
  genesisFile: "genesis.json",
  listen: { peer: "127.0.0.1:26656", api: "127.0.0.1:26657", metrics: "127.0.0.1:26660" },
  peers: [] as PeerConfig[],
  log: { level: "info" as LogLevel },
  mempool: {
    maxTxs: 100_000,
    maxBytes: 64 * 1024 * 1024,
    maxPerSender: 1_000,
    backlogMs: 1_000,
    minBacklog: 256,
  },
  verify: { workers: 2 },
  execution: { workers: 2 },
  api: {
    reflection: false,
    maxConnections: 1024,
    maxConnectionsPerAddress: 64,
    maxInFlightPerConnection: 64,
    maxInFlightPerAddress: 1024,
    maxStreams: 256,
    maxStreamsPerAddress: 32,
    streamStallMs: 10_000,
    abuseCooldownMs: 3_000,
    abuseCooldownMaxMs: 30_000,
  } as ApiLimitsConfig,
  net: {
    insecure: false,
    tlsCertFile: "tls/validator.crt",
    tlsTrustedCertsFile: "tls/validators.pem",
  } as NetConfig,
} as const;

/** A complete config from the required fields plus any overrides (deep for the sections). */
export function defaultConfig(
  base: { chainId: string; validatorIndex: number } & Partial<Omit<NodeConfig, "chainId" | "validatorIndex">>,
): NodeConfig {
  const keyFile = base.keyFile ?? configDefaults.keyFile;
  return {
    chainId: base.chainId,
    validatorIndex: base.validatorIndex,
    keyFile,
    signingStateFile: base.signingStateFile ?? defaultSigningStateFile(keyFile),
    dataDir: base.dataDir ?? configDefaults.dataDir,
    genesisFile: base.genesisFile ?? configDefaults.genesisFile,
    listen: { ...configDefaults.listen, ...base.listen },
    peers: (base.peers ?? configDefaults.peers).map((p) => ({ ...p })),
    log: { ...configDefaults.log, ...base.log },
    mempool: { ...configDefaults.mempool, ...base.mempool },
    verify: { ...configDefaults.verify, ...base.verify },
    execution: { ...configDefaults.execution, ...base.execution },
    api: { ...configDefaults.api, ...base.api },
    net: { ...configDefaults.net, ...base.net },
  };
}

export function defaultSigningStateFile(keyFile: string): string {
  return path.join(path.dirname(keyFile), SIGNING_STATE_FILE_NAME);
}

// ---------------------------------------------------------------------------------------------
// Environment overrides. One table: env var -> field, so docs and code cannot drift apart.

type EnvKind = "string" | "int" | "addr" | "level" | "peers";

export const ENV_OVERRIDES: readonly { env: string; field: string; kind: EnvKind }[] = [
  { env: "PARABFT_CHAIN_ID", field: "chainId", kind: "string" },
  { env: "PARABFT_VALIDATOR_INDEX", field: "validatorIndex", kind: "int" },
  { env: "PARABFT_KEY_FILE", field: "keyFile", kind: "string" },
  { env: "PARABFT_SIGNING_STATE_FILE", field: "signingStateFile", kind: "string" },
  { env: "PARABFT_DATA_DIR", field: "dataDir", kind: "string" },
  { env: "PARABFT_GENESIS_FILE", field: "genesisFile", kind: "string" },
  { env: "PARABFT_PEER_ADDR", field: "listen.peer", kind: "addr" },
  { env: "PARABFT_API_ADDR", field: "listen.api", kind: "addr" },
  { env: "PARABFT_METRICS_ADDR", field: "listen.metrics", kind: "addr" },
  { env: "PARABFT_PEERS", field: "peers", kind: "peers" },
  { env: "PARABFT_LOG_LEVEL", field: "log.level", kind: "level" },
  { env: "PARABFT_MEMPOOL_MAX_TXS", field: "mempool.maxTxs", kind: "int" },
  { env: "PARABFT_MEMPOOL_MAX_BYTES", field: "mempool.maxBytes", kind: "int" },
  { env: "PARABFT_MEMPOOL_MAX_PER_SENDER", field: "mempool.maxPerSender", kind: "int" },
  { env: "PARABFT_MEMPOOL_BACKLOG_MS", field: "mempool.backlogMs", kind: "int" },
  { env: "PARABFT_MEMPOOL_MIN_BACKLOG", field: "mempool.minBacklog", kind: "int" },
  { env: "PARABFT_VERIFY_WORKERS", field: "verify.workers", kind: "int" },
  { env: "PARABFT_EXECUTION_WORKERS", field: "execution.workers", kind: "int" },
];

function envValue(env: string, kind: EnvKind, raw: string): unknown {
  switch (kind) {
    case "int": {
      const v = Number(raw.trim());
      if (raw.trim() === "" || !Number.isSafeInteger(v)) {
        throw new ConfigError(env, `must be an integer, got '${raw}'`);
      }
      return v;
    }
    case "peers":
      // "1=127.0.0.1:7001,2=127.0.0.1:7002"; an empty string means no peers.
      return raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "")
        .map((entry) => {
          const eq = entry.indexOf("=");
          const index = Number(entry.slice(0, eq));
          if (eq <= 0 || !Number.isSafeInteger(index)) {
            throw new ConfigError(env, `expected 'index=host:port[,...]', got '${entry}'`);
          }
          return { index, address: entry.slice(eq + 1) };
        });
    default:
      return raw;
  }
}

/** Applies PARABFT_* overrides onto a raw (not yet validated) config object. */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const o of ENV_OVERRIDES) {
    const v = env[o.env];
    if (v === undefined) continue;
    const value = envValue(o.env, o.kind, v);
    const parts = o.field.split(".");
    let obj: Record<string, unknown> = out;
    for (const p of parts.slice(0, -1)) {
      const next = obj[p];
      if (typeof next !== "object" || next === null || Array.isArray(next)) obj[p] = {};
      obj = obj[p] as Record<string, unknown>;
    }
    obj[parts.at(-1)!] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Parses "host:port" (IPv6 as "[::1]:port"); throws ConfigError naming `field`. */
export function parseHostPort(field: string, value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 0 || port > 65535) {
    throw new ConfigError(field, `expected "host:port", got ${JSON.stringify(value)}`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

function objectAt(field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(field, `must be an object, got ${describe(v)}`);
  }
  return v as Record<string, unknown>;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  return typeof v === "string" ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

function rejectUnknown(prefix: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      const field = prefix ? `${prefix}.${k}` : k;
      throw new ConfigError(field, `unknown field (allowed: ${allowed.join(", ")})`);
    }
  }
}

function str(field: string, v: unknown, opts: { nonEmpty?: boolean } = { nonEmpty: true }): string {
  if (typeof v !== "string") throw new ConfigError(field, `must be a string, got ${describe(v)}`);
  if (opts.nonEmpty && v.trim() === "") throw new ConfigError(field, "must not be empty");
  return v;
}

function int(field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

function addr(field: string, v: unknown, allowEmpty = false): string {
  const s = str(field, v, { nonEmpty: !allowEmpty });
  if (allowEmpty && s === "") return s;
  parseHostPort(field, s);
  return s;
}

function section<T>(
  raw: Record<string, unknown>,
  name: string,
  defaults: T,
  keys: readonly (keyof T & string)[],
): Record<string, unknown> {
  const v = raw[name];
  if (v === undefined) return { ...defaults } as Record<string, unknown>;
  const obj = objectAt(name, v);
  rejectUnknown(name, obj, keys);
  return { ...defaults, ...obj };
}

const TOP_LEVEL = [
  "$comment",
  "chainId",
  "validatorIndex",
  "keyFile",
  "signingStateFile",
  "dataDir",
  "genesisFile",
  "listen",
  "peers",
  "log",
  "mempool",
  "verify",
  "execution",
  "api",
  "net",
] as const;

/**
 * Validates a raw config object (defaults filled in, unknown fields rejected) and checks
 * path rules against `home`. Throws ConfigError naming the field.
 */
export function validateConfig(input: unknown, home = "."): NodeConfig {
  const raw = objectAt("(config)", input);
  rejectUnknown("", raw, TOP_LEVEL);
  const chainId = str("chainId", raw.chainId);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(chainId)) {
    throw new ConfigError("chainId", "must be 1-64 characters of [A-Za-z0-9._-]");
  }
  const validatorIndex = int("validatorIndex", raw.validatorIndex, 0, 0xffff_ffff);
  const keyFile = str("keyFile", raw.keyFile ?? configDefaults.keyFile);
  const signingStateFile = str("signingStateFile", raw.signingStateFile ?? defaultSigningStateFile(keyFile));
  const dataDir = str("dataDir", raw.dataDir ?? configDefaults.dataDir);
  const genesisFile = str("genesisFile", raw.genesisFile ?? configDefaults.genesisFile);

  const listenRaw = section(raw, "listen", configDefaults.listen, ["peer", "api", "metrics"]);
  const listen = {
    peer: addr("listen.peer", listenRaw.peer),
    api: addr("listen.api", listenRaw.api),
    metrics: addr("listen.metrics", listenRaw.metrics, true),
  };
  const ports = new Map<string, string>();
  for (const [k, v] of Object.entries(listen)) {
    if (v === "") continue;
    const { port } = parseHostPort(`listen.${k}`, v);
    if (port === 0) continue;
    const clash = ports.get(String(port));
    if (clash) throw new ConfigError(`listen.${k}`, `port ${port} is already used by listen.${clash}`);
    ports.set(String(port), k);
  }

  const peersRaw = raw.peers ?? [];
  if (!Array.isArray(peersRaw)) throw new ConfigError("peers", `must be an array, got ${describe(peersRaw)}`);
  const seen = new Set<number>();
  const peers = peersRaw.map((p, i) => {
    const f = `peers[${i}]`;
    const obj = objectAt(f, p);
    rejectUnknown(f, obj, ["index", "address", "api"]);
    const index = int(`${f}.index`, obj.index, 0, 0xffff_ffff);
    if (index === validatorIndex)
      throw new ConfigError(`${f}.index`, "a node must not list itself as a peer");
    if (seen.has(index)) throw new ConfigError(`${f}.index`, `duplicate peer index ${index}`);
    seen.add(index);
    const peer: PeerConfig = { index, address: addr(`${f}.address`, obj.address) };
    if (obj.api !== undefined) peer.api = addr(`${f}.api`, obj.api);
    return peer;
  });

  const logRaw = section(raw, "log", configDefaults.log, ["level"]);
  const level = str("log.level", logRaw.level);
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(
      "log.level",
      `must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`,
    );
  }

  const mp = section(raw, "mempool", configDefaults.mempool, [
    "maxTxs",
    "maxBytes",
    "maxPerSender",
    "backlogMs",
    "minBacklog",
  ]);
  const mempool = {
    maxTxs: int("mempool.maxTxs", mp.maxTxs, 1),
    maxBytes: int("mempool.maxBytes", mp.maxBytes, 1),
    maxPerSender: int("mempool.maxPerSender", mp.maxPerSender, 1),
    backlogMs: int("mempool.backlogMs", mp.backlogMs, 0, 600_000),
    minBacklog: int("mempool.minBacklog", mp.minBacklog, 0),
  };
  if (mempool.maxPerSender > mempool.maxTxs) {
    throw new ConfigError("mempool.maxPerSender", "must be ≤ mempool.maxTxs");
  }
  const vf = section(raw, "verify", configDefaults.verify, ["workers"]);
  const ex = section(raw, "execution", configDefaults.execution, ["workers"]);
  const apiRaw = section(raw, "api", configDefaults.api, API_LIMIT_KEYS);
  if (typeof apiRaw.reflection !== "boolean") {
    throw new ConfigError("api.reflection", `must be true or false, got ${describe(apiRaw.reflection)}`);
  }
  const api = { reflection: apiRaw.reflection } as ApiLimitsConfig;
  for (const k of API_LIMIT_KEYS) {
    if (k !== "reflection") api[k] = int(`api.${k}`, apiRaw[k], 1);
  }
  const netRaw = section(raw, "net", configDefaults.net, ["insecure", "tlsCertFile", "tlsTrustedCertsFile"]);
  if (typeof netRaw.insecure !== "boolean") {
    throw new ConfigError("net.insecure", `must be true or false, got ${describe(netRaw.insecure)}`);
  }
  const netCfg: NetConfig = {
    insecure: netRaw.insecure,
    tlsCertFile: str("net.tlsCertFile", netRaw.tlsCertFile),
    tlsTrustedCertsFile: str("net.tlsTrustedCertsFile", netRaw.tlsTrustedCertsFile),
  };

  const cfg: NodeConfig = {
    chainId,
    validatorIndex,
    keyFile,
    signingStateFile,
    dataDir,
    genesisFile,
    listen,
    peers,
    log: { level: level as LogLevel },
    mempool,
    verify: { workers: int("verify.workers", vf.workers, 0, 64) },
    execution: { workers: int("execution.workers", ex.workers, 0, 64) },
    api,
    net: netCfg,
  };
  checkPaths(home, cfg);
  return cfg;
}

const API_LIMIT_KEYS = [
  "reflection",
  "maxConnections",
  "maxConnectionsPerAddress",
  "maxInFlightPerConnection",
  "maxInFlightPerAddress",
  "maxStreams",
  "maxStreamsPerAddress",
  "streamStallMs",
  "abuseCooldownMs",
  "abuseCooldownMaxMs",
] as const satisfies readonly (keyof ApiLimitsConfig)[];

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

// Wiping the data directory is a recovery procedure (catch-up refills it); it must never take
// the key or the signing state with it, or the validator could sign twice for one height.
function checkPaths(home: string, cfg: NodeConfig): void {
  const p = resolveConfigPaths(home, cfg);
  if (isInside(p.dataDir, p.signingStateFile)) {
    throw new ConfigError("signingStateFile", `must be outside dataDir (${cfg.dataDir})`);
  }
  if (isInside(p.dataDir, p.keyFile))
    throw new ConfigError("keyFile", `must be outside dataDir (${cfg.dataDir})`);
  if (p.keyFile === p.signingStateFile) throw new ConfigError("signingStateFile", "must differ from keyFile");
}

// ---------------------------------------------------------------------------------------------
// Files and paths

export interface ConfigPaths {
  home: string;
  configFile: string;
  keyFile: string;
  signingStateFile: string;
  dataDir: string;
  genesisFile: string;
  tlsCertFile: string;
  tlsTrustedCertsFile: string;
}

/** Resolves a config path: absolute paths stay, relative ones are relative to the home. */
export function resolveConfigPath(home: string, p: string): string {
  return path.resolve(home, p);
}

export function resolveConfigPaths(home: string, cfg: NodeConfig): ConfigPaths {
  const h = path.resolve(home);
  return {
    home: h,
    configFile: path.join(h, CONFIG_FILE_NAME),
    keyFile: resolveConfigPath(h, cfg.keyFile),
    signingStateFile: resolveConfigPath(h, cfg.signingStateFile),
    dataDir: resolveConfigPath(h, cfg.dataDir),
    genesisFile: resolveConfigPath(h, cfg.genesisFile),
    tlsCertFile: resolveConfigPath(h, cfg.net.tlsCertFile),
    tlsTrustedCertsFile: resolveConfigPath(h, cfg.net.tlsTrustedCertsFile),
  };
}

export interface LoadConfigOpts {
  /** Environment to read PARABFT_* overrides from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Parses config text (JSON), applies env overrides, validates. */
export function parseConfig(text: string, home = ".", opts: LoadConfigOpts = {}): NodeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(CONFIG_FILE_NAME, `not valid JSON: ${(err as Error).message}`);
  }
  const obj = objectAt("(config)", raw);
  const env = opts.env ?? process.env;
  try {
    return validateConfig(applyEnvOverrides(obj, env), home);
  } catch (err) {
    // Say where a bad value came from: an operator reading config.json would not find it there.
    if (err instanceof ConfigError) {
      const field = err.detail.field;
      const o = ENV_OVERRIDES.find(
        (x) => env[x.env] !== undefined && (field === x.field || field.startsWith(`${x.field}[`)),
      );
      if (o)
        throw new ConfigError(
          field,
          `${err.message.replace(/^invalid config: [^:]+: /, "")} (set by ${o.env})`,
        );
    }
    throw err;
  }
}

/** Reads and validates `<home>/config.json` with PARABFT_* overrides applied. */
export function loadConfig(home: string, opts: LoadConfigOpts = {}): NodeConfig {
  const file = path.join(home, CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      CONFIG_FILE_NAME,
      code === "ENOENT"
        ? `${file} not found (run \`parabft init --home ${home}\`?)`
        : `cannot read ${file}: ${code}`,
    );
  }
  return parseConfig(text, home, opts);
}

/** Writes `<home>/config.json` (validated first, so a bad config is never written). */
export async function writeConfig(home: string, cfg: NodeConfig): Promise<string> {
  validateConfig(cfg, home);
  const file = path.join(home, CONFIG_FILE_NAME);
  await fs.mkdir(home, { recursive: true });
  await fs.writeFile(file, `${JSON.stringify(cfg, null, 2)}\n`, { mode: 0o644 });
  return file;
}
