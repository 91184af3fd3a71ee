// Issue 10, findings 3 and 4, against a real 4-validator cluster on 127.0.0.1 (mTLS on, the
// default). Each scenario runs honest closed-loop load through attack windows bracketed by
// baseline windows (hostile-windows.ts) and asserts: no validator exits; every node's RSS stays
// under a stated bound; nothing acknowledged is lost (checkChain); no honest validator is banned;
// its own checks; and last, honest commits continue at >= 80% of the bracketing baselines' rate
// with finality p99 within 3x (medians over the attack windows).
//
//  - handshake replay: recorded handshake frames of validator 3 are replayed to validators 0..2
//    in a loop, in the clear, over TLS with a stranger's certificate, over TLS with a Byzantine
//    validator's own certificate (claiming validator 3), and by validator 3's key holder itself.
//    No live link is displaced and the attacker receives nothing meant for validators.
//  - unread StreamBlocks flood: 150 connections each opening 64 StreamBlocks calls from height 1
//    and never reading them, against validator 0's API. Then a second honest shape beside the
//    closed loop: an open loop at half its median baseline rate through the same attack
//    (OpenLoopLoad in hostile-windows.ts), judged the same way (make bench-hostile only).
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import type { ParabftClient } from "../../src/client/node.js";
import { createValidatorCertificate, generateKeyPair } from "../../src/crypto/index.js";
import { challengeFrame, dialerProofFrame, newNonce } from "../../src/net/handshake.js";
import type { AttackResult, AttackSpec } from "./attackWorker.js";
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
  RssWatch,
  startHostileCluster,
  stopHostileCluster,
} from "./hostile-windows.js";
import { checkChain, metricValue, signerOf, TransferLoad, until } from "./lib.js";
import { type PeerIdentity, peerIdentity } from "./peerAttack.js";

/** Alternating baseline and attack windows: ROUNDS of each, WINDOW_MS long. */
const ROUNDS = hostileRounds(3);
/** Attack windows of the open-loop shape, where a scenario runs it (bench-hostile only). */
const OPEN_ROUNDS = openLoopRounds(3);
/** Accounts 0-5: closed-loop senders; 7: recipient; 8-13: open-loop senders. */
const OPEN_SENDERS = [8, 9, 10, 11, 12, 13];
const WINDOW_MS = 6_000;

