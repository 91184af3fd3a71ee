// Deployments for a testnet written with container host names (`parabft testnet --docker|--k8s`):
// a docker-compose file (one service and one named volume per validator, API and metrics ports
// published on 127.0.0.1 only) and Kubernetes manifests (a StatefulSet with one PVC per validator,
// a headless Service for peers, one Secret per validator key, a ConfigMap for the genesis).
// Every validator's configuration and keys come from its home as `parabft testnet` wrote it, so
// whatever else the testnet puts in a home (TLS material, say) travels with it.
import { promises as fs } from "node:fs";
import path from "node:path";
import { CONTAINER_PORTS, nodeHomeName, type Testnet } from "./testnet.js";

export const DEFAULT_IMAGE = "parabft:local";
export const K8S_NAME = "parabft";
export const K8S_PEER_SERVICE = "parabft-peers";

/** Compose service name (and peer host name) of validator i. */
export const composeHost = (i: number) => nodeHomeName(i);
/** Pod DNS name of validator i in the StatefulSet, as its peers dial it. */
export const k8sHost = (i: number) => `${K8S_NAME}-${i}.${K8S_PEER_SERVICE}`;

// ---------------------------------------------------------------------------------------------
// A small YAML writer: maps, lists, strings (quoted when needed, block literals for multi-line),
// numbers and booleans. Enough for manifests; the render test parses the output back.

type Yaml = string | number | boolean | null | Yaml[] | { [k: string]: Yaml };

function scalar(v: string | number | boolean | null): string {
  if (v === null) return "null";
  if (typeof v !== "string") return String(v);
  return /^[A-Za-z0-9_./-][A-Za-z0-9_./-]*$/.test(v) &&
    !/^(true|false|null|yes|no|on|off|~|[-+]?[0-9.eE+-]+)$/i.test(v)
    ? v
    : JSON.stringify(v);
}

export function toYaml(v: Yaml, indent = 0): string {
  const pad = " ".repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) return `${pad}[]\n`;
    return v
      .map((item) => {
        if (item !== null && typeof item === "object") {
          const inner = toYaml(item, indent + 2);
          return `${pad}- ${inner.slice(indent + 2)}`;
        }
        return `${pad}- ${scalar(item)}\n`;
      })
      .join("");
  }
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v);
    if (entries.length === 0) return `${pad}{}\n`;
    return entries
      .map(([k, val]) => {
        const key = scalar(k);
        if (typeof val === "string" && val.includes("\n")) {
          const body = val
            .replace(/\n$/, "")
            .split("\n")
            .map((l) => (l === "" ? "" : `${pad}  ${l}`))
            .join("\n");
          return `${pad}${key}: |${val.endsWith("\n") ? "" : "-"}\n${body}\n`;
        }
        if (val !== null && typeof val === "object") {
          if (Array.isArray(val) ? val.length === 0 : Object.keys(val).length === 0) {
            return `${pad}${key}: ${Array.isArray(val) ? "[]" : "{}"}\n`;
          }
          return `${pad}${key}:\n${toYaml(val, indent + 2)}`;
        }
        return `${pad}${key}: ${scalar(val)}\n`;
      })
      .join("");
  }
  return `${pad}${scalar(v)}\n`;
}

// ---------------------------------------------------------------------------------------------
// docker compose

export interface ComposeOpts {
  image?: string;
  /** Validator i's API is published on 127.0.0.1:(apiBasePort + 10·i), metrics on +3. */
  apiBasePort?: number;
  /** Path of the testnet directory as seen from the compose file (default "."). */
  seedDir?: string;
}

/** The host ports compose publishes for validator i (always on 127.0.0.1). */
export function composePorts(i: number, apiBasePort = 26657) {
  return { api: apiBasePort + 10 * i, metrics: apiBasePort + 10 * i + 3 };
}

