// The account arena (issue 13, round 15): account values inline in one buffer behind an
// open-addressing table. The arena must find every key it holds after growth, rehashes, removals
// and compactions, keep keys whose probed bytes collide apart, never hand its bytes out, and
// leave every value that is not an account's shape (and every key that is not an account's) to
// the cache's Map; the executor on it must equal the reference.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACCOUNT_KEY_CHARS, AccountArena, arenaAccepts, SLOT_BYTES } from "../../../src/exec/arena.js";
import { StateCache } from "../../../src/exec/cache.js";
import { encodeAccount, keyStr } from "../../../src/exec/codec.js";
import { buildGenesis } from "../../../src/exec/genesis.js";
import { ParallelExecutor } from "../../../src/exec/parallel.js";
import { initFromResult, ReferenceExecutor } from "../../../src/exec/reference.js";
import { genesisFor, makeAccounts, NonceBook, Rng, transferTx } from "../../../src/exec/workload.js";
import { type SignedTx, TxStatus } from "../../../src/gen/parabft/v1/types_pb.js";
import { accountKey, kvKey } from "../../../src/types/stateKeys.js";
import { hashedBlock } from "./helpers.js";

/** An account key string whose address is `bytes` (padded with zeros to 20). */
function acctKey(bytes: number[]): string {
  const a = new Uint8Array(20);
  a.set(bytes);
  return keyStr(accountKey(a));
}

/** A well-formed account value: nonce, balance, `held` recent hashes filled with `fill`. */
function acctValue(nonce: bigint, balance: bigint, held = 0, fill = 1): Uint8Array {
  const base = encodeAccount({ nonce, balance });
  const v = new Uint8Array(24 + 32 * held);
  v.set(base);
  v.fill(fill, 24);
  return v;
}

const hex = (v: Uint8Array | null | undefined) => (v == null ? String(v) : Buffer.from(v).toString("hex"));

