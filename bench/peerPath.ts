// The peer message path alone (issue 14): CPU per envelope from `send` on one PeerNetwork to the
// node's decode on another, both in this process over 127.0.0.1 (so both ends are counted), for
// the PeerNetwork of any built tree. The receiver does what the driver does before the core sees
// a vote: decode the Envelope (unless the transport hands it over decoded) and its PeerMessage.
// No signature is verified or made after the handshake: this is the transport's own cost.
//   node dist/bench/peerPath.js [--tree DIR] [--json]          one measurement of DIR's build
//   node dist/bench/peerPath.js --compare BASE_DIR [--pairs N] [--out DIR] [--name NAME]
//       alternates this tree and BASE_DIR's in child processes (A B B A ...), N pairs, and writes
//       NAME.{json,txt,svg} with the medians.
// Patterns: `lone` = one envelope, wait for it (light load: nothing to batch); `pair` = two sent
// in one callback (a primary's PRE-PREPARE and PREPARE); `burst64` = 64 at once (a backlog).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { keyPairFromSecret } from "../src/crypto/keys.js";
import { NodeSigner, NodeVerifier } from "../src/crypto/node.js";
import { type Envelope, EnvelopeSchema, PeerMessageSchema } from "../src/gen/parabft/v1/consensus_pb.js";
import { silentLogger } from "../src/logger/index.js";
import type { PeerNetwork as PeerNetworkClass } from "../src/net/peerNetwork.js";
import type { PeerNetworkModules, PeerNetworkOpts } from "../src/net/types.js";
import { PROTOCOL_VERSION } from "../src/types/signing.js";
import { barChartSvg, formatTable, median, writeResultFiles } from "./lib/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url)); // <tree>/dist/bench
const OWN_TREE = path.resolve(HERE, "../..");
const CHAIN = "peer-path-bench";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

type Patterns = Record<"lone" | "pair" | "burst64", number>;

/** A PREPARE-shaped vote envelope (~150 bytes, unsigned envelope as votes travel). */
function vote(sender: number, height: bigint): Uint8Array {
  const payload = toBinary(
    PeerMessageSchema,
    create(PeerMessageSchema, {
      kind: {
        case: "prepare",
        value: {
          view: 0n,
          height,
          blockDigest: new Uint8Array(32).fill(Number(height % 251n)),
          voteSignature: new Uint8Array(64).fill(7),
        },
      },
    }),
  );
  return toBinary(
    EnvelopeSchema,
    create(EnvelopeSchema, {
      version: PROTOCOL_VERSION,
      chainId: CHAIN,
      epoch: 0n,
      sender,
      payload,
      signature: new Uint8Array(),
    }),
  );
}

async function measureOnce(tree: string): Promise<Patterns> {
  const mod = (await import(pathToFileURL(path.join(tree, "dist/src/net/peerNetwork.js")).href)) as {
    PeerNetwork: typeof PeerNetworkClass;
  };
  const keys = [1, 2].map((i) => keyPairFromSecret(new Uint8Array(32).fill(i)));
  let received = 0;
  let waiter: { n: number; resolve: () => void } | null = null;
  const make = (index: number): PeerNetworkClass => {
    const m: PeerNetworkModules = {
      signer: new NodeSigner(keys[index]!.secretKey),
      verifier: new NodeVerifier(),
      onEnvelope: (_from: number, bytes: Uint8Array, env?: Envelope) => {
        const e = env ?? fromBinary(EnvelopeSchema, bytes);
        fromBinary(PeerMessageSchema, e.payload);
        received++;
        if (waiter !== null && received >= waiter.n) {
          const w = waiter;
          waiter = null;
          w.resolve();
        }
      },
      localStatus: () => ({
        epoch: 0n,
        committedHeight: 0n,
        view: 0n,
        stableCheckpoint: 0n,
        executedHeight: 0n,
      }),
      metrics: null,
      log: silentLogger(),
    };
    const opts: PeerNetworkOpts = {
      chainId: CHAIN,
      localIndex: index,
      listenPort: 0,
      peers: [],
      maxMessageBytes: 4 * 1024 * 1024,
      queueLimit: 4096,
      rateLimits: { prepare: { perSecond: 1e9, burst: 1e9 } },
    };
    return new mod.PeerNetwork(opts, m);
  };
  const a = make(0);
  const b = make(1);
  try {
    await a.start();
    await b.start();
    const peers = keys.map((k, i) => ({
      index: i,
      publicKey: k.publicKey,
      address: `127.0.0.1:${(i === 0 ? a : b).port}`,
    }));
    a.setPeers(peers);
    b.setPeers(peers);
    const deadline = Date.now() + 20_000;
    while (a.connectedCount < 1 || b.connectedCount < 1) {
      if (Date.now() > deadline) throw new Error("the two networks did not connect");
      await new Promise((r) => setTimeout(r, 10));
    }
    // Both hellos (status envelopes) are in; count from here.
    await new Promise((r) => setTimeout(r, 200));
    // Built before measuring: the node's own encoding is not the transport's cost.
    const votes = Array.from({ length: 1024 }, (_, i) => vote(1, BigInt(i)));
    let next = 0;
    const round = async (k: number) => {
      const target = received + k;
      const done = new Promise<void>((resolve) => {
        waiter = { n: target, resolve };
      });
      for (let i = 0; i < k; i++) b.send(0, votes[next++ % votes.length]!);
      await done;
    };
    const run = async (k: number, rounds: number): Promise<number> => {
      const t0 = process.cpuUsage();
      for (let r = 0; r < rounds; r++) await round(k);
      const d = process.cpuUsage(t0);
      return (d.user + d.system) / (k * rounds);
    };
    // Warm-up (JIT, http2 windows): the first thousands of envelopes cost twice the steady state.
    await run(1, 3000);
    await run(2, 1000);
    await run(64, 30);
    await run(1, 1000);
    return { lone: await run(1, 3000), pair: await run(2, 1500), burst64: await run(64, 60) };
  } finally {
    await b.stop();
    await a.stop();
  }
}

