import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { CheckpointCertificateSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import {
  type Block,
  BlockSchema,
  CommitCertificateSchema,
  ReceiptSchema,
  SignedTxSchema,
  TxStatus,
} from "../../../src/gen/parabft/v1/types_pb.js";
import {
  Bucket,
  ChainDb,
  Db,
  EXEC_LAYOUT,
  SCHEMA_VERSION,
  StorageError,
  type WriteKind,
} from "../../../src/storage/index.js";
import { heightKey } from "../../../src/storage/keys.js";
import {
  blockDigest,
  GENESIS_CHAIN_HASH,
  nextChainHash,
  nullBlockDigest,
  txHash,
} from "../../../src/types/block.js";
import { u64be, utf8Bytes } from "../../../src/types/bytes.js";
import { removeDir, tempDir } from "./helpers.js";

const tx = (tag: string) =>
  create(SignedTxSchema, { body: utf8Bytes(tag), signature: new Uint8Array(64).fill(1) });

function makeBlock(height: bigint, tags: string[]): Block {
  return create(BlockSchema, {
    header: { chainId: "test", height, epoch: 0n, proposer: 1, timestampMs: 1000n + height },
    txs: tags.map(tx),
  });
}

const cert = (height: bigint, digest: Uint8Array) =>
  create(CommitCertificateSchema, {
    epoch: 0n,
    height,
    blockDigest: digest,
    signatures: [{ validator: 0, signature: new Uint8Array(64).fill(Number(height)) }],
  });

/** Commits `blocks` (null = null block) from height 1 on, chaining hashes as the node does. */
async function commitChain(db: ChainDb, blocks: (string[] | null)[]): Promise<Uint8Array[]> {
  let chain = GENESIS_CHAIN_HASH;
  const digests: Uint8Array[] = [];
  for (let i = 0; i < blocks.length; i++) {
    const height = BigInt(i + 1);
    const tags = blocks[i];
    const block = tags ? makeBlock(height, tags) : null;
    const digest = block ? blockDigest(block.header!) : nullBlockDigest("test", 0n, height);
    chain = nextChainHash(chain, digest);
    digests.push(digest);
    await db.writeCommitBatch({
      height,
      digest,
      block,
      certificate: cert(height, digest),
      chainHash: chain,
      blockTimeMs: 1000n + height,
    });
  }
  return digests;
}

describe("ChainDb", () => {
  let root: string;
  before(async () => {
    root = await tempDir("chaindb");
  });
  after(async () => {
    await removeDir(root);
  });

  it("stores a commit batch and reads it back by height, digest and tx hash", async () => {
    const db = await ChainDb.open(path.join(root, "commit"));
    try {
      assert.equal(await db.getCommittedHeight(), 0n);
      assert.equal(await db.getBlock(1n), undefined);
      const digests = await commitChain(db, [["a", "b"], null, ["c"]]);
      assert.equal(await db.getCommittedHeight(), 3n);

      const b1 = await db.getBlock(1n);
      assert.ok(b1?.block);
      assert.deepEqual(b1.digest, digests[0]);
      assert.deepEqual(
        b1.block.txs.map((t) => t.body),
        [utf8Bytes("a"), utf8Bytes("b")],
      );
      assert.equal(b1.blockTimeMs, 1001n);
      assert.deepEqual(b1.chainHash, nextChainHash(GENESIS_CHAIN_HASH, digests[0]!));

      const b2 = await db.getBlock(2n);
      assert.equal(b2?.block, null);
      assert.deepEqual(b2?.digest, nullBlockDigest("test", 0n, 2n));
      assert.equal(await db.getBlockBytes(2n), undefined);

      assert.equal((await db.getBlockByDigest(digests[2]!))?.height, 3n);
      assert.equal(await db.getBlockByDigest(new Uint8Array(32)), undefined);
      assert.deepEqual((await db.getCertificate(3n))?.blockDigest, digests[2]);
      assert.deepEqual(await db.getTxLocation(txHash(tx("b"))), { height: 1n, index: 1 });
      assert.deepEqual(await db.getTxLocation(txHash(tx("c"))), { height: 3n, index: 0 });
      assert.equal(await db.getTxLocation(txHash(tx("zzz"))), undefined);
      for (const [name, height, index] of [
        ["a", 1n, 0],
        ["b", 1n, 1],
        ["c", 3n, 0],
      ] as const) {
        const got = await db.getTx(txHash(tx(name)));
        assert.deepEqual(got?.tx, (await db.getBlock(height))?.block?.txs[index], name);
        assert.deepEqual([got?.height, got?.index], [height, index], name);
      }
      assert.equal(await db.getTx(txHash(tx("zzz"))), undefined);
    } finally {
      await db.close();
    }
  });

  it("stores the received block bytes as given when blockBytes is passed", async () => {
    const db = await ChainDb.open(path.join(root, "bytes"));
    try {
      const block = makeBlock(1n, ["x"]);
      const bytes = toBinary(BlockSchema, block);
      const digest = blockDigest(block.header!);
      await db.writeCommitBatch({
        height: 1n,
        digest,
        block,
        blockBytes: bytes,
        certificate: cert(1n, digest),
        chainHash: nextChainHash(GENESIS_CHAIN_HASH, digest),
        blockTimeMs: 1n,
      });
      assert.deepEqual(await db.getBlockBytes(1n), bytes);
    } finally {
      await db.close();
    }
  });

  it("keeps a tx's first inclusion in the tx index when a later block repeats it", async () => {
    const db = await ChainDb.open(path.join(root, "dup"));
    try {
      await commitChain(db, [
        ["p", "q"],
        ["r", "p", "r"],
      ]);
      assert.deepEqual(await db.getTxLocation(txHash(tx("p"))), { height: 1n, index: 0 });
      assert.deepEqual(await db.getTxLocation(txHash(tx("r"))), { height: 2n, index: 0 });
    } finally {
      await db.close();
    }
  });

  it("answers the receipt of the inclusion that consumed the nonce, not a failed first one", async () => {
    const db = await ChainDb.open(path.join(root, "reinclusion"));
    try {
      // "p" fails BAD_NONCE at height 1, counts at height 2 (index 1), is a DUPLICATE at height 3;
      // "q" is included twice in block 1 and never counts.
      await commitChain(db, [["p", "q", "q"], ["x", "p"], ["p"]]);
      const p = txHash(tx("p"));
      const q = txHash(tx("q"));
      const receipt = (h: Uint8Array, height: bigint, index: number, fields: object = {}) =>
        create(ReceiptSchema, { txHash: h, height, index, ...fields });
      const execute = (height: bigint, receipts: ReturnType<typeof receipt>[]) =>
        db.writeExecutionBatch({ height, writeSet: [], receipts, stateRoot: new Uint8Array(32).fill(7) });
      await execute(1n, [
        receipt(p, 1n, 0, { status: TxStatus.FAILED, error: "BAD_NONCE: expected 4" }),
        receipt(q, 1n, 1, { status: TxStatus.FAILED, error: "BAD_NONCE: expected 0" }),
        receipt(q, 1n, 2, { status: TxStatus.FAILED, error: "BAD_NONCE: expected 0" }),
      ]);
      assert.equal((await db.getReceipt(p))?.height, 1n, "only the failed inclusion is executed yet");
      await execute(2n, [
        receipt(txHash(tx("x")), 2n, 0, { status: TxStatus.OK }),
        receipt(p, 2n, 1, { status: TxStatus.OK }),
      ]);
      await execute(3n, [receipt(p, 3n, 0, { status: TxStatus.DUPLICATE })]);
      assert.deepEqual(await db.getReceipt(p), receipt(p, 2n, 1, { status: TxStatus.OK }));
      assert.deepEqual(await db.getTxLocation(p), { height: 1n, index: 0 }, "the index keeps the first");
      assert.deepEqual(
        await db.getReceipt(q),
        receipt(q, 1n, 1, { status: TxStatus.FAILED, error: "BAD_NONCE: expected 0" }),
        "no inclusion counted: the first one's receipt",
      );
    } finally {
      await db.close();
    }
  });

  it("serves contiguous committed ranges with certificates, honouring the limit", async () => {
    const db = await ChainDb.open(path.join(root, "range"));
    try {
      await commitChain(db, [["a"], null, ["b"], ["c"], ["d"]]);
      const all = await db.getCommittedRange(1n, 10n);
      assert.deepEqual(
        all.map((r) => r.height),
        [1n, 2n, 3n, 4n, 5n],
      );
      assert.equal(all[1]!.block, null);
      for (const r of all) assert.deepEqual(r.certificate.blockDigest, r.digest);
      assert.deepEqual(
        (await db.getCommittedRange(2n, 4n)).map((r) => r.height),
        [2n, 3n, 4n],
      );
      assert.deepEqual(
        (await db.getCommittedRange(2n, 5n, 2)).map((r) => r.height),
        [2n, 3n],
      );
      assert.deepEqual(await db.getCommittedRange(6n, 9n), []);
      assert.deepEqual(await db.getCommittedRange(4n, 3n), []);
    } finally {
      await db.close();
    }
  });

  it("applies an execution batch: writes, deletes, receipts, height and root", async () => {
    const dir = path.join(root, "exec");
    const db = await ChainDb.open(dir, { stateApplyEntries: 1_000_000 });
    const h1 = txHash(tx("one"));
    try {
      await commitChain(db, [["one"], ["one", "two"]]);
      const root1 = new Uint8Array(32).fill(1);
      const event = { $typeName: "parabft.v1.TxEvent" as const, kind: "k", attributes: { a: "1", b: "é" } };
      await db.writeExecutionBatch({
        height: 1n,
        writeSet: [
          { key: utf8Bytes("a"), value: utf8Bytes("1") },
          { key: utf8Bytes("b"), value: utf8Bytes("2") },
        ],
        receipts: [
          create(ReceiptSchema, {
            txHash: h1,
            height: 1n,
            index: 0,
            status: TxStatus.OK,
            gasUsed: 1500n,
            events: [event],
          }),
        ],
        stateRoot: root1,
      });
      assert.equal(await db.getExecutedHeight(), 1n);
      assert.deepEqual(await db.getStateRoot(), root1);
      await db.writeExecutionBatch({
        height: 2n,
        writeSet: [
          { key: utf8Bytes("a"), value: null },
          { key: utf8Bytes("c"), value: utf8Bytes("3") },
        ],
        receipts: [
          create(ReceiptSchema, { txHash: h1, height: 2n, index: 0, status: TxStatus.DUPLICATE }),
          create(ReceiptSchema, { txHash: txHash(tx("two")), height: 2n, index: 1, error: "BAD_NONCE: x" }),
        ],
        stateRoot: new Uint8Array(32).fill(2),
      });
      const expectState = async (d: ChainDb, what: string) => {
        assert.equal(await d.getState(utf8Bytes("a")), undefined, what);
        assert.deepEqual(await d.getState(utf8Bytes("b")), utf8Bytes("2"), what);
        assert.deepEqual(await d.getState(utf8Bytes("c")), utf8Bytes("3"), what);
        const state: [string, string][] = [];
        for await (const [k, v] of d.iterateState())
          state.push([Buffer.from(k).toString(), Buffer.from(v).toString()]);
        assert.deepEqual(
          state,
          [
            ["b", "2"],
            ["c", "3"],
          ],
          what,
        );
        const r = await d.getReceipt(h1);
        assert.deepEqual(
          r,
          create(ReceiptSchema, {
            txHash: h1,
            height: 1n,
            index: 0,
            status: TxStatus.OK,
            gasUsed: 1500n,
            events: [event],
          }),
          `${what}: the first inclusion's receipt`,
        );
        assert.equal((await d.getReceipt(txHash(tx("two"))))?.error, "BAD_NONCE: x");
        assert.equal(await d.getReceipt(txHash(tx("never"))), undefined);
      };
      assert.equal(db.pendingStateEntries, 4);
      await expectState(db, "from the write-set logs");
      await db.close();
      const again = await ChainDb.open(dir, { stateApplyEntries: 1_000_000 });
      try {
        assert.equal(again.pendingStateEntries, 4, "logs survive a restart");
        await expectState(again, "logs reloaded");
        await again.flushState();
        assert.equal(again.pendingStateEntries, 0);
        await expectState(again, "folded into the state bucket");
        let logs = 0;
        for await (const _ of again.db.iteratePrefix(Uint8Array.of(Bucket.execLog))) logs++;
        assert.equal(logs, 0, "folded logs are deleted");
      } finally {
        await again.close();
      }
    } finally {
      if (!db.db.isClosed) await db.close();
    }
  });

  it("folds the logs in the background past the threshold; a half-done fold never changes reads", async () => {
    const dir = path.join(root, "fold");
    const db = await ChainDb.open(dir, { stateApplyEntries: 3 });
    try {
      for (let h = 1n; h <= 4n; h++) {
        await db.writeExecutionBatch({
          height: h,
          writeSet: [
            { key: utf8Bytes("k"), value: utf8Bytes(`v${h}`) },
            { key: utf8Bytes(`only${h}`), value: h === 3n ? null : utf8Bytes("x") },
          ],
          receipts: [],
          stateRoot: new Uint8Array(32).fill(Number(h)),
        });
      }
      await db.flushState();
      assert.deepEqual(await db.getState(utf8Bytes("k")), utf8Bytes("v4"));
      // A crash between a fold's state chunks and its final batch: state written, logs kept.
      await db.db.put(Uint8Array.of(Bucket.state, ...utf8Bytes("k")), utf8Bytes("stale"));
      await db.writeExecutionBatch({
        height: 5n,
        writeSet: [{ key: utf8Bytes("k"), value: utf8Bytes("v5") }],
        receipts: [],
        stateRoot: new Uint8Array(32).fill(5),
      });
      assert.deepEqual(await db.getState(utf8Bytes("k")), utf8Bytes("v5"), "a log masks the bucket");
      const keys: string[] = [];
      for await (const [k] of db.iterateState()) keys.push(Buffer.from(k).toString());
      assert.deepEqual(keys, ["k", "only1", "only2", "only4"]);
    } finally {
      await db.close();
    }
  });

  it("answers a key the state bucket lacks from memory until a log, a fold or genesis writes it", async () => {
    const dir = path.join(root, "misses");
    const db = await ChainDb.open(dir, { stateApplyEntries: 1_000_000 });
    let reads = 0;
    const get = db.db.get.bind(db.db);
    db.db.get = (key) => {
      if (key[0] === Bucket.state) reads++;
      return get(key);
    };
    try {
      const absent = utf8Bytes("acct:nobody");
      assert.equal(await db.getState(absent), undefined);
      assert.equal(await db.getState(absent), undefined);
      assert.equal(await db.getState(absent), undefined);
      assert.equal(reads, 1, "one RocksDB read for three reads of an absent key");
      // Execution creates it: the pending log answers (it masks the remembered miss).
      await db.writeExecutionBatch({
        height: 1n,
        writeSet: [{ key: absent, value: utf8Bytes("1") }],
        receipts: [],
        stateRoot: new Uint8Array(32).fill(1),
      });
      assert.deepEqual(await db.getState(absent), utf8Bytes("1"));
      // Folded into the bucket (the log goes): read from the bucket again.
      await db.flushState();
      assert.equal(db.pendingStateEntries, 0);
      assert.deepEqual(await db.getState(absent), utf8Bytes("1"));
      // Genesis-style writes straight to the bucket forget remembered misses too.
      const later = utf8Bytes("acct:later");
      assert.equal(await db.getState(later), undefined);
      await db.writeGenesisState([{ key: later, value: utf8Bytes("2") }]);
      assert.deepEqual(await db.getState(later), utf8Bytes("2"));
    } finally {
      await db.close();
    }
  });

  it("reads one transaction of a stored block, and names a block body the tx index does not match", async () => {
    const dir = path.join(root, "gettx-corrupt");
    const db = await ChainDb.open(dir);
    await commitChain(db, [["a", "b", "c"]]);
    assert.deepEqual((await db.getTx(txHash(tx("c"))))?.tx.body, utf8Bytes("c"));
    await db.close();
    // The body of height 1 replaced by a one-transaction block: the index still says "c" is third.
    const raw = await Db.open(dir);
    await raw.put(heightKey(Bucket.block, 1n), toBinary(BlockSchema, makeBlock(1n, ["a"])));
    await raw.close();
    const again = await ChainDb.open(dir);
    try {
      assert.deepEqual((await again.getTx(txHash(tx("a"))))?.tx.body, utf8Bytes("a"));
      await assert.rejects(again.getTx(txHash(tx("c"))), (e: unknown) => {
        assert.ok(e instanceof StorageError);
        assert.equal(e.code, "CORRUPT_RECORD");
        assert.match(e.message, /block 1 has no transaction 2/);
        return true;
      });
    } finally {
      await again.close();
    }
  });

  it("refuses a database with layout-1 execution state, naming the command that rebuilds it", async () => {
    const dir = path.join(root, "layout1");
    // Layout-1 execution state under the current schema (a schema-1 database is refused earlier,
    // as SCHEMA_TOO_OLD: see the version-1 test below): a state root, no execution-layout marker.
    const raw = await Db.open(dir);
    await raw.put(Uint8Array.of(Bucket.meta, ...utf8Bytes("schemaVersion")), u64be(SCHEMA_VERSION));
    await raw.put(Uint8Array.of(Bucket.meta, ...utf8Bytes("stateRoot")), new Uint8Array(32));
    await raw.put(Uint8Array.of(Bucket.meta, ...utf8Bytes("executedHeight")), u64be(7n));
    await raw.put(Uint8Array.of(Bucket.receipt, 1, 2), utf8Bytes("old receipt"));
    await raw.close();
    await assert.rejects(ChainDb.open(dir), (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.code, "EXEC_LAYOUT_OLD");
      assert.match(e.message, /layout 1/);
      assert.match(e.message, /parabft start --home/);
      assert.ok(e.message.includes(dir), "names the directory to delete");
      return true;
    });
    // Refused without touching it, and the handle was released: a raw open still works.
    const again = await Db.open(dir);
    try {
      assert.equal(await again.get(Uint8Array.of(Bucket.meta, ...utf8Bytes("execLayout"))), undefined);
    } finally {
      await again.close();
    }
  });

  it("refuses a database written with execution layout 2 (the separate recent-record key) and never reads it", async () => {
    const dir = path.join(root, "layout2");
    // What a layout-2 build left: its marker, a state root, an executed height and state with a
    // 24-byte account beside its recent-transactions record under key 0x07 ‖ address.
    const db = await ChainDb.open(dir);
    const address = new Uint8Array(20).fill(9);
    await db.writeGenesisState([{ key: Uint8Array.of(0x01, ...address), value: new Uint8Array(24).fill(1) }]);
    await db.writeExecutionBatch({
      height: 1n,
      writeSet: [
        { key: Uint8Array.of(0x01, ...address), value: new Uint8Array(24).fill(2) },
        { key: Uint8Array.of(0x07, ...address), value: new Uint8Array(40).fill(3) },
      ],
      receipts: [],
      stateRoot: new Uint8Array(32).fill(5),
    });
    await db.close();
    const marker = Uint8Array.of(Bucket.meta, ...utf8Bytes("execLayout"));
    const raw = await Db.open(dir);
    await raw.put(marker, u64be(2));
    await raw.close();
    assert.equal(EXEC_LAYOUT, 3);
    await assert.rejects(ChainDb.open(dir), (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.code, "EXEC_LAYOUT_OLD");
      assert.deepEqual([e.detail.found, e.detail.supported], [2, EXEC_LAYOUT]);
      assert.match(e.message, /layout 2 \(the recent-transactions record under a key of its own\)/);
      assert.match(e.message, /parabft start --home/);
      assert.ok(e.message.includes(dir), "names the directory to delete");
      return true;
    });
    // Refused without touching it (marker and state root as the layout-2 build left them), and
    // the handle was released: a raw open still works.
    const again = await Db.open(dir);
    try {
      assert.deepEqual(await again.get(marker), u64be(2));
      assert.deepEqual(
        await again.get(Uint8Array.of(Bucket.meta, ...utf8Bytes("stateRoot"))),
        new Uint8Array(32).fill(5),
      );
      // A layout newer than this build's is refused as too new, not as old.
      await again.put(marker, u64be(EXEC_LAYOUT + 1));
    } finally {
      await again.close();
    }
    await assert.rejects(ChainDb.open(dir), (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.code, "SCHEMA_TOO_NEW");
      assert.equal(e.detail.found, EXEC_LAYOUT + 1);
      return true;
    });
  });

  it("keeps everything across close and reopen", async () => {
    const dir = path.join(root, "reopen");
    const db = await ChainDb.open(dir);
    const digests = await commitChain(db, [["k"], ["l"]]);
    await db.writeExecutionBatch({
      height: 2n,
      writeSet: [{ key: utf8Bytes("s"), value: utf8Bytes("v") }],
      receipts: [],
      stateRoot: new Uint8Array(32).fill(7),
    });
    await db.close();
    const again = await ChainDb.open(dir);
    try {
      assert.equal(await again.getCommittedHeight(), 2n);
      assert.equal(await again.getExecutedHeight(), 2n);
      assert.deepEqual((await again.getBlock(2n))?.digest, digests[1]);
      assert.deepEqual(await again.getState(utf8Bytes("s")), utf8Bytes("v"));
      assert.equal(await again.getSchemaVersion(), SCHEMA_VERSION);
    } finally {
      await again.close();
    }
  });

  it("refuses a version-1 database (view-less commit certificates), naming the reset command", async () => {
    const dir = path.join(root, "schema-old");
    const raw = await Db.open(dir);
    await raw.put(Uint8Array.of(Bucket.meta, ...utf8Bytes("schemaVersion")), u64be(1));
    await raw.close();
    await assert.rejects(ChainDb.open(dir), (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.code, "SCHEMA_TOO_OLD");
      assert.match(e.message, /parabft testnet --validators N --out DIR/);
      return true;
    });
  });

  it("refuses a database written by a newer schema, naming both versions, and releases it", async () => {
    const dir = path.join(root, "schema");
    const raw = await Db.open(dir);
    await raw.put(Uint8Array.of(Bucket.meta, ...utf8Bytes("schemaVersion")), u64be(SCHEMA_VERSION + 1));
    await raw.close();
    await assert.rejects(ChainDb.open(dir), (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.code, "SCHEMA_TOO_NEW");
      assert.deepEqual([e.detail.found, e.detail.supported], [SCHEMA_VERSION + 1, SCHEMA_VERSION]);
      assert.match(e.message, new RegExp(`${SCHEMA_VERSION + 1}.*${SCHEMA_VERSION}`));
      return true;
    });
    // The refused open must not hold the RocksDB lock.
    const reopened = await Db.open(dir);
    await reopened.close();
  });

  it("stores stable checkpoints (highest wins) and evidence (deduplicated)", async () => {
    const db = await ChainDb.open(path.join(root, "ckpt"));
    try {
      assert.equal(await db.getStableCheckpoint(), undefined);
      const ck = (height: bigint) =>
        create(CheckpointCertificateSchema, {
          epoch: 0n,
          height,
          chainHash: new Uint8Array(32).fill(Number(height)),
          stateRoot: new Uint8Array(32).fill(9),
        });
      await db.putStableCheckpoint(ck(10n));
      await db.putStableCheckpoint(ck(5n));
      assert.equal((await db.getStableCheckpoint())?.height, 10n);
      assert.equal((await db.getCheckpoint(5n))?.height, 5n);

      const ev = {
        sender: 2,
        epoch: 0n,
        phase: "commit",
        view: 1n,
        height: 7n,
        first: Uint8Array.of(1),
        second: Uint8Array.of(2),
      };
      await db.putEvidence(ev);
      await db.putEvidence(ev);
      await db.putEvidence({ ...ev, height: 3n, second: Uint8Array.of(3) });
      const all = await db.listEvidence();
      assert.deepEqual(
        all.map((e) => e.height),
        [3n, 7n],
      );
      assert.deepEqual(all[1], ev);
      assert.deepEqual(
        (await db.listEvidence(4n)).map((e) => e.height),
        [7n],
      );
    } finally {
      await db.close();
    }
  });

  it("commits heights in order: replay of the same block is a no-op, gaps and conflicts are refused", async () => {
    const db = await ChainDb.open(path.join(root, "order"));
    try {
      const block = (h: bigint, tag: string) => makeBlock(h, [tag]);
      const input = (h: bigint, tag: string) => {
        const b = block(h, tag);
        const digest = blockDigest(b.header!);
        return {
          height: h,
          digest,
          block: b,
          certificate: cert(h, digest),
          chainHash: digest,
          blockTimeMs: h,
        };
      };
      // Issued without awaiting: they are applied in call order.
      await Promise.all([db.writeCommitBatch(input(1n, "a")), db.writeCommitBatch(input(2n, "b"))]);
      assert.equal(await db.getCommittedHeight(), 2n);
      await db.writeCommitBatch(input(1n, "a"));
      assert.equal(await db.getCommittedHeight(), 2n);
      const code = (c: string) => (e: unknown) => e instanceof StorageError && e.code === c;
      await assert.rejects(db.writeCommitBatch(input(4n, "d")), code("COMMIT_GAP"));
      await assert.rejects(
        db.writeCommitBatch({ ...input(2n, "b"), digest: new Uint8Array(32).fill(9) }),
        code("CONFLICTING_COMMIT"),
      );
      await db.writeCommitBatch(input(3n, "c"));
      assert.equal(await db.getCommittedHeight(), 3n);

      const exec = (height: bigint) => ({
        height,
        writeSet: [],
        receipts: [],
        stateRoot: new Uint8Array(32),
      });
      await db.writeExecutionBatch(exec(0n)); // genesis
      await db.writeExecutionBatch(exec(2n));
      await db.writeExecutionBatch(exec(2n)); // deterministic redo of the last height
      await assert.rejects(db.writeExecutionBatch(exec(1n)), code("EXEC_REWIND"));
      assert.equal(await db.getExecutedHeight(), 2n);
    } finally {
      await db.close();
    }
  });

  it("reports each batch's write latency to the onWrite hook", async () => {
    const seen: WriteKind[] = [];
    const db = await ChainDb.open(path.join(root, "hook"), {
      onWrite: (kind, ms, ops) => {
        assert.ok(ms >= 0 && ops > 0);
        seen.push(kind);
      },
    });
    try {
      await commitChain(db, [["h"]]);
      await db.writeExecutionBatch({ height: 1n, writeSet: [], receipts: [], stateRoot: new Uint8Array(32) });
      assert.deepEqual(seen, ["commit", "execution"]);
    } finally {
      await db.close();
    }
  });
});
