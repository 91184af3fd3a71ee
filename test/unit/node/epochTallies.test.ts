// The signing tally folded from committed blocks (src/node/dpos.ts EpochTallies, issue 14): it must
// equal the tally read back from storage block by block, and fall back to storage whenever the
// fold did not see every height of the epoch in order.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ValidatorSet } from "../../../src/consensus/valset/index.js";
import { type Block, BlockSchema, CommitCertificateSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { EpochTallies, LiveEpochSets, signingTally } from "../../../src/node/dpos.js";
import { consensusKey } from "../../property/stakingGen.js";

const keys = [0, 1, 2, 3].map((i) => consensusKey(i).publicKey);
const sets = new LiveEpochSets(ValidatorSet.uniform(0n, keys));
const LEN = 10;

function block(epoch: bigint, signers: number[]): Block {
  return create(BlockSchema, {
    lastCommit: create(CommitCertificateSchema, {
      epoch,
      height: 1n,
      signatures: signers.map((validator) => ({ validator, signature: new Uint8Array(64) })),
    }),
  });
}

/** Heights 1..29 (epochs 0, 1, 2): varied signers, a duplicate index, an unknown index, other epochs' certs. */
function chain(): Map<bigint, Block> {
  const m = new Map<bigint, Block>();
  for (let h = 1n; h < 30n; h++) {
    const e = h / BigInt(LEN);
    const i = Number(h);
    if (i % 10 === 0)
      m.set(h, block(e - 1n, [0, 1, 2])); // the previous epoch's last cert
    else if (i % 7 === 0)
      m.set(h, create(BlockSchema, {})); // no last_commit
    else m.set(h, block(e, [i % 4, (i + 1) % 4, (i + 1) % 4, i % 3 === 0 ? 9 : (i + 2) % 4]));
  }
  return m;
}

function dbOf(blocks: Map<bigint, Block>, reads: bigint[]) {
  return {
    getBlock: async (h: bigint) => {
      reads.push(h);
      return { block: blocks.get(h) ?? null };
    },
    getState: async () => undefined,
  };
}

function feed(t: EpochTallies, blocks: Map<bigint, Block>, keep: (h: bigint) => boolean, noBody = -1n) {
  for (const [h, b] of blocks) if (keep(h)) t.add(h, h === noBody ? null : b);
}

function plain(t: { total: number; signed: ReadonlyMap<string, number> } | undefined) {
  return t && { total: t.total, signed: [...t.signed] };
}

describe("node: signing tallies folded from committed blocks", () => {
  it("equals the tally read from storage, without reading a block", async () => {
    const blocks = chain();
    const tallies = new EpochTallies(LEN);
    // As the node runs: blocks commit in order, the executor asks at each epoch's last block.
    for (const [h, b] of blocks) {
      tallies.add(h, b);
      if (h % BigInt(LEN) !== BigInt(LEN - 1)) continue;
      const epoch = h / BigInt(LEN);
      const expected = await signingTally(dbOf(blocks, []), sets, epoch, LEN);
      const reads: bigint[] = [];
      const got = await signingTally(dbOf(blocks, reads), sets, epoch, LEN, tallies);
      assert.deepEqual(plain(got), plain(expected), `epoch ${epoch}`);
      assert.deepEqual(reads, [], `epoch ${epoch}: no storage read`);
      if (epoch === 1n) assert.ok(got!.total > 0 && got!.signed.size === 4, "the fixture counts something");
    }
  });

  it("reads storage when the fold missed a height, started late, saw no body or was taken", async () => {
    const blocks = chain();
    const cases: [string, (t: EpochTallies) => void][] = [
      ["a gap", (t) => feed(t, blocks, (h) => h !== 14n)],
      ["started inside the epoch", (t) => feed(t, blocks, (h) => h >= 12n)],
      ["a block without body", (t) => feed(t, blocks, () => true, 15n)],
      ["out of order", (t) => feed(t, new Map([...blocks].reverse()), () => true)],
    ];
    const expected = await signingTally(dbOf(blocks, []), sets, 1n, LEN);
    for (const [name, run] of cases) {
      const tallies = new EpochTallies(LEN);
      run(tallies);
      const reads: bigint[] = [];
      const got = await signingTally(dbOf(blocks, reads), sets, 1n, LEN, tallies);
      assert.deepEqual(plain(got), plain(expected), name);
      assert.equal(reads.length, LEN, `${name}: the epoch's blocks are read from storage`);
    }
    // Taken once: a second ask reads storage.
    const tallies = new EpochTallies(LEN);
    for (const [h, b] of blocks) tallies.add(h, b);
    await signingTally(dbOf(blocks, []), sets, 1n, LEN, tallies);
    const reads: bigint[] = [];
    assert.deepEqual(plain(await signingTally(dbOf(blocks, reads), sets, 1n, LEN, tallies)), plain(expected));
    assert.equal(reads.length, LEN);
  });

  it("an incomplete epoch is never used, and no set means no judgement", async () => {
    const blocks = chain();
    const tallies = new EpochTallies(LEN);
    for (const [h, b] of blocks) if (h < 15n) tallies.add(h, b);
    const reads: bigint[] = [];
    // Epoch 1 is folded up to 14 only: its tally comes from storage (heights 10..19).
    const got = await signingTally(dbOf(blocks, reads), sets, 1n, LEN, tallies);
    assert.deepEqual(plain(got), plain(await signingTally(dbOf(blocks, []), sets, 1n, LEN)));
    assert.equal(reads.length, LEN);
    assert.equal(await signingTally(dbOf(blocks, []), sets, 9n, LEN, tallies), undefined);
  });
});
