// The decoded transaction (DecodedTx): a signed body decoded for execution (decodeTx), the
// sender's address and account key (from the mempool's pre-decoded form, or through a pure cache
// keyed by the public key), its declared keys as binary strings built on first read, the access
// checks on them (declaresRead / declaresWrite) and the conflict-graph input (touchedKeys).
// Separate from programs.ts (what a transaction does) because every executor stage reads it
// (the scheduler, the lane wire, both executors) without running a program; txDecode.ts is the
// hand-written protobuf decoder of transfer bodies it calls first.
import { hash as nodeHash } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { type TxBody, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import { ADDRESS_LENGTH, PUBLIC_KEY_LENGTH } from "../types/block.js";
import { StateKeyPrefix } from "../types/stateKeys.js";
import { keyStr, keyStr21 } from "./codec.js";
import { fastDecodeTxBody } from "./txDecode.js";
import type { PreDecodedTx } from "./types.js";

/** A transaction decoded for execution. Keys are binary strings (see codec.keyStr). */
export interface DecodedTx {
  /** The sender's cached keys (shared by every tx of the sender). */
  keys?: SenderKeys;
  hash: Uint8Array;
  body: TxBody;
  sender: Uint8Array;
  /**
   * keyStr(accountKey(sender)): its value also holds the sender's recent-transactions record.
   * Read-only, like reads and writes: decodeTx's DecodedTxOf builds them on first read.
   */
  readonly senderKey: string;
  /** Declared keys, as listed (may repeat): see declaresRead / declaresWrite. */
  readonly reads: string[];
  readonly writes: string[];
  /** Built on first use for long access lists only (short ones are scanned). */
  readSet?: Set<string>;
  writeSet?: Set<string>;
}

const SCAN_MAX = 16;

/** True when the access list lets the tx write `key` (the sender's account is implicit). */
export function declaresWrite(tx: DecodedTx, key: string): boolean {
  if (key === tx.senderKey) return true;
  const w = tx.writes;
  if (w.length <= SCAN_MAX) {
    for (let i = 0; i < w.length; i++) if (w[i] === key) return true;
    return false;
  }
  tx.writeSet ??= new Set(w);
  return tx.writeSet.has(key);
}

/** True when the access list lets the tx read `key` (declared read or write, or its account). */
export function declaresRead(tx: DecodedTx, key: string): boolean {
  if (declaresWrite(tx, key)) return true;
  const r = tx.reads;
  if (r.length <= SCAN_MAX) {
    for (let i = 0; i < r.length; i++) if (r[i] === key) return true;
    return false;
  }
  tx.readSet ??= new Set(r);
  return tx.readSet.has(key);
}

export interface SenderKeys {
  /** The public key (a copy when cached: see senderKeys). */
  publicKey: Uint8Array;
  sender: Uint8Array;
  senderKey: string;
  /** hex(sender), filled on first use (transfer events). */
  hex?: string;
}

/**
 * Public key -> address and key strings. A pure cache (the same key always maps to the same
 * address), so it cannot change results; it saves a SHA-256 and two key builds per transaction
 * from a returning sender. Looked up by the key's first 30 bits (a small-integer Map key: no
 * string built per transaction), confirmed by comparing the whole key; the rare second key with
 * the same first bits goes to a map by the whole key. Cleared when full.
 */
const senderCache = new Map<number, SenderKeys>();
const senderCollisions = new Map<string, SenderKeys>();
const SENDER_CACHE_MAX = 1 << 20;

function newSenderKeys(publicKey: Uint8Array): SenderKeys {
  // addressOf (src/types) is the same SHA-256 prefix; node:crypto is several times faster.
  // A caller that already derived it (the mempool) passes it in (decodeTx: no SenderKeys then).
  const sender = new Uint8Array(nodeHash("sha256", publicKey, "buffer").subarray(0, ADDRESS_LENGTH));
  return {
    publicKey: publicKey.slice(),
    sender,
    senderKey: accountKeyStr20(sender),
  };
}

function senderKeys(publicKey: Uint8Array): SenderKeys {
  // Public keys are 32 bytes (checked by the caller) and uniformly random in their first bytes.
  const id = (publicKey[0]! << 22) | (publicKey[1]! << 14) | (publicKey[2]! << 6) | (publicKey[3]! >>> 2);
  const k = senderCache.get(id);
  if (k !== undefined) {
    const pk = k.publicKey;
    let same = true;
    for (let i = 4; i < PUBLIC_KEY_LENGTH; i++) {
      if (pk[i] !== publicKey[i]) {
        same = false;
        break;
      }
    }
    if (same && pk[0] === publicKey[0] && pk[3] === publicKey[3]) return k;
    const full = keyStr(publicKey);
    let c = senderCollisions.get(full);
    if (c === undefined) {
      c = newSenderKeys(publicKey);
      if (senderCollisions.size >= SENDER_CACHE_MAX) senderCollisions.clear();
      senderCollisions.set(full, c);
    }
    return c;
  }
  const fresh = newSenderKeys(publicKey);
  if (senderCache.size >= SENDER_CACHE_MAX) senderCache.clear();
  senderCache.set(id, fresh);
  return fresh;
}

/** keyStr(key) for a declared key, reusing the sender's account key string when it is that key. */
function declaredKeyStr(key: Uint8Array, sender: Uint8Array, tx: { senderKey: string }): string {
  if (key.length === 1 + ADDRESS_LENGTH && key[0] === StateKeyPrefix.account) {
    let i = 0;
    while (i < ADDRESS_LENGTH && key[i + 1] === sender[i]) i++;
    if (i === ADDRESS_LENGTH) return tx.senderKey;
  }
  return keyStr(key);
}

/**
 * Decodes a signed body. A body that does not decode, or whose sender is not a 32-byte key,
 * is MALFORMED with no effects at all: without a sender there is no nonce to consume.
 */
export function decodeTx(body: Uint8Array, hash: Uint8Array, pre?: PreDecodedTx): DecodedTx | null {
  let tx: TxBody | null = pre === undefined ? fastDecodeTxBody(body) : pre.body;
  if (tx === null) {
    try {
      tx = fromBinary(TxBodySchema, body);
    } catch {
      return null;
    }
  }
  if (tx.sender.length !== PUBLIC_KEY_LENGTH) return null;
  // The caller derived the address (the mempool): no lookup in a cache of every sender (a cold
  // Map entry and key compare per transaction), and no SenderKeys object (round 10). Round 16:
  // no key string either until something asks (DecodedTxOf): transfers on the arena are looked
  // up by the address bytes.
  const address = pre?.address;
  if (address !== undefined && address.length === ADDRESS_LENGTH) {
    return new DecodedTxOf(undefined, hash, tx, address, undefined);
  }
  const keys = senderKeys(tx.sender);
  return new DecodedTxOf(keys, hash, tx, keys.sender, keys.senderKey);
}

/**
 * A decoded tx whose key strings (the sender's, the declared reads and writes) are built on
 * first read (round 16): the transfer path on the arena reads none of them.
 */
class DecodedTxOf implements DecodedTx {
  readSet: Set<string> | undefined = undefined;
  writeSet: Set<string> | undefined = undefined;
  private readKeys: string[] | undefined = undefined;
  private writeKeys: string[] | undefined = undefined;
  constructor(
    readonly keys: SenderKeys | undefined,
    readonly hash: Uint8Array,
    readonly body: TxBody,
    readonly sender: Uint8Array,
    private key: string | undefined,
  ) {}

  get senderKey(): string {
    if (this.key === undefined) this.key = accountKeyStr20(this.sender);
    return this.key;
  }

  get reads(): string[] {
    if (this.readKeys === undefined) this.readKeys = this.declared(this.body.access?.reads);
    return this.readKeys;
  }

  get writes(): string[] {
    if (this.writeKeys === undefined) this.writeKeys = this.declared(this.body.access?.writes);
    return this.writeKeys;
  }

  private declared(list: Uint8Array[] | undefined): string[] {
    if (list === undefined || list.length === 0) return NO_KEYS;
    const out: string[] = new Array(list.length);
    const sender = this.sender;
    for (let i = 0; i < list.length; i++) out[i] = declaredKeyStr(list[i]!, sender, this);
    return out;
  }
}

const NO_KEYS: string[] = [];

/** Every key a transaction may touch, implicit ones included: the conflict-graph input. */
export function touchedKeys(tx: DecodedTx): { keys: string[]; writes: boolean[] } {
  const keys: string[] = [tx.senderKey];
  const writes: boolean[] = [true];
  const long = tx.writes.length + tx.reads.length > SCAN_MAX;
  const seen = long ? new Set<string>(keys) : null;
  const add = (k: string, w: boolean) => {
    if (seen !== null) {
      if (seen.has(k)) return;
      seen.add(k);
    } else if (keys.includes(k)) return;
    keys.push(k);
    writes.push(w);
  };
  for (const k of tx.writes) add(k, true);
  for (const k of tx.reads) add(k, false);
  return { keys, writes };
}

/** keyStr(accountKey(address)) for a 20-byte address, built flat in one call (no rope). */
export function accountKeyStr20(address: Uint8Array): string {
  return keyStr21(address, StateKeyPrefix.account, 0);
}
