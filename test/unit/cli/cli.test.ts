// The compiled `parabft` command run as a child process: exit codes, messages naming the flag or
// field, and the files `testnet`, `init` and `keys` write.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeKeyFile } from "../../../src/crypto/keys.js";
import { loadConfig } from "../../../src/node/config.js";
import { loadGenesis } from "../../../src/node/genesis.js";
import { addressOf } from "../../../src/types/block.js";
import { bytesEqual, toHex } from "../../../src/types/bytes.js";

const MAIN = fileURLToPath(new URL("../../../src/cli/main.js", import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "parabft-cli-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("parabft dispatcher", () => {
  it("prints the command list for --help and exits 0", async () => {
    const r = await cli(["--help"]);
    assert.equal(r.code, 0);
    for (const c of ["init", "keys", "testnet", "start", "cluster"])
      assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  });

  it("exits 2 naming an unknown command", async () => {
    const r = await cli(["frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  });

  it("exits 2 naming an unknown flag", async () => {
    const r = await cli(["testnet", "--out", path.join(dir, "x"), "--validatorz", "4"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--validatorz/);
  });

  it("exits 2 naming a flag with a bad value", async () => {
    const r = await cli(["testnet", "--out", path.join(dir, "y"), "--validators", "many"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--validators must be an integer/);
    const r2 = await cli(["testnet", "--out", path.join(dir, "y"), "--preset", "huge"]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /--preset must be one of/);
  });

  it("answers a command's --help with its usage and exit 0", async () => {
    const r = await cli(["testnet", "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--validators N/);
  });
});

describe("parabft testnet", () => {
  it("writes a consistent genesis, configs and 0600 key files", async () => {
    const out = path.join(dir, "tn");
    const r = await cli([
      "testnet",
      "--validators",
      "4",
      "--out",
      out,
      "--accounts",
      "3",
      "--preset",
      "minimal",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse(r.stdout) as { chainId: string; nodes: { api: string; peer: string }[] };
    assert.equal(manifest.nodes.length, 4);

    const genesis = loadGenesis(path.join(out, "genesis.json"));
    assert.equal(genesis.validators.length, 4);
    assert.equal(genesis.preset, "minimal");
    assert.equal(genesis.chainId, manifest.chainId);

    const peerAddrs = new Set<string>();
    const allPorts = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const home = path.join(out, `node${i}`);
      const cfg = loadConfig(home, { env: {} });
      assert.equal(cfg.validatorIndex, i);
      assert.equal(cfg.chainId, genesis.chainId);
      // Each home's own genesis copy is the same genesis.
      assert.equal(
        await readFile(path.join(home, "genesis.json"), "utf8"),
        await readFile(path.join(out, "genesis.json"), "utf8"),
      );
      const keyFile = path.join(home, cfg.keyFile);
      assert.equal(await mode(keyFile), 0o600);
      const kp = decodeKeyFile(await readFile(keyFile, "utf8"));
      assert.ok(
        bytesEqual(kp.publicKey, genesis.validators[i]!.publicKey),
        `node${i} key is genesis validator ${i}`,
      );
      // The validator's own account is funded.
      assert.ok(genesis.accounts.some((a) => bytesEqual(a.address, kp.address)));
      // Signing state beside the key, outside the data dir.
      assert.equal(path.dirname(cfg.signingStateFile), path.dirname(cfg.keyFile));
      // A new key starts with a truthful "signed nothing" state, so the validator may vote at once.
      const signing = JSON.parse(await readFile(path.join(home, cfg.signingStateFile), "utf8")) as {
        seq: number;
      };
      assert.equal(signing.seq, 0);
      assert.deepEqual(
        cfg.peers.map((p) => p.index),
        [0, 1, 2, 3].filter((j) => j !== i),
      );
      peerAddrs.add(cfg.listen.peer);
      for (const a of [cfg.listen.peer, cfg.listen.api, cfg.listen.metrics]) allPorts.add(a);
    }
    assert.equal(allPorts.size, 12, "every listen address is distinct");
    // Every node's peer list points at the other nodes' peer ports.
    for (let i = 0; i < 4; i++) {
      const cfg = loadConfig(path.join(out, `node${i}`), { env: {} });
      for (const p of cfg.peers) {
        assert.equal(p.address, loadConfig(path.join(out, `node${p.index}`), { env: {} }).listen.peer);
      }
    }
    assert.equal(peerAddrs.size, 4);

    const accountFiles = (await readdir(path.join(out, "accounts"))).sort();
    assert.deepEqual(accountFiles, ["account0.json", "account1.json", "account2.json"]);
    for (const f of accountFiles) {
      const file = path.join(out, "accounts", f);
      assert.equal(await mode(file), 0o600);
      const kp = decodeKeyFile(await readFile(file, "utf8"));
      const funded = genesis.accounts.find((a) => bytesEqual(a.address, addressOf(kp.publicKey)));
      assert.ok(funded && funded.balance > 0n, `${f} is funded at genesis`);
    }
  });

  it("uses --base-port for a predictable layout and refuses to overwrite a testnet", async () => {
    const out = path.join(dir, "tn-ports");
    const r = await cli([
      "testnet",
      "--validators",
      "2",
      "--out",
      out,
      "--base-port",
      "40100",
      "--accounts",
      "0",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const c1 = loadConfig(path.join(out, "node1"), { env: {} });
    assert.deepEqual(c1.listen, {
      peer: "127.0.0.1:40110",
      api: "127.0.0.1:40111",
      metrics: "127.0.0.1:40112",
    });
    const again = await cli(["testnet", "--validators", "2", "--out", out]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /--out/);
  });

  it("rejects more validators than the preset allows", async () => {
    const r = await cli([
      "testnet",
      "--validators",
      "5",
      "--preset",
      "minimal",
      "--out",
      path.join(dir, "big"),
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--validators must be an integer in \[1, 4\]/);
  });
});

describe("parabft config and init", () => {
  it("applies PARABFT_* overrides and names the field and variable of a bad one", async () => {
    const home = path.join(dir, "init1");
    const init = await cli(["init", "--home", home, "--json"]);
    assert.equal(init.code, 0, init.stderr);
    const info = JSON.parse(init.stdout) as { keyFile: string; publicKey: string; signingStateFile: string };
    assert.equal(await mode(info.keyFile), 0o600);
    assert.ok(!info.signingStateFile.startsWith(path.join(home, "data")));

    const show = await cli(["config", "show", "--home", home, "--json"], {
      PARABFT_LOG_LEVEL: "debug",
      PARABFT_API_ADDR: "127.0.0.1:9999",
      PARABFT_MEMPOOL_MAX_TXS: "5000",
    });
    assert.equal(show.code, 0, show.stderr);
    const { config } = JSON.parse(show.stdout) as {
      config: { log: { level: string }; listen: { api: string }; mempool: { maxTxs: number } };
    };
    assert.equal(config.log.level, "debug");
    assert.equal(config.listen.api, "127.0.0.1:9999");
    assert.equal(config.mempool.maxTxs, 5000);

    const bad = await cli(["config", "show", "--home", home], { PARABFT_LOG_LEVEL: "loud" });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /log\.level/);
    assert.match(bad.stderr, /PARABFT_LOG_LEVEL/);

    const check = await cli(["config", "check", "--home", home, "--json"]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal((JSON.parse(check.stdout) as { publicKey: string }).publicKey, info.publicKey);

    const again = await cli(["init", "--home", home]);
    assert.equal(again.code, 2, "init refuses an initialised home");
  });

  it("exits 2 naming an unknown config field", async () => {
    const home = path.join(dir, "init2");
    assert.equal((await cli(["init", "--home", home])).code, 0);
    const file = path.join(home, "config.json");
    const cfg = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...cfg, mempool: { maxTxs: 10, maxTxes: 5 } }));
    const r = await cli(["config", "check", "--home", home]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /mempool\.maxTxes: unknown field/);
  });

  it("exits 2 naming the field when the key does not belong to the genesis validator", async () => {
    const home = path.join(dir, "init3");
    assert.equal((await cli(["init", "--home", home])).code, 0);
    const other = path.join(dir, "other-key.json");
    assert.equal((await cli(["keys", "generate", "--file", other])).code, 0);
    const r = await cli(["config", "check", "--home", home], { PARABFT_KEY_FILE: other });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /keyFile/);
  });

  it("exits 2 when a start home has no config", async () => {
    const r = await cli(["config", "check", "--home", path.join(dir, "nowhere")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /config\.json/);
  });
});

describe("parabft keys", () => {
  it("generates a 0600 key file, shows it without the secret, and refuses to overwrite", async () => {
    const file = path.join(dir, "k", "key.json");
    const gen = await cli(["keys", "generate", "--file", file, "--json"]);
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal(await mode(file), 0o600);
    const kp = decodeKeyFile(await readFile(file, "utf8"));
    const shown = await cli(["keys", "show", "--file", file, "--json"]);
    assert.equal(shown.code, 0);
    const info = JSON.parse(shown.stdout) as Record<string, string>;
    assert.equal(info.publicKey, toHex(kp.publicKey));
    assert.equal(info.address, toHex(kp.address));
    assert.ok(!shown.stdout.includes(toHex(kp.secretKey)) && !gen.stdout.includes(toHex(kp.secretKey)));

    assert.equal(shown.stderr, "", "no permission warning for a 0600 file");
    await chmod(file, 0o644);
    const loose = await cli(["keys", "show", "--file", file]);
    assert.equal(loose.code, 0);
    assert.match(loose.stderr, /readable by others \(mode 0644\)/);
    const again = await cli(["keys", "generate", "--file", file]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists/);
    const missing = await cli(["keys", "show", "--file", path.join(dir, "nope.json")]);
    assert.equal(missing.code, 2);
    const noAction = await cli(["keys", "--file", file]);
    assert.equal(noAction.code, 2);
  });
});
