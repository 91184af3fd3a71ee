// Writes a complete N-validator network on disk: one genesis, one home per validator (config,
// key file, signing-state location, a copy of the genesis), and funded client account keys.
// Used by `parabft testnet`, `parabft init` (N = 1) and the LocalCluster harness.
import { promises as fs } from "node:fs";
import path from "node:path";
import { applySigningRecord, emptyPersistedState } from "../consensus/pbft/persist.js";
import { generateKeyPair, type KeyPair, writeFileAtomic, writeKeyFile } from "../crypto/keys.js";
import { createValidatorCertificate } from "../crypto/tls.js";
import {
  configDefaults,
  defaultConfig,
  type LogLevel,
  type NodeConfig,
  resolveConfigPaths,
  writeConfig,
} from "../node/config.js";
import { type Genesis, type GenesisAmmPool, writeGenesis } from "../node/genesis.js";
import { transportIndexOf } from "../node/membership.js";
import {
  type ConsensusParams,
  isConsensusParam,
  type PresetName,
  presets,
  validateParams,
} from "../params/index.js";
import { isValidPeerAddress } from "../staking/programs.js";
import { SigningStateLog } from "../storage/signingStateLog.js";
import { toHex } from "../types/bytes.js";
import { freePorts } from "./ports.js";

export const DEFAULT_ACCOUNT_BALANCE = 1_000_000_000_000n;
export const DEFAULT_AMM_POOLS: readonly GenesisAmmPool[] = [
  { id: "amm0", reserveA: 1_000_000_000_000n, reserveB: 1_000_000_000_000n, feeBps: 30 },
];

export interface TestnetOpts {
  validators: number;
  /** Output directory; created if missing; must not already contain a testnet. */
  out: string;
  chainId?: string;
  preset?: PresetName;
  /**
   * Consensus parameters that replace the preset's (benchmarks: block size, pipeline depth).
   * Checked by validateParams like the preset's own; an unknown name is refused.
   */
  consensus?: Partial<ConsensusParams>;
  /** Client accounts to create and fund (key files in <out>/accounts/). */
  accounts?: number;
  accountBalance?: bigint;
  ammPools?: readonly GenesisAmmPool[];
  /** Node i listens on basePort + 10·i (+0 peer, +1 api, +2 metrics); default: free ports. */
  basePort?: number;
  host?: string;
  /**
   * Containers (`--docker`, `--k8s`): node i listens on 0.0.0.0 at the fixed CONTAINER_PORTS and
   * its peers reach it as hostOf(i) (a compose service or StatefulSet pod name). Replaces host and
   * basePort.
   */
  hostOf?: (i: number) => string;
  logLevel?: LogLevel;
  /** Config fields applied to every node (e.g. smaller mempools for tests). */
  nodeOverrides?: Partial<Pick<NodeConfig, "mempool" | "verify" | "execution" | "api">>;
  /**
   * Peer links without TLS (net.insecure): local debugging and TLS-cost benchmarks only.
   * Certificates are written either way.
   */
  insecurePeers?: boolean;
  genesisTimeMs?: number;
  /**
   * DPoS: each genesis validator's self stake (≥ the rules' minSelfStake makes the election
   * meaningful from epoch 0); default: the power (1), below the minimum, so the set is kept.
   */
  selfStake?: bigint;
  /**
   * DPoS: homes for this many validators outside the genesis set (keys, TLS certificates in
   * every home's trust bundle, funded accounts, configs listing the genesis peers). They are
   * appended to `nodes` with `joiner: true`: started, they follow the chain until elected.
   */
  joiners?: number;
}

export interface TestnetNode {
  index: number;
  name: string;
  home: string;
  publicKey: string;
  /** Hex address of the validator's own (funded) account. */
  address: string;
  peer: string;
  api: string;
  metrics: string;
  /** DPoS: not in the genesis set (see TestnetOpts.joiners). */
  joiner?: boolean;
}

export interface TestnetAccount {
  index: number;
  keyFile: string;
  address: string;
}

export interface Testnet {
  dir: string;
  chainId: string;
  genesisFile: string;
  preset: PresetName;
  nodes: TestnetNode[];
  accounts: TestnetAccount[];
}

export const nodeHomeName = (i: number) => `node${i}`;