describe("AccountArena", () => {
  it("finds every key after growing from 16 slots (slot buffer and table rebuilt several times)", () => {
    const arena = new AccountArena(16);
    const n = 5000;
    const keys: string[] = [];
    for (let i = 0; i < n; i++) {
      const k = acctKey([i & 255, (i >> 8) & 255, 7, i % 13]);
      keys.push(k);
      assert.equal(arena.put(k, acctValue(BigInt(i), BigInt(i * 3), i % 5)), true);
    }
    assert.equal(arena.count, n);
    assert.ok(arena.capacity >= n, `capacity ${arena.capacity}`);
    assert.ok(arena.tableSize >= 2 * n, `table ${arena.tableSize}`);
    for (let i = 0; i < n; i++) {
      const s = arena.find(keys[i]!);
      assert.ok(s >= 0, `key ${i} lost`);
      assert.equal(hex(arena.copyOut(s)), hex(acctValue(BigInt(i), BigInt(i * 3), i % 5)));
      assert.equal(arena.keyOf(s), keys[i]);
      // findAddress (the transfer path: no key string) finds the same slot from the address bytes.
      const key = Buffer.from(keys[i]!, "latin1");
      assert.equal(arena.findAddress(key, 1), s);
      assert.equal(arena.findAddress(key.subarray(1), 0), s);
    }
    assert.equal(arena.find(acctKey([1, 2, 3, 4, 5])), -1);
    assert.equal(arena.findAddress(Buffer.from(acctKey([1, 2, 3, 4, 5]), "latin1"), 1), -1);
    // Overwriting is not an insert, and takes the new length.
    assert.equal(arena.put(keys[9]!, acctValue(1n, 2n, 4, 9)), false);
    assert.equal(arena.count, n);
    assert.equal(hex(arena.copyOut(arena.find(keys[9]!))), hex(acctValue(1n, 2n, 4, 9)));
    assert.equal(arena.lengthOf(arena.find(keys[9]!)), 24 + 128);
  });

  it("keeps keys apart whose probed bytes (the address's first 8) are equal: one probe chain", () => {
    const arena = new AccountArena(16);
    // 300 keys identical in the 8 bytes the hash reads, differing only after them (and one only
    // in the last byte): all on one chain, so lookups must compare whole keys.
    const prefix = [9, 9, 9, 9, 9, 9, 9, 9];
    const keys: string[] = [];
    for (let i = 0; i < 300; i++)
      keys.push(acctKey([...prefix, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i >> 8, i & 255]));
    keys.forEach((k, i) => {
      arena.put(k, acctValue(BigInt(i), 100n));
    });
    // find and findAddress (from the key's bytes) must agree on every lookup below.
    const at = (k: string) => {
      const s = arena.find(k);
      assert.equal(arena.findAddress(Buffer.from(k, "latin1"), 1), s, "findAddress differs from find");
      return s;
    };
    keys.forEach((k, i) => {
      assert.equal(hex(arena.copyOut(at(k))), hex(acctValue(BigInt(i), 100n)));
    });
    // A key on the same chain that was never put is not found (the chain ends at an empty entry).
    assert.equal(at(acctKey([...prefix, 1])), -1);
    // Removing keys in the middle of the chain leaves the ones after them reachable.
    for (let i = 0; i < 300; i += 3) assert.equal(arena.remove(keys[i]!), true);
    assert.equal(arena.remove(keys[0]!), false);
    keys.forEach((k, i) => {
      if (i % 3 === 0) assert.equal(at(k), -1, `removed ${i} still found`);
      else assert.equal(hex(arena.copyOut(at(k))), hex(acctValue(BigInt(i), 100n)));
    });
    // And a removed key comes back with its new value.
    arena.put(keys[3]!, acctValue(77n, 1n));
    assert.equal(hex(arena.copyOut(at(keys[3]!))), hex(acctValue(77n, 1n)));
    assert.equal(arena.count, 201);
  });

  it("reclaims removed slots without losing live ones (put, remove, put again, many rounds)", () => {
    const arena = new AccountArena(16);
    const live = new Map<string, bigint>();
    const rng = new Rng(5);
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 100; i++) {
        const k = acctKey([rng.int(256), rng.int(256), rng.int(4)]);
        const b = BigInt(rng.int(1_000_000));
        arena.put(k, acctValue(0n, b));
        live.set(k, b);
      }
      for (const k of [...live.keys()]) {
        if (rng.int(2) === 0) {
          assert.equal(arena.remove(k), true);
          live.delete(k);
        }
      }
      assert.equal(arena.count, live.size);
    }
    // Slots were reused: without reclaiming, the 4,000 puts (some overwrites) would need 4,096
    // slots; at most ~200 are live at once.
    assert.ok(arena.capacity <= 1024, `capacity ${arena.capacity} for ${live.size}`);
    for (const [k, b] of live) assert.equal(hex(arena.copyOut(arena.find(k))), hex(acctValue(0n, b)));
    assert.deepEqual(new Set([...arena.slots()].map((s) => arena.keyOf(s))), new Set(live.keys()));
  });

  it("retain keeps the chosen slots in insertion order and drops the rest", () => {
    const arena = new AccountArena(16);
    const keys = Array.from({ length: 50 }, (_, i) => acctKey([i, 1]));
    keys.forEach((k, i) => {
      arena.put(k, acctValue(BigInt(i), 1n));
    });
    const dropped = arena.retain((s) => arena.keyOf(s).charCodeAt(1) % 2 === 1);
    assert.equal(dropped, 25);
    assert.deepEqual(
      [...arena.slots()].map((s) => arena.keyOf(s)),
      keys.filter((_, i) => i % 2 === 1),
    );
    keys.forEach((k, i) => {
      const s = arena.find(k);
      if (i % 2 === 0) assert.equal(s, -1);
      else assert.equal(hex(arena.copyOut(s)), hex(acctValue(BigInt(i), 1n)));
    });
  });

  it("copyOut hands out a copy: writing it does not change the arena", () => {
    const arena = new AccountArena();
    const k = acctKey([1]);
    arena.put(k, acctValue(3n, 4n, 1));
    const v = arena.copyOut(arena.find(k));
    v.fill(0xff);
    assert.equal(hex(arena.copyOut(arena.find(k))), hex(acctValue(3n, 4n, 1)));
    assert.equal(SLOT_BYTES - 24, 152);
  });

  it("probeStart then touchProbe lands on findAddress's slot for a key at its probe start (the prefetch)", () => {
    const arena = new AccountArena(16);
    const n = 5000;
    const keys: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const k = acctKey([i & 255, (i >> 8) & 255, 3, i % 11]);
      arena.put(k, acctValue(BigInt(i), 1n));
      keys.push(Buffer.from(k, "latin1"));
    }
    // The table is at most 1/2 full, so most keys sit where their probe starts; the others are
    // further along the chain, where the prefetch's guess is another key's slot (or nothing).
    let landed = 0;
    for (const key of keys) {
      const s = arena.findAddress(key, 1);
      const guess = arena.touchProbe(arena.probeStart(key, 1));
      // From the address bytes at 0 or from a key's bytes at 1: the same table position.
      assert.equal(arena.probeStart(key.subarray(1), 0), arena.probeStart(key, 1));
      if (guess === s) landed++;
      else assert.ok(guess >= 0, "a key further along its chain starts at a taken entry");
    }
    assert.ok(landed > n / 2, `landed ${landed} of ${n}`);
    // A key never inserted into an empty arena: an empty entry, no slot.
    const empty = new AccountArena(16);
    assert.equal(empty.touchProbe(empty.probeStart(keys[0]!, 1)), -1);
    const one = new AccountArena(16);
    one.put(keys[7]!.toString("latin1"), acctValue(1n, 1n));
    assert.equal(one.touchProbe(one.probeStart(keys[7]!, 1)), one.findAddress(keys[7]!, 1));
  });

  it("accepts only account keys with well-formed account values", () => {
    const k = acctKey([1]);
    assert.equal(arenaAccepts(k, acctValue(0n, 0n)), true);
    assert.equal(arenaAccepts(k, acctValue(0n, 0n, 4)), true);
    assert.equal(arenaAccepts(k, null), false);
    assert.equal(arenaAccepts(k, new Uint8Array(23)), false);
    assert.equal(arenaAccepts(k, new Uint8Array(25)), false);
    assert.equal(arenaAccepts(k, new Uint8Array(24 + 5 * 32)), false);
    assert.equal(arenaAccepts(keyStr(kvKey(new Uint8Array([1]))), acctValue(0n, 0n)), false);
    assert.equal(arenaAccepts(k.slice(0, ACCOUNT_KEY_CHARS - 1), acctValue(0n, 0n)), false);
  });
});