export function composeSpec(testnet: Testnet, opts: ComposeOpts = {}): Record<string, Yaml> {
  const image = opts.image ?? DEFAULT_IMAGE;
  const seedDir = opts.seedDir ?? ".";
  const services: Record<string, Yaml> = {};
  const volumes: Record<string, Yaml> = {};
  // One-shot: copies each validator's home into its own volume on first start, owned by the
  // image's non-root user (the homes on the host are root's, mode 0700).
  services.seed = {
    image,
    user: "0:0",
    entrypoint: ["/bin/sh", "-c"],
    command: [
      testnet.nodes
        .map(
          (n) =>
            `[ -f /vol/${n.name}/config.json ] || cp -r /seed/${n.name}/. /vol/${n.name}/; chown -R 10001:10001 /vol/${n.name}; chmod 700 /vol/${n.name}`,
        )
        .join("; "),
    ],
    volumes: [`${seedDir}:/seed:ro`, ...testnet.nodes.map((n) => `${n.name}:/vol/${n.name}`)],
    network_mode: "none",
  };
  for (const n of testnet.nodes) {
    const p = composePorts(n.index, opts.apiBasePort);
    services[n.name] = {
      image,
      hostname: composeHost(n.index),
      restart: "unless-stopped",
      depends_on: { seed: { condition: "service_completed_successfully" } },
      volumes: [`${n.name}:/home/parabft`],
      environment: { PARABFT_LOG_LEVEL: "info" },
      ports: [`127.0.0.1:${p.api}:${CONTAINER_PORTS[1]}`, `127.0.0.1:${p.metrics}:${CONTAINER_PORTS[2]}`],
      networks: ["parabft"],
    };
    volumes[n.name] = {};
  }
  return {
    version: "2.4",
    services,
    volumes,
    networks: { parabft: { driver: "bridge", internal: false } },
  };
}

export function renderCompose(testnet: Testnet, opts: ComposeOpts = {}): string {
  return `# Written by \`parabft testnet --docker\` for ${testnet.chainId}: ${testnet.nodes.length} validators.\n# Run: docker-compose up -d (or make cluster-up). API and metrics ports listen on 127.0.0.1 only.\n${toYaml(composeSpec(testnet, opts))}`;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

export interface K8sOpts {
  image?: string;
  storage?: string;
  namespace?: string;
}

async function homeFiles(home: string, rel = ""): Promise<{ rel: string; data: Buffer }[]> {
  const out: { rel: string; data: Buffer }[] = [];
  for (const e of await fs.readdir(path.join(home, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) {
      if (r === "data") continue; // never ship a database
      out.push(...(await homeFiles(home, r)));
    } else out.push({ rel: r, data: await fs.readFile(path.join(home, r)) });
  }
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

/** Secret item keys cannot hold "/": keys/validator.json is stored as keys__validator.json. */
const secretKey = (rel: string) => rel.split(path.sep).join("__");

export async function k8sManifests(testnet: Testnet, opts: K8sOpts = {}): Promise<Record<string, Yaml>[]> {
  const image = opts.image ?? DEFAULT_IMAGE;
  const ns: Record<string, Yaml> = opts.namespace ? { namespace: opts.namespace } : {};
  const labels = { app: K8S_NAME };
  const n = testnet.nodes.length;
  const docs: Record<string, Yaml>[] = [];
  docs.push({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `${K8S_NAME}-genesis`, labels, ...ns },
    data: { "genesis.json": await fs.readFile(testnet.genesisFile, "utf8") },
  });
  const seedVolumes: Record<string, Yaml>[] = [];
  for (const node of testnet.nodes) {
    const files = (await homeFiles(node.home)).filter((f) => f.rel !== "genesis.json");
    const name = `${K8S_NAME}-${nodeHomeName(node.index)}`;
    docs.push({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, labels: { ...labels, "parabft/validator": String(node.index) }, ...ns },
      type: "Opaque",
      data: Object.fromEntries(files.map((f) => [secretKey(f.rel), f.data.toString("base64")])),
    });
    seedVolumes.push({ name: `seed-${node.index}`, secret: { secretName: name, defaultMode: 0o400 } });
  }
  const ports = [
    { name: "peer", containerPort: CONTAINER_PORTS[0] },
    { name: "api", containerPort: CONTAINER_PORTS[1] },
    { name: "metrics", containerPort: CONTAINER_PORTS[2] },
  ];
  docs.push({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: K8S_PEER_SERVICE, labels, ...ns },
    spec: {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: labels,
      ports: [{ name: "peer", port: CONTAINER_PORTS[0] }],
    },
  });
  docs.push({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: `${K8S_NAME}-api`, labels, ...ns },
    spec: {
      selector: labels,
      ports: [
        { name: "api", port: CONTAINER_PORTS[1] },
        { name: "metrics", port: CONTAINER_PORTS[2] },
      ],
    },
  });
  const health = {
    exec: { command: ["node", "/app/healthcheck.mjs"] },
    periodSeconds: 10,
    timeoutSeconds: 5,
  };
  // The seed container copies only its own validator's home (picked by the pod ordinal) from its
  // Secret into the PVC, once (item "keys__validator.json" becomes keys/validator.json); the
  // validator container mounts no Secret.
  const seed = [
    "set -eu",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
    'ord="${HOSTNAME##*-}"',
    "if [ ! -f /home/parabft/config.json ]; then",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
    '  for f in "/seeds/node${ord}"/*; do',
    '    rel=$(basename "$f" | sed "s|__|/|g"); mkdir -p "/home/parabft/$(dirname "$rel")"; cp "$f" "/home/parabft/$rel"',
    "  done",
    "fi",
    "cp /genesis/genesis.json /home/parabft/genesis.json",
    "chmod 700 /home/parabft",
  ].join("\n");
  docs.push({
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: K8S_NAME, labels, ...ns },
    spec: {
      serviceName: K8S_PEER_SERVICE,
      replicas: n,
      // Validators only become ready once they see a quorum of peers: start them together.
      podManagementPolicy: "Parallel",
      selector: { matchLabels: labels },
      template: {
        metadata: {
          labels,
          annotations: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(CONTAINER_PORTS[2]),
          },
        },
        spec: {
          securityContext: { runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, runAsNonRoot: true },
          initContainers: [
            {
              name: "seed",
              image,
              command: ["/bin/sh", "-c", seed],
              volumeMounts: [
                { name: "home", mountPath: "/home/parabft" },
                ...seedVolumes.map((v, i) => ({
                  name: v.name!,
                  mountPath: `/seeds/node${i}`,
                  readOnly: true,
                })),
                { name: "genesis", mountPath: "/genesis", readOnly: true },
              ],
            },
          ],
          containers: [
            {
              name: "validator",
              image,
              env: [{ name: "PARABFT_INDEX_FROM_HOSTNAME", value: "1" }],
              ports,
              volumeMounts: [{ name: "home", mountPath: "/home/parabft" }],
              readinessProbe: health,
              livenessProbe: { ...health, initialDelaySeconds: 60, failureThreshold: 6 },
              resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "768Mi" } },
            },
          ],
          volumes: [...seedVolumes, { name: "genesis", configMap: { name: `${K8S_NAME}-genesis` } }],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: "home" },
          spec: {
            accessModes: ["ReadWriteOnce"],
            resources: { requests: { storage: opts.storage ?? "1Gi" } },
          },
        },
      ],
    },
  });
  return docs;
}