describe("hostile peers and clients against a real cluster", { timeout: 300_000 }, () => {
  let hostile: HostileCluster | undefined;
  let cluster: LocalCluster;
  let clients: ParabftClient[];
  let exits: string[] = [];

  before(async () => {
    hostile = await startHostileCluster(14);
    ({ cluster, clients, exits } = hostile);
  });

  after(() => stopHostileCluster(hostile));

  /**
   * Runs honest load through ROUNDS attack windows bracketed by baseline windows (hostile-windows.ts)
   * and asserts the four properties. `attack` starts one attack window's attack and returns its
   * stop function.
   */
  async function underAttack(
    name: string,
    senders: number[],
    attack: () => Promise<() => Promise<void>>,
    openLoop = false,
  ): Promise<{ windows: Interleaved; openWindows: Interleaved | null; rssPeak: number[] }> {
    const signers = await Promise.all(senders.map((k) => signerOf(cluster.accounts[k]!.keyFile)));
    const recipient = await signerOf(cluster.accounts[7]!.keyFile);
    const load = new TransferLoad(cluster, clients, signers, recipient.address);
    const pids = [0, 1, 2, 3].map((i) => cluster.node(i).pid);
    const rss = new RssWatch(pids);
    let stopAttack: (() => Promise<void>) | null = null;
    let open: OpenLoopLoad | null = null;
    try {
      load.start();
      // Warm-up: the first commits include connection set-up.
      await until(`${name}: first commits`, async () => load.acks.length >= senders.length, 60_000);
      const hooks = {
        startAttack: async () => {
          stopAttack = await attack();
        },
        stopAttack: async () => {
          const stop = stopAttack;
          stopAttack = null;
          await stop?.();
        },
        probe: async () => `view ${await metricValue(cluster.node(0).metrics, "parabft_consensus_view")}`,
      };
      const windows = await interleave(load, pids, { rounds: ROUNDS, windowMs: WINDOW_MS, ...hooks });
      await load.stop();
      let openWindows: Interleaved | null = null;
      if (openLoop && OPEN_ROUNDS > 0) {
        const openSigners = await Promise.all(
          OPEN_SENDERS.map((k) => signerOf(cluster.accounts[k]!.keyFile)),
        );
        open = new OpenLoopLoad(
          cluster.chainId,
          clients,
          openSigners,
          recipient.address,
          openLoopRate(windows),
        );
        open.start();
        openWindows = await interleave(open, pids, {
          rounds: OPEN_ROUNDS,
          windowMs: WINDOW_MS,
          warmupMs: 4_000,
          ...hooks,
        });
        await open.stop();
      }
      console.log(
        `# ${name}: ${rss.describe()}; client errors ${load.errors.length}` +
          (open
            ? `, open-loop errors ${open.errors.length} (${open.sent} sent, ${open.acks.length} acknowledged)`
            : "") +
          `\n${describeWindows(name, windows)}` +
          (openWindows
            ? `\n${describeWindows(`${name} at ${OPEN_LOOP_SHARE}x baseline (open loop)`, openWindows)}`
            : ""),
      );
      // 1. No validator exits.
      assert.deepEqual(exits, []);
      for (let i = 0; i < 4; i++) assert.ok(cluster.isRunning(i), `node ${i} is running`);
      // 2. RSS stays under the stated bound.
      rss.assertBounded([0, 1, 2, 3]);
      // 4. Nothing acknowledged is lost.
      await checkChain(clients, [0, 1, 2, 3], [...load.acks, ...(open?.acks ?? [])]);
      await assertNoHonestBans(cluster, [0, 1, 2, 3], [0, 1, 2, 3]);
      // 3. (honest service) is asserted by the caller after its own checks: assertHonestService.
      return { windows, openWindows, rssPeak: rss.peak };
    } finally {
      rss.stop();
      if (stopAttack) await (stopAttack as () => Promise<void>)().catch(() => {});
      await load.stop();
      await (open as OpenLoopLoad | null)?.stop();
    }
  }

  /** Starts an attacker worker; the returned function stops it and yields its counters. */
  function startWorker(spec: AttackSpec): () => Promise<AttackResult> {
    const w = new Worker(new URL("./attackWorker.js", import.meta.url), { workerData: spec });
    const done = new Promise<AttackResult>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    return async () => {
      w.postMessage("stop");
      try {
        return await done;
      } finally {
        await w.terminate();
      }
    };
  }

  it("replayed handshakes displace no live link and reach nothing (finding 3)", async () => {
    const id3 = await peerIdentity(cluster.node(3).home, 3);
    const id2 = await peerIdentity(cluster.node(2).home, 2);
    const stranger = generateKeyPair();
    const strangerTls = {
      index: 3,
      secretKey: stranger.secretKey,
      certPem: await createValidatorCertificate(stranger.secretKey),
      trustedPem: id3.trustedPem,
    };
    // "Recorded" handshakes: the frames validator 3 would have sent to each lower validator on
    // some earlier stream (a valid proof, over that stream's long-gone server nonce).
    const targets = [0, 1, 2].map((target) => {
      const t = {
        chainId: cluster.chainId,
        dialer: 3,
        server: target,
        dialerEpoch: 0n,
        serverEpoch: 0n,
        dialerNonce: newNonce(),
        serverNonce: newNonce(),
      };
      return {
        peer: cluster.node(target).peer,
        challenge: challengeFrame(cluster.chainId, 3, target, 0n, t.dialerNonce),
        proof: dialerProofFrame(t, id3.signer),
      };
    });
    const metric = (i: number, name: string, labels: Record<string, string> = {}) =>
      metricValue(cluster.node(i).metrics, name, labels);
    const replaced = () =>
      Promise.all([0, 1, 2].map((i) => metric(i, "parabft_net_stream_replacements_total")));
    const replacedBefore = await replaced();
    const result: AttackResult = { attempts: 0, leaked: 0 };

    const replayAttack = async () => {
      const strip = ({ signer: _s, ...rest }: PeerIdentity) => rest;
      // In the clear; a stranger's certificate; Byzantine validator 2's own certificate claiming
      // to be 3; validator 3's key holder replaying its own recorded frames.
      const stop = startWorker({
        kind: "replay",
        targets,
        modes: [null, strangerTls, strip(id2), { ...strip(id3), reuseConnection: true }],
        pauseMs: 400,
      });
      return async () => {
        const r = await stop();
        result.attempts += r.attempts;
        result.leaked += r.leaked;
      };
    };

    const { windows } = await underAttack("handshake replay", [0, 1, 2, 3, 4, 5], replayAttack);
    assert.deepEqual(await replaced(), replacedBefore, "no live stream was replaced");
    assert.ok(result.attempts >= 12, `only ${result.attempts} replay attempts`);
    assert.equal(result.leaked, 0, "the attacker received no validator traffic");
    const reasons = ["tls_handshake_failed", "tls_unknown_key", "tls_key_mismatch", "handshake_bad_proof"];
    const counts = await Promise.all(
      reasons.map((reason) => metric(0, "parabft_net_rejected_total", { reason })),
    );
    for (const [k, n] of counts.entries()) assert.ok(n >= 1, `node 0 counted no ${reasons[k]}`);
    console.log(
      `# handshake replay: ${result.attempts} attempts; node 0 rejects ${reasons.map((r, k) => `${r}=${counts[k]}`).join(" ")}`,
    );
    // 3. Honest commits continue: >= 80% of the baseline rate, p99 within 3x (bracketed medians).
    assertHonestService("handshake replay", windows);
  });

  it("unread StreamBlocks calls stay bounded (finding 4)", async () => {
    const result: AttackResult = { attempts: 0, leaked: 0 };
    // Diagnosis only: HOSTILE_FLOOD_SINK=1 aims the same flood at a listener in this process that
    // closes every connection at accept, as a validator in its abuse cool-down does, so the
    // windows show what the attacker's own client costs the box (the refusal checks then fail).
    const sink = process.env.HOSTILE_FLOOD_SINK === "1" ? await closingListener() : null;
    const { windows, openWindows } = await underAttack(
      "unread StreamBlocks flood",
      [0, 1, 2, 3, 4, 5],
      async () => {
        const stop = startWorker({
          kind: "flood",
          api: sink?.address ?? cluster.node(0).api,
          connections: 150,
          streamsPerConnection: 64,
          spacingMs: 30,
        });
        return async () => {
          result.attempts += (await stop()).attempts;
        };
      },
      true,
    );
    sink?.server.close();
    // 150 connections x 64 calls were tried; the count is of calls opened on connections the
    // server accepted (the rest were closed at accept).
    assert.ok(result.attempts >= 64, `only ${result.attempts} unread streams opened`);
    const m = cluster.node(0).metrics;
    const reasons = [
      "max_connections_per_address",
      "connection_rate",
      "max_streams_per_address",
      "max_streams",
      "stream_rate",
      "abusive_connection_closed",
      "slow_consumer",
      "abuse_cooldown",
    ];
    const counts = await Promise.all(
      reasons.map((reason) => metricValue(m, "parabft_api_limited_total", { reason })),
    );
    assert.ok(counts.slice(0, 6).reduce((x, y) => x + y, 0) > 0, "the caps refused part of the flood");
    console.log(
      `# unread StreamBlocks flood: ${result.attempts} streams attempted; node 0 ${reasons.map((r, k) => `${r}=${counts[k]}`).join(" ")}`,
    );
    // Both shapes are recorded before either verdict fails the test.
    let closedErr: unknown = null;
    try {
      assertHonestService("unread StreamBlocks flood", windows);
    } catch (err) {
      closedErr = err;
    }
    if (openWindows !== null)
      assertHonestService(
        `unread StreamBlocks flood at ${OPEN_LOOP_SHARE}x baseline`,
        openWindows,
        "open loop",
      );
    if (closedErr) throw closedErr;
  });
});

/** A listener on 127.0.0.1 that closes every connection at accept (HOSTILE_FLOOD_SINK). */
async function closingListener(): Promise<{ server: net.Server; address: string }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address() as net.AddressInfo;
  return { server, address: `127.0.0.1:${a.port}` };
}
