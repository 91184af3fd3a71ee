// GetEpochSetProof (DPoS light clients, issue 11): the node assembles the proof of the set of
// epoch E from its stable checkpoint certificate of B(E − 2) and the write set it kept for that
// height (ChainDb epochWriteSet bucket). Bad input and unanswerable epochs get typed codes; the
// proof survives a restart (close and reopen of the store); over gRPC, the SDK's
// getEpochSetProof and EpochSetChain.syncTo turn it back into a proven set.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  ApiServer,
  type EpochSetProofRecord,
  readEpochSetProof,
  statusForCode,
} from "../../../src/api/index.js";
import { EpochSetChain, ParabftClient, RpcError } from "../../../src/client/node.js";
import { ZERO_ROOT } from "../../../src/exec/result.js";
import { CheckpointCertificateSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import { ValidatorSetSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { silentLogger } from "../../../src/logger/index.js";
import { ChainDb } from "../../../src/storage/index.js";
import { toHex } from "../../../src/types/bytes.js";
import { ParabftError } from "../../../src/types/errors.js";
import { checkpointSignBytes } from "../../../src/types/signing.js";
import { consensusKey } from "../../property/stakingGen.js";
import { chainWithCandidate } from "../staking/candidateChain.js";
import { removeDir, tempDir } from "../storage/helpers.js";
import { FakeNode } from "./fakeNode.js";

const CHAIN = "proofs";
const EPOCH_LENGTH = 2; // B(0) = 1 elects epoch 2, B(1) = 3 elects epoch 3
const keys = [0, 1, 2, 3, 4].map(consensusKey);
const genesis = create(ValidatorSetSchema, {
  epoch: 0n,
  validators: keys.slice(0, 4).map((k) => ({ publicKey: k.publicKey, power: 1n })),
});

/** Executes heights 1..3 of a staking chain into `db` (a fifth validator outbids the genesis four). */
async function executeChain(db: ChainDb) {
  const ex = chainWithCandidate(keys, EPOCH_LENGTH);
  await db.writeExecutionBatch({ height: 0n, writeSet: [], receipts: [], stateRoot: ZERO_ROOT });
  const roots = [ZERO_ROOT];
  for (let h = 1n; h <= 3n; h++) {
    const r = await ex.executeBlock({ height: h, timestampMs: h, txs: [] });
    await db.writeExecutionBatch(r);
    roots.push(r.stateRoot);
  }
  return roots;
}

/** The genesis set's checkpoint certificate (signers 0..2) of `height` in `epoch`. */
function checkpoint(epoch: bigint, height: bigint, stateRoot: Uint8Array) {
  const chainHash = new Uint8Array(32).fill(Number(height));
  return create(CheckpointCertificateSchema, {
    epoch,
    height,
    chainHash,
    stateRoot,
    signatures: [0, 1, 2].map((i) => ({
      validator: i,
      signature: ed25519.sign(
        checkpointSignBytes(CHAIN, epoch, height, chainHash, stateRoot),
        keys[i]!.secret,
      ),
    })),
  });
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ParabftError, String(err));
    return err.code;
  }
  return "resolved";
};

