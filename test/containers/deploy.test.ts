// Renders the deployments `parabft testnet --docker|--k8s` writes and checks them: every validator
// gets its own key and volume, a peers list naming every other validator (and not itself), ports
// published on 127.0.0.1 only; the checked-in deploy/ files match a fresh rendering; the Grafana
// dashboard only queries metrics the node exports. No Docker or Kubernetes needed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { composeHost, k8sHost, k8sManifests, renderCompose, renderK8s } from "../../src/cli/deploy.js";
import { createTestnet, type Testnet } from "../../src/cli/testnet.js";
import { tempDir } from "../cluster/harness.js";

const repo = path.resolve(import.meta.dirname, "../../..");

interface Cfg {
  validatorIndex: number;
  peers: { index: number; address: string }[];
  listen: Record<string, string>;
}

describe("deployments (compose, Kubernetes, observability)", () => {
  let docker: Testnet;
  let k8s: Testnet;
  const dirs: string[] = [];
  before(async () => {
    for (const [hostOf, set] of [
      [composeHost, (t: Testnet) => (docker = t)],
      [k8sHost, (t: Testnet) => (k8s = t)],
    ] as const) {
      const dir = await tempDir("parabft-deploy-");
      dirs.push(dir);
      set(await createTestnet({ validators: 4, out: dir, preset: "minimal", accounts: 1, hostOf }));
    }
  });
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("compose: one service and volume per validator, peers by service name, ports on 127.0.0.1", async () => {
    const spec = parseYaml(renderCompose(docker));
    const nodes = Object.keys(spec.services).filter((s) => s !== "seed");
    assert.deepEqual(nodes, ["node0", "node1", "node2", "node3"]);
    const volumes = new Set<string>();
    for (const [i, name] of nodes.entries()) {
      const svc = spec.services[name];
      assert.equal(svc.volumes.length, 1);
      volumes.add(svc.volumes[0].split(":")[0]);
      for (const p of svc.ports) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${p}`);
      const cfg = JSON.parse(await readFile(path.join(docker.nodes[i]!.home, "config.json"), "utf8")) as Cfg;
      assert.equal(cfg.validatorIndex, i);
      assert.equal(cfg.listen.peer, "0.0.0.0:26656");
      assert.deepEqual(
        cfg.peers.map((p) => p.address),
        [0, 1, 2, 3].filter((j) => j !== i).map((j) => `node${j}:26656`),
      );
    }
    assert.equal(volumes.size, 4, "every validator has its own volume");
    const published = nodes.flatMap((n) => spec.services[n].ports.map((p: string) => p.split(":")[1]));
    assert.equal(new Set(published).size, published.length, "host ports are distinct");
  });

  it("deploy/compose.yaml is the 4-validator rendering for deploy/.cluster", async () => {
    const checkedIn = await readFile(path.join(repo, "deploy/compose.yaml"), "utf8");
    assert.equal(checkedIn, renderCompose(docker, { seedDir: "./.cluster" }));
  });

  it("k8s: a StatefulSet, a Secret per validator with a distinct key, peers by pod DNS name", async () => {
    const docs = await k8sManifests(k8s);
    const secrets = docs.filter((d) => d.kind === "Secret") as unknown as {
      metadata: { name: string };
      data: Record<string, string>;
    }[];
    assert.equal(secrets.length, 4);
    const keys = new Set<string>();
    for (const [i, s] of secrets.entries()) {
      assert.equal(s.metadata.name, `parabft-node${i}`);
      const key = JSON.parse(Buffer.from(s.data["keys__validator.json"]!, "base64").toString()) as {
        publicKey: string;
      };
      keys.add(key.publicKey);
      assert.equal(key.publicKey, k8s.nodes[i]!.publicKey, `secret ${i} holds validator ${i}'s key`);
      const cfg = JSON.parse(Buffer.from(s.data["config.json"]!, "base64").toString()) as Cfg;
      assert.equal(cfg.validatorIndex, i);
      assert.deepEqual(
        cfg.peers.map((p) => p.address).sort(),
        [0, 1, 2, 3]
          .filter((j) => j !== i)
          .map((j) => `parabft-${j}.parabft-peers:26656`)
          .sort(),
      );
    }
    assert.equal(keys.size, 4, "every validator gets a distinct key");
    const sts = docs.find((d) => d.kind === "StatefulSet") as unknown as {
      spec: {
        replicas: number;
        serviceName: string;
        volumeClaimTemplates: unknown[];
        template: {
          spec: {
            volumes: { secret?: { secretName: string } }[];
          };
        };
      };
    };
    assert.equal(sts.spec.replicas, 4);
    assert.equal(sts.spec.serviceName, "parabft-peers");
    assert.equal(sts.spec.volumeClaimTemplates.length, 1, "one PVC per validator");
    const seeds = sts.spec.template.spec.volumes.filter((v) => v.secret);
    assert.deepEqual(
      seeds.map((v) => v.secret!.secretName),
      [0, 1, 2, 3].map((i) => `parabft-node${i}`),
    );
    const svc = docs.find(
      (d) => d.kind === "Service" && (d.metadata as { name: string }).name === "parabft-peers",
    ) as {
      spec: { clusterIP: string };
    };
    assert.equal(svc.spec.clusterIP, "None", "the peer service is headless");
    const cm = docs.find((d) => d.kind === "ConfigMap") as { data: Record<string, string> };
    assert.equal(JSON.parse(cm.data["genesis.json"]!).chainId, k8s.chainId);
  });

  it("k8s: the YAML parses back to the same objects; deploy/k8s holds the key-free manifests", async () => {
    const files = await renderK8s(k8s);
    const parsed = Object.values(files).flatMap((text) => parseAllDocuments(text).map((d) => d.toJS()));
    assert.deepEqual(parsed.length, (await k8sManifests(k8s)).length);
    for (const f of ["statefulset.yaml", "services.yaml"]) {
      assert.equal(
        await readFile(path.join(repo, "deploy/k8s", f), "utf8"),
        files[f],
        `deploy/k8s/${f} is stale`,
      );
    }
  });

  it("parabft testnet --docker / --k8s write the deployment; both at once is a usage error", async () => {
    const bin = path.join(repo, "bin/parabft.js");
    const cli = (args: string[]) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile("node", [bin, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        );
      });
    const dir = await tempDir("parabft-deploy-cli-");
    dirs.push(dir);
    const d = await cli([
      "testnet",
      "--docker",
      "--validators",
      "4",
      "--accounts",
      "1",
      "--out",
      path.join(dir, "d"),
    ]);
    assert.equal(d.code, 0, d.out);
    assert.match(d.out, /docker deployment: .*compose\.yaml/);
    assert.match(d.out, /node1:26656/);
    const k = await cli([
      "testnet",
      "--k8s",
      "--validators",
      "4",
      "--accounts",
      "1",
      "--out",
      path.join(dir, "k"),
    ]);
    assert.equal(k.code, 0, k.out);
    for (const f of ["genesis.yaml", "secrets.yaml", "services.yaml", "statefulset.yaml"]) {
      assert.ok(existsSync(path.join(dir, "k", "k8s", f)), `k8s/${f} written`);
    }
    const both = await cli(["testnet", "--docker", "--k8s", "--out", path.join(dir, "x")]);
    assert.equal(both.code, 2, both.out);
    const port = await cli(["testnet", "--docker", "--base-port", "30000", "--out", path.join(dir, "y")]);
    assert.equal(port.code, 2, port.out);
  });

  it("observability: the dashboard and scrape config name metrics the node exports", async () => {
    const dash = JSON.parse(
      await readFile(path.join(repo, "deploy/observability/grafana-dashboard.json"), "utf8"),
    );
    const exprs: string[] = dash.panels.flatMap((p: { targets: { expr: string }[] }) =>
      p.targets.map((t) => t.expr),
    );
    const titles = dash.panels.map((p: { title: string }) => p.title.toLowerCase()).join(" | ");
    for (const want of ["finality", "commit rate", "view changes", "execution lag", "peer drops"]) {
      assert.ok(titles.includes(want), `dashboard has a ${want} panel`);
    }
    const src = await collectMetricNames();
    for (const e of exprs) {
      for (const m of e.match(/parabft_[a-z0-9_]+/g) ?? []) {
        const base = m.replace(/^parabft_/, "").replace(/_(bucket|sum|count)$/, "");
        assert.ok(src.has(base), `${m} in "${e}" is not a metric the node registers`);
      }
    }
    const prom = parseYaml(await readFile(path.join(repo, "deploy/observability/prometheus.yml"), "utf8"));
    assert.deepEqual(
      prom.scrape_configs[0].static_configs[0].targets,
      [0, 1, 2, 3].map((i) => `node${i}:26660`),
    );
  });
});

/** Metric names registered in the node's sources (name: "..." next to counter/gauge/histogram). */
async function collectMetricNames(): Promise<Set<string>> {
  const { execFileSync } = await import("node:child_process");
  const out = execFileSync("grep", ["-rhoE", 'name: "[a-z0-9_]+"', path.join(repo, "src")], {
    encoding: "utf8",
  });
  return new Set([...out.matchAll(/name: "([a-z0-9_]+)"/g)].map((m) => m[1]!));
}
