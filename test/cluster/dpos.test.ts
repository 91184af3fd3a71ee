// DPoS with real processes on 127.0.0.1 (issue 11): four genesis validators (self stake 10 000
// each, minimal preset: epochs of 20 blocks, at most 4 validators) and a fifth validator outside
// the genesis set, started as a follower. It registers, receives a delegation and is elected at
// the end of epoch e (the set of e + 2); at that boundary it joins and votes without any restart,
// and the genesis validator with the lowest rank (equal power: highest operator address) is voted
// out and leaves cleanly (keeps running, follows). Client transactions commit across both
// boundaries and the SDK verifies the commit certificates on both sides of each against the
// epoch's own set. Measured (printed, not asserted): handoff time (boundary committed -> first
// commit by the new set) and finality p99 near a boundary vs elsewhere. Then a light client
// holding ONLY the genesis set (from the genesis file) verifies a block of the latest epoch (>= 3)
// with the epoch-set proofs a node serves (GetEpochSetProof), and refuses tampered proofs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  delegateTx,
  EpochSetChain,
  type EpochSetProof,
  type ParabftClient,
  RpcError,
  registerValidatorTx,
  signTx,
  toHex,
  transferTx,
  verifyCommitCertificate,
  voteTx,
} from "../../src/client/node.js";
import { NodeState } from "../../src/gen/parabft/v1/api_pb.js";
import { genesisValidatorSet, loadGenesis } from "../../src/node/genesis.js";
import { LocalCluster, stopAndRemove, tempDir } from "./harness.js";
import { clientsFor, closeAll, percentile, signerOf, until } from "./lib.js";

const EPOCH = 20n;
const GENESIS = 4;
const JOINER = 4;

/** The first of `order` whose node reports VALIDATING (a member of the current set), else `fallback`. */
async function validatingClient(
  clients: ParabftClient[],
  order: number[],
  fallback: ParabftClient,
): Promise<ParabftClient> {
  for (const k of order) {
    const st = await clients[k]!.getStatus().catch(() => null);
    if (st !== null && st.state === NodeState.VALIDATING) return clients[k]!;
  }
  return fallback;
}

