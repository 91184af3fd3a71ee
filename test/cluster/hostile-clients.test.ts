// Issue 10, findings 2, 5 and 7, against four validators as real processes on 127.0.0.1:
//  - finding 2: brand-new unfunded keys send gapped nonces (1..1000) in ~16 KiB transactions, and
//    a funded key does the same (its gapped window is 16 and is neither gossiped nor kept);
//  - finding 5: unfunded spam with nonce 0, a transfer of 2^200, compute.work of 1M rounds from
//    keys with no funds (no account, and an account holding 1 token).
//  - finding 7: no node answers server reflection.
// While honest clients keep a closed-loop transfer load, ROUNDS attack windows run, each between
// two baseline windows of the same load (hostile-windows.ts). Asserted: no validator exits; every
// node's RSS stays under RSS_BOUND_MB; every acknowledged transaction is in the chain; no attacker
// transaction commits; no honest submit is refused as MEMPOOL_FULL; each attack is refused with its
// own code; and honest commits run at >= 80% of the bracketing baselines' rate with finality p99
// within 3x (medians over the attack windows).
// Then a second honest shape beside it (same attack, same run): an open-loop load at half the
// closed loop's median baseline rate (OpenLoopLoad), judged the same way (make bench-hostile only:
// in make test it would add ~50 s for a ratio not asserted there). The closed loop
// saturates the 2-core box, so it measures capacity, and the attacker's own client (on the same
// cores) takes its share of it; the open loop measures whether service holds below saturation.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import * as grpc from "@grpc/grpc-js";
import {
  decodeTxBody,
  type ParabftClient,
  signTx,
  TxSigner,
  toHex,
  transferTx,
} from "../../src/client/node.js";
import { reflectionClient } from "../unit/api/client.js";
import type { LocalCluster } from "./harness.js";
import {
  assertHonestService,
  assertNoHonestBans,
  describeWindows,
  type HostileCluster,
  hostileRounds,
  type Interleaved,
  interleave,
  OPEN_LOOP_SHARE,
  OpenLoopLoad,
  openLoopRate,
  openLoopRounds,
  startHostileCluster,
  stopHostileCluster,
} from "./hostile-windows.js";
import type { AttackerInput, AttackerResult } from "./hostileAttacker.js";
import { checkChain, metricValue, signerOf, sleep, TransferLoad, until } from "./lib.js";

/** ROUNDS attack windows, each between two baseline windows of 6 s (11 windows in bench-hostile). */
const ROUNDS = hostileRounds(5);
/** Attack windows of the open-loop shape (each between two baseline windows; bench-hostile only). */
const OPEN_ROUNDS = openLoopRounds(3);
const WINDOW_MS = 6_000;
const ATTACK_MS = (ROUNDS + OPEN_ROUNDS) * WINDOW_MS;
/** Per validator process: the issue saw 131 MB idle; a flood that is buffered would pass this. */
const RSS_BOUND_MB = 512;
/** Attack rates, transactions per second over all four nodes (finding 2 was ~1.1 MB/s). */
const RATES: Record<string, number> = {
  gapped16k: 60,
  fundedGapped16k: 20,
  unfundedSmall: 150,
  hugeAmount: 50,
  compute: 50,
};
// Diagnosis only: HOSTILE_RATES='{"kind":n}' overrides rates; HOSTILE_ONLY=kind,kind runs just
// those attacks (the refusal checks then fail).
if (process.env.HOSTILE_RATES) Object.assign(RATES, JSON.parse(process.env.HOSTILE_RATES));
if (process.env.HOSTILE_ONLY)
  for (const k of Object.keys(RATES)) if (!process.env.HOSTILE_ONLY.split(",").includes(k)) RATES[k] = 0;
const HONEST_SENDERS = 6;
/** Pad to just under params.limits.maxTxBytes (16 KiB) of encoded SignedTx. */
const PAD_BYTES = 15_800;

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) / 1024 : 0;
}

