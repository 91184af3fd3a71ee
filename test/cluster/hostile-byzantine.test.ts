// Issue 10, findings 1 and 6, against a real 4-validator cluster on 127.0.0.1 (mTLS on), each
// under honest closed-loop load with attack windows bracketed by baseline windows
// (hostile-windows.ts). Each asserts: no validator exits (nor restarts); every node's RSS stays
// under a stated bound; honest commits continue at >= 80% of the bracketing baselines' rate with
// finality p99 within 3x (medians over the attack windows); nothing acknowledged is lost.
//
//  - finding 1, remote crash: SubmitTxAndWait with timeout_ms = 1 on every wait path (committed
//    tx with and without wait_executed, fresh tx with wait_executed) at every node, in a loop;
//    also: no error escaped every handler (the last-resort counter stays 0).
//  - finding 6, Byzantine flood: validator 3 turns rogue (its process stops, the test speaks with
//    its key and certificate) and floods validators 0..2 with TxBatches of forged transactions,
//    duplicates, stale and far-future messages and status reports far over their rate; it
//    reconnects whenever cut off. Each target bans it (logged and counted), for TX_BATCH_INVALID
//    or rate_limited_*, and refuses it while banned.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { type ParabftClient, signTx, transferTx } from "../../src/client/node.js";
import type { AttackResult, AttackSpec } from "./attackWorker.js";
import type { LocalCluster } from "./harness.js";
import {
  assertHonestService,
  assertNoHonestBans,
  describeWindows,
  type HostileCluster,
  hostileRounds,
  interleave,
  RssWatch,
  startHostileCluster,
  stopHostileCluster,
} from "./hostile-windows.js";
import { checkChain, metricValue, signerOf, sleep, TransferLoad, until } from "./lib.js";

const ROUNDS = hostileRounds(3);
const WINDOW_MS = 6_000;
const HONEST = [0, 1, 2, 3, 4, 5];
const ATTACKER_ACCOUNT = 6;
const RECIPIENT = 7;
/** Funded, unused by anyone else: the forged gossip's sender. */
const FORGED_SENDER = 8;