describe("DPoS: a validator is elected, joins and another leaves, on a live cluster", {
  timeout: 420_000,
}, () => {
  let cluster: LocalCluster;
  let clients: ParabftClient[];
  let dir: string;
  let ok = false;

  before(async () => {
    dir = await tempDir("parabft-dpos-");
    cluster = await LocalCluster.create(GENESIS, dir, {
      preset: "minimal",
      accounts: 3,
      selfStake: 10_000n,
      joiners: 1,
    });
    for (let i = 0; i < GENESIS; i++) await cluster.startNode(i);
    await Promise.all(Array.from({ length: GENESIS }, (_, i) => cluster.waitHealthy(i, 90_000)));
    await cluster.startNode(JOINER); // a follower until elected: never healthy before that
    clients = clientsFor(cluster);
  });

  after(async () => {
    closeAll(clients ?? []);
    // Kept when the test failed: the nodes' logs say why.
    await stopAndRemove(cluster, !ok);
  });

  it("registers, elects and hands over; txs commit and certificates verify across the boundaries", async () => {
    const chainId = cluster.chainId;
    const joinerNode = cluster.testnet.nodes[JOINER]!;
    const joinerKey = await signerOf(`${joinerNode.home}/keys/validator.json`);
    const delegator = await signerOf(cluster.accounts[0]!.keyFile);
    const payer = await signerOf(cluster.accounts[1]!.keyFile);
    const sink = await signerOf(cluster.accounts[2]!.keyFile);
    const c0 = clients[0]!;

    // 1. The fifth validator registers (its own account, its consensus key, its peer address).
    const reg = await c0.send(
      joinerKey,
      (nonce) =>
        registerValidatorTx(
          { chainId, sender: joinerKey.publicKey, nonce },
          { consensusKey: joinerKey.publicKey, selfStake: 10_000n, peerAddress: joinerNode.peer },
        ),
      { wait: true, waitExecuted: true, timeoutMs: 30_000 },
    );
    assert.equal(reg.receipt?.status, 1, `register: ${reg.receipt?.error}`);
    // 2. A delegator bonds and votes for it: 10 500 beats the genesis validators' 10 000, and no
    // single validator holds a third of the power (n = 4, f = 1 in the new set too).
    const del = await c0.send(
      delegator,
      (nonce) => delegateTx({ chainId, sender: delegator.publicKey, nonce }, 500n),
      {
        wait: true,
        waitExecuted: true,
        timeoutMs: 30_000,
      },
    );
    assert.equal(del.receipt?.status, 1, `delegate: ${del.receipt?.error}`);
    const vote = await c0.send(
      delegator,
      (nonce) =>
        voteTx({ chainId, sender: delegator.publicKey, nonce }, [
          { validator: joinerKey.address, amount: 500n },
        ]),
      { wait: true, waitExecuted: true, timeoutMs: 30_000 },
    );
    assert.equal(vote.receipt?.status, 1, `vote: ${vote.receipt?.error}`);
    const votedAt = vote.height!;
    // Elected at the end of the epoch the vote landed in: member from epoch e + 2.
    const electedEpoch = votedAt / EPOCH + 2n;
    const boundary = electedEpoch * EPOCH - 1n; // B(e + 1): the last height of the old set
    // Drive the chain past the election (the end of the vote's epoch), then read the elected set:
    // the genesis validator that left is the lowest-ranked one (equal power: the highest operator
    // address), or one jailed for downtime in that epoch; either way exactly one leaves.
    const transfer = (cl: ParabftClient) =>
      cl.send(payer, (nonce) => transferTx({ chainId, sender: payer.publicKey, nonce }, sink.address, 1n), {
        wait: true,
        timeoutMs: 60_000,
      });
    const commits: { height: bigint; ms: number }[] = [];
    let top = 0n;
    while (top < boundary - EPOCH + 2n) {
      const t0 = performance.now();
      const r = await transfer(c0);
      commits.push({ height: r.height!, ms: performance.now() - t0 });
      top = r.height!;
    }
    const elected = await until(
      "the elected set",
      async () => c0.getValidators(electedEpoch).catch(() => null),
      30_000,
    );
    const electedKeys = elected.validators.map((v) => toHex(v.publicKey));
    const leavers = [0, 1, 2, 3].filter((i) => !electedKeys.includes(cluster.testnet.nodes[i]!.publicKey));
    assert.equal(leavers.length, 1, `exactly one genesis validator leaves (${leavers})`);
    const leavingIndex = leavers[0]!;
    const leaving = { consensusKey: Buffer.from(cluster.testnet.nodes[leavingIndex]!.publicKey, "hex") };
    // Clients submit to a node that stays in the set.
    const stay = [0, 1, 2, 3].find((i) => i !== leavingIndex)!;
    const cs = clients[stay]!;
    // Later elections (or downtime jailing on a loaded box) may take `stay` out of the set too, and
    // a follower refuses client transactions (NOT_A_VALIDATOR): send each to a validating node.
    const validating = () => validatingClient(clients, [stay, 0, 1, 2, 3, JOINER], cs);

    // 3. Load across both boundaries (the election's and the handoff's), timing every commit.
    const arrival = new Map<bigint, number>();
    const abort = new AbortController();
    const stream = (async () => {
      try {
        for await (const b of cs.streamBlocks(1n, { signal: abort.signal }))
          arrival.set(b.height, performance.now());
      } catch {
        // stopped
      }
    })();
    const target = boundary + 8n;
    while (top < target) {
      const t0 = performance.now();
      const r = await transfer(await validating());
      commits.push({ height: r.height!, ms: performance.now() - t0 });
      top = r.height!;
    }

    // 4. The new set: the joiner is a member of the elected epoch, the leaving validator is not.
    const set = await cs.getValidators(electedEpoch);
    const keys = set.validators.map((v) => toHex(v.publicKey));
    assert.ok(keys.includes(toHex(joinerKey.publicKey)), "the fifth validator is elected");
    assert.ok(
      !keys.includes(toHex(leaving.consensusKey)),
      "the lowest-ranked genesis validator is voted out",
    );
    assert.equal(keys.length, 4);
    const joinerIndex = keys.indexOf(toHex(joinerKey.publicKey));

    // 5. The joiner votes (its signature is in certificates of the new epoch) and is validating.
    // A certificate needs 3 of the 4 signatures: the joiner, just caught up and the slowest on a
    // loaded box, may miss every quorum of the heights so far, so keep committing until one has it.
    let scanned = boundary;
    await until(
      "the joiner's signature in a certificate of the new epoch",
      async () => {
        for (let h = scanned + 1n; h <= top; h++) {
          const b = await cs.getBlock({ height: h });
          if (!b) break; // not written yet: look again next round
          if (b.certificate?.signatures.some((s) => s.validator === joinerIndex)) return true;
          scanned = h;
        }
        const r = await transfer(await validating());
        if (r.height! > top) top = r.height!;
        return false;
      },
      60_000,
    );

    // 6. The SDK verifies certificates on both sides of both boundaries against each epoch's set.
    for (const h of [boundary - EPOCH, boundary - EPOCH + 1n, boundary, boundary + 1n]) {
      const b = (await cs.getBlock({ height: h }))!;
      const epoch = h / EPOCH;
      const vset = await cs.getValidators(epoch);
      const subject = b.block?.header ?? { kind: "null" as const, epoch, height: h };
      const v = verifyCommitCertificate(subject, b.certificate!, vset, chainId);
      assert.ok(v.ok, `height ${h} (epoch ${epoch}): ${v.ok ? "" : v.message}`);
      if (h > boundary) {
        // The old set's view of the new epoch: the same certificate fails against the old set.
        const old = await cs.getValidators(epoch - 1n);
        assert.equal(verifyCommitCertificate(subject, b.certificate!, old, chainId).ok, false);
      }
    }

    // 7. The leaving validator left cleanly: still running, following, not crashed.
    assert.ok(cluster.isRunning(leavingIndex), "the voted-out validator keeps running");
    assert.ok(cluster.isRunning(JOINER), "the joiner was never restarted");
    await until(
      "the voted-out validator follows the new epoch",
      async () => {
        const s = await clients[leavingIndex]!.getStatus();
        return s.epoch >= electedEpoch && s.committedHeight > boundary;
      },
      60_000,
    );
    // A follower refuses client transactions at once (its pool is never gossiped nor proposed
    // from); the same transaction then commits through a validator of the set.
    const toFollower = signTx(
      transferTx(
        { chainId, sender: sink.publicKey, nonce: (await cs.getAccount(sink.address)).nonce },
        payer.address,
        1n,
      ),
      sink,
    );
    await assert.rejects(clients[leavingIndex]!.submitTx(toFollower), /NOT_A_VALIDATOR/);
    assert.ok((await cs.submitAndWait(toFollower, { timeoutMs: 30_000 })).height > boundary);

    // Measurements (not asserted): handoff time and finality near the boundary vs elsewhere.
    abort.abort();
    await stream;
    const gaps = (from: bigint, to: bigint) => {
      const out: number[] = [];
      for (let h = from; h < to; h++) {
        const a = arrival.get(h);
        const b = arrival.get(h + 1n);
        if (a !== undefined && b !== undefined) out.push(b - a);
      }
      return out;
    };
    const handoff = (arrival.get(boundary + 1n) ?? Number.NaN) - (arrival.get(boundary) ?? Number.NaN);
    const normal = gaps(boundary - 15n, boundary - 2n);
    const near = commits
      .filter((c) => c.height >= boundary - 1n && c.height <= boundary + 2n)
      .map((c) => c.ms);
    const far = commits.filter((c) => c.height < boundary - 3n || c.height > boundary + 4n).map((c) => c.ms);
    const figures = {
      boundary: String(boundary),
      handoffMs: Math.round(handoff),
      normalBlockGapMedianMs: Math.round(percentile(normal, 50)),
      finalityP99NearBoundaryMs: Math.round(percentile(near, 99)),
      finalityP99ElsewhereMs: Math.round(percentile(far, 99)),
      commits: commits.length,
    };
    console.log(`DPOS_FIGURES ${JSON.stringify(figures)}`);

    // 8. A light client with only the genesis set verifies a block of the latest epoch (>= 3):
    // the sets of epochs 2 and 3 are proven from B(0)'s and B(1)'s checkpoint certificates and
    // write sets served by a node (GetEpochSetProof), then the block's certificate is checked.
    const lightEpoch = electedEpoch + 1n; // >= 3
    while (top < lightEpoch * EPOCH + 1n) top = (await transfer(await validating())).height!;
    const g = loadGenesis(cluster.testnet.genesisFile);
    const light = () => new EpochSetChain(chainId, Number(EPOCH), genesisValidatorSet(g));
    // A proof lags its boundary by the checkpoint becoming stable: EPOCH_NOT_FINAL is retried. A
    // node that state-synced past a boundary never kept that proof (PROOF_UNAVAILABLE): as a light
    // client would, ask the next node (on a loaded box any of them may have lagged that far).
    const provers = [...new Set([stay, 0, 1, 2, 3, JOINER])];
    let prover = cs;
    const unavailable = new Set<number>();
    const verified = await until(
      `a block of epoch ${lightEpoch} checked from genesis`,
      async () => {
        for (const i of provers) {
          if (unavailable.has(i)) continue;
          const result = await clients[i]!.verifyBlockFromGenesis(light(), top).catch((err: unknown) => {
            if (err instanceof RpcError && err.serverMessage.startsWith("EPOCH_NOT_FINAL")) return null;
            if (err instanceof RpcError && err.serverMessage.startsWith("PROOF_UNAVAILABLE")) {
              unavailable.add(i);
              return null;
            }
            throw err;
          });
          if (result !== null) {
            prover = clients[i]!;
            return result;
          }
        }
        return null;
      },
      60_000,
    );
    assert.ok(
      verified.ok,
      verified.ok ? "" : `${verified.stage}: ${verified.verdict.reason}: ${verified.verdict.message}`,
    );
    const chain = light();
    assert.ok((await prover.verifyBlockFromGenesis(chain, top)).ok);
    assert.ok(verified.epoch >= 3n, `verified epoch ${verified.epoch}`);
    assert.equal(chain.latest, verified.epoch);
    assert.ok(
      chain.get(electedEpoch)!.validators.some((v) => toHex(v.publicKey) === toHex(joinerKey.publicKey)),
      "the proven set of the elected epoch holds the joiner",
    );
    // Measured (printed): a fresh light client's whole check (proof fetches + verification).
    const t0 = performance.now();
    const again = await prover.verifyBlockFromGenesis(light(), top);
    const lightMs = performance.now() - t0;
    assert.ok(again.ok);
    const proofBytes = async (e: bigint) => {
      const p = await prover.getEpochSetProof(e);
      let n = 0;
      for (const w of p.writeSet) n += w.key.length + (w.value?.length ?? 0);
      return {
        epoch: String(e),
        writes: p.writeSet.length,
        writeBytes: n,
        signers: p.checkpoint.signatures.length,
      };
    };
    console.log(
      `DPOS_LIGHT ${JSON.stringify({ height: String(top), epoch: String(verified.epoch), checkMs: Math.round(lightMs), proofs: [await proofBytes(2n), await proofBytes(3n)] })}`,
    );
    // The same block against a chain that stopped at the genesis set: no proven set, refused.
    const stale = light();
    const b = (await cs.getBlock({ height: top }))!;
    assert.equal(stale.verify(b.block!.header!, b.certificate!).ok, false);
    // Tampered proofs are refused: one flipped write-set byte; a checkpoint of the wrong height
    // (B(1)'s genuine certificate, signed by the genesis set, offered as the proof of epoch 2).
    const p2 = await prover.getEpochSetProof(2n);
    const p3 = await prover.getEpochSetProof(3n);
    const flipped: EpochSetProof = {
      ...p2,
      writeSet: p2.writeSet.map((w, i) => {
        if (i !== 0 || w.value === null || w.value.length === 0) return w;
        const value = Uint8Array.from(w.value); // a copy (Buffer#slice is a view)
        value[0]! ^= 1;
        return { key: w.key, value };
      }),
    };
    const refusal = (p: EpochSetProof) => {
      const v = light().addProof(p);
      return v.ok ? "accepted" : v.reason;
    };
    assert.equal(refusal(p2), "accepted");
    assert.equal(refusal(flipped), "ROOT_MISMATCH");
    assert.equal(refusal({ ...p2, checkpoint: p3.checkpoint }), "WRONG_HEIGHT");
    ok = true;
  });
});