describe("StateCache over the arena", () => {
  it("keeps other shapes in the Map, moves a key between the two as its value changes, counts it once", () => {
    const cache = new StateCache(null);
    const k = acctKey([5]);
    const odd = new Uint8Array(30).fill(3);
    cache.seed(k, odd);
    assert.equal(cache.peek(k), odd, "a value of another shape is the Map's own object");
    assert.equal(cache.size, 1);
    cache.seed(k, acctValue(1n, 2n));
    assert.equal(hex(cache.peek(k)), hex(acctValue(1n, 2n)));
    assert.equal(cache.arena.count, 1);
    assert.equal(cache.size, 1);
    cache.seed(k, null);
    assert.equal(cache.peek(k), null);
    assert.equal(cache.arena.count, 0);
    assert.equal(cache.size, 1);
    assert.equal(cache.has(k), true);
    cache.seed(k, acctValue(2n, 3n, 2));
    assert.equal(hex(cache.peek(k)), hex(acctValue(2n, 3n, 2)));
    assert.equal(cache.size, 1);
    // A kv key with an account-shaped value stays in the Map.
    const kv = keyStr(kvKey(new Uint8Array([1])));
    const v = acctValue(0n, 9n);
    cache.seed(kv, v);
    assert.equal(cache.peek(kv), v);
    assert.equal(cache.arena.count, 1);
    assert.equal(cache.has(acctKey([6])), false);
    assert.equal(cache.peek(acctKey([6])), undefined);
  });

  it("peek copies arena values: writing the copy leaves the cache unchanged", () => {
    const cache = new StateCache(null);
    const k = acctKey([7]);
    cache.seed(k, acctValue(1n, 1n));
    const v = cache.peek(k)!;
    v.fill(0);
    assert.equal(hex(cache.peek(k)), hex(acctValue(1n, 1n)));
  });

  it("evicts arena entries oldest first except pinned ones, and reloads them from the source", async () => {
    const stored = new Map<string, Uint8Array>();
    for (let i = 0; i < 40; i++) stored.set(acctKey([i, 2]), acctValue(BigInt(i), 10n));
    const source = { getState: async (key: Uint8Array) => stored.get(keyStr(key)) };
    const cache = new StateCache(source, 20);
    const keys = [...stored.keys()];
    assert.equal(await cache.load(keys), 40);
    assert.equal(cache.arena.count, 40);
    const pinned = new Set([keys[0]!, keys[3]!]);
    const dropped = cache.evict([pinned]);
    assert.equal(cache.size, 18);
    assert.equal(dropped, 22);
    assert.equal(cache.evictions, 1);
    // The pinned keys and the newest 16 stay; the oldest unpinned ones went.
    for (const k of pinned) assert.equal(cache.has(k), true);
    for (let i = 0; i < 40; i++) {
      const want = pinned.has(keys[i]!) || i >= 24;
      assert.equal(cache.has(keys[i]!), want, `key ${i}`);
    }
    assert.equal(await cache.load(keys), 22);
    for (let i = 0; i < 40; i++) assert.equal(hex(cache.peek(keys[i]!)), hex(acctValue(BigInt(i), 10n)));
  });
});