describe("hostile clients: unfunded, gapped, oversized and free spam", { timeout: 300_000 }, () => {
  let hostile: HostileCluster | undefined;
  let cluster: LocalCluster;
  let clients: ParabftClient[];

  before(async () => {
    hostile = await startHostileCluster(2 * HONEST_SENDERS + 3);
    ({ cluster, clients } = hostile);
  });

  after(() => stopHostileCluster(hostile));

  it("keeps honest commits flowing and memory bounded under findings 2 and 5", async () => {
    const accounts = cluster.accounts;
    const honest = await Promise.all(accounts.slice(0, HONEST_SENDERS).map((a) => signerOf(a.keyFile)));
    const recipient = await signerOf(accounts[HONEST_SENDERS]!.keyFile);
    const funder = await signerOf(accounts[HONEST_SENDERS + 1]!.keyFile);
    const fundedAttacker = await signerOf(accounts[HONEST_SENDERS + 2]!.keyFile);
    const openSenders = await Promise.all(
      accounts.slice(HONEST_SENDERS + 3, 2 * HONEST_SENDERS + 3).map((a) => signerOf(a.keyFile)),
    );
    const pids = [0, 1, 2, 3].map((i) => cluster.node(i).pid);
    assert.ok(pids.every((p) => p !== null));
    const chainId = cluster.chainId;
    let midPool: number[] = [];
    let windows: Interleaved | null = null;
    let openWindows: Interleaved | null = null;
    let open: OpenLoopLoad | null = null;
    let outcome: AttackerResult | null = null;

    // Poor keys: an account that exists with a balance of 1 token, too little for any fee.
    const poorSecrets = Array.from({ length: 3 }, () => randomBytes(32));
    const poor = poorSecrets.map((k) => new TxSigner(k));
    let funderNonce = (await clients[0]!.getAccount(funder.address)).nonce;
    for (const p of poor) {
      const tx = signTx(
        transferTx({ chainId, sender: funder.publicKey, nonce: funderNonce++ }, p.address, 1n),
        funder,
      );
      await clients[0]!.submitAndWait(tx, { timeoutMs: 20_000, waitExecuted: true });
    }
    // Finding 7: no node serves reflection (the generated config leaves api.reflection off).
    // Checked before the attack: afterwards this address (the attacker's, 127.0.0.1) may still be
    // in the API's abuse cool-down, which closes new connections at accept.
    for (const [i, addr] of cluster.apiAddresses.entries()) {
      const refl = reflectionClient(Number(addr.split(":").pop()));
      try {
        const code = await new Promise<number>((resolve) => {
          const stream = refl.ServerReflectionInfo();
          stream.on("error", (err: grpc.ServiceError) => resolve(err.code));
          stream.on("data", () => resolve(grpc.status.OK));
          stream.write({ list_services: "*" });
        });
        assert.equal(grpc.status[code], "UNIMPLEMENTED", `node ${i} serves reflection`);
      } finally {
        refl.close();
      }
    }
    const attackerSecret = JSON.parse(await readFile(accounts[HONEST_SENDERS + 2]!.keyFile, "utf8")) as {
      secretKey: string;
    };

    // The attacker runs in a worker thread and pre-signs its traffic before the baseline.
    const input: AttackerInput = {
      apiAddresses: cluster.apiAddresses,
      chainId,
      fundedAttacker: attackerSecret.secretKey,
      poor: poorSecrets.map((k) => k.toString("hex")),
      recipient: toHex(recipient.address),
      attackNonce: (await clients[0]!.getAccount(fundedAttacker.address)).nonce.toString(),
      rates: RATES as AttackerInput["rates"],
      attackMs: ATTACK_MS,
      padBytes: PAD_BYTES,
    };
    const worker = new Worker(new URL("./hostileAttacker.js", import.meta.url), { workerData: input });
    const messages: { ready?: boolean; result?: AttackerResult }[] = [];
    let wake: (() => void) | null = null;
    worker.on("message", (m) => {
      messages.push(m);
      wake?.();
    });
    let workerError: unknown = null;
    worker.on("error", (err) => {
      workerError = err;
      wake?.();
    });
    const nextMessage = async (what: string, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (messages.length === 0) {
        if (workerError) throw workerError;
        if (Date.now() > deadline) throw new Error(`attacker worker: no ${what} in ${timeoutMs} ms`);
        await Promise.race([new Promise<void>((r) => (wake = r)), sleep(1000)]);
      }
      return messages.shift()!;
    };

    let maxRss = 0;
    let sampling = true;
    const load = new TransferLoad(cluster, clients, honest, recipient.address);
    try {
      await nextMessage("ready", 180_000);
      const sampler = (async () => {
        while (sampling) {
          for (const pid of pids) maxRss = Math.max(maxRss, await rssMb(pid!).catch(() => 0));
          await sleep(500);
        }
      })();
      // Baseline and attack windows alternate (hostile-windows.ts), so drift in the machine's load
      // hits both alike.
      load.start();
      await until("honest load running", async () => load.acks.length >= HONEST_SENDERS, 60_000);
      const probe = async () => {
        const sum = async (name: string) =>
          (await Promise.all([0, 1, 2, 3].map((i) => metricValue(cluster.node(i).metrics, name)))).join("/");
        return `views ${await sum("parabft_consensus_view")} queue drops ${await sum("parabft_net_queue_dropped_total")} reconnects ${await sum("parabft_net_reconnects_total")}`;
      };
      windows = await interleave(load, pids, {
        rounds: ROUNDS,
        windowMs: WINDOW_MS,
        startAttack: () => void worker.postMessage("go"),
        probe,
        stopAttack: async (round) => {
          worker.postMessage("pause");
          // End of the last attack window: the pools stay small (spam refused, gapped few, not gossiped).
          if (round === ROUNDS - 1)
            midPool = await Promise.all(clients.map(async (c) => (await c.getStatus()).mempoolSize));
        },
      });
      // The second honest shape (bench-hostile): the closed loop stops, an open loop at
      // OPEN_LOOP_SHARE of its baseline rate runs through the same attack.
      await load.stop();
      if (OPEN_ROUNDS > 0) {
        open = new OpenLoopLoad(chainId, clients, openSenders, recipient.address, openLoopRate(windows));
        open.start();
        openWindows = await interleave(open, pids, {
          rounds: OPEN_ROUNDS,
          windowMs: WINDOW_MS,
          warmupMs: 4_000,
          startAttack: () => void worker.postMessage("go"),
          probe,
          stopAttack: () => void worker.postMessage("pause"),
        });
        await open.stop();
      }
      worker.postMessage("finish");
      const done = await nextMessage("result", 120_000);
      outcome = done.result!;
      sampling = false;
      await sampler;
    } finally {
      sampling = false;
      await load.stop();
      await open?.stop();
      await worker.terminate();
    }
    const codes = new Map(Object.entries(outcome!.codes));
    const admitted = outcome!.admitted;
    // The open-loop shape's traffic (empty when it did not run: make test).
    const openLoad = open as OpenLoopLoad | null;
    const openErrors = openLoad?.errors ?? [];
    const openAcks = openLoad?.acks ?? [];

    console.log(
      `# hostile: max RSS ${maxRss.toFixed(0)} MB; pools mid-attack ${midPool.join(",")}; ` +
        `attack: ${outcome!.sent} sent, outcomes ${JSON.stringify(Object.fromEntries([...codes].sort()))}; ` +
        `honest errors ${load.errors.length}: ${load.errors.slice(0, 3).join(" | ")}; open-loop errors ` +
        `${openErrors.length}: ${openErrors.slice(0, 3).join(" | ")}\n` +
        describeWindows("hostile clients", windows!) +
        (openLoad !== null && openWindows !== null
          ? `\n# open loop at ${openLoopRate(windows!).toFixed(1)} tx/s (${openLoad.sent} sent, ${openAcks.length} acknowledged)\n` +
            describeWindows(`hostile clients at ${OPEN_LOOP_SHARE}x baseline (open loop)`, openWindows)
          : ""),
    );

    // No validator exited.
    for (const i of [0, 1, 2, 3]) {
      assert.ok(cluster.isRunning(i), `node ${i} exited\n${cluster.logTail(i)}`);
      assert.equal(cluster.node(i).pid, pids[i], `node ${i} was restarted`);
    }
    assert.ok(maxRss > 0 && maxRss < RSS_BOUND_MB, `max RSS ${maxRss.toFixed(0)} MB (bound ${RSS_BOUND_MB})`);
    // Each attack was refused for its own reason.
    assert.ok(
      (codes.get("gapped16k:UNKNOWN_ACCOUNT") ?? 0) > 0,
      "unfunded gapped spam not refused as UNKNOWN_ACCOUNT",
    );
    assert.ok((codes.get("unfundedSmall:UNKNOWN_ACCOUNT") ?? 0) > 0);
    assert.ok(
      (codes.get("hugeAmount:AMOUNT_OUT_OF_RANGE") ?? 0) > 0,
      "2^200 not refused as AMOUNT_OUT_OF_RANGE",
    );
    assert.ok((codes.get("compute:INSUFFICIENT_FUNDS") ?? 0) > 0, "compute.work of a poor key admitted");
    assert.ok(
      (codes.get("fundedGapped16k:NONCE_GAP") ?? 0) > 0,
      "funded gapped spam beyond the window admitted",
    );
    for (const kind of ["gapped16k", "unfundedSmall", "hugeAmount", "compute"]) {
      assert.equal(codes.get(`${kind}:ADMITTED`) ?? 0, 0, `${kind} spam was admitted`);
    }
    // The funded key's gapped window: at most 16 per node.
    assert.ok(admitted <= 16 * 4, `${admitted} attack transactions admitted`);
    assert.ok(
      midPool.every((n) => n <= 16 + 2 * HONEST_SENDERS + 10),
      `pools mid-attack ${midPool.join(",")}`,
    );
    // Honest clients were never turned away for capacity.
    assert.equal(
      [...load.errors, ...openErrors].filter((e) => /MEMPOOL_FULL/.test(e)).length,
      0,
      `honest submits refused: ${[...load.errors, ...openErrors].slice(0, 3).join("; ")}`,
    );
    // Nothing acknowledged is lost, and no attacker transaction reached the chain.
    const top = await checkChain(clients, [0, 1, 2, 3], [...load.acks, ...openAcks]);
    await assertNoHonestBans(cluster, [0, 1, 2, 3], [0, 1, 2, 3]);
    const ours = new Set([...honest, ...openSenders, funder].map((k) => toHex(k.publicKey)));
    const committedAttack = await countForeignTxs(clients[0]!, top, ours);
    assert.equal(committedAttack, 0, `${committedAttack} attacker transactions committed`);
    // Honest throughput and finality under attack, against the same run's bracketing baselines,
    // for both shapes: both are recorded before either verdict fails the test.
    let closedErr: unknown = null;
    try {
      assertHonestService("hostile clients", windows!);
    } catch (err) {
      closedErr = err;
    }
    if (openWindows !== null)
      assertHonestService(`hostile clients at ${OPEN_LOOP_SHARE}x baseline`, openWindows, "open loop");
    if (closedErr) throw closedErr;
  });
});

/** Transactions in the chain from anyone but the honest clients and the funder (the attacker). */
async function countForeignTxs(c: ParabftClient, top: bigint, ours: Set<string>): Promise<number> {
  let n = 0;
  for (let h = 1n; h <= top; h++) {
    const block = await c.getBlock({ height: h });
    for (const tx of block?.block?.txs ?? []) if (!ours.has(toHex(decodeTxBody(tx).sender))) n++;
  }
  return n;
}