// Equivocation: PARABFT_TEST_EQUIVOCATE makes validator 3 double-sign every PREPARE and COMMIT
// (src/node/testFaults.ts). Honest nodes record the conflicting pair and submit it as evidence;
// the chain slashes the offender's stake and tombstones it; at the next election its seat goes to
// a registered candidate (a joiner with less stake); client transactions keep committing all along.
describe("DPoS: an equivocating validator is slashed, tombstoned and voted out", { timeout: 420_000 }, () => {
  const OFFENDER = 3;
  let cluster: LocalCluster;
  let clients: ParabftClient[];
  let dir: string;
  let ok = false;

  before(async () => {
    dir = await tempDir("parabft-dpos-eq-");
    cluster = await LocalCluster.create(GENESIS, dir, {
      preset: "minimal",
      accounts: 2,
      selfStake: 10_000n,
      // Two candidates: the election needs minValidators (4) eligible even if a slow honest
      // validator is jailed for downtime in the same epoch (else the current set is kept).
      joiners: 2,
      env: { PARABFT_TEST_EQUIVOCATE: String(OFFENDER) },
    });
    for (let i = 0; i < GENESIS; i++) await cluster.startNode(i);
    await Promise.all(Array.from({ length: GENESIS }, (_, i) => cluster.waitHealthy(i, 90_000)));
    await cluster.startNode(JOINER);
    await cluster.startNode(JOINER + 1);
    clients = clientsFor(cluster);
  });

  after(async () => {
    closeAll(clients ?? []);
    // Kept when the test failed: the nodes' logs say why.
    await stopAndRemove(cluster, !ok);
  });

  it("commits the evidence, slashes and tombstones, and replaces the offender at the next election", async () => {
    const chainId = cluster.chainId;
    const joinerKeys = [];
    for (const j of [JOINER, JOINER + 1]) {
      const node = cluster.testnet.nodes[j]!;
      const key = await signerOf(`${node.home}/keys/validator.json`);
      joinerKeys.push(key);
      const reg = await clients[0]!.send(
        key,
        (nonce) =>
          registerValidatorTx(
            { chainId, sender: key.publicKey, nonce },
            { consensusKey: key.publicKey, selfStake: 5_000n, peerAddress: node.peer },
          ),
        { wait: true, waitExecuted: true, timeoutMs: 30_000 },
      );
      assert.equal(reg.receipt?.status, 1, `register: ${reg.receipt?.error}`);
    }
    const payer = await signerOf(cluster.accounts[0]!.keyFile);
    const sink = await signerOf(cluster.accounts[1]!.keyFile);
    const offenderKey = cluster.testnet.nodes[OFFENDER]!.publicKey;
    const c0 = clients[0]!;
    const offenderRecord = async () =>
      (await c0.getStakingValidators()).validators.find((v) => toHex(v.consensusKey) === offenderKey)!;
    // Keep committing; the cluster must never stall (each tx is bounded by its own timeout).
    let top = 0n;
    let tombstonedAt: bigint | null = null;
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      // A node outside the current set (the offender, or one jailed for downtime) refuses its
      // clients' transactions (NOT_A_VALIDATOR): submit to a validating one.
      const cl = await validatingClient(clients, [0, 1, 2, JOINER, JOINER + 1], c0);
      const r = await cl.send(
        payer,
        (nonce) => transferTx({ chainId, sender: payer.publicKey, nonce }, sink.address, 1n),
        {
          wait: true,
          timeoutMs: 60_000,
        },
      );
      top = r.height!;
      if (tombstonedAt === null && (await offenderRecord()).status === "tombstoned") tombstonedAt = top;
      // The set elected after the tombstone is in force, and a few blocks of it committed.
      if (tombstonedAt !== null && top >= (tombstonedAt / EPOCH + 2n) * EPOCH + 3n) break;
    }
    assert.ok(tombstonedAt !== null, "the evidence was committed and the offender tombstoned");
    const rec = await offenderRecord();
    assert.ok(BigInt(rec.selfStake) < 10_000n, `slashed: self stake ${rec.selfStake}`);
    const outEpoch = tombstonedAt / EPOCH + 2n;
    assert.ok(top >= outEpoch * EPOCH, "the chain reached the epoch after the next election");
    const set = await c0.getValidators(outEpoch);
    const keys = set.validators.map((v) => toHex(v.publicKey));
    assert.ok(!keys.includes(offenderKey), "the offender's power left the set");
    assert.ok(
      joinerKeys.some((k) => keys.includes(toHex(k.publicKey))),
      "its seat went to a candidate",
    );
    console.log(
      `DPOS_EQUIVOCATION ${JSON.stringify({ tombstonedAt: String(tombstonedAt), outEpoch: String(outEpoch), top: String(top), selfStake: rec.selfStake })}`,
    );
    ok = true;
  });
});