describe("GetEpochSetProof: assembled from storage", () => {
  let root: string;
  before(async () => {
    root = await tempDir("epochproof");
  });
  after(async () => {
    await removeDir(root);
  });

  it("answers typed codes for bad and unanswerable epochs, and a proof that survives a restart", async () => {
    const dir = path.join(root, "node");
    const keep = (h: bigint) => h % BigInt(EPOCH_LENGTH) === BigInt(EPOCH_LENGTH) - 1n;
    let db = await ChainDb.open(dir, { keepWriteSetOf: keep });
    try {
      // Before anything executed: not final. Genesis epochs and non-DPoS chains: refused.
      assert.equal(await codeOf(readEpochSetProof(db, EPOCH_LENGTH, 2n)), "EPOCH_NOT_FINAL");
      assert.equal(await codeOf(readEpochSetProof(db, EPOCH_LENGTH, 1n)), "INVALID_ARGUMENT");
      assert.equal(await codeOf(readEpochSetProof(db, EPOCH_LENGTH, 0n)), "INVALID_ARGUMENT");
      assert.equal(await codeOf(readEpochSetProof(db, undefined, 2n)), "NO_EPOCHS");
      const roots = await executeChain(db);
      // Executed, but B(0)'s checkpoint is not stable yet.
      assert.equal(await codeOf(readEpochSetProof(db, EPOCH_LENGTH, 2n)), "EPOCH_NOT_FINAL");
      await db.putStableCheckpoint(checkpoint(0n, 1n, roots[1]!));
      await db.putStableCheckpoint(checkpoint(1n, 3n, roots[3]!));
      // Far ahead: not elected yet (a u64-max epoch too, without overflow or crash).
      assert.equal(await codeOf(readEpochSetProof(db, EPOCH_LENGTH, 4n)), "EPOCH_NOT_FINAL");
      assert.equal(await codeOf(readEpochSetProof(db, EPOCH_LENGTH, 2n ** 64n - 1n)), "EPOCH_NOT_FINAL");
    } finally {
      await db.close();
    }
    // Restart: the proofs are read back from disk.
    db = await ChainDb.open(dir, { keepWriteSetOf: keep });
    try {
      const chain = new EpochSetChain(CHAIN, EPOCH_LENGTH, genesis);
      for (const e of [2n, 3n]) {
        const p = await readEpochSetProof(db, EPOCH_LENGTH, e);
        assert.equal(p.epoch, e);
        assert.equal(p.checkpoint.height, (e - 1n) * BigInt(EPOCH_LENGTH) - 1n);
        const v = chain.addProof(p);
        assert.ok(v.ok, v.ok ? "" : v.message);
      }
      assert.equal(toHex(chain.get(2n)!.validators[0]!.publicKey), toHex(keys[4]!.publicKey));
    } finally {
      await db.close();
    }
  });

  it("a node that kept no write set for the boundary says PROOF_UNAVAILABLE, not a crash", async () => {
    const dir = path.join(root, "nokeep");
    const db = await ChainDb.open(dir); // keepWriteSetOf unset: as a node synced past the boundary
    try {
      const roots = await executeChain(db);
      await db.putStableCheckpoint(checkpoint(0n, 1n, roots[1]!));
      assert.equal(await codeOf(readEpochSetProof(db, EPOCH_LENGTH, 2n)), "PROOF_UNAVAILABLE");
      // Stable past the boundary without its certificate: also unavailable here.
      await db.putStableCheckpoint(checkpoint(1n, 3n, roots[3]!));
      assert.equal(
        await codeOf(readEpochSetProof(new NoCheckpointStore(db), EPOCH_LENGTH, 3n)),
        "PROOF_UNAVAILABLE",
      );
    } finally {
      await db.close();
    }
  });
});

/** A store that lost its checkpoint certificates below the stable one. */
class NoCheckpointStore {
  constructor(private readonly db: ChainDb) {}
  getExecutedHeight = () => this.db.getExecutedHeight();
  getStableCheckpoint = () => this.db.getStableCheckpoint();
  getKeptWriteSet = (h: bigint) => this.db.getKeptWriteSet(h);
  getCheckpoint = async (_h: bigint) => undefined;
}

/** FakeNode plus the proofs of one store. */
class ProofNode extends FakeNode {
  constructor(
    private readonly db: ChainDb,
    private readonly tamper?: (p: EpochSetProofRecord) => EpochSetProofRecord,
  ) {
    super();
  }
  async getEpochSetProof(epoch: bigint): Promise<EpochSetProofRecord> {
    const p = await readEpochSetProof(this.db, EPOCH_LENGTH, epoch);
    return this.tamper ? this.tamper(p) : p;
  }
}

