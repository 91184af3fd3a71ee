// The validator's test-only faults (src/node/testFaults.ts): the PARABFT_TEST_* variables parse
// into typed errors when bad, the faults file turns them on and off on a running node, and the
// Equivocator's conflicting envelopes pass an honest receiver's envelope check and make
// slashable evidence (src/staking checkEvidence).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { ed25519 } from "@noble/curves/ed25519.js";
import { checkEnvelope, sealMessage } from "../../../src/consensus/envelope.js";
import { StaticEpochSets, ValidatorSet } from "../../../src/consensus/valset/index.js";
import { NodeSigner, NodeVerifier } from "../../../src/crypto/index.js";
import {
  EnvelopeSchema,
  type PeerMessage,
  PeerMessageSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import { BlockSchema, SubmitEvidenceSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { Equivocator, type FaultValues, TestFaults } from "../../../src/node/testFaults.js";
import { checkEvidence, ed25519Check } from "../../../src/staking/evidence.js";
import { blockDigest, txsRoot } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";
import { sha256 } from "../../../src/types/hash.js";
import { commitSignBytes, prepareSignBytes } from "../../../src/types/signing.js";

const CHAIN = "faults-test";
const log = silentLogger();

describe("TestFaults (PARABFT_TEST_*)", () => {
  it("is off without its variables and refuses bad values with CONFIG_INVALID", () => {
    assert.equal(TestFaults.fromEnv(0, "/h", log, {}), null);
    for (const env of [
      { PARABFT_TEST_PEER_DELAY_MS: "abc" },
      { PARABFT_TEST_PEER_DELAY_MS: "-5" },
      { PARABFT_TEST_PEER_DELAY_MS: "10:x" },
      { PARABFT_TEST_CLOCK_OFFSET_MS: "1.5" },
      { PARABFT_TEST_EQUIVOCATE: "1,x" },
    ]) {
      assert.throws(
        () => TestFaults.fromEnv(0, "/h", log, env),
        (e: { code?: string }) => e.code === "CONFIG_INVALID",
        JSON.stringify(env),
      );
    }
    const f = TestFaults.fromEnv(2, "/h", log, {
      PARABFT_TEST_PEER_DELAY_MS: "40:20",
      PARABFT_TEST_CLOCK_OFFSET_MS: "-3000",
      PARABFT_TEST_EQUIVOCATE: "1,2",
    })!;
    assert.deepEqual(f.current, {
      peerDelayMs: 40,
      peerJitterMs: 20,
      clockOffsetMs: -3000,
      equivocate: true,
    });
    assert.ok(Math.abs(f.now() + 3000 - Date.now()) < 1000);
    assert.equal(
      TestFaults.fromEnv(3, "/h", log, { PARABFT_TEST_EQUIVOCATE: "1,2" })!.current.equivocate,
      false,
    );
    assert.equal(
      TestFaults.fromEnv(3, "/h", log, { PARABFT_TEST_EQUIVOCATE: "*" })!.current.equivocate,
      true,
    );
  });

  it("a faults file (relative to the home) turns faults on and off on a running node", async () => {
    const home = await mkdtemp(path.join(tmpdir(), "parabft-faults-"));
    const f = TestFaults.fromEnv(0, home, log, {
      PARABFT_TEST_FAULTS_FILE: "faults.json",
      PARABFT_TEST_PEER_DELAY_MS: "5",
    })!;
    const seen: FaultValues[] = [];
    const waitSeen = async (n: number) => {
      const deadline = Date.now() + 20_000;
      while (seen.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(seen.length, n);
    };
    try {
      await f.start((v) => seen.push({ ...v }));
      assert.deepEqual(seen, [{ peerDelayMs: 5, peerJitterMs: 0, clockOffsetMs: 0, equivocate: false }]);
      await writeFile(path.join(home, "faults.json"), '{"clockOffsetMs": 15000, "equivocate": true}');
      await waitSeen(2);
      assert.deepEqual(seen[1], { peerDelayMs: 5, peerJitterMs: 0, clockOffsetMs: 15000, equivocate: true });
      assert.ok(f.now() - Date.now() > 14_000);
      await writeFile(path.join(home, "faults.json"), "not json");
      await writeFile(path.join(home, "faults.json"), "{}");
      await waitSeen(3);
      assert.deepEqual(seen[2], { peerDelayMs: 5, peerJitterMs: 0, clockOffsetMs: 0, equivocate: false });
    } finally {
      f.stop();
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe("Equivocator (PARABFT_TEST_EQUIVOCATE)", () => {
  const secrets = [0, 1, 2, 3].map(() => ed25519.utils.randomSecretKey());
  const signers = secrets.map((s) => new NodeSigner(s));
  const set = ValidatorSet.uniform(
    0n,
    signers.map((s) => s.publicKey),
  );
  const ctx = {
    chainId: CHAIN,
    sets: new StaticEpochSets([set]),
    verifier: new NodeVerifier(),
    maxMessageBytes: 1 << 20,
    currentEpoch: 0n,
  };
  const seal = (m: PeerMessage) => sealMessage(CHAIN, 0n, 0, signers[0]!, m).bytes;
  const decode = (bytes: Uint8Array) => {
    const check = checkEnvelope(bytes, ctx);
    assert.equal(
      check.verdict.kind,
      "accept",
      `an honest receiver accepts the envelope: ${JSON.stringify(check.verdict)}`,
    );
    return fromBinary(PeerMessageSchema, fromBinary(EnvelopeSchema, bytes).payload);
  };
  const fake = () => {
    const sent: { to: number | "all"; bytes: Uint8Array }[] = [];
    return {
      sent,
      net: {
        send: (to: number, bytes: Uint8Array) => sent.push({ to, bytes }) > 0,
        broadcast: (bytes: Uint8Array) => {
          sent.push({ to: "all", bytes });
          return 3;
        },
        penalize: () => {},
      },
    };
  };
  const digestOf = (m: PeerMessage) =>
    m.kind.case === "prePrepare" || m.kind.case === "prepare" || m.kind.case === "commit"
      ? toHex(m.kind.value.blockDigest)
      : "";

  it("passes everything through while inactive", () => {
    const { sent, net } = fake();
    const e = new Equivocator(net, {
      chainId: CHAIN,
      self: 0,
      n: 4,
      signer: signers[0]!,
      active: () => false,
    });
    const bytes = seal(
      create(PeerMessageSchema, {
        kind: { case: "prepare", value: { view: 0n, height: 1n, blockDigest: new Uint8Array(32) } },
      }),
    );
    e.broadcast(bytes);
    assert.deepEqual(sent, [{ to: "all", bytes }]);
  });

  it("sends conflicting PRE-PREPAREs (half each first) and a second signed vote that is slashable evidence", () => {
    const { sent, net } = fake();
    const e = new Equivocator(net, {
      chainId: CHAIN,
      self: 0,
      n: 4,
      signer: signers[0]!,
      active: () => true,
    });
    const block = create(BlockSchema, {
      header: {
        chainId: CHAIN,
        height: 5n,
        proposer: 0,
        timestampMs: 1_000n,
        validatorsHash: set.hash,
        txsRoot: txsRoot([]),
      },
    });
    const real = blockDigest(block.header!);
    const pp = seal(
      create(PeerMessageSchema, {
        kind: { case: "prePrepare", value: { view: 4n, height: 5n, blockDigest: real, block } },
      }),
    );
    e.broadcast(pp);
    assert.deepEqual(
      sent.map((s) => s.to),
      [1, 1, 2, 2, 3, 3],
    );
    const msgs = sent.map((s) => decode(s.bytes));
    const first = msgs.filter((_, k) => k % 2 === 0).map(digestOf);
    const second = msgs.filter((_, k) => k % 2 === 1).map(digestOf);
    const alt = msgs.map(digestOf).find((d) => d !== toHex(real))!;
    assert.deepEqual(first, [toHex(real), toHex(real), alt]);
    assert.deepEqual(second, [alt, alt, toHex(real)]);
    // The other block is well formed: its digest is its header's, its transactions are the same.
    const other = msgs.find((m) => digestOf(m) === alt)!;
    assert.equal(other.kind.case, "prePrepare");
    if (other.kind.case === "prePrepare") {
      assert.equal(toHex(blockDigest(other.kind.value.block!.header!)), alt);
      assert.equal(other.kind.value.block!.header!.timestampMs, 1_001n);
    }

    // Votes: the real one, then one for the other block at that height (or SHA-256 of the real
    // digest elsewhere); each pair proves a double sign.
    for (const [phase, height, expected] of [
      ["prepare", 5n, alt],
      ["commit", 9n, toHex(sha256(new Uint8Array(32).fill(9)))],
    ] as const) {
      sent.length = 0;
      const d = height === 5n ? real : new Uint8Array(32).fill(9);
      const signBytes = phase === "prepare" ? prepareSignBytes : commitSignBytes;
      const value = {
        view: 4n,
        height,
        blockDigest: d,
        voteSignature: signers[0]!.sign(signBytes(CHAIN, 0n, 4n, height, d)),
      };
      const vote = seal(
        create(
          PeerMessageSchema,
          phase === "prepare" ? { kind: { case: "prepare", value } } : { kind: { case: "commit", value } },
        ),
      );
      e.broadcast(vote);
      assert.deepEqual(
        sent.map((s) => s.to),
        ["all", "all"],
      );
      assert.deepEqual(sent[0]!.bytes, vote);
      const [a, b] = sent.map((s) => decode(s.bytes));
      assert.equal(b!.kind.case, phase);
      assert.equal(digestOf(b!), expected);
      const sig = (m: PeerMessage) =>
        m.kind.case === "prepare" || m.kind.case === "commit" ? m.kind.value.voteSignature : new Uint8Array();
      const ev = create(SubmitEvidenceSchema, {
        consensusKey: signers[0]!.publicKey,
        phase,
        epoch: 0n,
        view: 4n,
        height,
        digestA: d,
        signatureA: sig(a!),
        digestB: Buffer.from(expected, "hex"),
        signatureB: sig(b!),
      });
      assert.doesNotThrow(() => checkEvidence(CHAIN, ev, ed25519Check));
    }
    assert.deepEqual(e.stats, { prePrepares: 1, votes: 2 });
  });
});
