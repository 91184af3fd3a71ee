// DPoS restarts with real processes on 127.0.0.1 (issue 11 follow-up): four genesis validators
// with self stake (the epoch core is on; minimal preset: epochs of 20 blocks). One validator is
// killed with SIGKILL mid-epoch and restarted while the others commit across at least two epoch
// boundaries; then another one is killed and its data directory wiped. Each time the restarted
// validator must reconnect, catch up across the boundaries it missed (sets it learns only by
// executing up to them) and commit again with the others in their current epoch.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ParabftClient } from "../../src/client/node.js";
import { LocalCluster, stopAndRemove, tempDir } from "./harness.js";
import { clientsFor, closeAll, signerOf, TransferLoad, until } from "./lib.js";

const EPOCH = 20n;
const N = 4;

describe("DPoS: a validator restarted epochs later catches up and votes again", { timeout: 300_000 }, () => {
  let cluster: LocalCluster;
  let clients: ParabftClient[];
  let load: TransferLoad;

  const status = async (i: number) => clients[i]!.getStatus().catch(() => null);
  const height = async (i: number) => (await status(i))?.committedHeight ?? 0n;
  const maxOthers = async (victim: number) => {
    let m = 0n;
    for (let i = 0; i < N; i++) if (i !== victim) m = (await height(i)) > m ? await height(i) : m;
    return m;
  };

  /** Kill `victim`, let the others pass two boundaries, restart it, and wait for it to catch up. */
  const restartAcrossBoundaries = async (victim: number, wipe: boolean) => {
    const killedAt = await height(victim);
    load.avoid(victim);
    await cluster.kill(victim);
    try {
      if (wipe) await cluster.wipeData(victim);
      const target = (killedAt / EPOCH + 3n) * EPOCH + 5n; // mid-epoch, two or more boundaries later
      await until(
        `the others past height ${target}`,
        async () => (await maxOthers(victim)) >= target,
        90_000,
      );
    } finally {
      await cluster.restart(victim);
    }
    const goal = await maxOthers(victim);
    await until(
      `node ${victim} to catch up to ${goal} (from ${killedAt})`,
      async () => (await height(victim)) >= goal,
      90_000,
    );
    // It takes part again: the chain keeps committing with it and it stays in step.
    const next = (await maxOthers(victim)) + EPOCH;
    await until(
      `node ${victim} at ${next} with the others`,
      async () => (await height(victim)) >= next,
      90_000,
    );
    load.allow(victim);
    const s = await status(victim);
    assert.ok(s !== null);
    // In the epoch of its stored height or the next one: the status reports the core's epoch but
    // the height of the last block written, which trails the core's commits by a few heights (a
    // client is answered at certificate time), so right after a boundary the epoch is one ahead.
    const stored = s.committedHeight / EPOCH;
    assert.ok(
      s.epoch === stored || s.epoch === stored + 1n,
      `node ${victim} in epoch ${s.epoch} at stored height ${s.committedHeight}`,
    );
    return { killedAt, goal };
  };

  before(async () => {
    cluster = await LocalCluster.create(N, await tempDir("parabft-dpos-restart-"), {
      preset: "minimal",
      accounts: 3,
      selfStake: 10_000n,
    });
    await cluster.start();
    clients = clientsFor(cluster);
    // Blocks are cut when there is work: a steady transfer load keeps the chain moving.
    const senders = await Promise.all(cluster.accounts.slice(0, 2).map((a) => signerOf(a.keyFile)));
    const recipient = await signerOf(cluster.accounts[2]!.keyFile);
    load = new TransferLoad(cluster, clients, senders, recipient.address);
    load.start();
    await until("height 25", async () => (await height(0)) >= 25n, 90_000);
  });

  after(async () => {
    await load?.stop();
    closeAll(clients ?? []);
    await stopAndRemove(cluster);
  });

  it("SIGKILL mid-epoch, restart two boundaries later: reconnects, catches up, commits on", async () => {
    const r = await restartAcrossBoundaries(1, false);
    console.log(`# dpos-restart: node 1 killed at ${r.killedAt}, caught up to ${r.goal}`);
  });

  it("a wiped validator rebuilds across the boundaries from its peers", async () => {
    const r = await restartAcrossBoundaries(2, true);
    console.log(`# dpos-restart: node 2 wiped at ${r.killedAt}, rebuilt to ${r.goal}`);
  });
});