describe("GetEpochSetProof over gRPC", () => {
  let root: string;
  let db: ChainDb;
  before(async () => {
    root = await tempDir("epochproof-grpc");
    db = await ChainDb.open(path.join(root, "node"), {
      keepWriteSetOf: (h) => h % BigInt(EPOCH_LENGTH) === BigInt(EPOCH_LENGTH) - 1n,
    });
    const roots = await executeChain(db);
    await db.putStableCheckpoint(checkpoint(0n, 1n, roots[1]!));
    await db.putStableCheckpoint(checkpoint(1n, 3n, roots[3]!));
  });
  after(async () => {
    await db?.close();
    await removeDir(root);
  });

  async function withClient(node: FakeNode, fn: (c: ParabftClient) => Promise<void>) {
    const server = new ApiServer(
      { address: "127.0.0.1:0", reflection: false },
      { backend: node, log: silentLogger() },
    );
    await server.start();
    const client = new ParabftClient(`127.0.0.1:${server.port}`, { deadlineMs: 10_000 });
    try {
      await fn(client);
    } finally {
      client.close();
      await server.stop();
    }
  }

  const rpcStatus = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof RpcError, String(err));
      return { status: err.statusName, message: err.serverMessage };
    }
    return { status: "OK", message: "" };
  };

  it("maps the codes to gRPC statuses; a node without epochs answers NO_EPOCHS", async () => {
    assert.equal(statusForCode("NO_EPOCHS"), grpc.status.FAILED_PRECONDITION);
    assert.equal(statusForCode("EPOCH_NOT_FINAL"), grpc.status.NOT_FOUND);
    assert.equal(statusForCode("PROOF_UNAVAILABLE"), grpc.status.UNAVAILABLE);
    await withClient(new FakeNode(), async (c) => {
      const r = await rpcStatus(c.getEpochSetProof(2n));
      assert.equal(r.status, "FAILED_PRECONDITION");
      assert.match(r.message, /^NO_EPOCHS: /);
      assert.equal((await rpcStatus(c.getEpochSetProof(1n))).status, "INVALID_ARGUMENT");
    });
    await withClient(new ProofNode(db), async (c) => {
      assert.equal((await rpcStatus(c.getEpochSetProof(0n))).status, "INVALID_ARGUMENT");
      const r = await rpcStatus(c.getEpochSetProof(9n));
      assert.equal(r.status, "NOT_FOUND");
      assert.match(r.message, /^EPOCH_NOT_FINAL: /);
    });
  });

  it("the SDK syncs a chain of sets from genesis with the served proofs", async () => {
    await withClient(new ProofNode(db), async (c) => {
      const p = await c.getEpochSetProof(2n);
      assert.ok(p.writeSet.length > 0);
      const chain = new EpochSetChain(CHAIN, EPOCH_LENGTH, genesis);
      const v = await chain.syncTo(3n, (e) => c.getEpochSetProof(e));
      assert.ok(v.ok, v.ok ? "" : v.message);
      assert.equal(chain.latest, 3n);
      assert.equal(toHex(chain.get(3n)!.validators[0]!.publicKey), toHex(keys[4]!.publicKey));
    });
  });

  it("refuses a served proof with one flipped write-set byte or a checkpoint of the wrong height", async () => {
    const flip = (p: EpochSetProofRecord): EpochSetProofRecord => ({
      ...p,
      writeSet: p.writeSet.map((w, i) => {
        if (i !== p.writeSet.length - 1 || w.value === null) return w;
        const value = Uint8Array.from(w.value); // a copy (Buffer#slice is a view)
        value[value.length - 1]! ^= 1;
        return { key: w.key, value };
      }),
    });
    await withClient(new ProofNode(db, flip), async (c) => {
      const chain = new EpochSetChain(CHAIN, EPOCH_LENGTH, genesis);
      const v = await chain.syncTo(2n, (e) => c.getEpochSetProof(e));
      assert.equal(v.ok ? "ok" : v.reason, "ROOT_MISMATCH");
      assert.equal(chain.get(2n), undefined);
    });
    // B(1)'s (genuine, genesis-signed) checkpoint served as the proof of epoch 2.
    const b1 = (await db.getCheckpoint(3n))!;
    const swapped = (p: EpochSetProofRecord): EpochSetProofRecord => ({ ...p, checkpoint: b1 });
    await withClient(new ProofNode(db, swapped), async (c) => {
      const chain = new EpochSetChain(CHAIN, EPOCH_LENGTH, genesis);
      const v = await chain.syncTo(2n, (e) => c.getEpochSetProof(e));
      assert.equal(v.ok ? "ok" : v.reason, "WRONG_HEIGHT");
    });
  });
});