async function compare(baseTree: string): Promise<void> {
  const pairs = Number(arg("pairs") ?? 5);
  const outDir = arg("out") ?? path.join(OWN_TREE, "bench/results");
  const name = arg("name") ?? "peer-path";
  const builds = [
    { label: "base", tree: path.resolve(baseTree) },
    { label: "new", tree: OWN_TREE },
  ];
  const runs: { build: string; pair: number; load1m: number; perEnvelopeUs: Patterns }[] = [];
  for (let p = 0; p < pairs; p++) {
    const order = p % 2 === 0 ? builds : [...builds].reverse();
    for (const b of order) {
      const load1m = Number((await import("node:os")).loadavg()[0]!.toFixed(2));
      const out = execFileSync(
        process.execPath,
        [fileURLToPath(import.meta.url), "--tree", b.tree, "--json"],
        {
          encoding: "utf8",
        },
      );
      const perEnvelopeUs = JSON.parse(out) as Patterns;
      runs.push({ build: b.label, pair: p, load1m, perEnvelopeUs });
      process.stderr.write(`${b.label} pair ${p}: ${JSON.stringify(perEnvelopeUs)} load ${load1m}\n`);
    }
  }
  const patterns = ["lone", "pair", "burst64"] as const;
  const med = (label: string, k: (typeof patterns)[number]) =>
    Math.round(median(runs.filter((r) => r.build === label).map((r) => r.perEnvelopeUs[k])) * 10) / 10;
  const summary = patterns.map((k) => ({ pattern: k, baseUs: med("base", k), newUs: med("new", k) }));
  const table = formatTable(
    ["pattern", "base µs CPU/envelope", "new µs CPU/envelope", "new/base"],
    summary.map((s) => [s.pattern, s.baseUs, s.newUs, Math.round((s.newUs / s.baseUs) * 100) / 100]),
  );
  const text = `peer message path, CPU per envelope (both ends, one process; medians of ${pairs} interleaved pairs; load 1m ${runs.map((r) => r.load1m).join(" ")})\nbase = ${builds[0]!.tree}, new = ${builds[1]!.tree}\n\n${table}\n`;
  const svg = barChartSvg({
    title: "peer message path: CPU µs per envelope, send to decode (medians)",
    categories: summary.map((s) => s.pattern),
    series: [
      { name: "base", values: summary.map((s) => s.baseUs) },
      { name: "new", values: summary.map((s) => s.newUs) },
    ],
    yLabel: "µs",
  });
  writeResultFiles(outDir, name, { kind: "parabft-peer-path", pairs, summary, runs }, text, svg);
  process.stdout.write(text);
}

const baseTree = arg("compare");
if (baseTree !== undefined) await compare(baseTree);
else {
  const r = await measureOnce(path.resolve(arg("tree") ?? OWN_TREE));
  process.stdout.write(
    process.argv.includes("--json") ? `${JSON.stringify(r)}\n` : `${JSON.stringify(r, null, 2)}\n`,
  );
}
