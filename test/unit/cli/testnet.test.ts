// createTestnet's consensus overrides (bench cluster --consensus): they reach the genesis every
// node loads, and a bad one is refused before anything is written.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { createTestnet } from "../../../src/cli/testnet.js";
import { loadGenesis } from "../../../src/node/genesis.js";
import { presets } from "../../../src/params/index.js";

describe("createTestnet consensus overrides", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });
  const freshDir = async () => {
    const d = await fs.mkdtemp(path.join(tmpdir(), "parabft-testnet-"));
    dirs.push(d);
    return d;
  };

  it("writes the overridden parameters into the genesis and keeps the preset's others", async () => {
    const dir = await freshDir();
    const t = await createTestnet({
      validators: 1,
      out: dir,
      consensus: { maxBlockTxs: 500, proposalDepth: 2 },
    });
    const g = loadGenesis(t.genesisFile);
    assert.equal(g.params.consensus.maxBlockTxs, 500);
    assert.equal(g.params.consensus.proposalDepth, 2);
    assert.equal(g.params.consensus.viewTimeoutMs, presets.default.consensus.viewTimeoutMs);
    // The preset itself is not changed by an override.
    assert.equal(presets.default.consensus.maxBlockTxs, 2000);
  });

  it("refuses an unknown name or an invalid value before writing anything", async () => {
    const dir = await freshDir();
    await assert.rejects(
      createTestnet({ validators: 1, out: dir, consensus: { maxBlockTx: 5 } as never }),
      /unknown consensus parameter maxBlockTx/,
    );
    await assert.rejects(
      createTestnet({ validators: 1, out: dir, consensus: { proposalDepth: 99 } }),
      /consensus\.proposalDepth/,
    );
    await assert.rejects(
      createTestnet({ validators: 1, out: dir, consensus: { maxBlockTxs: 0 } }),
      /maxBlockTxs/,
    );
    assert.deepEqual(await fs.readdir(dir), []);
  });
});