/**
 * The manifests as files: genesis.yaml (ConfigMap) and secrets.yaml (one Secret per validator)
 * carry this testnet's genesis and keys; services.yaml and statefulset.yaml depend only on the
 * number of validators and the image (deploy/k8s/ holds the 4-validator rendering).
 */
export async function renderK8s(testnet: Testnet, opts: K8sOpts = {}): Promise<Record<string, string>> {
  const docs = await k8sManifests(testnet, opts);
  const files: Record<string, string> = {};
  const fileOf = (kind: Yaml) =>
    kind === "ConfigMap"
      ? "genesis.yaml"
      : kind === "Secret"
        ? "secrets.yaml"
        : kind === "Service"
          ? "services.yaml"
          : "statefulset.yaml";
  for (const d of docs) {
    const f = fileOf(d.kind ?? null);
    const head = `# Written by \`parabft testnet --k8s\` (${testnet.nodes.length} validators). Apply: kubectl apply -f <dir>\n`;
    files[f] = files[f] === undefined ? `${head}${toYaml(d)}` : `${files[f]}---\n${toYaml(d)}`;
  }
  return files;
}

/** Writes the deployment for `mode` into the testnet directory; returns the files written. */
export async function writeDeployment(
  testnet: Testnet,
  mode: "docker" | "k8s",
  opts: { image?: string } = {},
): Promise<string[]> {
  if (mode === "docker") {
    const file = path.join(testnet.dir, "compose.yaml");
    await fs.writeFile(file, renderCompose(testnet, { image: opts.image }));
    return [file];
  }
  const dir = path.join(testnet.dir, "k8s");
  await fs.mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (const [name, text] of Object.entries(await renderK8s(testnet, { image: opts.image }))) {
    const file = path.join(dir, name);
    await fs.writeFile(file, text, { mode: name === "secrets.yaml" ? 0o600 : 0o644 });
    out.push(file);
  }
  return out;
}
