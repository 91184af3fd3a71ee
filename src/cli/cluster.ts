// LocalCluster: N validators as child processes on 127.0.0.1 (DESIGN §9 "parabft cluster").
// The `cluster` command, the cluster tests, the benchmarks and the demo all use this one class.
// Every child it spawns is killed when the parent goes away: stop() in the caller's finally, a
// process 'exit' hook, and a last-resort signal handler when nobody else handles SIGINT/SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, promises as fs, openSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { loadConfig, resolveConfigPaths } from "../node/config.js";
import { createTestnet, readTestnet, type Testnet, type TestnetOpts } from "./testnet.js";

export interface LocalClusterOpts extends Omit<TestnetOpts, "validators" | "out"> {
  /** Script run as `node <entry> start --home <home>`; default: the compiled CLI beside this file. */
  entry?: string;
  /** Extra environment for every child (PARABFT_* overrides, for instance). */
  env?: Record<string, string>;
  /** Extra node flags for every child, e.g. ["--max-old-space-size=512"]. */
  nodeArgs?: string[];
  /** Grace period between SIGTERM and SIGKILL when stopping; default 10 s. */
  stopTimeoutMs?: number;
  /** Default for waitHealthy; default 60 s (two shared cores, cold module loading). */
  healthTimeoutMs?: number;
  /** Called when a node exits without being stopped or killed through this class. */
  onUnexpectedExit?: (index: number, code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface ClusterNode {
  index: number;
  home: string;
  api: string;
  peer: string;
  metrics: string;
  /** Null when the node is not running. */
  pid: number | null;
  /** Where the child's stdout/stderr go. */
  log: string;
}

export interface ClusterManifest {
  chainId: string;
  dir: string;
  genesisFile: string;
  nodes: ClusterNode[];
  accounts: { index: number; keyFile: string; address: string }[];
}

interface Proc {
  child: ChildProcess;
  exited: Promise<void>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  paused: boolean;
  /** Set when this class asked the process to end. */
  expectExit: boolean;
}

// ---------------------------------------------------------------------------------------------
// Last-resort cleanup shared by all clusters in this process.

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killAllNow(): void {
  for (const c of live) {
    try {
      c.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Only act when this is the sole listener: a caller with its own handler (the `cluster`
  // command, the demo) stops the cluster gracefully itself.
  if (process.listenerCount(signal) > 1) return;
  killAllNow();
  process.exit(signal === "SIGINT" ? 130 : 143);
}

function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on("exit", killAllNow);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onSignal);
  }
}

// ---------------------------------------------------------------------------------------------

const defaultEntry = () => fileURLToPath(new URL("./main.js", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalCluster {
  private readonly procs: (Proc | null)[];

  private constructor(
    readonly testnet: Testnet,
    private readonly opts: LocalClusterOpts,
  ) {
    this.procs = testnet.nodes.map(() => null);
  }

  /** Writes a fresh testnet of n validators into dir (which must not hold one already). */
  static async create(n: number, dir: string, opts: LocalClusterOpts = {}): Promise<LocalCluster> {
    const testnet = await createTestnet({ ...opts, validators: n, out: dir });
    return new LocalCluster(testnet, opts);
  }

  /** Attaches to a testnet a previous create() wrote (its data directories are kept). */
  static async open(dir: string, opts: LocalClusterOpts = {}): Promise<LocalCluster> {
    return new LocalCluster(await readTestnet(dir), opts);
  }

  get size(): number {
    return this.testnet.nodes.length;
  }

  get dir(): string {
    return this.testnet.dir;
  }

  get chainId(): string {
    return this.testnet.chainId;
  }

  /** API "host:port" of every node, by validator index. */
  get apiAddresses(): string[] {
    return this.testnet.nodes.map((n) => n.api);
  }

  /** Client account key files funded at genesis. */
  get accounts(): Testnet["accounts"] {
    return this.testnet.accounts;
  }

  node(i: number): ClusterNode {
    const n = this.testnet.nodes[this.checkIndex(i)]!;
    const p = this.procs[i];
    return {
      index: i,
      home: n.home,
      api: n.api,
      peer: n.peer,
      metrics: n.metrics,
      pid: p && !p.exit ? (p.child.pid ?? null) : null,
      log: this.logFile(i),
    };
  }

  isRunning(i: number): boolean {
    const p = this.procs[this.checkIndex(i)];
    return p !== null && p !== undefined && p.exit === null;
  }

  manifest(): ClusterManifest {
    return {
      chainId: this.testnet.chainId,
      dir: this.testnet.dir,
      genesisFile: this.testnet.genesisFile,
      nodes: this.testnet.nodes.map((_, i) => this.node(i)),
      accounts: this.testnet.accounts,
    };
  }

  /** Writes <dir>/cluster.json and returns its path. */
  async writeManifest(): Promise<string> {
    const file = path.join(this.testnet.dir, "cluster.json");
    await fs.writeFile(file, `${JSON.stringify(this.manifest(), null, 2)}\n`);
    return file;
  }

  /**
   * Spawns every node that is not running, then waits until all of them report SERVING.
   * Nodes are spawned together: a node may only become ready once it sees its peers.
   */
  async start(opts: { timeoutMs?: number } = {}): Promise<void> {
    for (let i = 0; i < this.size; i++) if (!this.isRunning(i)) this.spawnNode(i);
    await this.writeManifest();
    await Promise.all(this.testnet.nodes.map((_, i) => this.waitHealthy(i, opts.timeoutMs)));
  }

  /** Starts one stopped node without waiting for it to become healthy. */
  async startNode(i: number): Promise<void> {
    if (this.isRunning(i)) throw new Error(`node ${i} is already running`);
    this.spawnNode(i);
    await this.writeManifest();
  }

  /** Gracefully stops every running node (SIGTERM, then SIGKILL after stopTimeoutMs). */
  async stop(): Promise<void> {
    await Promise.all(this.testnet.nodes.map((_, i) => this.stopNode(i)));
    await this.writeManifest().catch(() => {});
  }

  async stopNode(i: number): Promise<void> {
    const p = this.procs[this.checkIndex(i)];
    if (!p || p.exit) return;
    p.expectExit = true;
    this.signal(p, "SIGTERM");
    // A paused process cannot handle SIGTERM until it runs again.
    if (p.paused) this.signal(p, "SIGCONT");
    const timeout = this.opts.stopTimeoutMs ?? 10_000;
    const exited = await Promise.race([p.exited.then(() => true), sleep(timeout).then(() => false)]);
    if (!exited) {
      this.signal(p, "SIGKILL");
      await p.exited;
    }
  }

  /**
   * Sends a signal to node i. SIGKILL/SIGTERM/SIGINT wait for the process to exit (crash tests);
   * SIGSTOP/SIGCONT pause and resume it.
   */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.procs[this.checkIndex(i)];
    if (!p || p.exit) throw new Error(`node ${i} is not running`);
    if (signal !== "SIGSTOP" && signal !== "SIGCONT") p.expectExit = true;
    this.signal(p, signal);
    if (signal === "SIGSTOP") p.paused = true;
    else if (signal === "SIGCONT") p.paused = false;
    else if (signal === "SIGKILL" || signal === "SIGTERM" || signal === "SIGINT") {
      if (p.paused && signal !== "SIGKILL") this.signal(p, "SIGCONT");
      await p.exited;
    }
  }

  pause(i: number): Promise<void> {
    return this.kill(i, "SIGSTOP");
  }

  resume(i: number): Promise<void> {
    return this.kill(i, "SIGCONT");
  }

  /** Stops node i (gracefully) if it runs, starts it again, and by default waits until healthy. */
  async restart(i: number, opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.stopNode(i);
    await this.startNode(i);
    if (opts.wait ?? true) await this.waitHealthy(i, opts.timeoutMs);
  }

  /**
   * Deletes node i's data directory (never its key or signing state, which live outside it).
   * The node must be stopped.
   */
  async wipeData(i: number): Promise<void> {
    if (this.isRunning(i)) throw new Error(`node ${i} is running; stop or kill it before wiping its data`);
    const home = this.testnet.nodes[i]!.home;
    const cfg = loadConfig(home, { env: { ...process.env, ...this.opts.env } });
    await fs.rm(resolveConfigPaths(home, cfg).dataDir, { recursive: true, force: true });
  }

  /**
   * Polls node i's gRPC health service until it answers SERVING. Fails early, with the tail of
   * the node's log, if the process exits meanwhile.
   */
  async waitHealthy(i: number, timeoutMs = this.opts.healthTimeoutMs ?? 60_000): Promise<void> {
    const p = this.procs[this.checkIndex(i)];
    if (!p) throw new Error(`node ${i} was never started`);
    const deadline = Date.now() + timeoutMs;
    const client = newHealthClient(this.testnet.nodes[i]!.api);
    // The last status the node itself reported. A check that timed out or found nobody listening
    // does not overwrite it: on a loaded box the final check can run out of time, and the error
    // should still say what the node last said (e.g. NOT_SERVING), not that a call timed out.
    let lastAnswer: string | null = null;
    let lastFailure = "no answer yet";
    try {
      while (Date.now() < deadline) {
        if (p.exit) {
          throw new Error(
            `node ${i} exited (code ${p.exit.code}, signal ${p.exit.signal}) before becoming healthy\n${this.logTail(i)}`,
          );
        }
        // Each check may use all the time left: an answer ends it at once, and a node that is
        // not listening yet fails fast (UNREACHABLE), so this still polls every 100 ms.
        const status = await checkHealth(client, Math.max(1, deadline - Date.now()));
        if (status === "SERVING") return;
        if (status === "UNREACHABLE" || status === "NO_ANSWER") lastFailure = status;
        else lastAnswer = status;
        await sleep(100);
      }
    } finally {
      client.close();
    }
    throw new Error(
      `node ${i} not healthy after ${timeoutMs} ms (last: ${lastAnswer ?? lastFailure})\n${this.logTail(i)}`,
    );
  }

  /** The last lines of node i's log file (for failure messages). */
  logTail(i: number, lines = 20): string {
    try {
      const text = readFileSync(this.logFile(i), "utf8");
      return text
        .split("\n")
        .slice(-lines - 1)
        .join("\n");
    } catch {
      return "(no log)";
    }
  }

  logFile(i: number): string {
    return path.join(this.testnet.nodes[this.checkIndex(i)]!.home, "node.log");
  }

  // -------------------------------------------------------------------------------------------

  private checkIndex(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.testnet.nodes.length) {
      throw new RangeError(`no node ${i} in a cluster of ${this.testnet.nodes.length}`);
    }
    return i;
  }

  private signal(p: Proc, signal: NodeJS.Signals): void {
    if (p.exit) return;
    try {
      p.child.kill(signal);
    } catch {
      // raced with exit
    }
  }

  private spawnNode(i: number): void {
    const home = this.testnet.nodes[i]!.home;
    const out = openSync(this.logFile(i), "a");
    let child: ChildProcess;
    try {
      child = spawn(
        process.execPath,
        [...(this.opts.nodeArgs ?? []), this.opts.entry ?? defaultEntry(), "start", "--home", home],
        { stdio: ["ignore", out, out], env: { ...process.env, ...this.opts.env }, detached: false },
      );
    } finally {
      closeSync(out);
    }
    track(child);
    const proc: Proc = { child, exit: null, paused: false, expectExit: false, exited: Promise.resolve() };
    proc.exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        proc.exit = { code, signal };
        if (!proc.expectExit) this.opts.onUnexpectedExit?.(i, code, signal);
        resolve();
      });
      child.once("error", () => {
        proc.exit ??= { code: null, signal: null };
        resolve();
      });
    });
    this.procs[i] = proc;
  }
}

// ---------------------------------------------------------------------------------------------
// grpc.health.v1 client

type HealthClient = grpc.Client & {
  check(
    req: { service: string },
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: string }) => void,
  ): void;
};

const HealthClientCtor = grpc.makeGenericClientConstructor(
  healthService as unknown as grpc.ServiceDefinition,
  "Health",
);

export function newHealthClient(address: string): HealthClient {
  // Short reconnect backoff: the default (1 s growing to 120 s) would make a poller notice a
  // slow-starting node many seconds late.
  return new HealthClientCtor(address, grpc.credentials.createInsecure(), {
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 500,
  }) as unknown as HealthClient;
}

/**
 * One health check of the overall server (service ""): the status it reports, "NOT_FOUND",
 * "UNREACHABLE" when nobody accepts the call, or "NO_ANSWER" when the deadline passes first.
 */
export function checkHealth(client: HealthClient, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    client.check({ service: "" }, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (!err) resolve(String(res?.status ?? "UNKNOWN"));
      else if (err.code === grpc.status.NOT_FOUND) resolve("NOT_FOUND");
      else if (err.code === grpc.status.DEADLINE_EXCEEDED) resolve("NO_ANSWER");
      else resolve("UNREACHABLE");
    });
  });
}