/** Ports every validator uses inside its own container (peer, api, metrics). */
export const CONTAINER_PORTS = [26656, 26657, 26660] as const;

/**
 * Records "this key has signed nothing" for a key generated a moment ago, as CometBFT's init
 * writes priv_validator_state.json. A validator finding no signing state at all must assume it
 * lost it and stay silent until caught up; a new validator of a new chain has nothing to catch
 * up from (a lone validator never would), so it gets a truthful empty state instead.
 */
export async function writeInitialSigningState(home: string, cfg: NodeConfig): Promise<void> {
  const file = resolveConfigPaths(home, cfg).signingStateFile;
  // The node keeps its signing state (snapshot + log) in the directory of signingStateFile.
  const log = new SigningStateLog(path.dirname(file), {
    fold: applySigningRecord,
    initial: emptyPersistedState,
  });
  await log.open();
  try {
    await log.compact();
  } finally {
    await log.close();
  }
}

/**
 * Writes a validator's TLS certificate (its key is the consensus key) and the bundle of the
 * certificates it pins when dialing (the genesis validators'; others are accepted by their key)
 * where `cfg.net` says.
 */
export async function writeTlsFiles(home: string, cfg: NodeConfig, certPem: string, bundlePem: string) {
  const p = resolveConfigPaths(home, cfg);
  for (const [file, text] of [
    [p.tlsCertFile, certPem],
    [p.tlsTrustedCertsFile, bundlePem],
  ] as const) {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, text, 0o644);
  }
}

async function assertFresh(dir: string): Promise<void> {
  for (const f of ["genesis.json", nodeHomeName(0), "accounts"]) {
    const exists = await fs.stat(path.join(dir, f)).then(
      () => true,
      () => false,
    );
    if (exists) throw new Error(`${dir} already contains a testnet (${f}); choose an empty directory`);
  }
}

