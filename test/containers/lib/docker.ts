// A validator cluster in containers for the fault suite: one docker network per scenario, one
// container per validator from the offline image (make image), each with its home (written by
// createTestnet with container host names) bind-mounted from a temp dir. Faults act on the
// containers (kill -9, stop/start, SIGSTOP/SIGCONT) and inside their network namespaces (iptables via
// nsenter: partitions, one-way drops, random loss). Ryuk is disabled, so stop() removes every
// container and the network by id; callers run it in finally/after hooks.
process.env.TESTCONTAINERS_RYUK_DISABLED = "true";

import { execFile } from "node:child_process";
import { chown, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type Dockerode from "dockerode";
import {
  GenericContainer,
  getContainerRuntimeClient,
  Network,
  type StartedNetwork,
  type StartedTestContainer,
  Wait,
} from "testcontainers";
import { composeHost } from "../../../src/cli/deploy.js";
import { createTestnet, type Testnet, type TestnetOpts } from "../../../src/cli/testnet.js";
import { ParabftClient } from "../../../src/client/node.js";
import { tempDir } from "../../cluster/harness.js";

const run = promisify(execFile);
export const IMAGE = process.env.PARABFT_IMAGE ?? "parabft:local";
const IMAGE_UID = 10001;
/** Where a validator reads its test-only faults (src/node/testFaults.ts) when `testFaults` is on. */
const FAULTS_FILE = "test-faults.json";

/** The test-only faults a running validator can be given (PARABFT_TEST_FAULTS_FILE). */
export interface TestFaultValues {
  peerDelayMs?: number;
  peerJitterMs?: number;
  clockOffsetMs?: number;
  equivocate?: boolean;
}

/** True when a Docker engine answers (what the suite needs). */
export async function engineAvailable(): Promise<boolean> {
  try {
    await run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

export async function imageExists(image = IMAGE): Promise<boolean> {
  try {
    await run("docker", ["image", "inspect", image], { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/** Builds the image with deploy/image/build.sh unless it exists (make test builds it first). */
export async function ensureImage(repo: string): Promise<void> {
  if (await imageExists()) return;
  await run(path.join(repo, "deploy/image/build.sh"), [], {
    env: { ...process.env, IMAGE },
    timeout: 300_000,
  });
}

async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid);
    else await chown(p, uid, uid);
  }
}

export interface DockerClusterOpts extends Omit<TestnetOpts, "validators" | "out" | "hostOf"> {
  env?: Record<string, string>;
  /** Every validator polls <home>/test-faults.json (setFaults): delay, clock skew, equivocation. */
  testFaults?: boolean;
}

export class DockerCluster {
  readonly containers: (StartedTestContainer | null)[];
  private readonly ips: string[];
  private clientCache: (ParabftClient | null)[];
  private readonly rules: Map<number, string[][]> = new Map();

  private constructor(
    readonly testnet: Testnet,
    readonly network: StartedNetwork,
    private readonly docker: Dockerode,
    private readonly opts: DockerClusterOpts,
  ) {
    this.containers = testnet.nodes.map(() => null);
    this.ips = testnet.nodes.map(() => "");
    this.clientCache = testnet.nodes.map(() => null);
  }

  /** Writes an n-validator testnet, creates the scenario's network and starts every validator. */
  static async start(n: number, opts: DockerClusterOpts = {}): Promise<DockerCluster> {
    const dir = await tempDir("parabft-containers-");
    const testnet = await createTestnet({
      preset: "minimal",
      accounts: 8,
      ...opts,
      validators: n,
      out: dir,
      hostOf: composeHost,
    });
    for (const node of testnet.nodes) await chownTree(node.home, IMAGE_UID);
    const network = await new Network().start();
    const docker = (await getContainerRuntimeClient()).container.dockerode;
    const cluster = new DockerCluster(testnet, network, docker, opts);
    try {
      await Promise.all(testnet.nodes.map((_, i) => cluster.create(i)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get size(): number {
    return this.testnet.nodes.length;
  }

  get chainId(): string {
    return this.testnet.chainId;
  }

  private async create(i: number): Promise<void> {
    const node = this.testnet.nodes[i]!;
    const c = await new GenericContainer(IMAGE)
      .withNetwork(this.network)
      .withNetworkAliases(composeHost(i))
      .withHostname(composeHost(i))
      .withBindMounts([{ source: node.home, target: "/home/parabft", mode: "rw" }])
      .withEnvironment({
        PARABFT_LOG_LEVEL: "info",
        ...(this.opts.testFaults ? { PARABFT_TEST_FAULTS_FILE: `/home/parabft/${FAULTS_FILE}` } : {}),
        ...this.opts.env,
      })
      .withLabels({ "org.parabft.suite": "containers" })
      .withWaitStrategy(Wait.forLogMessage(/"msg":"node ready"/))
      .withStartupTimeout(120_000)
      .start();
    this.containers[i] = c;
    this.ips[i] = c.getIpAddress(this.network.getName());
  }

  private handle(i: number): Dockerode.Container {
    const c = this.containers[i];
    if (!c) throw new Error(`validator ${i} has no container`);
    return this.docker.getContainer(c.getId());
  }

  async pid(i: number): Promise<number> {
    return (await this.handle(i).inspect()).State.Pid;
  }

  async running(i: number): Promise<boolean> {
    const s = (await this.handle(i).inspect()).State;
    return s.Running && !s.Paused;
  }

  /** Re-reads validator i's address on the network (it can change when a container restarts). */
  private async refreshIp(i: number): Promise<void> {
    const info = await this.handle(i).inspect();
    const ip = info.NetworkSettings.Networks[this.network.getName()]?.IPAddress ?? "";
    if (ip !== "" && ip !== this.ips[i]) {
      this.ips[i] = ip;
      this.clientCache[i]?.close();
      this.clientCache[i] = null;
    }
  }

  ip(i: number): string {
    return this.ips[i]!;
  }

  apiAddress(i: number): string {
    return `${this.ips[i]}:26657`;
  }

  peerAddress(i: number): string {
    return `${this.ips[i]}:26656`;
  }

  metricsAddress(i: number): string {
    return `${this.ips[i]}:26660`;
  }

  client(i: number): ParabftClient {
    let c = this.clientCache[i];
    if (!c) {
      c = new ParabftClient(this.apiAddress(i), {
        deadlineMs: 4000,
        channelOptions: { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 1000 },
      });
      this.clientCache[i] = c;
    }
    return c;
  }

  // ----------------------------------------------------------------------------------- faults

  async kill(i: number): Promise<void> {
    await this.handle(i).kill({ signal: "SIGKILL" });
    await this.waitState(i, (s) => !s.Running);
  }

  /** Graceful stop (SIGTERM, SIGKILL after the timeout). */
  async stopNode(i: number, timeoutS = 10): Promise<void> {
    await this.handle(i).stop({ t: timeoutS }).catch(ignoreNotModified);
  }

  /** Starts a stopped or killed validator and waits until its API answers. */
  async startNode(i: number): Promise<void> {
    await this.handle(i).start().catch(ignoreNotModified);
    await this.refreshIp(i);
    await this.waitApi(i);
  }

  /**
   * Stops validator i with SIGSTOP to its process (PID 1 of the container: the entrypoint execs
   * node) and waits until the kernel reports it stopped. Not `docker pause`: the cgroup freezer
   * failed on a loaded CI box ("OCI runtime pause failed: unable to freeze"), where a signal from
   * the engine (an ancestor PID namespace) is always delivered.
   */
  async pause(i: number): Promise<void> {
    await this.handle(i).kill({ signal: "SIGSTOP" });
    await this.waitProcessState(i, "stopped", (s) => s === "T");
  }

  /** Resumes a validator stopped by pause() (SIGCONT) and waits until it left the stopped state. */
  async unpause(i: number): Promise<void> {
    await this.handle(i).kill({ signal: "SIGCONT" });
    await this.waitProcessState(i, "resumed", (s) => s !== "T");
  }

  /** Waits until the state letter in /proc/PID/status of validator i's process satisfies `ok`. */
  private async waitProcessState(
    i: number,
    what: string,
    ok: (state: string) => boolean,
    timeoutMs = 30_000,
  ): Promise<void> {
    const pid = (await this.handle(i).inspect()).State.Pid;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      const state = /^State:\s+(\S)/m.exec(status)?.[1] ?? "?";
      if (ok(state)) return;
      if (Date.now() > deadline)
        throw new Error(`validator ${i} (pid ${pid}) not ${what} after ${timeoutMs} ms: state ${state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Removes validator i's data directory (keys and signing state stay). Stop the node first. */
  async wipeData(i: number): Promise<void> {
    await rm(path.join(this.testnet.nodes[i]!.home, "data"), { recursive: true, force: true });
  }

  /**
   * Gives running validator i test-only faults (src/node/testFaults.ts), or none (null), and waits
   * until it logged the change. Needs `testFaults: true`. The file is replaced atomically.
   */
  async setFaults(i: number, v: TestFaultValues | null, timeoutMs = 30_000): Promise<void> {
    if (!this.opts.testFaults) throw new Error("setFaults needs DockerCluster opts.testFaults");
    const before = await this.countLog(i, /"msg":"TEST-ONLY faults changed"/);
    const file = path.join(this.testnet.nodes[i]!.home, FAULTS_FILE);
    await writeFile(`${file}.tmp`, `${JSON.stringify(v ?? {})}\n`, { mode: 0o644 });
    await chown(`${file}.tmp`, IMAGE_UID, IMAGE_UID);
    await rename(`${file}.tmp`, file);
    const deadline = Date.now() + timeoutMs;
    while ((await this.countLog(i, /"msg":"TEST-ONLY faults changed"/)) <= before) {
      if (Date.now() > deadline)
        throw new Error(`validator ${i} did not apply its test faults in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Validator i's whole log (JSON lines, docker's frame headers removed). */
  async logLines(i: number): Promise<string[]> {
    const buf = (await this.handle(i).logs({ stdout: true, stderr: true })) as unknown as Buffer;
    // Docker's multiplexed stream: 8-byte frame headers before each chunk.
    return buf
      .toString("utf8")
      .split("")
      .filter((ch) => ch === "\n" || ch.charCodeAt(0) >= 0x20)
      .join("")
      .split("\n")
      .map((l) => l.replace(/^[^{]*(?=\{)/, ""));
  }

  async countLog(i: number, re: RegExp): Promise<number> {
    return (await this.logLines(i)).filter((l) => re.test(l)).length;
  }

  /** Sum of every sample of a Prometheus metric (all label sets matching `labels`) on validator i. */
  async metric(i: number, name: string, labels: RegExp = /.*/): Promise<number> {
    const text = await (await fetch(`http://${this.metricsAddress(i)}/metrics`)).text();
    let sum = 0;
    for (const line of text.split("\n")) {
      const m = /^([a-z_:]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (m && m[1] === name && labels.test(m[2] ?? "")) sum += Number(m[3]);
    }
    return sum;
  }

  /** Runs iptables in validator i's network namespace; the rule is remembered for heal(). */
  private async iptables(i: number, rule: string[]): Promise<void> {
    const pid = await this.pid(i);
    await run("nsenter", ["-t", String(pid), "-n", "iptables", "-w", "-A", ...rule]);
    this.rules.set(i, [...(this.rules.get(i) ?? []), rule]);
  }

  /** Drops every packet from `from` arriving at `to` (one direction). */
  async dropOneWay(from: number, to: number): Promise<void> {
    await this.iptables(to, ["INPUT", "-s", this.ip(from), "-j", "DROP"]);
  }

  /** Cuts every link between the two groups, both ways. */
  async partition(a: number[], b: number[]): Promise<void> {
    for (const x of a) {
      for (const y of b) {
        await this.dropOneWay(x, y);
        await this.dropOneWay(y, x);
      }
    }
  }

  /** Drops a random fraction of the packets every validator receives from the others. */
  async loss(probability: number): Promise<void> {
    for (let i = 0; i < this.size; i++) {
      for (let j = 0; j < this.size; j++) {
        if (i === j) continue;
        await this.iptables(i, [
          "INPUT",
          "-s",
          this.ip(j),
          "-m",
          "statistic",
          "--mode",
          "random",
          "--probability",
          String(probability),
          "-j",
          "DROP",
        ]);
      }
    }
  }

  /** Removes every rule partition/dropOneWay/loss added. */
  async heal(): Promise<void> {
    for (const [i, rules] of this.rules) {
      if (!(await this.running(i).catch(() => false))) continue;
      const pid = await this.pid(i);
      for (const rule of rules) {
        await run("nsenter", ["-t", String(pid), "-n", "iptables", "-w", "-D", ...rule]).catch(() => {});
      }
    }
    this.rules.clear();
  }

  // ----------------------------------------------------------------------------------- waits

  private async waitState(i: number, ok: (s: Dockerode.ContainerInspectInfo["State"]) => boolean) {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (ok((await this.handle(i).inspect()).State)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`validator ${i}: container state did not change in 30 s`);
  }

  async waitApi(i: number, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        await this.client(i).getStatus();
        return;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new Error(
      `validator ${i} API did not answer in ${timeoutMs} ms: ${String(last)}\n${await this.logs(i)}`,
    );
  }

  /** The last `tail` log lines, after the last 10 warnings and errors (levels 40+) before them. */
  async logs(i: number, tail = 30): Promise<string> {
    try {
      const lines = await this.logLines(i);
      const warns = lines
        .slice(0, -tail)
        .filter((l) => /"level":(4|5|6)0/.test(l))
        .slice(-10);
      return [...warns, "...", ...lines.slice(-tail)].join("\n");
    } catch (err) {
      return `(no logs: ${String(err)})`;
    }
  }

  /** Removes every container and the network, by id; safe to call twice. */
  async stop(): Promise<void> {
    for (const c of this.clientCache) c?.close();
    this.clientCache = this.clientCache.map(() => null);
    await Promise.all(
      this.containers.map(async (c, i) => {
        if (!c) return;
        const h = this.docker.getContainer(c.getId());
        await h.remove({ force: true, v: true }).catch(() => {});
        this.containers[i] = null;
      }),
    );
    await this.docker
      .getNetwork(this.network.getId())
      .remove()
      .catch(() => {});
    await rm(this.testnet.dir, { recursive: true, force: true }).catch(() => {});
  }
}

function ignoreNotModified(err: unknown): void {
  if ((err as { statusCode?: number }).statusCode === 304) return;
  throw err;
}
