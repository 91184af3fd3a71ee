// Genesis: strict parsing naming the field, preset vs full params, JSON round trip.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { buildGenesis } from "../../../src/exec/genesis.js";
import { defaultConfig } from "../../../src/node/config.js";
import {
  checkConfigAgainstGenesis,
  GenesisError,
  type GenesisJson,
  genesisToJson,
  genesisValidatorSet,
  loadGenesis,
  parseGenesis,
  writeGenesis,
} from "../../../src/node/genesis.js";
import { minimalParams } from "../../../src/params/index.js";

const pk = (b: number) => b.toString(16).padStart(2, "0").repeat(32);
const addr = (b: number) => b.toString(16).padStart(2, "0").repeat(20);

function sample(): GenesisJson {
  return {
    chainId: "g-1",
    genesisTimeMs: 1_700_000_000_000,
    preset: "minimal",
    validators: [0, 1, 2, 3].map((i) => ({ name: `v${i}`, publicKey: pk(i + 1), power: 1 })),
    accounts: [
      { address: addr(9), balance: "123456789012345678901234567890" },
      { address: addr(8), balance: "5", holdings: { amm0: "77" } },
    ],
    ammPools: [{ id: "amm0", reserveA: "1000", reserveB: "2000", feeBps: 30 }],
  };
}

function fieldOf(input: unknown): string {
  try {
    parseGenesis(input);
  } catch (err) {
    assert.ok(err instanceof GenesisError, `expected GenesisError, got ${String(err)}`);
    assert.equal(err.code, "GENESIS_INVALID");
    return err.detail.field;
  }
  assert.fail("expected a GenesisError");
}

describe("genesis", () => {
  it("parses a preset genesis into typed values", () => {
    const g = parseGenesis(sample());
    assert.equal(g.preset, "minimal");
    assert.deepEqual(g.params, minimalParams);
    assert.equal(g.accounts[0]!.balance, 123456789012345678901234567890n);
    assert.equal(g.validators[2]!.publicKey.length, 32);
    assert.equal(g.ammPools[0]!.reserveB, 2000n);
    assert.deepEqual(g.accounts[1]!.holdings, { amm0: 77n });
    assert.equal(g.accounts[0]!.holdings, undefined);
    const set = genesisValidatorSet(g);
    assert.equal(set.epoch, 0n);
    assert.deepEqual(
      set.validators.map((v) => v.name),
      ["v0", "v1", "v2", "v3"],
    );
  });

  it("is accepted by the executor's genesis state builder", () => {
    const g = parseGenesis(sample());
    const result = buildGenesis({ accounts: g.accounts, pools: g.ammPools });
    assert.equal(result.height, 0n);
    // Two accounts, one pool, one holding.
    assert.equal(result.writeSet.length, 4);
  });

  it("round-trips through its JSON form and a file", async () => {
    const g = parseGenesis(sample());
    assert.deepEqual(genesisToJson(g), sample());
    const dir = await mkdtemp(path.join(tmpdir(), "parabft-genesis-"));
    try {
      const file = path.join(dir, "genesis.json");
      await writeGenesis(file, g);
      assert.deepEqual(loadGenesis(file), g);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("accepts full params and validates them with validateParams", () => {
    const { preset: _, ...rest } = sample();
    const ok = parseGenesis({ ...rest, params: minimalParams });
    assert.equal(ok.preset, null);
    const bad = structuredClone(minimalParams);
    bad.consensus.window = 4; // < 2 × checkpointInterval
    assert.equal(fieldOf({ ...rest, params: bad }), "params.consensus.window");
    const incomplete = { consensus: minimalParams.consensus, staking: minimalParams.staking };
    assert.match(
      fieldOf({ ...rest, params: { ...incomplete, limits: { maxTxBytes: 1 } } }),
      /^params\.limits\./,
    );
    assert.equal(fieldOf({ ...sample(), params: minimalParams }), "preset");
  });

  it("rejects unknown fields and bad values, naming the field", () => {
    assert.equal(fieldOf({ ...sample(), extra: 1 }), "extra");
    assert.equal(fieldOf({ ...sample(), preset: "tiny" }), "preset");
    assert.equal(fieldOf({ ...sample(), chainId: "" }), "chainId");
    assert.equal(fieldOf({ ...sample(), genesisTimeMs: -1 }), "genesisTimeMs");
    assert.equal(fieldOf({ ...sample(), validators: [] }), "validators");
    const s = sample();
    s.validators[1]!.publicKey = "abcd";
    assert.equal(fieldOf(s), "validators[1].publicKey");
    const d = sample();
    d.validators[3]!.publicKey = d.validators[0]!.publicKey;
    assert.equal(fieldOf(d), "validators[3].publicKey");
    const p = sample();
    p.validators[0]!.power = 0;
    assert.equal(fieldOf(p), "validators[0].power");
    const a = sample();
    a.accounts[0]!.balance = "-5";
    assert.equal(fieldOf(a), "accounts[0].balance");
    const f = sample();
    f.ammPools[0]!.feeBps = 10_000;
    assert.equal(fieldOf(f), "ammPools[0].feeBps");
    const h = sample();
    h.accounts[1]!.holdings = { nopool: "1" };
    assert.equal(fieldOf(h), "accounts[1].holdings.nopool", "holdings name a genesis pool");
    const big = sample();
    big.accounts[0]!.balance = (1n << 128n).toString();
    assert.equal(fieldOf(big), "accounts[0].balance", "amounts are u128");
    const pid = sample();
    pid.ammPools[0]!.id = "bad id";
    assert.equal(fieldOf(pid), "ammPools[0].id");
    const tooMany = sample();
    tooMany.validators.push({ name: "v4", publicKey: pk(5), power: 1 });
    assert.equal(fieldOf(tooMany), "validators", "minimal allows at most 4 validators");
  });

  it("checks a node config against the genesis", () => {
    const g = parseGenesis(sample());
    const cfg = defaultConfig({ chainId: "g-1", validatorIndex: 1, peers: [{ index: 0, address: "h:1" }] });
    checkConfigAgainstGenesis(cfg, g, g.validators[1]!.publicKey);
    const field = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof GenesisError);
        return err.detail.field;
      }
      assert.fail("expected a GenesisError");
    };
    assert.equal(
      field(() => checkConfigAgainstGenesis({ ...cfg, chainId: "other" }, g)),
      "chainId",
    );
    assert.equal(
      field(() => checkConfigAgainstGenesis({ ...cfg, validatorIndex: 4 }, g)),
      "validatorIndex",
    );
    assert.equal(
      field(() => checkConfigAgainstGenesis({ ...cfg, peers: [{ index: 7, address: "h:1" }] }, g)),
      "peers[0].index",
    );
    assert.equal(
      field(() => checkConfigAgainstGenesis(cfg, g, g.validators[0]!.publicKey)),
      "keyFile",
    );
  });
});
