// Node config: defaults, strict validation naming the field, env overrides, path rules.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import {
  applyEnvOverrides,
  ConfigError,
  configDefaults,
  defaultConfig,
  parseConfig,
  resolveConfigPaths,
  SIGNING_STATE_FILE_NAME,
  validateConfig,
} from "../../../src/node/config.js";
import { SIGNING_STATE_FILE } from "../../../src/storage/signingState.js";

const base = { chainId: "test-1", validatorIndex: 0 };

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, "CONFIG_INVALID");
    assert.ok(err.message.includes(err.detail.field), "the message names the field");
    return err.detail.field;
  }
  assert.fail("expected a ConfigError");
}

describe("node config", () => {
  it("fills every default from the two required fields", () => {
    const cfg = validateConfig(base);
    assert.equal(cfg.keyFile, "keys/validator.json");
    assert.equal(cfg.signingStateFile, path.join("keys", "signing_state.json"));
    assert.equal(cfg.dataDir, "data");
    assert.equal(cfg.genesisFile, "genesis.json");
    assert.deepEqual(cfg.listen, configDefaults.listen);
    assert.deepEqual(cfg.mempool, configDefaults.mempool);
    assert.deepEqual(cfg.peers, []);
    assert.equal(cfg.log.level, "info");
    assert.deepEqual(validateConfig(defaultConfig(base)), cfg);
  });

  it("names the signing state file as src/storage writes it", () => {
    assert.equal(SIGNING_STATE_FILE_NAME, SIGNING_STATE_FILE);
  });

  it("puts the default signing state beside a custom key file", () => {
    const cfg = validateConfig({ ...base, keyFile: "/secure/val.json" });
    assert.equal(cfg.signingStateFile, "/secure/signing_state.json");
  });

  it("rejects unknown fields at every level, naming them", () => {
    assert.equal(
      fieldOf(() => validateConfig({ ...base, dataDirectory: "x" })),
      "dataDirectory",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, listen: { rpc: "127.0.0.1:1" } })),
      "listen.rpc",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, peers: [{ index: 1, address: "a:1", key: "x" }] })),
      "peers[0].key",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, verify: { workers: 1, threads: 2 } })),
      "verify.threads",
    );
  });

  it("names the field of a wrong type or value", () => {
    assert.equal(
      fieldOf(() => validateConfig({ validatorIndex: 0 })),
      "chainId",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, validatorIndex: -1 })),
      "validatorIndex",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, validatorIndex: "0" })),
      "validatorIndex",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, listen: { api: "localhost" } })),
      "listen.api",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, listen: { api: "h:70000" } })),
      "listen.api",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, log: { level: "verbose" } })),
      "log.level",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, mempool: { maxTxs: 0 } })),
      "mempool.maxTxs",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, mempool: { maxTxs: 10 } })),
      "mempool.maxPerSender",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, mempool: { backlogMs: -1 } })),
      "mempool.backlogMs",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, mempool: { minBacklog: 0.5 } })),
      "mempool.minBacklog",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, execution: { workers: 1.5 } })),
      "execution.workers",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, peers: {} })),
      "peers",
    );
  });

  it("rejects a node listing itself or a peer twice, and clashing ports", () => {
    assert.equal(
      fieldOf(() => validateConfig({ ...base, peers: [{ index: 0, address: "h:1" }] })),
      "peers[0].index",
    );
    assert.equal(
      fieldOf(() =>
        validateConfig({
          ...base,
          peers: [
            { index: 1, address: "h:1" },
            { index: 1, address: "h:2" },
          ],
        }),
      ),
      "peers[1].index",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, listen: { peer: "127.0.0.1:7000", api: "127.0.0.1:7000" } })),
      "listen.api",
    );
  });

  it("allows disabling metrics with an empty address", () => {
    assert.equal(validateConfig({ ...base, listen: { metrics: "" } }).listen.metrics, "");
  });

  it("keeps the key and the signing state out of the data directory", () => {
    assert.equal(
      fieldOf(() => validateConfig({ ...base, signingStateFile: "data/signing.json" }, "/home/v")),
      "signingStateFile",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, dataDir: "keys" }, "/home/v")),
      "signingStateFile",
    );
    assert.equal(
      fieldOf(() => validateConfig({ ...base, keyFile: "data/k/v.json", signingStateFile: "s.json" })),
      "keyFile",
    );
    // Absolute and relative paths are compared after resolution against the home.
    assert.equal(
      fieldOf(() =>
        validateConfig({ ...base, dataDir: "/srv/v", signingStateFile: "/srv/v/x/state.json" }, "/h"),
      ),
      "signingStateFile",
    );
  });

  it("resolves relative paths against the home and keeps absolute ones", () => {
    const cfg = validateConfig({ ...base, dataDir: "/var/lib/parabft" });
    const p = resolveConfigPaths("/home/v", cfg);
    assert.equal(p.keyFile, "/home/v/keys/validator.json");
    assert.equal(p.signingStateFile, "/home/v/keys/signing_state.json");
    assert.equal(p.dataDir, "/var/lib/parabft");
    assert.equal(p.configFile, "/home/v/config.json");
  });

  it("applies PARABFT_* overrides over the file", () => {
    const text = JSON.stringify({ ...base, log: { level: "warn" }, listen: { api: "127.0.0.1:1000" } });
    const cfg = parseConfig(text, "/h", {
      env: {
        PARABFT_LOG_LEVEL: "debug",
        PARABFT_API_ADDR: "0.0.0.0:2000",
        PARABFT_VALIDATOR_INDEX: "3",
        PARABFT_PEERS: "0=10.0.0.1:26656, 1=10.0.0.2:26656",
        PARABFT_VERIFY_WORKERS: "4",
        PARABFT_DATA_DIR: "/fast/disk",
        PARABFT_MEMPOOL_BACKLOG_MS: "0",
        PARABFT_MEMPOOL_MIN_BACKLOG: "5000",
      },
    });
    assert.equal(cfg.mempool.backlogMs, 0, "0 turns OVERLOADED backpressure off");
    assert.equal(cfg.mempool.minBacklog, 5000);
    assert.equal(cfg.mempool.maxTxs, configDefaults.mempool.maxTxs);
    assert.equal(cfg.log.level, "debug");
    assert.equal(cfg.listen.api, "0.0.0.0:2000");
    assert.equal(cfg.listen.peer, configDefaults.listen.peer, "untouched fields keep the file/default value");
    assert.equal(cfg.validatorIndex, 3);
    assert.deepEqual(cfg.peers, [
      { index: 0, address: "10.0.0.1:26656" },
      { index: 1, address: "10.0.0.2:26656" },
    ]);
    assert.equal(cfg.verify.workers, 4);
    assert.equal(cfg.dataDir, "/fast/disk");
    // The input object is not mutated by applying overrides.
    const raw = { ...base };
    applyEnvOverrides(raw, { PARABFT_LOG_LEVEL: "debug" });
    assert.deepEqual(raw, base);
  });

  it("names the env variable when an override is malformed", () => {
    const text = JSON.stringify(base);
    assert.equal(
      fieldOf(() => parseConfig(text, ".", { env: { PARABFT_VERIFY_WORKERS: "two" } })),
      "PARABFT_VERIFY_WORKERS",
    );
    assert.equal(
      fieldOf(() => parseConfig(text, ".", { env: { PARABFT_PEERS: "10.0.0.1:1" } })),
      "PARABFT_PEERS",
    );
    try {
      parseConfig(text, ".", { env: { PARABFT_METRICS_ADDR: "nope" } });
      assert.fail("expected a ConfigError");
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.detail.field, "listen.metrics");
      assert.match(err.message, /PARABFT_METRICS_ADDR/);
    }
  });

  it("reports malformed JSON as a config error", () => {
    assert.equal(
      fieldOf(() => parseConfig("{ chainId: ", ".", { env: {} })),
      "config.json",
    );
  });
});