export async function createTestnet(opts: TestnetOpts): Promise<Testnet> {
  const n = opts.validators;
  const preset = opts.preset ?? "default";
  const params = structuredClone(presets[preset]);
  for (const [k, v] of Object.entries(opts.consensus ?? {})) {
    if (!isConsensusParam(k)) throw new RangeError(`unknown consensus parameter ${k}`);
    (params.consensus as unknown as Record<string, unknown>)[k] = v;
  }
  validateParams(params);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError("validators must be ≥ 1");
  if (n > params.staking.maxValidators) {
    throw new RangeError(`preset ${preset} allows at most ${params.staking.maxValidators} validators`);
  }
  const dir = path.resolve(opts.out);
  await fs.mkdir(dir, { recursive: true });
  await assertFresh(dir);
  const host = opts.host ?? "127.0.0.1";
  const chainId = opts.chainId ?? `parabft-local-${n}`;
  const joiners = opts.joiners ?? 0;
  const total = n + joiners;
  const ports = opts.hostOf
    ? []
    : opts.basePort !== undefined
      ? Array.from({ length: 3 * total }, (_, k) => opts.basePort! + 10 * Math.floor(k / 3) + (k % 3))
      : await freePorts(3 * total, host);
  if (ports.some((p) => p < 1 || p > 65535)) throw new RangeError("base port leaves the valid port range");

  // Genesis validators first, then the joiners (DPoS) at indices n … n + joiners − 1 of `keys`.
  const keys: KeyPair[] = Array.from({ length: total }, () => generateKeyPair());
  const genesisKeys = keys.slice(0, n).map((k) => k.publicKey);
  const clientKeys: KeyPair[] = Array.from({ length: opts.accounts ?? 0 }, () => generateKeyPair());
  const balance = opts.accountBalance ?? DEFAULT_ACCOUNT_BALANCE;
  const pools = [...(opts.ammPools ?? DEFAULT_AMM_POOLS)];

  const peerAddrOf = (i: number) =>
    opts.hostOf ? `${opts.hostOf(i)}:${CONTAINER_PORTS[0]}` : `${host}:${ports[3 * i]}`;
  const genesis: Genesis = {
    chainId,
    genesisTimeMs: BigInt(opts.genesisTimeMs ?? Date.now()),
    // Overridden parameters are written out in full: the preset's name would lose them.
    preset: opts.consensus === undefined ? preset : null,
    params,
    validators: keys.slice(0, n).map((k, i) => ({
      name: nodeHomeName(i),
      publicKey: k.publicKey,
      power: 1n,
      ...(opts.selfStake !== undefined ? { selfStake: opts.selfStake } : {}),
      ...(isValidPeerAddress(peerAddrOf(i)) ? { peerAddress: peerAddrOf(i) } : {}),
    })),
    accounts: [
      ...keys.map((k) => ({ address: k.address, balance })),
      // Client accounts also hold every pool's token B, so swaps work in both directions.
      ...clientKeys.map((k) => ({
        address: k.address,
        balance,
        holdings: Object.fromEntries(pools.map((p) => [p.id, balance])),
      })),
    ],
    ammPools: pools,
  };
  const genesisFile = path.join(dir, "genesis.json");
  await writeGenesis(genesisFile, genesis);

  // One certificate per validator, each carrying its consensus key; every home trusts all of them.
  const certs = await Promise.all(keys.map((k) => createValidatorCertificate(k.secretKey)));
  // The genesis validators' certificates, pinned by everyone; a joiner is in no one's bundle
  // (it is elected later): peers accept it by its consensus key (src/net/tls.ts).
  const bundle = certs.slice(0, n).join("");
  const hostOf = opts.hostOf;
  const addrOf = (i: number, k: number) =>
    hostOf ? `${hostOf(i)}:${CONTAINER_PORTS[k]}` : `${host}:${ports[3 * i + k]}`;
  const listenOf = (i: number, k: number) => (hostOf ? `0.0.0.0:${CONTAINER_PORTS[k]}` : addrOf(i, k));
  const nodes: TestnetNode[] = [];
  for (let i = 0; i < total; i++) {
    const home = path.join(dir, nodeHomeName(i));
    const joiner = i >= n;
    const cfg = defaultConfig({
      chainId,
      // A joiner runs with its transport index (src/node/membership.ts), derived from its key.
      validatorIndex: joiner ? transportIndexOf(keys[i]!.publicKey, genesisKeys) : i,
      listen: { peer: listenOf(i, 0), api: listenOf(i, 1), metrics: listenOf(i, 2) },
      // Genesis peers only (others are learned from registrations); `api` lets a node that
      // follows the chain outside the set fetch blocks (src/node/follower.ts).
      peers: Array.from({ length: n }, (_, j) => j)
        .filter((j) => j !== i)
        .map((j) => ({ index: j, address: addrOf(j, 0), api: addrOf(j, 1) })),
      log: { level: opts.logLevel ?? "info" },
      ...opts.nodeOverrides,
      ...(opts.insecurePeers ? { net: { ...configDefaults.net, insecure: true } } : {}),
    });
    await fs.mkdir(home, { recursive: true, mode: 0o700 });
    await writeKeyFile(path.join(home, cfg.keyFile), keys[i]!);
    await writeTlsFiles(home, cfg, certs[i]!, i < n ? bundle : bundle + certs[i]!);
    await writeInitialSigningState(home, cfg);
    // Each home carries its own genesis copy so it can be shipped to another host or container.
    await fs.copyFile(genesisFile, path.join(home, cfg.genesisFile));
    await writeConfig(home, cfg);
    nodes.push({
      index: i,
      name: nodeHomeName(i),
      home,
      publicKey: toHex(keys[i]!.publicKey),
      address: toHex(keys[i]!.address),
      peer: addrOf(i, 0),
      api: addrOf(i, 1),
      metrics: addrOf(i, 2),
      ...(joiner ? { joiner: true } : {}),
    });
  }

  const accounts: TestnetAccount[] = [];
  for (const [j, k] of clientKeys.entries()) {
    const keyFile = path.join(dir, "accounts", `account${j}.json`);
    await writeKeyFile(keyFile, k);
    accounts.push({ index: j, keyFile, address: toHex(k.address) });
  }
  const testnet: Testnet = { dir, chainId, genesisFile, preset, nodes, accounts };
  await fs.writeFile(path.join(dir, "testnet.json"), `${JSON.stringify(testnet, null, 2)}\n`);
  return testnet;
}

/** Reads the testnet.json manifest a previous createTestnet wrote. */
export async function readTestnet(dir: string): Promise<Testnet> {
  const text = await fs.readFile(path.join(path.resolve(dir), "testnet.json"), "utf8");
  return JSON.parse(text) as Testnet;
}