describe("the executor on the arena equals the reference", () => {
  it("with recipients absent, malformed, above 2^53, oneself, records growing and shifting, duplicates", async () => {
    const many = makeAccounts(60, 41);
    const genesis = buildGenesis(genesisFor(many, 1_000_000n));
    const init = initFromResult(genesis);
    // Account keys whose values are not a small account: 30 bytes (malformed: reads as empty),
    // a 24-byte account above 2^53 (arena, but not the hot path's), and 200 bytes.
    const odd = makeAccounts(3, 43);
    const state = [
      ...genesis.writeSet,
      { key: accountKey(odd[0]!.address), value: new Uint8Array(30).fill(4) },
      { key: accountKey(odd[1]!.address), value: encodeAccount({ nonce: 0n, balance: 1n << 60n }) },
      { key: accountKey(odd[2]!.address), value: new Uint8Array(200).fill(5) },
    ];
    const start = { ...init, state };
    const rng = new Rng(9);
    const nonces = new NonceBook();
    const fresh = makeAccounts(10, 47);
    const par = new ParallelExecutor(start, { workers: 0 });
    const ref = new ReferenceExecutor(start);
    try {
      for (let h = 1n; h <= 5n; h++) {
        const txs: SignedTx[] = [];
        for (let i = 0; i < 120; i++) {
          if (i % 17 === 16) {
            txs.push(txs[rng.int(i)]!); // a re-inclusion: DUPLICATE
            continue;
          }
          const from = many[rng.int(h === 1n ? 20 : many.length)]!;
          if (i % 13 === 5) {
            // A transfer to oneself (declared): only the frame's write.
            txs.push(transferTx(from, nonces.take(from), from.address, BigInt(1 + rng.int(500))));
            continue;
          }
          const r = rng.int(10);
          const to =
            r < 2 ? odd[rng.int(3)]! : r < 4 ? fresh[rng.int(fresh.length)]! : many[rng.int(many.length)]!;
          txs.push(transferTx(from, nonces.take(from), to.address, BigInt(1 + rng.int(500))));
        }
        // The fresh accounts (created in block 1) send from block 2 on.
        if (h > 1n)
          for (const a of fresh.slice(0, 3)) txs.push(transferTx(a, nonces.take(a), many[0]!.address, 1n));
        const b = hashedBlock(h, txs);
        const p = await par.executeBlock(b);
        const want = await ref.executeBlock(b);
        assert.deepEqual(p, want, `height ${h}`);
        assert.ok(p.receipts.some((x) => x.status === TxStatus.DUPLICATE));
        for (const a of [...many, ...odd, ...fresh]) {
          const k = accountKey(a.address);
          assert.deepEqual(par.get(k), ref.get(k), `height ${h}`);
        }
      }
    } finally {
      await par.close();
    }
  });
});