describe("hostile clients and a Byzantine validator: findings 1 and 6", { timeout: 300_000 }, () => {
  let hostile: HostileCluster | undefined;
  let cluster: LocalCluster;
  let clients: ParabftClient[];
  let exits: string[] = [];

  before(async () => {
    hostile = await startHostileCluster(9);
    ({ cluster, clients, exits } = hostile);
  });

  after(() => stopHostileCluster(hostile));

  /** Honest load on `live` nodes through bracketed windows; asserts the four properties. */
  async function underAttack(
    name: string,
    live: number[],
    attack: { start: () => Promise<void> | void; stop: () => Promise<void> | void },
  ) {
    const signers = await Promise.all(HONEST.map((k) => signerOf(cluster.accounts[k]!.keyFile)));
    const recipient = await signerOf(cluster.accounts[RECIPIENT]!.keyFile);
    const load = new TransferLoad(cluster, clients, signers, recipient.address);
    for (let i = 0; i < 4; i++) if (!live.includes(i)) load.avoid(i);
    const pids = live.map((i) => cluster.node(i).pid);
    const rss = new RssWatch(pids);
    try {
      load.start();
      await until(`${name}: first commits`, async () => load.acks.length >= HONEST.length, 60_000);
      const windows = await interleave(load, pids, {
        rounds: ROUNDS,
        windowMs: WINDOW_MS,
        startAttack: attack.start,
        stopAttack: attack.stop,
        probe: async () =>
          `view ${await metricValue(cluster.node(live[0]!).metrics, "parabft_consensus_view")}`,
      });
      await load.stop();
      console.log(
        `# ${name}: ${rss.describe()}; client errors ${load.errors.length}\n` +
          describeWindows(name, windows),
      );
      // 1. No validator exits (nor was restarted).
      assert.deepEqual(exits, []);
      for (const [k, i] of live.entries()) {
        assert.ok(cluster.isRunning(i), `node ${i} is running\n${cluster.logTail(i)}`);
        assert.equal(cluster.node(i).pid, pids[k], `node ${i} was restarted`);
      }
      // 2. RSS stays under the stated bound.
      rss.assertBounded(live);
      // 4. Nothing acknowledged is lost.
      await checkChain(clients, live, load.acks);
      await assertNoHonestBans(cluster, live, live);
      // 3. (honest service) is asserted by the caller after its own checks.
      return windows;
    } finally {
      rss.stop();
      await load.stop();
    }
  }

  it("timeout_ms = 1 on every wait path kills no node and costs honest clients nothing (finding 1)", async () => {
    const attacker = await signerOf(cluster.accounts[ATTACKER_ACCOUNT]!.keyFile);
    const recipient = await signerOf(cluster.accounts[RECIPIENT]!.keyFile);
    const base = { chainId: cluster.chainId, sender: attacker.publicKey };
    let nonce = (await clients[0]!.getAccount(attacker.address)).nonce;
    const tx = (n: bigint) => signTx(transferTx({ ...base, nonce: n }, recipient.address, 1n), attacker);
    const committed = tx(nonce++);
    await clients[0]!.submitAndWait(committed, { timeoutMs: 60_000, waitExecuted: true });
    let on = false;
    let loop: Promise<void> = Promise.resolve();
    let calls = 0;
    const windows = await underAttack("timeout_ms = 1", [0, 1, 2, 3], {
      start: () => {
        on = true;
        loop = (async () => {
          for (let k = 0; on; k++) {
            // A fresh transaction is valid, paid load, not spam: one every 10th round (about one a
            // second) still arms the not-yet-committed wait path at every node in every window
            // without doubling the chain's transaction rate against the honest clients'.
            const fresh = k % 10 === 0 ? tx(nonce++) : null;
            const all = clients.flatMap((c) => [
              c.submitAndWait(committed, { timeoutMs: 1, waitExecuted: true }),
              c.submitAndWait(committed, { timeoutMs: 1 }),
              ...(fresh ? [c.submitAndWait(fresh, { timeoutMs: 1, waitExecuted: true })] : []),
            ]);
            calls += (await Promise.allSettled(all)).length;
            await sleep(50);
          }
        })();
      },
      stop: async () => {
        on = false;
        await loop;
      },
    });
    assert.ok(calls >= 2 * 4 * ROUNDS, `only ${calls} tight-deadline calls`);
    for (let i = 0; i < 4; i++) {
      const escaped = await metricValue(cluster.node(i).metrics, "parabft_process_escaped_errors_total");
      assert.equal(escaped, 0, `node ${i}: errors escaped every handler\n${cluster.logTail(i)}`);
    }
    console.log(`# timeout_ms = 1: ${calls} calls`);
    assertHonestService("timeout_ms = 1", windows);
  });

  it("a flooding Byzantine validator is banned, refused while banned, and costs honest clients nothing (finding 6)", async () => {
    await cluster.kill(3);
    const home = cluster.node(3).home;
    const key = JSON.parse(await readFile(`${home}/keys/validator.json`, "utf8")) as { secretKey: string };
    const funded = JSON.parse(await readFile(cluster.accounts[FORGED_SENDER]!.keyFile, "utf8")) as {
      secretKey: string;
    };
    const spec: AttackSpec = {
      kind: "byzantine",
      chainId: cluster.chainId,
      id: {
        index: 3,
        secretKey: Buffer.from(key.secretKey, "hex"),
        certPem: await readFile(`${home}/tls/validator.crt`, "utf8"),
        trustedPem: await readFile(`${home}/tls/validators.pem`, "utf8"),
      },
      targets: [0, 1, 2].map((i) => ({ peer: cluster.node(i).peer, index: i })),
      funded: funded.secretKey,
    };
    const total: AttackResult = { attempts: 0, leaked: 0, sent: 0, refused: 0 };
    let worker: Worker | null = null;
    let done: Promise<AttackResult> | null = null;
    const attack = {
      start: () => {
        const w = new Worker(new URL("./attackWorker.js", import.meta.url), { workerData: spec });
        worker = w;
        done = new Promise<AttackResult>((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
        });
      },
      stop: async () => {
        const w = worker!;
        w.postMessage("stop");
        try {
          const r = await done!;
          total.attempts += r.attempts;
          total.sent! += r.sent ?? 0;
          total.refused! += r.refused ?? 0;
        } finally {
          await w.terminate();
        }
      },
    };
    const windows = await underAttack("Byzantine flood", [0, 1, 2], attack);
    const m = (i: number, name: string, labels: Record<string, string> = {}) =>
      metricValue(cluster.node(i).metrics, name, labels);
    // On a loaded box the attacker's handshakes (10 s bound) can eat the 6 s windows before it
    // floods every target. Then it floods on, outside the measured windows, until each target
    // banned it and a handshake was refused, within a bound: a node that never bans still fails.
    const everyNodeBanned = async () => {
      for (const i of [0, 1, 2]) if ((await m(i, "parabft_net_bans_total")) < 1) return false;
      return true;
    };
    const extraStart = performance.now();
    while (!((await everyNodeBanned()) && total.refused! >= 1) && performance.now() - extraStart < 60_000) {
      await attack.start();
      try {
        await until("every node banned the flooding validator", everyNodeBanned, 30_000).catch(() => {});
        await sleep(2_000); // a reconnect after the ban, to be refused
      } finally {
        await attack.stop();
      }
    }
    if (performance.now() - extraStart > 1_000)
      console.log(
        `# Byzantine flood: flooded ${((performance.now() - extraStart) / 1000).toFixed(1)} s more`,
      );
    for (const i of [0, 1, 2]) {
      const bans = await m(i, "parabft_net_bans_total");
      const forged = await m(i, "parabft_net_penalties_total", { reason: "TX_BATCH_INVALID" });
      const limited = await m(i, "parabft_net_rejected_total", { reason: "rate_limited" });
      const log = readFileSync(cluster.node(i).log, "utf8");
      console.log(
        `# Byzantine flood: node ${i} bans ${bans}, TX_BATCH_INVALID ${forged}, rate_limited ${limited}`,
      );
      assert.ok(bans >= 1, `node ${i} never banned the flooding validator`);
      assert.ok(forged >= 1 || limited >= 1, `node ${i} penalised neither forged batches nor the rate`);
      assert.match(log, /"peer":3,[^\n]*"msg":"peer banned"/, `node ${i} logged no ban of validator 3`);
    }
    console.log(
      `# Byzantine flood: ${total.attempts} links tried, ${total.refused} refused, ${total.sent} envelopes sent`,
    );
    assert.ok(total.sent! > 0, "the attacker sent nothing");
    assert.ok(total.refused! >= 1, "no handshake of the banned validator was refused");
    assertHonestService("Byzantine flood", windows);
  });
});
