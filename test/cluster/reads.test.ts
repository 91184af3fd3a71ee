// What clients see (issue 9 part 5), on four validators as real processes on 127.0.0.1:
//  - GetState and GetAccount under write load from several clients: every read's (height, value)
//    pair equals the chain replayed to that height;
//  - several clients submitting to different validators at saturation for DUP_RUN_MS: every
//    transaction is included exactly once (none gets a DUPLICATE receipt) and none is lost.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  decodeTxBody,
  fromHex,
  kvCasTx,
  kvPutTx,
  type ParabftClient,
  type PreparedTx,
  signTx,
  type TxSigner,
  toHex,
  transferTx,
  txHash,
} from "../../src/client/node.js";
import { TxStatus } from "../../src/gen/parabft/v1/types_pb.js";
import { addressOf } from "../../src/types/block.js";
import { kvKey } from "../../src/types/stateKeys.js";
import { LocalCluster, stopAndRemove, tempDir } from "./harness.js";
import { clientsFor, closeAll, signerOf, sleep, until, waitAllAtHeight } from "./lib.js";

/** How long the read checker hammers GetState/GetAccount. */
const READ_RUN_MS = 20_000;
/** How long the saturation run lasts (issue 9: a 60 s run). */
const DUP_RUN_MS = 60_000;
const WRITERS = 4;
const SATURATORS = 8;
/** Transactions a saturating sender keeps submitted but not yet committed. */
const WINDOW = 48;
const KEYS = ["alpha", "beta", "gamma"].map((k) => new TextEncoder().encode(k));

const utf8 = (s: string) => new TextEncoder().encode(s);
const sameBytes = (a: Uint8Array, b: Uint8Array) => toHex(a) === toHex(b);

