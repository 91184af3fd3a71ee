// Simulated clients and per-replica mempools. Transactions are real SignedTx bytes in the
// protocol's format (bank.transfer with a declared access list), signed with the stand-in
// scheme, so the core's stateless checks see exactly what a node would.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type SignedTx, SignedTxSchema, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import { ADDRESS_LENGTH, addressOf, PUBLIC_KEY_LENGTH } from "../types/block.js";
import { compareBytes, toHex } from "../types/bytes.js";
import { sha256 } from "../types/hash.js";
import type { SignatureVerifier } from "../types/signing.js";
import { txSignBytes } from "../types/signing.js";
import { accountKey } from "../types/stateKeys.js";
import type { Prng } from "./prng.js";
import type { StandInKeyRegistry } from "./signer.js";

export interface SimTx {
  tx: SignedTx;
  hashHex: string;
  senderHex: string;
  nonce: bigint;
  bytes: number;
}

/**
 * A client. Every transfer comes from a fresh sender key with nonce 0, so each transaction is
 * executable on its own: nonce chains broken by view changes (a later nonce committed before an
 * earlier one that was dropped with a null block) are the mempool's and executor's business,
 * not the consensus simulator's, and would otherwise stall the workload rather than consensus.
 */
export class SimClient {
  private count = 0;

  constructor(
    private readonly chainId: string,
    private readonly registry: StandInKeyRegistry,
    private readonly secretOf: (i: number) => Uint8Array,
  ) {}

  nextTransfer(rng: Prng): SimTx {
    const signer = this.registry.newSigner(this.secretOf(this.count++));
    const to = rng.bytes(ADDRESS_LENGTH);
    const from = accountKey(addressOf(signer.publicKey));
    const keys = [from, accountKey(to)].sort(compareBytes);
    const body = toBinary(
      TxBodySchema,
      create(TxBodySchema, {
        chainId: this.chainId,
        sender: signer.publicKey,
        nonce: 0n,
        access: { reads: keys, writes: keys },
        call: { call: { case: "transfer", value: { to, amount: String(1 + rng.int(1000)) } } },
      }),
    );
    const tx = create(SignedTxSchema, { body, signature: signer.sign(txSignBytes(body)) });
    return simTx(tx);
  }
}

export function simTx(tx: SignedTx): SimTx {
  const b = fromBinary(TxBodySchema, tx.body);
  return {
    tx,
    hashHex: toHex(sha256(tx.body)),
    senderHex: toHex(b.sender),
    nonce: b.nonce,
    bytes: tx.body.length + tx.signature.length,
  };
}

/**
 * The simulator's own stateless transaction check (independent of the core, so the validity
 * invariant does not trust the code it checks). Returns a reason, or null when valid.
 */
export function statelessTxProblem(
  tx: SignedTx,
  chainId: string,
  verifier: SignatureVerifier,
): string | null {
  let body: ReturnType<typeof fromBinary<typeof TxBodySchema>>;
  try {
    body = fromBinary(TxBodySchema, tx.body);
  } catch {
    return "undecodable body";
  }
  if (body.chainId !== chainId) return "wrong chain id";
  if (body.sender.length !== PUBLIC_KEY_LENGTH) return "bad sender length";
  if (body.call?.call.case === undefined) return "no program call";
  if (!verifier.verify(body.sender, txSignBytes(tx.body), tx.signature)) return "bad signature";
  return null;
}

/**
 * One replica's mempool: in-memory (lost on crash), ordered by arrival, per-sender nonce
 * order kept by the clients. Transactions in a block this replica proposed are held back
 * per height until that height commits, then released if the committed block lacked them.
 */
export class SimMempool {
  private readonly txs = new Map<string, SimTx>();
  private readonly inflight = new Map<bigint, string[]>();
  private readonly held = new Set<string>();
  private readonly committed = new Set<string>();

  add(t: SimTx): boolean {
    if (this.txs.has(t.hashHex) || this.committed.has(t.hashHex)) return false;
    this.txs.set(t.hashHex, t);
    return true;
  }

  get size(): number {
    return this.txs.size;
  }

  /** Transactions that can execute now (each sim transaction has its own sender at nonce 0). */
  executableCount(): number {
    return this.txs.size;
  }

  /**
   * What the driver reports as pending work: zero when nothing can execute now (so backups do not
   * time out over blocked nonces), else the transactions not already in this replica's own
   * in-flight proposals (so a primary is not asked for empty blocks).
   */
  pendingWork(): number {
    if (this.executableCount() === 0) return 0;
    let c = 0;
    for (const h of this.txs.keys()) if (!this.held.has(h)) c++;
    return c;
  }

  /** Takes up to `maxTxs` / `maxBytes` of not-held transactions for a proposal at `height`. */
  take(height: bigint, maxTxs: number, maxBytes: number): SimTx[] {
    const out: SimTx[] = [];
    let bytes = 0;
    for (const t of this.txs.values()) {
      if (this.held.has(t.hashHex)) continue;
      if (out.length >= maxTxs || bytes + t.bytes > maxBytes) break;
      out.push(t);
      bytes += t.bytes;
    }
    for (const t of out) this.held.add(t.hashHex);
    this.inflight.set(height, [...(this.inflight.get(height) ?? []), ...out.map((t) => t.hashHex)]);
    return out;
  }

  /** A block committed at `height`: its transactions leave, others held for it return. */
  onCommitted(height: bigint, txs: readonly SimTx[]): void {
    for (const t of txs) {
      this.txs.delete(t.hashHex);
      this.held.delete(t.hashHex);
      this.committed.add(t.hashHex);
    }
    for (const h of this.inflight.get(height) ?? []) this.held.delete(h);
    this.inflight.delete(height);
  }

  describe(): string {
    const parts: string[] = [];
    for (const t of this.txs.values()) {
      parts.push(`${t.senderHex.slice(0, 4)}#${t.nonce}${this.held.has(t.hashHex) ? "h" : ""}`);
    }
    return `txs [${parts.join(" ")}]`;
  }

  /** After a restart: what this replica's stored blocks say about sender nonces and committed txs. */
  restoreCommitted(txs: Iterable<SimTx>): void {
    for (const t of txs) this.committed.add(t.hashHex);
  }

  /** A proposal for `height` was not used: its transactions may be proposed again. */
  release(height: bigint): void {
    for (const h of this.inflight.get(height) ?? []) this.held.delete(h);
    this.inflight.delete(height);
  }

  /** After a view change nothing held is guaranteed to be proposed again: release all holds. */
  releaseAll(): void {
    this.held.clear();
    this.inflight.clear();
  }
}
