// Simulated clients and per-replica mempools. Transactions are real SignedTx bytes in the
// protocol's format (bank.transfer with a declared access list), signed with the stand-in
// scheme, so the core's stateless checks see exactly what a node would.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { delegateTx, registerValidatorTx, undelegateTx, voteTx } from "../client/txBuilder.js";
import { type SignedTx, SignedTxSchema, type TxBody, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import { ADDRESS_LENGTH, addressOf, PUBLIC_KEY_LENGTH } from "../types/block.js";
import { compareBytes, toHex } from "../types/bytes.js";
import { sha256 } from "../types/hash.js";
import type { SignatureVerifier } from "../types/signing.js";
import { txSignBytes } from "../types/signing.js";
import { accountKey } from "../types/stateKeys.js";
import type { Prng } from "./prng.js";
import type { StandInKeyRegistry, StandInSigner } from "./signer.js";

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

function signedSimTx(signer: StandInSigner, body: TxBody): SimTx {
  const bytes = toBinary(TxBodySchema, body);
  return simTx(create(SignedTxSchema, { body: bytes, signature: signer.sign(txSignBytes(bytes)) }));
}

/** An operator's RegisterValidator (its first transaction, nonce 0), built with the SDK's encoder. */
export function registerTx(
  chainId: string,
  operator: StandInSigner,
  consensusKey: Uint8Array,
  selfStake: bigint,
  peerAddress: string,
): SimTx {
  const body = registerValidatorTx(
    { chainId, sender: operator.publicKey, nonce: 0n },
    { consensusKey, selfStake, peerAddress },
  );
  return signedSimTx(operator, body);
}

/**
 * A token holder of a simulated client: Delegate, Undelegate and Vote calls built with the SDK's
 * encoders (src/client/txBuilder.ts, access lists from src/staking/access.ts), one in flight at a
 * time (the next nonce is sent once the previous call committed), all choices from the PRNG.
 * `cap` bounds everything it ever delegates (the simulator's power rule, src/sim/staking.ts).
 * Its view of its own stake is what it sent, not what executed: a call that failed (e.g. a vote
 * that reached a block before the delegation it relied on) only makes later calls fail too.
 */
export class SimDelegator {
  private nonce = 0n;
  private delegated = 0n;
  private free = 0n;
  private ballot: { validator: Uint8Array; amount: bigint }[] = [];
  /** Every validator ever on its ballot: a superset of ballot ∪ exposures for the access list. */
  private readonly touched = new Map<string, Uint8Array>();
  /** Hash of the call in flight, or null. */
  pending: string | null = null;

  /** Rotator only: how many ballots it has cast (picks the next outsider in turn). */
  private turn = 0;

  /**
   * A `rotator` bonds its whole cap once, then each call moves its whole stake onto one operator
   * outside the latest elected set, so the next election brings that one in and drops the one it
   * backed before: the set changes every epoch in which its vote lands.
   */
  constructor(
    private readonly chainId: string,
    readonly signer: StandInSigner,
    private readonly cap: bigint,
    readonly rotator = false,
  ) {}

  /** Rotator: whether its ballot already backs a member of `members` (time to move on). */
  backsMemberOf(members: ReadonlySet<string>): boolean {
    return this.ballot.length === 0 || this.ballot.some((b) => members.has(toHex(b.validator)));
  }

  /**
   * The next staking call, given the operators one may vote for (at least one) and, for a
   * rotator, those of them outside the latest elected set.
   */
  next(rng: Prng, candidates: readonly Uint8Array[], outsiders: readonly Uint8Array[] = []): SimTx {
    const c = { chainId: this.chainId, sender: this.signer.publicKey, nonce: this.nonce++ };
    const touched = [...this.touched.values()];
    const onBallot = this.ballot.reduce((a, b) => a + b.amount, 0n);
    const bonded = this.free + onBallot;
    let body: TxBody;
    if (this.rotator && bonded > 0n) {
      const pool = outsiders.length > 0 ? outsiders : candidates;
      const entries = [{ validator: pool[this.turn++ % pool.length]!, amount: bonded }];
      body = voteTx(c, entries, touched);
      this.ballot = entries;
      this.free = 0n;
      for (const e of entries) this.touched.set(toHex(e.validator), e.validator);
    } else if (this.delegated < this.cap && (bonded === 0n || rng.chance(1, 4))) {
      const room = this.cap - this.delegated;
      let amount = this.rotator ? room : BigInt(20 + rng.int(Number(this.cap / 2n)));
      if (amount > room) amount = room;
      this.delegated += amount;
      this.free += amount;
      body = delegateTx(c, amount, touched);
    } else if (this.free > 0n && rng.chance(1, 6)) {
      const amount = 1n + BigInt(rng.int(Number(this.free)));
      this.free -= amount;
      body = undelegateTx(c, amount, touched);
    } else {
      // A new whole ballot: 1..3 distinct candidates sharing (most of) the bonded stake.
      const pool = [...candidates];
      for (let i = pool.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      const want = Math.min(1 + rng.int(3), pool.length, Number(bonded));
      let left = bonded - BigInt(rng.int(Number(bonded / 4n) + 1));
      const entries: { validator: Uint8Array; amount: bigint }[] = [];
      for (let i = 0; i < want && left > 0n; i++) {
        const rest = BigInt(want - 1 - i);
        const amount = i === want - 1 || left <= rest + 1n ? left : 1n + BigInt(rng.int(Number(left - rest)));
        entries.push({ validator: pool[i]!, amount });
        left -= amount;
      }
      body = voteTx(c, entries, touched);
      this.ballot = entries;
      this.free = bonded - entries.reduce((a, b) => a + b.amount, 0n);
      for (const e of entries) this.touched.set(toHex(e.validator), e.validator);
    }
    const t = signedSimTx(this.signer, body);
    this.pending = t.hashHex;
    return t;
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