describe("what clients see on a loaded 4-validator cluster", { timeout: 420_000 }, () => {
  let cluster: LocalCluster;
  let clients: ParabftClient[];

  before(async () => {
    cluster = await LocalCluster.create(4, await tempDir(), {
      preset: "minimal",
      accounts: WRITERS + SATURATORS + 1,
    });
    await cluster.start();
    clients = clientsFor(cluster);
  });

  after(async () => {
    closeAll(clients ?? []);
    await stopAndRemove(cluster);
  });

  it("GetState and GetAccount pair each value with the height it belongs to", async () => {
    const writers = await Promise.all(cluster.accounts.slice(0, WRITERS).map((a) => signerOf(a.keyFile)));
    const writerAddrs = writers.map((w) => w.address);
    type Read =
      | { kind: "state"; key: number; height: bigint; value: Uint8Array | null }
      | { kind: "account"; writer: number; height: bigint; nonce: bigint };
    const reads: Read[] = [];
    let stop = false;
    let writes = 0;

    const writer = async (w: number) => {
      const s = writers[w]!;
      let nonce = (await clients[0]!.getAccount(s.address)).nonce;
      for (let i = 0; !stop; i++) {
        const key = KEYS[(w + i) % KEYS.length]!;
        const value = utf8(`w${w}-n${nonce}`);
        const base = { chainId: cluster.chainId, sender: s.publicKey, nonce };
        let body: ReturnType<typeof kvPutTx>;
        if (i % 2 === 0) body = kvPutTx(base, key, value);
        else {
          // CAS on what some node reports now: often wins, sometimes loses a race (also a change).
          const cur = await clients[(w + i) % 4]!.getState(kvKey(key));
          body = kvCasTx(base, key, cur.found ? cur.value : null, value);
        }
        const tx = signTx(body, s);
        await submitUntilCommitted(tx, w + i);
        writes++;
        nonce++;
      }
    };

    const reader = async (r: number) => {
      const c = clients[r % 4]!;
      for (let i = 0; !stop; i++) {
        if (i % 4 === 3) {
          const writerIdx = (r + i) % WRITERS;
          const a = await c.getAccount(writerAddrs[writerIdx]!);
          reads.push({ kind: "account", writer: writerIdx, height: a.height, nonce: a.nonce });
        } else {
          const key = (r + i) % KEYS.length;
          const res = await c.getState(kvKey(KEYS[key]!));
          reads.push({ kind: "state", key, height: res.height, value: res.found ? res.value : null });
        }
      }
    };

    const loops = [...writers.map((_, w) => writer(w)), ...Array.from({ length: 6 }, (_, r) => reader(r))];
    await sleep(READ_RUN_MS);
    stop = true;
    await Promise.all(loops);

    // Quiesce, then replay the chain from node 0.
    const top = (await clients[0]!.getStatus()).committedHeight;
    await waitAllAtHeight(clients, [0, 1, 2, 3], top, 60_000);
    const valueAt = KEYS.map(() => [null] as (Uint8Array | null)[]);
    const nonceAt = writers.map(() => [0n]);
    const baseNonce = await Promise.all(
      writers.map(async (w) => (await clients[0]!.getAccount(w.address)).nonce),
    );
    const included = writers.map(() => 0n);
    const current = KEYS.map(() => null as Uint8Array | null);
    for (let h = 1n; h <= top; h++) {
      const block = await clients[0]!.getBlock({ height: h });
      for (const tx of block?.block?.txs ?? []) {
        const body = decodeTxBody(tx);
        const w = writers.findIndex((s) => sameBytes(s.publicKey, body.sender));
        if (w < 0) continue;
        const receipt = await clients[0]!.getReceipt(txHash(tx));
        if (!receipt || receipt.height !== h) continue;
        included[w]!++;
        if (receipt.status !== TxStatus.OK) continue;
        const call = body.call?.call;
        if (call?.case === "kvPut" || call?.case === "kvCas") {
          const k = KEYS.findIndex((x) => sameBytes(x, call.value.key));
          if (k >= 0) current[k] = call.value.value;
        }
      }
      for (let k = 0; k < KEYS.length; k++) valueAt[k]!.push(current[k]!);
      for (let w = 0; w < WRITERS; w++) nonceAt[w]!.push(included[w]!);
    }
    // Writers started at genesis nonce 0 and every tx of theirs bumps the nonce once.
    for (let w = 0; w < WRITERS; w++) assert.equal(included[w], baseNonce[w], `writer ${w}: replayed nonce`);

    let checked = 0;
    const heights = new Set<bigint>();
    const bad: string[] = [];
    for (const r of reads) {
      if (r.height > top) continue;
      checked++;
      heights.add(r.height);
      const h = Number(r.height);
      if (r.kind === "state") {
        const want = valueAt[r.key]![h]!;
        const ok = want === null ? r.value === null : r.value !== null && sameBytes(want, r.value);
        if (!ok) bad.push(`key ${r.key} at ${h}: read ${show(r.value)}, chain ${show(want)}`);
      } else if (nonceAt[r.writer]![h] !== r.nonce) {
        bad.push(`writer ${r.writer} at ${h}: nonce ${r.nonce}, chain ${nonceAt[r.writer]![h]}`);
      }
    }
    console.log(
      `# reads: ${checked} reads over ${heights.size} heights checked against ${writes} writes; ${bad.length} inconsistent`,
    );
    assert.ok(writes >= 10, `only ${writes} writes committed: values barely changed`);
    assert.ok(checked >= 200 && heights.size >= 5, `only ${checked} reads over ${heights.size} heights`);
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} reads disagree with the replayed chain`);

    async function submitUntilCommitted(tx: PreparedTx, turn: number): Promise<void> {
      for (let attempt = 0; ; attempt++) {
        const c = clients[(turn + attempt) % 4]!;
        try {
          await c.submitAndWait(tx, { timeoutMs: 8000 });
          return;
        } catch (err) {
          if ((await clients[0]!.getTx(tx.hash).catch(() => null)) !== null) return;
          if (attempt > 20) throw err;
          await sleep(100);
        }
      }
    }
  });

  it(`no transaction is included twice at saturation over ${DUP_RUN_MS / 1000} s`, async () => {
    const senders = await Promise.all(
      cluster.accounts.slice(WRITERS, WRITERS + SATURATORS).map((a) => signerOf(a.keyFile)),
    );
    const to = addressOf((await signerOf(cluster.accounts[WRITERS + SATURATORS]!.keyFile)).publicKey);
    const startHeight = (await clients[0]!.getStatus()).committedHeight;
    const startView = (await clients[0]!.getStatus()).view;
    const submitted = new Map<string, number>();
    const submittedNonce = new Map<string, bigint>();
    const next: bigint[] = [];
    const rejections = new Map<string, number>();
    let stop = false;

    const saturate = async (k: number, s: TxSigner) => {
      const home = clients[k % 4]!;
      const other = clients[(k + 1) % 4]!;
      let committed = (await home.getAccount(s.address)).nonce;
      next[k] = committed;
      let pending: PreparedTx | null = null;
      while (!stop) {
        if (next[k]! - committed >= WINDOW) {
          await sleep(20);
          committed = (await home.getAccount(s.address)).nonce;
          continue;
        }
        pending ??= signTx(
          transferTx({ chainId: cluster.chainId, sender: s.publicKey, nonce: next[k]! }, to, 1n),
          s,
        );
        try {
          await home.submitTx(pending);
        } catch (err) {
          const code = /\b[A-Z_]{4,}: ([A-Z_]{4,}):/.exec(String(err))?.[1] ?? "ERROR";
          rejections.set(code, (rejections.get(code) ?? 0) + 1);
          await sleep(50);
          continue;
        }
        submitted.set(toHex(pending.hash), k);
        submittedNonce.set(toHex(pending.hash), next[k]!);
        // Every fourth transaction also goes to a second validator, as a client retry would.
        if (next[k]! % 4n === 0n) await other.submitTx(pending).catch(() => {});
        pending = null;
        next[k]!++;
      }
    };

    const loops = senders.map((s, k) => saturate(k, s));
    await sleep(DUP_RUN_MS);
    stop = true;
    await Promise.all(loops);

    // Nothing admitted is lost: scan the chain until every submitted transaction is in it.
    const inclusions = new Map<string, bigint[]>();
    const failed = new Map<string, number>();
    let scanned = startHeight;
    const scan = async () => {
      const top = (await clients[0]!.getStatus()).committedHeight;
      for (let h = scanned + 1n; h <= top; h++) {
        const block = await clients[Number(h % 4n)]!.getBlock({ height: h });
        if (!block) return;
        for (const tx of block.block?.txs ?? []) {
          const hash = toHex(txHash(tx));
          if (!submitted.has(hash)) continue;
          inclusions.set(hash, [...(inclusions.get(hash) ?? []), h]);
        }
        scanned = h;
      }
    };
    try {
      await until(
        "every submitted transaction in the chain",
        async () => {
          await scan();
          return inclusions.size === submitted.size;
        },
        120_000,
        500,
      );
    } finally {
      const statuses = await Promise.all(clients.map((c) => c.getStatus().catch(() => null)));
      console.log(
        `# saturation end: ${inclusions.size}/${submitted.size} included; nodes ` +
          statuses
            .map((st) =>
              st ? `h${st.committedHeight}/x${st.executedHeight} v${st.view} pool ${st.mempoolSize}` : "down",
            )
            .join(", "),
      );
      // Which sender and nonce each missing transaction had, beside the sender's account nonce.
      const lost = [...submitted].filter(([h]) => !inclusions.has(h)).slice(0, 10);
      for (const [h, k] of lost) {
        const acct = await clients[0]!.getAccount(senders[k]!.address).catch(() => null);
        console.log(
          `# missing ${h.slice(0, 12)}: client ${k} nonce ${submittedNonce.get(h)}, account nonce ${acct?.nonce ?? "?"}`,
        );
      }
    }
    const status = await clients[0]!.getStatus();
    await waitAllAtHeight(clients, [0, 1, 2, 3], scanned, 60_000);
    const top = scanned;
    for (const hash of inclusions.keys()) {
      const receipt = await clients[0]!.getReceipt(fromHex(hash));
      if (receipt && receipt.status !== TxStatus.OK) {
        const code = /^([A-Z_]+)/.exec(receipt.error)?.[1] ?? "FAILED";
        failed.set(code, (failed.get(code) ?? 0) + 1);
      }
    }
    const twice = [...inclusions].filter(([, hs]) => hs.length > 1);
    const missing = [...submitted.keys()].filter((h) => !inclusions.has(h));
    const seconds = DUP_RUN_MS / 1000;
    console.log(
      `# saturation: ${submitted.size} txs from ${SATURATORS} clients in ${seconds} s (${(submitted.size / seconds).toFixed(0)} tx/s), ` +
        `heights ${startHeight + 1n}..${top}, views ${startView}..${status.view}, ` +
        `rejections ${JSON.stringify(Object.fromEntries(rejections))}, failed receipts ${JSON.stringify(Object.fromEntries(failed))}, ` +
        `twice ${twice.length}, missing ${missing.length}`,
    );
    assert.ok(submitted.size >= 200, `only ${submitted.size} transactions submitted`);
    assert.deepEqual(
      twice.slice(0, 5).map(([h, hs]) => `${h} at ${hs.join(",")}`),
      [],
      `${twice.length} transactions were included twice (the later copy executes as DUPLICATE)`,
    );
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} admitted transactions never committed`);
  });
});

function show(v: Uint8Array | null): string {
  return v === null ? "absent" : new TextDecoder().decode(v);
}
