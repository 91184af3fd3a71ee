// A backup's per-transaction block path, two built trees alternated in one process (issue 14, s16):
// BASE_TREE as main 341c8c5 ran it (checkBlockTxs decodes each TxBody, hashes it and asks the
// verify pool, whose verdict cache answers; the node then hashes and hex-encodes each tx again when
// noting the block, at delivery, in the commit stage and at removal from the pool) against
// NEW_TREE (blockTxIds once per block; the pool vouches for what it holds verified). One block of
// 114 transfers (the txs/height at open 400 tx/s) whose txs the pool and verdict cache hold, as
// after gossip. Prints the median µs per block transaction of 16 alternated rounds.
//   node bench/blockPathPairs.mjs BASE_TREE NEW_TREE   (both built: dist/ present)
import { create } from "@bufbuild/protobuf";

const [baseTree, newTree] = process.argv.slice(2);
if (!baseTree || !newTree) throw new Error("usage: node bench/blockPathPairs.mjs BASE_TREE NEW_TREE");
const src = (tree) => `${tree}/dist/src/`;
const NEW = src(newTree);

const { transferTx } = await import(`${NEW}client/txBuilder.js`);
const { signTx } = await import(`${NEW}client/signer.js`);
const { generateKeyPair } = await import(`${NEW}crypto/keys.js`);
const { NodeSigner } = await import(`${NEW}crypto/node.js`);
const { BlockSchema } = await import(`${NEW}gen/parabft/v1/types_pb.js`);

const TXS_PER_BLOCK = 114;
const senders = Array.from({ length: 64 }, () => {
  const kp = generateKeyPair();
  return { kp, signer: new NodeSigner(kp.secretKey) };
});
const TXS = Array.from({ length: TXS_PER_BLOCK }, (_, i) => {
  const s = senders[i % senders.length];
  const body = transferTx(
    { chainId: "bench", sender: s.kp.publicKey, nonce: BigInt(i) },
    new Uint8Array(20).fill(i + 1),
    5n,
  );
  return signTx(body, s.signer).tx;
});

/** One block's path through a tree's code; returns a function running it once. */
async function pathOf(tree) {
  const dir = src(tree);
  const { checkBlockTxs } = await import(`${dir}node/checkBlock.js`);
  const { VerifyPool, nativeTxHash } = await import(`${dir}crypto/index.js`);
  const { toHex } = await import(`${dir}types/bytes.js`);
  const pool = new VerifyPool({ size: 0 });
  await pool.start();
  await pool.verifyTxs(
    TXS,
    TXS.map((t) => nativeTxHash(t)),
  ); // the verdict cache after admission
  const pooled = new Map(TXS.map((t) => [toHex(nativeTxHash(t)), t]));
  let blockTxIds = null;
  try {
    ({ blockTxIds } = await import(`${dir}node/blockTxIds.js`));
  } catch {
    // The base tree has no blockTxIds: it hashes at every step.
  }
  const ctx = {
    chainId: "bench",
    limits: { maxTxBytes: 16_384 },
    consensus: { maxBlockTxs: 2_000, maxBlockBytes: 2 * 1024 * 1024 },
    verifyTxs: (txs, hashes) => pool.verifyTxs(txs, hashes),
    pooledVerified: (tx, hex) => {
      const held = pooled.get(hex);
      if (held === undefined || held.signature.length !== tx.signature.length) return false;
      // As Mempool.hasVerified compares them.
      for (let i = 0; i < tx.signature.length; i++) if (held.signature[i] !== tx.signature[i]) return false;
      return true;
    },
  };
  return async () => {
    const block = create(BlockSchema, { txs: TXS });
    const verdict = await checkBlockTxs(block, ctx);
    if (verdict.kind !== "accept") throw new Error(`block refused: ${verdict.reason}`);
    let chars = 0;
    if (blockTxIds !== null) {
      // noteBlock, markDelivered, commit stage, removeCommitted: all read the memoised hexes.
      for (const hex of blockTxIds(block).hexes) chars += hex.length;
      return chars;
    }
    // Base: noteBlock (hash + hex), delivery (hash), markDelivered (hex), commit stage (hex twice),
    // removeCommitted (hash + hex).
    for (const t of TXS) chars += toHex(nativeTxHash(t)).length;
    const hashes = TXS.map((t) => nativeTxHash(t));
    for (const h of hashes) chars += toHex(h).length;
    for (const h of hashes) chars += toHex(h).length + toHex(h).length;
    for (const t of TXS) chars += toHex(nativeTxHash(t)).length;
    return chars;
  };
}

const runs = { base: await pathOf(baseTree), new: await pathOf(newTree) };
const perTx = { base: [], new: [] };
const ROUNDS = 16;
for (let r = 0; r < ROUNDS; r++) {
  for (const k of r % 2 === 0 ? ["base", "new"] : ["new", "base"]) {
    for (let i = 0; i < 50; i++) await runs[k]();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 300; i++) await runs[k]();
    perTx[k].push(Number(process.hrtime.bigint() - t0) / 1e3 / 300 / TXS_PER_BLOCK);
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const b = median(perTx.base);
const n = median(perTx.new);
console.log(
  `us per block tx, median of ${ROUNDS} alternated rounds: base ${b.toFixed(2)}, new ${n.toFixed(2)}, new/base ${(n / b).toFixed(3)}`,
);
